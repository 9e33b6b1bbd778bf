//! `tenure duplicates`: review likely duplicate customers, merge them, undo merges.

use anyhow::{Context, Result};
use clap::Subcommand;
use tenure_domain::ids::CustomerId;
use tenure_store::Store;
use tenure_store::duplicates::{Candidate, Merge};

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
        limit: usize,
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
        limit: i64,
    },
}

async fn open(db: &DbArgs) -> Result<Store> {
    crate::open(db).await
}

/// Who the command line acts as, for the merge record.
fn actor() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::List {
            db,
            min_score,
            customer,
            limit,
            format,
        } => {
            if !(0.0..=1.0).contains(&min_score) {
                anyhow::bail!("--min-score must be between 0 and 1");
            }
            let store = open(&db).await?;
            let page = store
                .duplicate_candidates(customer.map(CustomerId), min_score, None, limit.max(1))
                .await
                .context("finding duplicates")?;
            if format == "json" {
                for c in &page.items {
                    println!("{}", candidate_json(c));
                }
            } else {
                print_table(&page.items);
            }
            if page.next.is_some() {
                eprintln!("(more pairs follow; raise --limit or --min-score)");
            }
            Ok(())
        }
        Command::Merge {
            db,
            survivor,
            duplicate,
        } => {
            let store = open(&db).await?;
            let m = store
                .merge_customers(CustomerId(survivor), CustomerId(duplicate), &actor())
                .await
                .context("merging")?;
            println!(
                "merged customer {} into {} (merge {}): {} orders, {} interactions moved; undo with `tenure duplicates undo {}`",
                m.merged_id,
                m.survivor_id,
                m.id,
                m.moved.orders.len(),
                m.moved.interactions.len(),
                m.id
            );
            Ok(())
        }
        Command::Undo { db, merge } => {
            let store = open(&db).await?;
            let m = store
                .undo_merge(merge, &actor())
                .await
                .context("undoing the merge")?;
            println!(
                "undid merge {}: customer {} is back with {} orders and {} interactions",
                m.id,
                m.merged_id,
                m.moved.orders.len(),
                m.moved.interactions.len()
            );
            Ok(())
        }
        Command::History { db, limit } => {
            let store = open(&db).await?;
            let page = store
                .list_merges(None, None, limit.max(1))
                .await
                .context("listing merges")?;
            for m in &page.items {
                print_merge(m);
            }
            Ok(())
        }
    }
}

fn candidate_json(c: &Candidate) -> serde_json::Value {
    let side = |s: &tenure_store::duplicates::CandidateSide| {
        serde_json::json!({
            "id": s.id.0, "external_id": s.external_id, "name": s.name,
            "email": s.email, "phone": s.phone,
        })
    };
    serde_json::json!({
        "customers": [side(&c.a), side(&c.b)],
        "reasons": c.reasons.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "name_similarity": c.name_similarity,
        "score": c.score,
    })
}

fn print_table(items: &[Candidate]) {
    println!(
        "{:>5}  {:>8}  {:<28}  {:>8}  {:<28}  reasons",
        "score", "id", "name", "id", "name"
    );
    for c in items {
        let reasons: Vec<&str> = c.reasons.iter().map(|r| r.as_str()).collect();
        println!(
            "{:>5.3}  {:>8}  {:<28}  {:>8}  {:<28}  {}",
            c.score,
            c.a.id,
            clip(&c.a.name),
            c.b.id,
            clip(&c.b.name),
            reasons.join(",")
        );
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() > 28 {
        let mut t: String = s.chars().take(27).collect();
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
