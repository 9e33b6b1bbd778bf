//! The analytics use cases: the model refresh (summarise the purchase history → fit BG/NBD
//! or Pareto/NBD and Gamma-Gamma → score every customer → store the predictions and the
//! fits), the same fit on a summary given as data, the holdout check, the retention model
//! of subscription cohorts, and building or evaluating the "bought together" model.
//!
//! Each returns a report: a JSON document (what `--format json` prints and, next, what the
//! web application charts) with a short text rendering for the command line.

use chrono::{NaiveDate, Utc};
use rayon::prelude::*;
use serde_json::json;
use tenure_analytics::Summary;
use tenure_analytics::clv::{ClvTerms, PurchaseModel};
use tenure_analytics::{bgnbd, gamma_gamma, holdout, pareto_nbd, recommend, sbg};
use tenure_domain::access::Permission;
use tenure_domain::changes::{Actor, Event};
use tenure_domain::ids::{CustomerId, ProductId};
use tenure_domain::prediction::Prediction;
use tenure_store::analytics::FitRecord;

use crate::{App, AppError, AppResult, require};

/// Weeks in a month, for the monthly periods of CLV.
const WEEKS_PER_MONTH: f64 = 4.345;

/// The unit the purchase models count time in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeUnit {
    Days,
    #[default]
    Weeks,
}

impl TimeUnit {
    pub fn days(self) -> f64 {
        match self {
            TimeUnit::Days => 1.0,
            TimeUnit::Weeks => 7.0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::Days => "days",
            TimeUnit::Weeks => "weeks",
        }
    }
}

/// The purchase model to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Model {
    #[default]
    BgNbd,
    ParetoNbd,
}

/// What a CLV fit is asked for.
#[derive(Debug, Clone)]
pub struct ClvOptions {
    pub model: Model,
    /// Purchases after this day are not used (default: today).
    pub calibration_end: Option<NaiveDate>,
    /// Months ahead that expected purchases and CLV count.
    pub horizon_months: u32,
    /// Discount rate per month.
    pub discount: f64,
    /// Share of spend that is margin.
    pub margin: f64,
    pub time_unit: TimeUnit,
}

impl Default for ClvOptions {
    fn default() -> Self {
        ClvOptions {
            model: Model::BgNbd,
            calibration_end: None,
            horizon_months: 12,
            discount: 0.01,
            margin: 1.0,
            time_unit: TimeUnit::Weeks,
        }
    }
}

impl ClvOptions {
    fn check(&self) -> AppResult<ClvTerms> {
        if !(0.0..1.0).contains(&self.discount) {
            return Err(AppError::field(
                "discount",
                "must be at least 0 and below 1 (a monthly rate)",
            ));
        }
        if self.horizon_months == 0 {
            return Err(AppError::field("horizon", "must be at least one month"));
        }
        if !(0.0..=1.0).contains(&self.margin) {
            return Err(AppError::field("margin", "must be between 0 and 1"));
        }
        Ok(ClvTerms {
            periods: self.horizon_months,
            period_length: WEEKS_PER_MONTH * 7.0 / self.time_unit.days(),
            discount_rate: self.discount,
            margin: self.margin,
        })
    }
}

/// One customer's scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub p_alive: f64,
    pub expected_purchases: f64,
    pub expected_value: f64,
    pub clv: f64,
}

/// A fit and what it predicts for each customer.
#[derive(Debug, Clone)]
pub struct ClvReport {
    /// The whole report: `{"bgnbd" | "pareto_nbd": {...}, "gamma_gamma": {...}, "customers", ...}`.
    pub json: serde_json::Value,
    pub title: &'static str,
    pub params: Vec<(&'static str, f64)>,
    pub log_likelihood: f64,
    pub customers: usize,
    /// Each customer's key (the summary file's id, or the customer id) and scores.
    pub scores: Vec<(String, Score)>,
    /// The currency the values are in, and whether the predictions were stored on the
    /// customers (a refresh from the database) or only computed (a summary file).
    pub currency: Option<String>,
    pub stored: bool,
}

/// Below this P(alive) a customer counts as at risk in the report.
pub const AT_RISK_BELOW: f64 = 0.5;

/// What the scores add up to, as a manager reads them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Totals {
    pub customers: usize,
    pub at_risk: usize,
    pub mean_p_alive: f64,
    pub expected_value: f64,
    pub value_at_risk: f64,
}

impl ClvReport {
    pub fn totals(&self) -> Totals {
        let n = self.scores.len();
        let (mut at_risk, mut p, mut clv, mut risk) = (0, 0.0, 0.0, 0.0);
        for (_, s) in &self.scores {
            if s.p_alive < AT_RISK_BELOW {
                at_risk += 1;
            }
            p += s.p_alive;
            clv += s.clv;
            risk += (1.0 - s.p_alive) * s.clv;
        }
        Totals {
            customers: n,
            at_risk,
            mean_p_alive: if n > 0 { p / n as f64 } else { 0.0 },
            expected_value: clv,
            value_at_risk: risk,
        }
    }
}

/// `1234567` as `1,234,567`.
fn thousands(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1234567.891` as `1,234,567.89`.
fn grouped(v: f64) -> String {
    let cents = (v.abs() * 100.0).round() as u128;
    format!(
        "{}{}.{:02}",
        if v < 0.0 { "-" } else { "" },
        thousands(cents / 100),
        cents % 100
    )
}

impl std::fmt::Display for ClvReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.totals();
        let money = |v: f64| match &self.currency {
            Some(c) => format!("{} {c}", grouped(v)),
            None => grouped(v),
        };
        let months = self.json["horizon_months"].as_u64().unwrap_or(0);
        let end = self.json["calibration_end"]
            .as_str()
            .unwrap_or("the last purchase");
        writeln!(
            f,
            "Scored {} customers on their purchases up to {end}.",
            thousands(t.customers as u128)
        )?;
        writeln!(
            f,
            "  {} ({:.0} %) are at risk: less than a {:.0} % chance they still buy. Mean chance: {:.0} %.",
            thousands(t.at_risk as u128),
            100.0 * t.at_risk as f64 / t.customers.max(1) as f64,
            100.0 * AT_RISK_BELOW,
            100.0 * t.mean_p_alive
        )?;
        writeln!(
            f,
            "  Expected value of all customers over the next {months} months: {} ({} a customer); {} of it at risk.",
            money(t.expected_value),
            money(t.expected_value / t.customers.max(1) as f64),
            money(t.value_at_risk)
        )?;
        if self.stored {
            writeln!(
                f,
                "  See them: `predictions` on GET /api/v1/customers/{{id}}, the ranked list at GET /api/v1/customers/at-risk, and GET /api/v1/customers?p_alive_max={AT_RISK_BELOW}."
            )?;
        }
        writeln!(f)?;
        let ses = &self.json[self.json["model"].as_str().unwrap_or("")]["standard_errors"];
        writeln!(
            f,
            "{} (purchases), log-likelihood {:.5}:",
            self.title, self.log_likelihood
        )?;
        for (name, v) in &self.params {
            writeln!(f, "  {name:<6} = {v:>12.6}  ± {:.6}", num(ses, name))?;
        }
        let gg = &self.json["gamma_gamma"];
        if gg.is_object() {
            writeln!(
                f,
                "Gamma-Gamma (spend) on {} repeat buyers, log-likelihood {:.5}:",
                gg["customers"],
                num(gg, "log_likelihood")
            )?;
            for name in ["p", "q", "gamma"] {
                writeln!(
                    f,
                    "  {name:<6} = {:>12.6}  ± {:.6}",
                    num(gg, name),
                    num(&gg["standard_errors"], name)
                )?;
            }
        }
        write!(f, "(± one standard error)")
    }
}

fn num(v: &serde_json::Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
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

fn fit_purchase_model(model: Model, customers: &[Summary]) -> PurchaseFit {
    match model {
        Model::ParetoNbd => {
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
        }
        Model::BgNbd => {
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

/// Fits the purchase and spend models on `customers` and scores every one of them: the
/// same computation whether the summaries come from the stored history or from a file.
pub fn fit_summaries(
    keys: Vec<String>,
    customers: &[Summary],
    options: &ClvOptions,
) -> AppResult<ClvReport> {
    let terms = options.check()?;
    if customers.is_empty() {
        return Err(AppError::field(
            "purchases",
            "there are no purchases to fit the models on",
        ));
    }
    let started = std::time::Instant::now();
    let mut purchases = fit_purchase_model(options.model, customers);
    let purchases_fitted_in = started.elapsed();
    let spend = gamma_gamma::fit(customers);
    let fitted_in = started.elapsed();
    purchases.report["fit_seconds"] = json!(purchases_fitted_in.as_secs_f64());
    let m = purchases.model.as_ref();
    let s = spend.params;
    let spend_usable = spend.customers >= 2 && s.q > 1.0 && spend.log_likelihood.is_finite();
    // P(alive), expected purchases over the horizon, expected purchase value and CLV. The
    // horizon is the end of the last CLV period, so one pass gives both.
    let horizons = terms.horizons();
    let predict = |c: &Summary| {
        let mut expected: smallvec::SmallVec<[f64; 32]> = smallvec::smallvec![0.0; horizons.len()];
        m.expected_purchases_many(c, &horizons, &mut expected);
        let purchases = expected.last().copied().unwrap_or(0.0);
        let (value, clv) = if spend_usable {
            let value = s.expected_value(c);
            (value, terms.discounted(value, &expected))
        } else {
            (0.0, 0.0)
        };
        Score {
            p_alive: m.p_alive(c),
            expected_purchases: purchases,
            expected_value: value,
            clv,
        }
    };
    let scoring = std::time::Instant::now();
    let scores: Vec<Score> = customers.par_iter().map(predict).collect();
    let scored_in = scoring.elapsed();
    let mut json = json!({
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
        "time_unit": options.time_unit.name(),
        "calibration_end": options.calibration_end.map(|e| e.to_string()),
        "horizon_months": options.horizon_months,
        "discount_monthly": options.discount,
        "margin": options.margin,
        "fit_seconds": fitted_in.as_secs_f64(),
        "score_seconds": scored_in.as_secs_f64(),
    });
    json[purchases.name] = purchases.report.clone();
    json["model"] = json!(purchases.name);
    Ok(ClvReport {
        json,
        title: purchases.title,
        params: purchases.params,
        log_likelihood: purchases.log_likelihood,
        customers: customers.len(),
        scores: keys.into_iter().zip(scores).collect(),
        currency: None,
        stored: false,
    })
}

/// The days since 1970-01-01 of `d`.
fn epoch_day(d: NaiveDate) -> i64 {
    (d - NaiveDate::default()).num_days()
}

impl App {
    /// Per-customer summaries of the stored purchases up to `end`, in the given unit.
    async fn summaries(
        &self,
        end: NaiveDate,
        unit: TimeUnit,
    ) -> AppResult<(Vec<CustomerId>, Vec<Summary>)> {
        let last_day = epoch_day(end);
        let days = self.store().purchase_days(last_day).await?;
        let scale =
            10_f64.powi(tenure_domain::money::minor_exponent(self.reporting_currency()) as i32);
        // The store gives each customer's purchase days in order, one row per day.
        let (mut keys, mut summaries) = (Vec::new(), Vec::new());
        for group in days.chunk_by(|a, b| a.customer == b.customer) {
            if let Some(s) = tenure_analytics::summary::of_days(
                group,
                |d| d.day,
                |d| d.value_minor as f64 / scale,
                last_day,
                unit.days(),
            ) {
                keys.push(group[0].customer);
                summaries.push(s);
            }
        }
        Ok((keys, summaries))
    }

    /// The model refresh: fits the models on the stored purchase history, stores every
    /// customer's P(alive), churn risk, expected purchases, expected spend and CLV, and
    /// records the fits — the predictions and fits replaced in one transaction. `None` when
    /// there are no purchases yet.
    pub async fn refresh_models(
        &self,
        actor: &Actor,
        options: &ClvOptions,
    ) -> AppResult<Option<ClvReport>> {
        require(actor, Permission::WriteCustomers)?;
        options.check()?;
        let end = options
            .calibration_end
            .unwrap_or_else(|| Utc::now().date_naive());
        let mut options = options.clone();
        options.calibration_end = Some(end);
        let reading = std::time::Instant::now();
        let (ids, customers) = self.summaries(end, options.time_unit).await?;
        tracing::info!(
            customers = customers.len(),
            seconds = reading.elapsed().as_secs_f64(),
            "summarised the purchase history"
        );
        if customers.is_empty() {
            return Ok(None);
        }
        let keys = ids.iter().map(|k| k.0.to_string()).collect();
        let mut report = fit_summaries(keys, &customers, &options)?;
        report.currency = Some(self.reporting_currency().to_owned());
        report.stored = true;
        let now = Utc::now();
        let horizon_days =
            (f64::from(options.horizon_months) * WEEKS_PER_MONTH * 7.0).round() as i64;
        let predictions: Vec<(CustomerId, Prediction)> = ids
            .iter()
            .zip(&report.scores)
            .map(|(&id, (_, s))| {
                (
                    id,
                    Prediction {
                        p_alive: s.p_alive,
                        expected_purchases: s.expected_purchases,
                        expected_value: s.expected_value,
                        clv: s.clv,
                        horizon_days,
                        computed_at: now,
                    },
                )
            })
            .collect();
        let calibration_end = end.to_string();
        let model = report.json["model"].as_str().unwrap_or("bgnbd").to_owned();
        let mut fits = vec![FitRecord {
            params: report.json[&model].clone(),
            model,
            log_likelihood: report.log_likelihood,
            customers: report.customers as i64,
            calibration_end: calibration_end.clone(),
        }];
        let gg = &report.json["gamma_gamma"];
        if gg.is_object() {
            fits.push(FitRecord {
                model: "gamma_gamma".into(),
                params: gg.clone(),
                log_likelihood: num(gg, "log_likelihood"),
                customers: gg["customers"].as_i64().unwrap_or(0),
                calibration_end,
            });
        }
        let writing = std::time::Instant::now();
        let event = Event::PredictionsReplaced {
            customers: predictions.len() as u64,
        };
        self.store()
            .replace_predictions(&predictions, &fits, actor, &event.change())
            .await?;
        tracing::info!(
            seconds = writing.elapsed().as_secs_f64(),
            "stored the predictions"
        );
        Ok(Some(report))
    }

    /// Fits the purchase model on the purchases up to `calibration_end` and compares
    /// expected with actual repeat purchases up to `holdout_end` (default today).
    pub async fn holdout_check(
        &self,
        actor: &Actor,
        model: Model,
        calibration_end: NaiveDate,
        holdout_end: Option<NaiveDate>,
    ) -> AppResult<HoldoutReport> {
        require(actor, Permission::ReadAggregates)?;
        let holdout_end = holdout_end.unwrap_or_else(|| Utc::now().date_naive());
        if holdout_end <= calibration_end {
            return Err(AppError::field(
                "holdout_end",
                format!("{holdout_end} must be after the calibration end ({calibration_end})"),
            ));
        }
        let unit = TimeUnit::Weeks;
        let (cal, end) = (epoch_day(calibration_end), epoch_day(holdout_end));
        let mut histories: Vec<Vec<i64>> = Vec::new();
        let mut current = None;
        for d in self.store().purchase_days(end).await? {
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
            .filter_map(|h| holdout::calibration_summary(h, cal, unit.days()))
            .collect();
        if summaries.is_empty() {
            return Err(AppError::field(
                "calibration_end",
                format!(
                    "there are no purchases on or before {calibration_end} to fit the model on"
                ),
            ));
        }
        let fitted = fit_purchase_model(model, &summaries);
        let r = holdout::check(fitted.model.as_ref(), &histories, cal, end, unit.days());
        let date = |d: i64| (NaiveDate::default() + chrono::Days::new(d.max(0) as u64)).to_string();
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
        let json = json!({
            "model": model_report,
            "customers": r.customers,
            "time_unit": unit.name(),
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
        let mut text = format!(
            "{} fitted on {} customers up to {calibration_end}; holdout to {holdout_end} ({:.1} weeks)\n",
            fitted.title, r.customers, r.holdout_units
        );
        text.push_str(&format!(
            "repeat purchases in the holdout: actual {:.0}, expected {:.1} ({:+.1} %); per customer MAE {:.3}, RMSE {:.3}; tracking MAPE {:.1} %\n",
            r.actual_total,
            r.predicted_total,
            100.0 * relative_error,
            r.mean_absolute_error,
            r.root_mean_squared_error,
            100.0 * r.tracking_mape
        ));
        text.push_str(
            "calibration purchases | customers | holdout actual (mean) | expected (mean)",
        );
        for b in &r.by_frequency {
            text.push_str(&format!(
                "\n{:>21} | {:>9} | {:>21.3} | {:>15.3}",
                label(b.x),
                b.customers,
                b.actual,
                b.predicted
            ));
        }
        Ok(HoldoutReport { json, text })
    }

    /// Builds the "bought together" model from the order lines and stores it (or, with
    /// `split`, evaluates it on a time split instead).
    pub async fn build_recommendations(
        &self,
        actor: &Actor,
        options: &RecommendationOptions,
    ) -> AppResult<RecommendationReport> {
        require(actor, Permission::WriteCatalog)?;
        let started = std::time::Instant::now();
        let bought = self.store().products_first_bought().await?;
        // Dense product indices, and each customer's products before (and after) the split.
        let mut ids: Vec<ProductId> = bought.iter().map(|b| b.product).collect();
        ids.sort();
        ids.dedup();
        let index = |p: ProductId| ids.partition_point(|&q| q < p) as u32;
        let split_day = options.split.map(epoch_day);
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
        let model =
            recommend::co_occurrence(&before, ids.len(), options.keep, options.min_customers);
        let pairs: usize = model.similar.iter().map(Vec::len).sum();
        if let Some(split) = options.split {
            let top = options.top;
            let e = recommend::evaluate(&model, &before, &after, top);
            let json = json!({
                "split": split.to_string(),
                "top": top,
                "customers": e.customers,
                "hits": e.hits,
                "hit_rate": e.hit_rate(),
                "best_seller_hits": e.best_seller_hits,
                "best_seller_hit_rate": e.best_seller_hit_rate(),
                "products": ids.len(),
            });
            let text = format!(
                "{} customers bought something new after the split: the top {top} offers included it for {} ({:.1} %), the top {top} best-sellers they lacked for {} ({:.1} %)",
                e.customers,
                e.hits,
                100.0 * e.hit_rate(),
                e.best_seller_hits,
                100.0 * e.best_seller_hit_rate()
            );
            return Ok(RecommendationReport { json, text });
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
        let event = Event::RecommendationsReplaced {
            products: ids.len() as u64,
        };
        self.store()
            .replace_associations(&similar, &buyers, actor, &event.change())
            .await?;
        let json = json!({
            "customers": before.len(),
            "products": ids.len(),
            "pairs": pairs,
            "seconds": started.elapsed().as_secs_f64(),
        });
        let text = format!(
            "{} products bought by {} customers: {} similar-product pairs stored",
            ids.len(),
            before.len(),
            pairs
        );
        Ok(RecommendationReport { json, text })
    }
}

/// The holdout check's report.
#[derive(Debug, Clone)]
pub struct HoldoutReport {
    pub json: serde_json::Value,
    pub text: String,
}

/// What building the recommendations is asked for.
#[derive(Debug, Clone)]
pub struct RecommendationOptions {
    /// Similar products kept per product.
    pub keep: usize,
    /// Pairs bought together by fewer customers are ignored.
    pub min_customers: u32,
    /// Evaluate on a time split at this day instead of storing the model.
    pub split: Option<NaiveDate>,
    /// With `split`: offers per customer.
    pub top: usize,
}

impl Default for RecommendationOptions {
    fn default() -> Self {
        RecommendationOptions {
            keep: 20,
            min_customers: 2,
            split: None,
            top: 5,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RecommendationReport {
    pub json: serde_json::Value,
    pub text: String,
}

/// The shifted-beta-geometric fit of a cohort's survivor counts (subscriptions with
/// renewals) and its projection over `periods` renewals (default: twice those observed).
pub fn retention(survivors: &[u64], periods: Option<u32>) -> AppResult<HoldoutReport> {
    if survivors.len() < 2 || survivors[0] == 0 {
        return Err(AppError::field(
            "survivors",
            "needs the cohort's size (above 0) and at least one renewal",
        ));
    }
    if let Some(w) = survivors.windows(2).position(|w| w[1] > w[0]) {
        return Err(AppError::field(
            "survivors",
            format!(
                "must not grow: {} after renewal {} is more than {} before it",
                survivors[w + 1],
                w + 1,
                survivors[w]
            ),
        ));
    }
    let counts: Vec<f64> = survivors.iter().map(|&n| n as f64).collect();
    let fit = sbg::fit(&counts);
    if !fit.log_likelihood.is_finite() {
        return Err(AppError::field(
            "survivors",
            "the retention model could not be fitted to these counts",
        ));
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
    let json = json!({
        "sbg": {
            "alpha": m.alpha, "beta": m.beta,
            "log_likelihood": fit.log_likelihood,
            "standard_errors": {"alpha": fit.standard_errors[0], "beta": fit.standard_errors[1]},
            "converged": fit.converged,
        },
        "projection": projection,
    });
    let mut text = format!(
        "shifted-beta-geometric: alpha = {:.4}, beta = {:.4}; log-likelihood {:.4}\n",
        m.alpha, m.beta, fit.log_likelihood
    );
    text.push_str("renewal | expected survivors | actual | renewal rate");
    for t in 0..=periods {
        text.push_str(&format!(
            "\n{t:>7} | {:>18.1} | {:>6} | {}",
            start * m.survival(t),
            survivors
                .get(t as usize)
                .map_or(String::new(), u64::to_string),
            if t == 0 {
                String::new()
            } else {
                format!("{:.4}", m.retention(t))
            }
        ));
    }
    Ok(HoldoutReport { json, text })
}
