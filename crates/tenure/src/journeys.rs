//! `tenure journeys`: the journeys, switched on and off by name, and what each has sent.

use anyhow::{Context, Result};
use clap::Subcommand;
use tenure_domain::changes::Actor;
use tenure_domain::journey::Trigger;

use crate::config::DbArgs;

#[derive(Subcommand)]
pub enum Command {
    /// Every journey: its name, whether it is on, what starts it, who entered, what it sent.
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Switch a journey on (its templates and conditions are checked first).
    Enable {
        /// The journey's name, as `list` shows it (welcome, birthday, win_back, ...).
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Switch a journey off; customers already in it finish it.
    Disable {
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Enrol today's entrants of the scheduled journeys now (birthdays, holidays, ...).
    Evaluate {
        #[command(flatten)]
        db: DbArgs,
    },
}

fn trigger(t: &Trigger) -> String {
    match t {
        Trigger::Event { event, stage: None } => format!("on {event}"),
        Trigger::Event {
            event,
            stage: Some(s),
        } => format!("on {event} to {s}"),
        Trigger::Birthday => "daily: birthdays".into(),
        Trigger::Holiday { holidays } if holidays.len() > 2 => {
            format!("daily: {} holidays", holidays.len())
        }
        Trigger::Holiday { holidays } => format!(
            "daily: {}",
            holidays
                .iter()
                .map(|h| h.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Trigger::Anniversary => "daily: first-purchase anniversaries".into(),
        Trigger::PointsExpiring { days } => format!("daily: points expiring within {days} days"),
        Trigger::Daily => "daily: entry condition".into(),
    }
}

pub async fn run(command: Command, me: &Actor) -> Result<()> {
    match command {
        Command::List { db } => {
            let app = crate::open(&db).await?;
            println!(
                "{:<20} {:<4} {:<44} {:>8} {:>8} {:>6}  title",
                "name", "on", "trigger", "entered", "control", "sent"
            );
            for j in app.journeys(me).await? {
                let r = app.journey_report(me, j.id).await?;
                let sent: i64 = r
                    .counts
                    .messages
                    .iter()
                    .filter(|(s, _, _)| *s == tenure_domain::journey::MessageStatus::Sent)
                    .map(|(_, _, n)| n)
                    .sum();
                println!(
                    "{:<20} {:<4} {:<44} {:>8} {:>8} {:>6}  {}",
                    j.name,
                    if j.enabled { "on" } else { "off" },
                    trigger(&j.definition.trigger),
                    r.counts.entered - r.counts.control,
                    r.counts.control,
                    sent,
                    j.title
                );
            }
            Ok(())
        }
        Command::Enable { name, db } => switch(&db, me, &name, true).await,
        Command::Disable { name, db } => switch(&db, me, &name, false).await,
        Command::Evaluate { db } => {
            let app = crate::open(&db).await?;
            let r = app
                .evaluate_journey_schedules()
                .await
                .context("evaluating the scheduled journeys")?;
            println!(
                "journeys: {}\nenrolled: {}\nheld out as control: {}",
                r.journeys, r.enrolled, r.control
            );
            Ok(())
        }
    }
}

async fn switch(db: &DbArgs, me: &Actor, name: &str, on: bool) -> Result<()> {
    let app = crate::open(db).await?;
    let j = app.journey_named(me, name).await?;
    let j = app
        .set_journey_enabled(me, j.id, on)
        .await
        .with_context(|| format!("switching {name} {}", if on { "on" } else { "off" }))?;
    println!(
        "{} is {}: {}",
        j.name,
        if j.enabled { "on" } else { "off" },
        j.title
    );
    Ok(())
}
