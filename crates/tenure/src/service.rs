//! `tenure service`: the SLA scan by hand and the service report (NPS and CSAT per month,
//! SERVQUAL gaps, agents, breaches).

use anyhow::{Context, Result};
use clap::Subcommand;
use tenure_domain::changes::Actor;
use tenure_domain::survey::Dimension;

use crate::config::DbArgs;

#[derive(Subcommand)]
pub enum Command {
    /// Mark the tickets whose first response or resolution is overdue, create their
    /// escalation tasks and send the reminders that are due (within business hours).
    Scan {
        #[command(flatten)]
        db: DbArgs,
    },
    /// NPS and CSAT per month, the SERVQUAL gaps, agents and breaches.
    Report {
        #[command(flatten)]
        db: DbArgs,
        /// Months back.
        #[arg(long, default_value_t = 12)]
        months: u32,
    },
}

fn score(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}"))
}

pub async fn run(command: Command, me: &Actor) -> Result<()> {
    match command {
        Command::Scan { db } => {
            let app = crate::open(&db).await?;
            let s = app.run_sla_scan(me).await.context("scanning the SLAs")?;
            println!(
                "first responses breached: {}\nresolutions breached: {}\nwarnings: {}\nreminders sent: {}",
                s.first_response_breaches, s.resolution_breaches, s.warnings, s.reminders_sent
            );
            Ok(())
        }
        Command::Report { db, months } => {
            let app = crate::open(&db).await?;
            let r = app.service_report(me, months).await?;
            println!("month    NPS  answers  CSAT  answers");
            for (m, s) in &r.by_month {
                println!(
                    "{m}  {:>5}  {:>7}  {:>4}  {:>7}",
                    score(s.nps),
                    s.promoters + s.passives + s.detractors,
                    score(s.csat),
                    s.csat_answers
                );
            }
            println!(
                "\nSERVQUAL ({} answers)  expectation  perception  gap",
                r.servqual.responses
            );
            for (i, d) in Dimension::ALL.iter().enumerate() {
                let (e, p) = (r.servqual.expectation[i], r.servqual.perception[i]);
                println!("{:<16} {e:>11.2} {p:>11.2} {:>5.2}", d.as_str(), p - e);
            }
            println!(
                "overall gap {}; weighted {}",
                score(r.servqual.gap),
                score(r.servqual.weighted_gap)
            );
            println!("\nagent  tickets  resolved  breaches");
            for a in &r.agents {
                println!(
                    "{}  {}  {}  {}",
                    a.agent_name.as_deref().unwrap_or("(nobody)"),
                    a.tickets,
                    a.resolved,
                    a.first_response_breaches + a.resolution_breaches
                );
            }
            Ok(())
        }
    }
}
