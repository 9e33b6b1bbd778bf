//! `tenure analytics refresh|rfm|cohorts|retention|pareto|stages`: the life-cycle and
//! retention reports printed as a table, or written as CSV with fixed columns, or JSON.

use std::io::Write;

use anyhow::{Context, Result};
use chrono::{Duration, NaiveDate};
use tenure_app::App;
use tenure_domain::changes::Actor;

/// The day a report is as of: the one asked for, or today (so a report stored by today's
/// refresh is used, and an older one is not).
fn day(app: &App, as_of: Option<NaiveDate>) -> Option<NaiveDate> {
    Some(as_of.unwrap_or_else(|| app.now().date_naive()))
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn opt_pct(x: Option<f64>) -> String {
    x.map_or_else(|| "–".into(), pct)
}

fn csv_out() -> csv::Writer<std::io::Stdout> {
    csv::Writer::from_writer(std::io::stdout())
}

fn json_out(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}

pub async fn refresh(app: &App, me: &Actor, as_of: Option<NaiveDate>, format: &str) -> Result<()> {
    let r = app
        .refresh_analytics(me, as_of)
        .await
        .context("refreshing the analytics")?;
    if format == "json" {
        return json_out(&serde_json::json!({
            "as_of": r.as_of.to_string(),
            "customers": r.customers,
            "buyers": r.buyers,
            "stage_moves": r.stage_moves,
            "rfm_changed": r.rfm_changed,
            "segments": r.segments,
            "stages": r.stages.iter().map(|(s, n)| (s.as_str(), *n)).collect::<std::collections::BTreeMap<_, _>>(),
            "seconds": r.seconds,
        }));
    }
    println!(
        "refreshed as of {}: {} customers ({} buyers), {} stage moves, {} RFM scores changed, {} segments, in {:.1} s",
        r.as_of, r.customers, r.buyers, r.stage_moves, r.rfm_changed, r.segments, r.seconds
    );
    println!("{:<10} {:>10}", "stage", "customers");
    for (s, n) in &r.stages {
        println!("{:<10} {:>10}", s.as_str(), n);
    }
    Ok(())
}

pub async fn rfm(app: &App, me: &Actor, as_of: Option<NaiveDate>, format: &str) -> Result<()> {
    match format {
        "csv" | "json" => {
            let rows = app.rfm(me, as_of).await.context("scoring RFM")?;
            if format == "json" {
                return json_out(&rows);
            }
            let mut w = csv_out();
            w.write_record([
                "customer_external_id",
                "recency_days",
                "frequency",
                "monetary",
                "r",
                "f",
                "m",
                "segment",
            ])?;
            for r in rows {
                w.write_record([
                    tenure_app::export::spreadsheet_safe(
                        r.customer_external_id.unwrap_or_default(),
                    ),
                    r.recency_days.to_string(),
                    r.frequency.to_string(),
                    format!("{:.2}", r.monetary),
                    r.r.to_string(),
                    r.f.to_string(),
                    r.m.to_string(),
                    r.segment.to_owned(),
                ])?;
            }
            w.flush()?;
            Ok(())
        }
        _ => {
            let s = app
                .rfm_summary(me, day(app, as_of))
                .await
                .context("scoring RFM")?;
            println!("RFM as of {}: {} buyers", s.as_of, s.customers);
            println!(
                "{:<20} {:>10} {:>8} {:>14}",
                "segment", "customers", "share", "revenue"
            );
            let total = s.customers.max(1) as f64;
            for g in &s.segments {
                println!(
                    "{:<20} {:>10} {:>8} {:>14.2}",
                    g.segment,
                    g.customers,
                    pct(g.customers as f64 / total),
                    g.revenue
                );
            }
            println!("\nR (rows, 5 = most recent) × average of F and M (columns 1..5):");
            for (k, row) in s.grid.iter().enumerate().rev() {
                let cells: Vec<String> = row.iter().map(|n| format!("{n:>9}")).collect();
                println!("R{} {}", k + 1, cells.join(""));
            }
            Ok(())
        }
    }
}

pub async fn cohorts(app: &App, me: &Actor, as_of: Option<NaiveDate>, format: &str) -> Result<()> {
    let r = app
        .cohorts(me, day(app, as_of))
        .await
        .context("building the cohort matrix")?;
    match format {
        "json" => json_out(&r),
        "csv" => {
            let mut w = csv_out();
            w.write_record(["cohort", "period", "size", "active", "retention"])?;
            for c in &r.cells {
                w.write_record([
                    c.cohort.clone(),
                    c.period.to_string(),
                    c.size.to_string(),
                    c.active.to_string(),
                    format!("{:.6}", c.retention),
                ])?;
            }
            w.flush()?;
            Ok(())
        }
        _ => {
            println!(
                "cohorts by acquisition month as of {} (share of the cohort buying in month +k)",
                r.as_of
            );
            let periods = r.cells.iter().map(|c| c.period).max().unwrap_or(0).min(12);
            let head: Vec<String> = (0..=periods)
                .map(|k| format!("{:>7}", format!("+{k}")))
                .collect();
            println!("{:<8} {:>7} {}", "cohort", "size", head.join(""));
            let mut out = std::io::stdout().lock();
            let mut current = String::new();
            for c in &r.cells {
                if c.cohort != current {
                    if !current.is_empty() {
                        writeln!(out)?;
                    }
                    current = c.cohort.clone();
                    write!(out, "{:<8} {:>7} ", c.cohort, c.size)?;
                }
                if c.period <= periods {
                    write!(out, "{:>7}", pct(c.retention))?;
                }
            }
            writeln!(out)?;
            Ok(())
        }
    }
}

pub async fn retention(
    app: &App,
    me: &Actor,
    as_of: Option<NaiveDate>,
    format: &str,
) -> Result<()> {
    let r = app
        .retention_report(me, day(app, as_of))
        .await
        .context("computing retention")?;
    match format {
        "json" => json_out(&r),
        "csv" => {
            let mut w = csv_out();
            w.write_record([
                "group",
                "period",
                "base",
                "retained",
                "lost",
                "retention",
                "attrition",
            ])?;
            let groups = std::iter::once(("all".to_owned(), &r.overall))
                .chain(
                    r.by_channel
                        .iter()
                        .map(|(k, v)| (format!("channel:{k}"), v)),
                )
                .chain(
                    r.by_segment
                        .iter()
                        .map(|(k, v)| (format!("segment:{k}"), v)),
                );
            for (g, rows) in groups {
                for p in rows {
                    w.write_record([
                        g.clone(),
                        p.period.clone(),
                        p.base.to_string(),
                        p.retained.to_string(),
                        p.lost.to_string(),
                        p.retention.map_or_else(String::new, |x| format!("{x:.6}")),
                        p.attrition.map_or_else(String::new, |x| format!("{x:.6}")),
                    ])?;
                }
            }
            w.flush()?;
            Ok(())
        }
        _ => {
            println!(
                "retention by month as of {} (a customer is lost after {} months without a purchase)",
                r.as_of, r.window_months
            );
            println!("yearly retention: {}", opt_pct(r.yearly_retention));
            println!(
                "{:<8} {:>9} {:>9} {:>8} {:>10} {:>10}",
                "month", "base", "retained", "lost", "retention", "attrition"
            );
            for p in &r.overall {
                println!(
                    "{:<8} {:>9} {:>9} {:>8} {:>10} {:>10}",
                    p.period,
                    p.base,
                    p.retained,
                    p.lost,
                    opt_pct(p.retention),
                    opt_pct(p.attrition)
                );
            }
            if !r.by_channel.is_empty() {
                println!("\nlast month by acquisition channel:");
                for (k, rows) in &r.by_channel {
                    if let Some(p) = rows.last() {
                        println!(
                            "{:<16} base {:>8}  retention {:>7}",
                            k,
                            p.base,
                            opt_pct(p.retention)
                        );
                    }
                }
            }
            if !r.by_segment.is_empty() {
                println!("\nlast month by segment:");
                for (k, rows) in &r.by_segment {
                    if let Some(p) = rows.last() {
                        println!(
                            "{:<16} base {:>8}  retention {:>7}",
                            k,
                            p.base,
                            opt_pct(p.retention)
                        );
                    }
                }
            }
            Ok(())
        }
    }
}

pub async fn pareto(app: &App, me: &Actor, as_of: Option<NaiveDate>, format: &str) -> Result<()> {
    let r = app
        .concentration(me, day(app, as_of))
        .await
        .context("computing the revenue concentration")?;
    match format {
        "json" => json_out(&r),
        "csv" => {
            let mut w = csv_out();
            w.write_record(["customers_share", "revenue_share"])?;
            for (c, v) in &r.curve {
                w.write_record([format!("{c:.2}"), format!("{v:.6}")])?;
            }
            w.flush()?;
            Ok(())
        }
        _ => {
            println!(
                "as of {}: {} buyers, revenue {:.2}; the top 20 % bring {} of it; Gini {:.3}",
                r.as_of,
                r.customers,
                r.revenue,
                pct(r.top20_share),
                r.gini
            );
            for k in [1, 5, 10, 20, 50, 80] {
                if let Some((_, v)) = r.curve.get(k) {
                    println!("top {k:>2} % of customers: {:>6} of revenue", pct(*v));
                }
            }
            Ok(())
        }
    }
}

pub async fn stages(app: &App, me: &Actor, days: u32, format: &str) -> Result<()> {
    let to = app.now();
    let from = to - Duration::days(i64::from(days.max(1)));
    let r = app
        .stage_report(me, from, to + Duration::seconds(1))
        .await
        .context("reading the stages")?;
    let name =
        |s: Option<tenure_domain::lifecycle::Stage>| s.map_or("(first placement)", |s| s.as_str());
    match format {
        "json" => json_out(&serde_json::json!({
            "from": r.from.to_rfc3339(),
            "to": r.to.to_rfc3339(),
            "counts": r.counts.iter().map(|(s, n)| serde_json::json!({"stage": s.as_str(), "customers": n})).collect::<Vec<_>>(),
            "flows": r.flows.iter().map(|(a, b, n)| serde_json::json!({"from": a.map(|s| s.as_str()), "to": b.as_str(), "moves": n})).collect::<Vec<_>>(),
            "loss_reasons": r.loss_reasons.iter().map(|(l, n)| serde_json::json!({"reason": l.map(|l| l.as_str()), "customers": n})).collect::<Vec<_>>(),
        })),
        "csv" => {
            let mut w = csv_out();
            w.write_record(["from", "to", "moves"])?;
            for (a, b, n) in &r.flows {
                w.write_record([a.map_or("", |s| s.as_str()), b.as_str(), &n.to_string()])?;
            }
            w.flush()?;
            Ok(())
        }
        _ => {
            println!("{:<10} {:>10}", "stage", "customers");
            for (s, n) in &r.counts {
                println!("{:<10} {:>10}", s.as_str(), n);
            }
            println!("\nmoves in the last {days} days:");
            for (a, b, n) in &r.flows {
                println!("{:<18} → {:<10} {:>8}", name(*a), b.as_str(), n);
            }
            if !r.loss_reasons.is_empty() {
                println!("\nwhy customers were lost:");
                for (l, n) in &r.loss_reasons {
                    println!("{:<16} {:>8}", l.map_or("(none yet)", |l| l.as_str()), n);
                }
            }
            Ok(())
        }
    }
}
