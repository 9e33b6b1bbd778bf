//! `tenure duplicates`: review likely duplicate customers, merge them, undo merges, rebuild
//! the candidates.

use anyhow::{Context, Result};
use clap::Subcommand;
use tenure_app::PageRequest;
use tenure_app::model::{Candidate, CandidateSide, Merge};
use tenure_domain::changes::Actor;
use tenure_domain::ids::{CustomerId, MergeId};

use crate::config::DbArgs;

#[derive(Subcommand)]
pub enum Command {
    /// List likely duplicate pairs, best first.
    List {
        #[command(flatten)]
        db: DbArgs,
        /// Only pairs with at least this score (0–1).
        #[arg(long, default_value_t = 0.5)]
        min_score: f64,
        /// Only the pairs this customer is part of.
        #[arg(long)]
        customer: Option<i64>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// `table` for reading, `json` (one object per line) for scripts.
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// Merge DUPLICATE into SURVIVOR with its whole history; prints the merge id.
    Merge {
        #[command(flatten)]
        db: DbArgs,
        survivor: i64,
        duplicate: i64,
    },
    /// Undo a merge: the merged customer comes back with its history.
    Undo {
        #[command(flatten)]
        db: DbArgs,
        merge: i64,
    },
    /// Recorded merges, newest first.
    History {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Recompute every candidate pair from the customers' match keys (they are kept
    /// current by every customer write; this is for after a bulk load or a repair).
    Rebuild {
        #[command(flatten)]
        db: DbArgs,
    },
}

pub async fn run(command: Command, me: &Actor) -> Result<()> {
    match command {
        Command::List {
            db,
            min_score,
            customer,
            limit,
            format,
        } => {
            let app = crate::open(&db).await?;
            let page = app
                .duplicate_candidates(
                    me,
                    customer.map(CustomerId),
                    Some(min_score),
                    &PageRequest::first(limit.clamp(1, 500)),
                )
                .await
                .context("finding duplicates")?;
            if format == "json" {
                for c in &page.items {
                    println!("{}", candidate_json(c));
                }
            } else {
                print_table(&page.items);
            }
            if page.next_cursor.is_some() {
                eprintln!("(more pairs follow; raise --limit or --min-score)");
            }
            Ok(())
        }
        Command::Merge {
            db,
            survivor,
            duplicate,
        } => {
            let app = crate::open(&db).await?;
            let m = app
                .merge_customers(me, CustomerId(survivor), CustomerId(duplicate))
                .await
                .context("merging")?;
            println!(
                "merged customer {} into {} (merge {}): {} orders, {} interactions moved; undo with `tenure duplicates undo {}`",
                m.merged_id,
                m.survivor_id,
                m.id,
                m.moved.count("orders"),
                m.moved.count("interactions"),
                m.id
            );
            Ok(())
        }
        Command::Undo { db, merge } => {
            let app = crate::open(&db).await?;
            let m = app
                .undo_merge(me, MergeId(merge))
                .await
                .context("undoing the merge")?;
            println!(
                "undid merge {}: customer {} is back with {} orders and {} interactions",
                m.id,
                m.merged_id,
                m.moved.count("orders"),
                m.moved.count("interactions")
            );
            Ok(())
        }
        Command::History { db, limit } => {
            let app = crate::open(&db).await?;
            let page = app
                .list_merges(me, None, &PageRequest::first(limit.clamp(1, 500)))
                .await
                .context("listing merges")?;
            for m in &page.items {
                print_merge(m);
            }
            Ok(())
        }
        Command::Rebuild { db } => {
            let app = crate::open(&db).await?;
            let started = std::time::Instant::now();
            let n = app
                .rebuild_duplicates(me)
                .await
                .context("rebuilding the duplicate candidates")?;
            println!(
                "{n} candidate pairs in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}

fn candidate_json(c: &Candidate) -> serde_json::Value {
    let side = |s: &CandidateSide| {
        serde_json::json!({
            "id": s.id.0, "external_id": s.external_id, "name": s.name,
            "email": s.email, "phone": s.phone,
        })
    };
    serde_json::json!({
        "customers": [side(&c.a), side(&c.b)],
        "reasons": c.pair.reasons.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "name_similarity": c.pair.name_similarity,
        "score": c.pair.score(),
    })
}

fn print_table(items: &[Candidate]) {
    println!(
        "{:>5}  {:>8}  {:<28}  {:>8}  {:<28}  reasons",
        "score", "id", "name", "id", "name"
    );
    for c in items {
        let reasons: Vec<&str> = c.pair.reasons.iter().map(|r| r.as_str()).collect();
        println!(
            "{:>5.3}  {:>8}  {:<28}  {:>8}  {:<28}  {}",
            c.pair.score(),
            c.a.id,
            clip(&c.a.name, 28),
            c.b.id,
            clip(&c.b.name, 28),
            reasons.join(",")
        );
    }
}

/// `s` cut to `width` characters, with an ellipsis when cut.
pub fn clip(s: &str, width: usize) -> String {
    if s.chars().count() > width {
        let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
        t.push('…');
        t
    } else {
        s.to_owned()
    }
}

fn print_merge(m: &Merge) {
    let state = match &m.undone_at {
        Some(t) => format!(
            "undone {} by {}",
            t.to_rfc3339(),
            m.undone_by.as_deref().unwrap_or("")
        ),
        None => "standing".to_owned(),
    };
    println!(
        "merge {}: {} ({:?}) into {} at {} by {}, {}",
        m.id,
        m.merged_id,
        m.merged_profile.data.name,
        m.survivor_id,
        m.merged_at.to_rfc3339(),
        m.merged_by,
        state
    );
}
