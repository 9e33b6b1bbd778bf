//! `tenure analytics`: the arguments of the analytics use cases, a summary file read and a
//! predictions file written for `clv --from-summary`, and the reports printed as text or
//! JSON.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use clap::{Args, Subcommand, ValueEnum};
use tenure_app::analytics::{self as uc, ClvOptions, Model, RecommendationOptions, TimeUnit};
use tenure_domain::changes::Actor;

use crate::config::DbArgs;

#[derive(Subcommand)]
pub enum Command {
    /// Fit BG/NBD or Pareto/NBD (purchases) and Gamma-Gamma (spend), print the parameters
    /// and store every customer's P(alive), churn risk, expected purchases and CLV.
    Clv(ClvArgs),
    /// Check the purchase model against a holdout period: fit on the purchases up to
    /// `--calibration-end`, then compare expected and actual repeat purchases up to
    /// `--holdout-end`, by calibration frequency and week by week (tracking), with errors.
    Holdout {
        #[command(flatten)]
        db: DbArgs,
        /// The last day of the calibration period.
        #[arg(long)]
        calibration_end: NaiveDate,
        /// The last day of the holdout period (default: today).
        #[arg(long)]
        holdout_end: Option<NaiveDate>,
        /// The purchase model: `bgnbd` (BG/NBD) or `pareto-nbd` (Pareto/NBD).
        #[arg(long, value_enum, default_value = "bgnbd")]
        model: ModelArg,
        /// `json` (the whole check as one JSON object) or `text`.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
    /// Retention and attrition by month — overall, by acquisition channel and by segment
    /// — from the purchases. With `--survivors`, instead fit the shifted-beta-geometric
    /// model of contractual retention (subscriptions with renewals) to a cohort's survivor
    /// counts and project its survival and renewal rates.
    Retention {
        #[command(flatten)]
        db: DbArgs,
        /// Subscribers at the start and after each renewal, e.g. `1000,631,468,382`.
        #[arg(long, value_delimiter = ',')]
        survivors: Vec<u64>,
        /// With `--survivors`: renewals to project (default: twice those observed).
        #[arg(long)]
        periods: Option<u32>,
        /// The day the report is as of (default: today).
        #[arg(long)]
        as_of: Option<NaiveDate>,
        /// `text`, `csv` (`period,base,retained,lost,retention,attrition`) or `json`.
        #[arg(long, default_value = "text", value_parser = ["text", "csv", "json"])]
        format: String,
    },
    /// Place every customer in their life-cycle stage, score RFM, work out every segment
    /// and store the cohort, retention, RFM and concentration reports.
    Refresh {
        #[command(flatten)]
        db: DbArgs,
        /// The day to refresh as of (default: today).
        #[arg(long)]
        as_of: Option<NaiveDate>,
        /// `text` or `json`.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
    /// Every buyer's recency, frequency and monetary value with quintile scores 1–5 and
    /// the named segment.
    Rfm {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        as_of: Option<NaiveDate>,
        /// `text` (the segments), `csv`
        /// (`customer_external_id,recency_days,frequency,monetary,r,f,m,segment`) or `json`.
        #[arg(long, default_value = "text", value_parser = ["text", "csv", "json"])]
        format: String,
    },
    /// The cohort retention matrix by acquisition month.
    Cohorts {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        as_of: Option<NaiveDate>,
        /// `text`, `csv` (`cohort,period,size,active,retention`) or `json`.
        #[arg(long, default_value = "text", value_parser = ["text", "csv", "json"])]
        format: String,
    },
    /// Revenue concentration: the top 20 %'s share, the Gini coefficient and the curve.
    Pareto {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        as_of: Option<NaiveDate>,
        /// `text`, `csv` (`customers_share,revenue_share`) or `json`.
        #[arg(long, default_value = "text", value_parser = ["text", "csv", "json"])]
        format: String,
    },
    /// Customers per life-cycle stage, the moves between stages and the loss reasons of
    /// the last `--days` days.
    Stages {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// `text`, `csv` (`from,to,moves`) or `json`.
        #[arg(long, default_value = "text", value_parser = ["text", "csv", "json"])]
        format: String,
    },
    /// Build the "bought together" model from the order lines and store it, for
    /// `GET /api/v1/products/{id}/also-bought` and `GET /api/v1/customers/{id}/recommendations`.
    /// With `--split DATE`, instead evaluate it: build on what was bought up to DATE and
    /// report how often the top offers include a product the customer bought first later,
    /// next to offering the best-sellers.
    Recommendations {
        #[command(flatten)]
        db: DbArgs,
        /// Similar products kept per product.
        #[arg(long, default_value_t = 20)]
        keep: usize,
        /// Pairs bought together by fewer customers are ignored.
        #[arg(long, default_value_t = 2)]
        min_customers: u32,
        /// Evaluate on a time split at this day instead of storing the model.
        #[arg(long)]
        split: Option<NaiveDate>,
        /// With `--split`: offers per customer.
        #[arg(long, default_value_t = 5)]
        top: usize,
        /// `json` or `text`.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
}

/// The purchase model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelArg {
    /// BG/NBD.
    Bgnbd,
    /// Pareto/NBD.
    ParetoNbd,
}

impl From<ModelArg> for Model {
    fn from(m: ModelArg) -> Self {
        match m {
            ModelArg::Bgnbd => Model::BgNbd,
            ModelArg::ParetoNbd => Model::ParetoNbd,
        }
    }
}

/// The unit the models count time in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TimeUnitArg {
    Days,
    Weeks,
}

#[derive(Args)]
pub struct ClvArgs {
    #[command(flatten)]
    db: DbArgs,
    /// The purchase model: `bgnbd` (BG/NBD) or `pareto-nbd` (Pareto/NBD).
    #[arg(long, value_enum, default_value = "bgnbd")]
    model: ModelArg,
    /// The last day of the calibration period (default: today). Purchases after it are
    /// not used.
    #[arg(long)]
    calibration_end: Option<NaiveDate>,
    /// The unit the models count time in (recency, T, the horizon's periods). With
    /// `--from-summary`, the unit the file's recency and T are in.
    #[arg(long, value_enum, default_value = "weeks")]
    time_unit: TimeUnitArg,
    /// Months ahead that expected purchases and CLV count.
    #[arg(long, default_value_t = 12)]
    horizon: u32,
    /// Discount rate per month for CLV.
    #[arg(long, default_value_t = 0.01)]
    discount: f64,
    /// Share of spend that is margin, for CLV.
    #[arg(long, default_value_t = 1.0)]
    margin: f64,
    /// Fit on a summary CSV in the `lifetimes` format instead of the database:
    /// `customer_id,frequency,recency,T[,monetary_value]`.
    #[arg(long)]
    from_summary: Option<PathBuf>,
    /// With `--from-summary`: where to write the per-customer predictions (CSV).
    #[arg(long)]
    out: Option<PathBuf>,
    /// `json` (the fit as one JSON object) or `text`.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

fn print(json: &serde_json::Value, text: &dyn std::fmt::Display, format: &str) {
    if format == "json" {
        println!("{json}");
    } else {
        println!("{text}");
    }
}

pub async fn run(command: Command, me: &Actor) -> Result<()> {
    match command {
        Command::Clv(args) => clv(args, me).await,
        Command::Holdout {
            db,
            calibration_end,
            holdout_end,
            model,
            format,
        } => {
            let app = crate::open(&db).await?;
            let r = app
                .holdout_check(me, model.into(), calibration_end, holdout_end)
                .await
                .context("checking the model against the holdout")?;
            print(&r.json, &r.text, &format);
            Ok(())
        }
        Command::Retention {
            db,
            survivors,
            periods,
            as_of,
            format,
        } => {
            if survivors.is_empty() {
                let app = crate::open(&db).await?;
                return crate::reports::retention(&app, me, as_of, &format).await;
            }
            let r = uc::retention(&survivors, periods).context("--survivors")?;
            print(&r.json, &r.text, &format);
            Ok(())
        }
        Command::Refresh { db, as_of, format } => {
            let app = crate::open(&db).await?;
            crate::reports::refresh(&app, me, as_of, &format).await
        }
        Command::Rfm { db, as_of, format } => {
            let app = crate::open(&db).await?;
            crate::reports::rfm(&app, me, as_of, &format).await
        }
        Command::Cohorts { db, as_of, format } => {
            let app = crate::open(&db).await?;
            crate::reports::cohorts(&app, me, as_of, &format).await
        }
        Command::Pareto { db, as_of, format } => {
            let app = crate::open(&db).await?;
            crate::reports::pareto(&app, me, as_of, &format).await
        }
        Command::Stages { db, days, format } => {
            let app = crate::open(&db).await?;
            crate::reports::stages(&app, me, days, &format).await
        }
        Command::Recommendations {
            db,
            keep,
            min_customers,
            split,
            top,
            format,
        } => {
            let app = crate::open(&db).await?;
            let options = RecommendationOptions {
                keep,
                min_customers,
                split,
                top,
            };
            let r = app
                .build_recommendations(me, &options)
                .await
                .context("building the recommendations")?;
            print(&r.json, &r.text, &format);
            Ok(())
        }
    }
}

async fn clv(args: ClvArgs, me: &Actor) -> Result<()> {
    let options = ClvOptions {
        model: args.model.into(),
        calibration_end: args.calibration_end,
        horizon_months: args.horizon,
        discount: args.discount,
        margin: args.margin,
        time_unit: match args.time_unit {
            TimeUnitArg::Days => TimeUnit::Days,
            TimeUnitArg::Weeks => TimeUnit::Weeks,
        },
    };
    let report = match &args.from_summary {
        Some(file) => {
            let (keys, customers) = crate::summary_file::read(file)?;
            let report = uc::fit_summaries(keys, &customers, &options).context("fitting")?;
            if let Some(out) = &args.out {
                crate::summary_file::write(out, &report)?;
            }
            report
        }
        None => {
            let app = crate::open(&args.db).await?;
            match app
                .refresh_models(me, &options)
                .await
                .context("refreshing the models")?
            {
                Some(r) => r,
                None => bail!("there are no purchases to fit the models on"),
            }
        }
    };
    let mut json = report.json.clone();
    let t = report.totals();
    json["summary"] = serde_json::json!({
        "customers": t.customers,
        "at_risk": t.at_risk,
        "at_risk_below_p_alive": uc::AT_RISK_BELOW,
        "mean_p_alive": t.mean_p_alive,
        "expected_value": t.expected_value,
        "value_at_risk": t.value_at_risk,
        "currency": report.currency,
    });
    print(&json, &report, &args.format);
    Ok(())
}
