//! `tenure loyalty`: the scheduled loyalty runs by hand (expiry, tiers, the earn of imported
//! orders), the program's report, one member's points, and a check that every balance
//! equals its ledger.

use anyhow::{Context, Result};
use clap::Subcommand;
use tenure_app::PageRequest;
use tenure_domain::changes::Actor;
use tenure_domain::ids::CustomerId;

use crate::config::DbArgs;

#[derive(Subcommand)]
pub enum Command {
    /// Credit orders that have not earned yet (imported ones), release pending points whose
    /// return window closed, expire lots whose lifetime ended, give today's birthday bonuses.
    /// Safe to run again, and to interrupt: the next run completes the work.
    Expire {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Move members between tiers by what they earned over the window (down only after the
    /// grace period).
    EvaluateTiers {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Points outstanding and their value, earn and burn per month, members per tier.
    Report {
        #[command(flatten)]
        db: DbArgs,
        /// Months back.
        #[arg(long, default_value_t = 12)]
        months: u32,
        /// `table` for reading, `json` for scripts.
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// One member's balance, tier, lots and latest entries.
    Member {
        #[command(flatten)]
        db: DbArgs,
        customer: i64,
    },
    /// Check that every member's balance equals the sum of their ledger and of their lots;
    /// exits non-zero naming the members that differ.
    Check {
        #[command(flatten)]
        db: DbArgs,
    },
}

pub async fn run(command: Command, me: &Actor) -> Result<()> {
    match command {
        Command::Expire { db } => {
            let app = crate::open(&db).await?;
            let credited = app.earn_missing(me).await.context("crediting orders")?;
            let r = app
                .run_loyalty_expiry(me)
                .await
                .context("expiring points")?;
            println!(
                "orders credited: {credited}\npending lots released: {}\nlots expired: {}\nmembers changed: {}\nbirthday bonuses: {}",
                r.released_lots, r.expired_lots, r.members, r.birthday_bonuses
            );
            Ok(())
        }
        Command::EvaluateTiers { db } => {
            let app = crate::open(&db).await?;
            let r = app.evaluate_tiers(me).await.context("evaluating tiers")?;
            println!(
                "members: {}\nupgraded: {}\ndowngraded: {}\ngrace periods started: {}",
                r.members, r.upgraded, r.downgraded, r.grace_started
            );
            Ok(())
        }
        Command::Report { db, months, format } => {
            let app = crate::open(&db).await?;
            let r = app.loyalty_report(me, months).await?;
            if format == "json" {
                println!("{}", serde_json::to_string_pretty(&r)?);
                return Ok(());
            }
            let l = r.liability;
            println!(
                "members: {}\npoints outstanding: {} spendable, {} pending ({:.2} in value), {} owed",
                l.members, l.available, l.pending, l.value, l.owed
            );
            if let Some(rate) = r.redemption_rate {
                println!("redemption rate: {:.1} %", rate * 100.0);
            }
            println!("\nmonth     earned    bonus redeemed  expired reversed adjusted");
            for f in &r.flows {
                println!(
                    "{:7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
                    f.period, f.earned, f.bonus, f.redeemed, f.expired, f.reversed, f.adjusted
                );
            }
            println!("\ntier        members");
            for (tier, n) in &r.tiers {
                println!("{tier:10} {n:>8}");
            }
            let pct = |(a, n): (u64, u64)| {
                if n == 0 {
                    "-".to_owned()
                } else {
                    format!("{:.1} % of {n}", 100.0 * a as f64 / n as f64)
                }
            };
            println!(
                "\nstill active: members {}, non-members {}",
                pct(r.retention[0]),
                pct(r.retention[1])
            );
            Ok(())
        }
        Command::Member { db, customer } => {
            let app = crate::open(&db).await?;
            let v = app
                .member(me, CustomerId(customer), &PageRequest::default())
                .await?;
            let a = &v.account;
            println!(
                "balance: {} (pending {}, owed {})\ntier: {} since {}",
                a.balance,
                a.pending,
                a.owed,
                a.tier,
                a.tier_since.date_naive()
            );
            if let (Some(next), Some(to_go)) = (&v.next_tier, v.to_next_tier()) {
                println!("next tier: {} in {to_go} more", next.name);
            }
            if v.member {
                println!("referral code: {}", a.referral_code);
            }
            println!("\nlatest entries:");
            for e in v.history.items.iter().take(20) {
                println!(
                    "{}  {:8} {:>+8}  {}",
                    e.at.format("%Y-%m-%d %H:%M"),
                    e.kind.as_str(),
                    e.points,
                    e.reason
                );
            }
            Ok(())
        }
        Command::Check { db } => {
            let app = crate::open(&db).await?;
            let off = app.unbalanced_members(me).await?;
            if off.is_empty() {
                println!("every balance equals its ledger and its lots");
                Ok(())
            } else {
                let ids: Vec<String> = off.iter().map(|c| c.to_string()).collect();
                anyhow::bail!(
                    "balances differ from the ledger for customers {}",
                    ids.join(", ")
                )
            }
        }
    }
}
