//! `tenure analytics clv`: fit BG/NBD (or Pareto/NBD) and Gamma-Gamma on the purchase
//! history (or on a summary file), print the parameters, and store each customer's P(alive),
//! expected purchases, expected spend and CLV.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{NaiveDate, Utc};
use clap::{Args, Subcommand};
use rayon::prelude::*;
use serde_json::json;
use tenure_analytics::Summary;
use tenure_analytics::bgnbd;
use tenure_analytics::clv::{ClvTerms, PurchaseModel};
use tenure_analytics::gamma_gamma;
use tenure_analytics::holdout;
use tenure_analytics::pareto_nbd;
use tenure_analytics::recommend;
use tenure_analytics::sbg;
use tenure_domain::ids::{CustomerId, ProductId};
use tenure_store::analytics::Prediction;

use crate::config::DbArgs;

/// Days in the time unit the models count in (weeks).
const DAYS_PER_UNIT: f64 = 7.0;
/// Weeks in a month, for the monthly discounting of CLV.
const WEEKS_PER_MONTH: f64 = 4.345;

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
        #[arg(long, default_value = "bgnbd", value_parser = ["bgnbd", "pareto-nbd"])]
        model: String,
        /// `json` (the whole check as one JSON object) or `text`.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
    /// Fit the shifted-beta-geometric model of contractual retention (subscriptions with
    /// renewals) to a cohort's survivor counts, and project its survival and renewal rates.
    Retention {
        /// Subscribers at the start and after each renewal, e.g. `1000,631,468,382`.
        #[arg(long, value_delimiter = ',', required = true)]
        survivors: Vec<u64>,
        /// Renewals to project (default: twice those observed).
        #[arg(long)]
        periods: Option<u32>,
        /// `json` or `text`.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
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

#[derive(Args)]
pub struct ClvArgs {
    #[command(flatten)]
    db: DbArgs,
    /// The purchase model: `bgnbd` (BG/NBD) or `pareto-nbd` (Pareto/NBD).
    #[arg(long, default_value = "bgnbd", value_parser = ["bgnbd", "pareto-nbd"])]
    model: String,
    /// The last day of the calibration period (default: today). Purchases after it are
    /// not used.
    #[arg(long)]
    calibration_end: Option<NaiveDate>,
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
    /// `customer_id,frequency,recency,T[,monetary_value]` (times in weeks).
    #[arg(long)]
    from_summary: Option<PathBuf>,
    /// With `--from-summary`: where to write the per-customer predictions (CSV).
    #[arg(long)]
    out: Option<PathBuf>,
    /// `json` (the fit as one JSON object) or `text`.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Clv(args) => fit_and_store(args).await,
        Command::Holdout {
            db,
            calibration_end,
            holdout_end,
            model,
            format,
        } => holdout(&db, calibration_end, holdout_end, &model, &format).await,
        Command::Retention {
            survivors,
            periods,
            format,
        } => retention(&survivors, periods, &format),
        Command::Recommendations {
            db,
            keep,
            min_customers,
            split,
            top,
            format,
        } => recommendations(&db, keep, min_customers, split, top, &format).await,
    }
}

fn retention(survivors: &[u64], periods: Option<u32>, format: &str) -> Result<()> {
    if survivors.len() < 2 || survivors[0] == 0 {
        bail!("--survivors needs the cohort's size (above 0) and at least one renewal");
    }
    if let Some(w) = survivors.windows(2).position(|w| w[1] > w[0]) {
        bail!(
            "--survivors must not grow: {} after renewal {} is more than {} before it",
            survivors[w + 1],
            w + 1,
            survivors[w]
        );
    }
    let counts: Vec<f64> = survivors.iter().map(|&n| n as f64).collect();
    let fit = sbg::fit(&counts);
    if !fit.log_likelihood.is_finite() {
        bail!("the retention model could not be fitted to these counts");
    }
    let m = fit.params;
    let observed = survivors.len() as u32 - 1;
    let periods = periods.unwrap_or(2 * observed);
    let start = counts[0];
    let projection: Vec<serde_json::Value> = (0..=periods)
        .map(|t| {
            json!({
                "renewal": t,
                "survival": m.survival(t),
                "expected_survivors": start * m.survival(t),
                "actual_survivors": survivors.get(t as usize),
                "retention": if t == 0 { None } else { Some(m.retention(t)) },
            })
        })
        .collect();
    let report = json!({
        "sbg": {
            "alpha": m.alpha, "beta": m.beta,
            "log_likelihood": fit.log_likelihood,
            "standard_errors": {"alpha": fit.standard_errors[0], "beta": fit.standard_errors[1]},
            "converged": fit.converged,
        },
        "projection": projection,
    });
    if format == "json" {
        println!("{report}");
        return Ok(());
    }
    println!(
        "shifted-beta-geometric: alpha = {:.4}, beta = {:.4}; log-likelihood {:.4}",
        m.alpha, m.beta, fit.log_likelihood
    );
    println!("renewal | expected survivors | actual | renewal rate");
    for t in 0..=periods {
        println!(
            "{t:>7} | {:>18.1} | {:>6} | {}",
            start * m.survival(t),
            survivors
                .get(t as usize)
                .map_or(String::new(), u64::to_string),
            if t == 0 {
                String::new()
            } else {
                format!("{:.4}", m.retention(t))
            }
        );
    }
    Ok(())
}

async fn recommendations(
    db: &DbArgs,
    keep: usize,
    min_customers: u32,
    split: Option<NaiveDate>,
    top: usize,
    format: &str,
) -> Result<()> {
    let store = crate::open(db).await?;
    let started = std::time::Instant::now();
    let bought = store
        .products_first_bought()
        .await
        .context("reading order lines")?;
    // Dense product indices, and each customer's products before (and after) the split.
    let mut ids: Vec<ProductId> = bought.iter().map(|b| b.product).collect();
    ids.sort();
    ids.dedup();
    let index = |p: ProductId| ids.partition_point(|&q| q < p) as u32;
    let split_day = split
        .map(|d| -> Result<i64> {
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).context("the epoch")?;
            Ok((d - epoch).num_days())
        })
        .transpose()?;
    let (mut before, mut after): (Vec<Vec<u32>>, Vec<Vec<u32>>) = (Vec::new(), Vec::new());
    let mut current = None;
    for b in &bought {
        if current != Some(b.customer) {
            current = Some(b.customer);
            before.push(Vec::new());
            after.push(Vec::new());
        }
        let later = split_day.is_some_and(|s| b.day > s);
        let list = if later {
            after.last_mut()
        } else {
            before.last_mut()
        };
        if let Some(list) = list {
            list.push(index(b.product));
        }
    }
    let model = recommend::co_occurrence(&before, ids.len(), keep, min_customers);
    let pairs: usize = model.similar.iter().map(Vec::len).sum();
    if split.is_some() {
        let e = recommend::evaluate(&model, &before, &after, top);
        let report = json!({
            "split": split.map(|d| d.to_string()),
            "top": top,
            "customers": e.customers,
            "hits": e.hits,
            "hit_rate": e.hit_rate(),
            "best_seller_hits": e.best_seller_hits,
            "best_seller_hit_rate": e.best_seller_hit_rate(),
            "products": ids.len(),
        });
        if format == "json" {
            println!("{report}");
        } else {
            println!(
                "{} customers bought something new after the split: the top {top} offers included it for {} ({:.1} %), the top {top} best-sellers they lacked for {} ({:.1} %)",
                e.customers,
                e.hits,
                100.0 * e.hit_rate(),
                e.best_seller_hits,
                100.0 * e.best_seller_hit_rate()
            );
        }
        return Ok(());
    }
    let similar: Vec<(ProductId, recommend::Similar<ProductId>)> = model
        .similar
        .iter()
        .enumerate()
        .flat_map(|(i, list)| {
            let ids = &ids;
            list.iter().map(move |s| {
                (
                    ids[i],
                    recommend::Similar {
                        product: ids[s.product as usize],
                        customers: s.customers,
                        score: s.score,
                    },
                )
            })
        })
        .collect();
    let buyers: Vec<(ProductId, i64)> = ids
        .iter()
        .zip(&model.buyers)
        .map(|(&p, &n)| (p, i64::from(n)))
        .collect();
    store
        .replace_associations(&similar, &buyers)
        .await
        .context("storing the model")?;
    let report = json!({
        "customers": before.len(),
        "products": ids.len(),
        "pairs": pairs,
        "seconds": started.elapsed().as_secs_f64(),
    });
    if format == "json" {
        println!("{report}");
    } else {
        println!(
            "{} products bought by {} customers: {} similar-product pairs stored",
            ids.len(),
            before.len(),
            pairs
        );
    }
    Ok(())
}

async fn fit_and_store(args: ClvArgs) -> Result<()> {
    let ClvArgs {
        db,
        model,
        calibration_end,
        horizon,
        discount,
        margin,
        from_summary,
        out,
        format,
    } = args;
    if !(0.0..1.0).contains(&discount) {
        bail!("--discount must be at least 0 and below 1 (a monthly rate)");
    }
    if horizon == 0 {
        bail!("--horizon must be at least one month");
    }
    if !(0.0..=1.0).contains(&margin) {
        bail!("--margin must be between 0 and 1");
    }
    let terms = ClvTerms {
        periods: horizon,
        period_length: WEEKS_PER_MONTH,
        discount_rate: discount,
        margin,
    };
    let (keys, customers, end) = match &from_summary {
        Some(file) => {
            let (keys, customers) = read_summary(file)?;
            (keys, customers, None)
        }
        None => {
            let end = calibration_end.unwrap_or_else(|| Utc::now().date_naive());
            let store = crate::open(&db).await?;
            let reading = std::time::Instant::now();
            let (keys, customers) = summaries_from_orders(&store, end).await?;
            tracing::info!(
                customers = customers.len(),
                seconds = reading.elapsed().as_secs_f64(),
                "summarised the purchase history"
            );
            (
                keys.into_iter().map(|k| k.0.to_string()).collect(),
                customers,
                Some((store, end)),
            )
        }
    };
    if customers.is_empty() {
        bail!("there are no purchases to fit the models on");
    }
    let started = std::time::Instant::now();
    let mut purchases = fit_purchase_model(&model, &customers);
    let purchases_fitted_in = started.elapsed();
    let spend = gamma_gamma::fit(&customers);
    let fitted_in = started.elapsed();
    purchases.report["fit_seconds"] = json!(purchases_fitted_in.as_secs_f64());
    let m = purchases.model.as_ref();
    let s = spend.params;
    let spend_usable = spend.customers >= 2 && s.q > 1.0 && spend.log_likelihood.is_finite();
    let horizon_units = f64::from(horizon) * WEEKS_PER_MONTH;
    // P(alive), expected purchases over the horizon, expected purchase value and CLV. The
    // horizon is the end of the last CLV period, so one pass gives both.
    let horizons = terms.horizons();
    let predict = |c: &Summary| {
        let mut expected = vec![0.0; horizons.len()];
        m.expected_purchases_many(c, &horizons, &mut expected);
        let purchases = expected.last().copied().unwrap_or(0.0);
        if spend_usable {
            let value = s.expected_value(c);
            (
                m.p_alive(c),
                purchases,
                value,
                terms.discounted(value, &expected),
            )
        } else {
            (m.p_alive(c), purchases, 0.0, 0.0)
        }
    };
    // Every customer's scores, on all cores.
    let scoring = std::time::Instant::now();
    let scores: Vec<(f64, f64, f64, f64)> = customers.par_iter().map(predict).collect();
    let scored_in = scoring.elapsed();
    let mut report = json!({
        "gamma_gamma": if spend.customers > 0 { json!({
            "p": s.p, "q": s.q, "gamma": s.gamma,
            "log_likelihood": spend.log_likelihood,
            "standard_errors": {
                "p": spend.standard_errors[0], "q": spend.standard_errors[1],
                "gamma": spend.standard_errors[2],
            },
            "customers": spend.customers,
            "converged": spend.converged,
            "fit_seconds": (fitted_in - purchases_fitted_in).as_secs_f64(),
        }) } else { serde_json::Value::Null },
        "customers": customers.len(),
        "time_unit": "weeks",
        "calibration_end": end.as_ref().map(|(_, e)| e.to_string()),
        "horizon_months": horizon,
        "discount_monthly": discount,
        "margin": margin,
        "fit_seconds": fitted_in.as_secs_f64(),
        "score_seconds": scored_in.as_secs_f64(),
    });
    report[purchases.name] = purchases.report.clone();

    match end {
        Some((store, end)) => {
            let now = Utc::now();
            let predictions: Vec<(CustomerId, Prediction)> = keys
                .iter()
                .zip(&scores)
                .filter_map(|(k, &(p_alive, expected_purchases, expected_value, clv))| {
                    Some((
                        CustomerId(k.parse().ok()?),
                        Prediction {
                            p_alive,
                            expected_purchases,
                            expected_value,
                            clv,
                            horizon_days: (horizon_units * DAYS_PER_UNIT).round() as i64,
                            computed_at: now,
                        },
                    ))
                })
                .collect();
            let writing = std::time::Instant::now();
            store
                .replace_predictions(&predictions)
                .await
                .context("storing the predictions")?;
            tracing::info!(
                seconds = writing.elapsed().as_secs_f64(),
                "stored the predictions"
            );
            let calibration_end = end.to_string();
            store
                .record_fit(
                    purchases.name,
                    &purchases.report,
                    purchases.log_likelihood,
                    customers.len() as i64,
                    &calibration_end,
                )
                .await
                .context("recording the fit")?;
            if spend.customers > 0 {
                store
                    .record_fit(
                        "gamma_gamma",
                        &report["gamma_gamma"],
                        spend.log_likelihood,
                        spend.customers as i64,
                        &calibration_end,
                    )
                    .await
                    .context("recording the fit")?;
            }
        }
        None => {
            if let Some(out) = &out {
                let mut w = csv::Writer::from_path(out)
                    .with_context(|| format!("writing {}", out.display()))?;
                w.write_record([
                    "customer_id",
                    "p_alive",
                    "churn_risk",
                    "expected_purchases",
                    "expected_value",
                    "clv",
                ])?;
                for (k, &(p_alive, e, v, value)) in keys.iter().zip(&scores) {
                    w.write_record([
                        k.clone(),
                        p_alive.to_string(),
                        (1.0 - p_alive).to_string(),
                        e.to_string(),
                        v.to_string(),
                        value.to_string(),
                    ])?;
                }
                w.flush()?;
            }
        }
    }

    if format == "json" {
        println!("{report}");
    } else {
        println!(
            "{} on {} customers: {}; log-likelihood {:.5}",
            purchases.title,
            customers.len(),
            purchases
                .params
                .iter()
                .map(|(name, v)| format!("{name} = {v:.6}"))
                .collect::<Vec<_>>()
                .join(", "),
            purchases.log_likelihood
        );
        if spend.customers > 0 {
            println!(
                "Gamma-Gamma on {} repeat buyers: p = {:.6}, q = {:.6}, gamma = {:.6}; log-likelihood {:.5}",
                spend.customers, s.p, s.q, s.gamma, spend.log_likelihood
            );
        }
    }
    Ok(())
}

async fn holdout(
    db: &DbArgs,
    calibration_end: NaiveDate,
    holdout_end: Option<NaiveDate>,
    model: &str,
    format: &str,
) -> Result<()> {
    let holdout_end = holdout_end.unwrap_or_else(|| Utc::now().date_naive());
    if holdout_end <= calibration_end {
        bail!("--holdout-end ({holdout_end}) must be after --calibration-end ({calibration_end})");
    }
    let store = crate::open(db).await?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).context("the epoch")?;
    let day = |d: NaiveDate| (d - epoch).num_days();
    let (cal, end) = (day(calibration_end), day(holdout_end));
    let mut histories: Vec<Vec<i64>> = Vec::new();
    let mut current = None;
    for d in store
        .purchase_days(end)
        .await
        .context("reading purchases")?
    {
        if current != Some(d.customer) {
            current = Some(d.customer);
            histories.push(Vec::new());
        }
        if let Some(h) = histories.last_mut() {
            h.push(d.day);
        }
    }
    let summaries: Vec<Summary> = histories
        .iter()
        .filter_map(|h| holdout::calibration_summary(h, cal, DAYS_PER_UNIT))
        .collect();
    if summaries.is_empty() {
        bail!("there are no purchases on or before {calibration_end} to fit the model on");
    }
    let fitted = fit_purchase_model(model, &summaries);
    let r = holdout::check(fitted.model.as_ref(), &histories, cal, end, DAYS_PER_UNIT);
    let date = |d: i64| (epoch + chrono::Days::new(d.max(0) as u64)).to_string();
    let relative_error = if r.actual_total > 0.0 {
        (r.predicted_total - r.actual_total) / r.actual_total
    } else {
        0.0
    };
    let label = |x: u32| {
        if x == holdout::LAST_BUCKET {
            format!("{x}+")
        } else {
            x.to_string()
        }
    };
    let mut model_report = fitted.report.clone();
    model_report["name"] = json!(fitted.name);
    let report = json!({
        "model": model_report,
        "customers": r.customers,
        "time_unit": "weeks",
        "calibration_end": calibration_end.to_string(),
        "holdout_end": holdout_end.to_string(),
        "holdout_weeks": r.holdout_units,
        "actual_total": r.actual_total,
        "predicted_total": r.predicted_total,
        "relative_error": relative_error,
        "mean_absolute_error": r.mean_absolute_error,
        "root_mean_squared_error": r.root_mean_squared_error,
        "tracking_mape": r.tracking_mape,
        "by_frequency": r.by_frequency.iter().map(|b| json!({
            "x": label(b.x), "customers": b.customers,
            "actual": b.actual, "predicted": b.predicted,
        })).collect::<Vec<_>>(),
        "tracking": r.tracking.iter().map(|p| json!({
            "week_ending": date(p.last_day), "holdout": p.holdout,
            "actual": p.actual, "predicted": p.predicted,
            "actual_cumulative": p.actual_cumulative,
            "predicted_cumulative": p.predicted_cumulative,
        })).collect::<Vec<_>>(),
    });
    if format == "json" {
        println!("{report}");
        return Ok(());
    }
    println!(
        "{} fitted on {} customers up to {calibration_end}; holdout to {holdout_end} ({:.1} weeks)",
        fitted.title, r.customers, r.holdout_units
    );
    println!(
        "repeat purchases in the holdout: actual {:.0}, expected {:.1} ({:+.1} %); per customer MAE {:.3}, RMSE {:.3}; tracking MAPE {:.1} %",
        r.actual_total,
        r.predicted_total,
        100.0 * relative_error,
        r.mean_absolute_error,
        r.root_mean_squared_error,
        100.0 * r.tracking_mape
    );
    println!("calibration purchases | customers | holdout actual (mean) | expected (mean)");
    for b in &r.by_frequency {
        println!(
            "{:>21} | {:>9} | {:>21.3} | {:>15.3}",
            label(b.x),
            b.customers,
            b.actual,
            b.predicted
        );
    }
    Ok(())
}

/// A fitted purchase model and how to report it.
struct PurchaseFit {
    model: Box<dyn PurchaseModel>,
    /// The key in the JSON report and in `model_fits`.
    name: &'static str,
    title: &'static str,
    params: Vec<(&'static str, f64)>,
    log_likelihood: f64,
    report: serde_json::Value,
}

fn fit_purchase_model(model: &str, customers: &[Summary]) -> PurchaseFit {
    if model == "pareto-nbd" {
        let f = pareto_nbd::fit(customers);
        let p = f.params;
        PurchaseFit::new(
            Box::new(p),
            ("pareto_nbd", "Pareto/NBD"),
            vec![("r", p.r), ("alpha", p.alpha), ("s", p.s), ("beta", p.beta)],
            f.standard_errors,
            f.log_likelihood,
            f.converged,
        )
    } else {
        let f = bgnbd::fit(customers);
        let p = f.params;
        PurchaseFit::new(
            Box::new(p),
            ("bgnbd", "BG/NBD"),
            vec![("r", p.r), ("alpha", p.alpha), ("a", p.a), ("b", p.b)],
            f.standard_errors,
            f.log_likelihood,
            f.converged,
        )
    }
}

impl PurchaseFit {
    /// The fit with its JSON report: the parameters, log-likelihood, standard errors and
    /// whether the maximisation converged.
    fn new(
        model: Box<dyn PurchaseModel>,
        (name, title): (&'static str, &'static str),
        params: Vec<(&'static str, f64)>,
        standard_errors: [f64; 4],
        log_likelihood: f64,
        converged: bool,
    ) -> PurchaseFit {
        let mut report = serde_json::Map::new();
        for (k, v) in &params {
            report.insert((*k).into(), json!(v));
        }
        report.insert("log_likelihood".into(), json!(log_likelihood));
        report.insert(
            "standard_errors".into(),
            params
                .iter()
                .zip(standard_errors)
                .map(|((k, _), se)| ((*k).to_owned(), json!(se)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        );
        report.insert("converged".into(), json!(converged));
        PurchaseFit {
            model,
            name,
            title,
            params,
            log_likelihood,
            report: report.into(),
        }
    }
}

/// Per-customer summaries (in weeks) of the stored purchases up to `end`.
async fn summaries_from_orders(
    store: &tenure_store::Store,
    end: NaiveDate,
) -> Result<(Vec<CustomerId>, Vec<Summary>)> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).context("the epoch")?;
    let last_day = (end - epoch).num_days();
    let days = store
        .purchase_days(last_day)
        .await
        .context("reading purchases")?;
    let scale =
        10_f64.powi(tenure_domain::money::minor_exponent(store.reporting_currency()) as i32);
    // The store gives each customer's purchase days in order, one row per day.
    let (mut keys, mut summaries) = (Vec::new(), Vec::new());
    for group in days.chunk_by(|a, b| a.customer == b.customer) {
        if let Some(s) = tenure_analytics::summary::of_days(
            group,
            |d| d.day,
            |d| d.value_minor as f64 / scale,
            last_day,
            DAYS_PER_UNIT,
        ) {
            keys.push(group[0].customer);
            summaries.push(s);
        }
    }
    Ok((keys, summaries))
}

/// Reads a summary CSV in the `lifetimes` format (also accepting `x,t_x,T,zbar`).
fn read_summary(file: &Path) -> Result<(Vec<String>, Vec<Summary>)> {
    let mut r =
        csv::Reader::from_path(file).with_context(|| format!("opening {}", file.display()))?;
    let headers: Vec<String> = r
        .headers()?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let find = |names: &[&str]| headers.iter().position(|h| names.contains(&h.as_str()));
    let id = find(&["customer_id", "id"]).unwrap_or(0);
    let (Some(x), Some(t_x), Some(t)) = (
        find(&["frequency", "x"]),
        find(&["recency", "t_x"]),
        find(&["t"]),
    ) else {
        bail!(
            "{} needs the columns customer_id,frequency,recency,T[,monetary_value] (its header is: {})",
            file.display(),
            headers.join(",")
        );
    };
    let monetary = find(&["monetary_value", "zbar"]);
    let (mut keys, mut out) = (Vec::new(), Vec::new());
    for (n, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("reading line {}", n + 2))?;
        let num = |i: usize| -> Result<f64> {
            let v = rec.get(i).unwrap_or("").trim();
            v.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .with_context(|| format!("line {}: {v:?} is not a number of at least 0", n + 2))
        };
        let s = Summary {
            x: num(x)?,
            t_x: num(t_x)?,
            t: num(t)?,
            monetary: monetary.map(num).transpose()?.unwrap_or(0.0),
        };
        if s.t_x > s.t {
            bail!("line {}: recency is after T", n + 2);
        }
        keys.push(rec.get(id).unwrap_or("").to_owned());
        out.push(s);
    }
    Ok((keys, out))
}
