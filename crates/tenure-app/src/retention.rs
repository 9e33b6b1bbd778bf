//! The analytics refresh and the retention reports: one pass over every customer's order
//! days places each customer in their stage, scores RFM, and builds the cohort matrix, the
//! retention and attrition rates (overall, by acquisition channel, by segment) and the
//! revenue concentration; then the segments are worked out again in dependency order. The
//! reports are stored, so pages show them without scanning the purchases; the commands
//! compute them afresh for any as-of day.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::Serialize;
use tenure_analytics::attrition::{PeriodRetention, RetentionBuilder};
use tenure_analytics::cohorts::{CohortBuilder, CohortCell, month_index, month_label};
use tenure_analytics::concentration::{Concentration, concentration};
use tenure_analytics::profit::simulate;
pub use tenure_analytics::profit::{ProfitEffect, ProfitInputs, Scenario};
use tenure_analytics::rfm::{RfmInput, RfmSegment, score};
use tenure_domain::access::Permission;
use tenure_domain::changes::{Actor, Event};
use tenure_domain::ids::CustomerId;
use tenure_domain::lifecycle::{LifecycleSettings, Stage, StageFacts, place, returned_after_lapse};
use tenure_store::lifecycle::{LifecycleRecord, NewTransition};
use tenure_store::refresh::{CustomerFacts, RefreshWrites, StoredRfm};

use crate::{App, AppError, AppResult, require};

/// Months of retention rates the reports keep.
const RETENTION_MONTHS: i32 = 24;

/// One customer's purchases up to the as-of day.
#[derive(Debug, Clone, Default)]
struct Activity {
    first_day: Option<i64>,
    last_day: Option<i64>,
    orders: i64,
    spend_minor: i64,
    days: Vec<i64>,
    months: Vec<i32>,
    /// Spend of the last 365 days up to the as-of day.
    last_year_spend: i64,
}

/// A customer's RFM row as `tenure analytics rfm` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RfmRow {
    pub customer_id: i64,
    pub customer_external_id: Option<String>,
    pub recency_days: i64,
    pub frequency: i64,
    /// Total spend in major units of the reporting currency.
    pub monetary: f64,
    pub r: u8,
    pub f: u8,
    pub m: u8,
    pub segment: &'static str,
}

/// Counts and revenue of one named RFM segment.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RfmSegmentSummary {
    pub segment: String,
    pub customers: u64,
    pub revenue: f64,
}

/// The RFM report: every buyer's scores, the R × FM grid and the named segments.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RfmSummary {
    pub as_of: NaiveDate,
    pub customers: u64,
    /// `grid[r-1][fm-1]`: customers with that R score and that (F+M)/2 score.
    pub grid: Vec<Vec<u64>>,
    pub segments: Vec<RfmSegmentSummary>,
}

/// Retention and attrition by month.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RetentionRow {
    /// `YYYY-MM`.
    pub period: String,
    pub base: u64,
    pub retained: u64,
    pub lost: u64,
    pub retention: Option<f64>,
    pub attrition: Option<f64>,
}

/// The retention report.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RetentionReport {
    pub as_of: NaiveDate,
    /// Months without a purchase after which a customer counts as lost (the churn
    /// threshold).
    pub window_months: u32,
    pub overall: Vec<RetentionRow>,
    pub by_channel: BTreeMap<String, Vec<RetentionRow>>,
    pub by_segment: BTreeMap<String, Vec<RetentionRow>>,
    /// Of the customers who bought in the year before the last, the share who bought in
    /// the last year.
    pub yearly_retention: Option<f64>,
    /// Customers who bought in the last year, and their average spend in it (major units).
    pub active_last_year: u64,
    pub spend_per_active_customer: f64,
}

/// The cohort matrix.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CohortReport {
    pub as_of: NaiveDate,
    pub cells: Vec<CohortRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct CohortRow {
    /// Acquisition month, `YYYY-MM`.
    pub cohort: String,
    /// Months since acquisition.
    pub period: u32,
    pub size: u64,
    pub active: u64,
    pub retention: f64,
}

/// Revenue concentration.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ConcentrationReport {
    pub as_of: NaiveDate,
    pub customers: u64,
    pub revenue: f64,
    pub top20_share: f64,
    pub gini: f64,
    /// (share of customers, share of revenue) for every percent of customers.
    pub curve: Vec<(f64, f64)>,
}

/// What a refresh did.
#[derive(Debug, Clone, Serialize)]
pub struct RefreshSummary {
    pub as_of: NaiveDate,
    pub customers: u64,
    pub buyers: u64,
    pub stage_moves: u64,
    pub rfm_changed: u64,
    pub segments: u64,
    pub stages: Vec<(Stage, u64)>,
    pub seconds: f64,
}

/// Everything one pass computes.
struct Pass {
    as_of: NaiveDate,
    facts: Vec<CustomerFacts>,
    activity: Vec<Activity>,
    minor: f64,
}

fn day_of(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp() / 86_400)
}

fn date_of_day(day: i64) -> NaiveDate {
    DateTime::from_timestamp(day * 86_400, 0).map_or(NaiveDate::MIN, |t| t.date_naive())
}

fn day_start(day: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(day * 86_400, 0)
}

fn rows_of(periods: Vec<PeriodRetention>) -> Vec<RetentionRow> {
    periods
        .into_iter()
        .map(|p| RetentionRow {
            period: month_label(p.period),
            base: p.base,
            retained: p.retained,
            lost: p.lost,
            retention: p.retention.is_finite().then_some(p.retention),
            attrition: p.attrition.is_finite().then_some(p.attrition),
        })
        .collect()
}

fn cohort_rows(cells: Vec<CohortCell>) -> Vec<CohortRow> {
    cells
        .into_iter()
        .map(|c| CohortRow {
            cohort: month_label(c.cohort),
            period: c.period,
            size: c.size,
            active: c.active,
            retention: c.retention,
        })
        .collect()
}

impl Pass {
    fn as_of_month(&self) -> i32 {
        month_index(self.as_of)
    }

    fn buyers(&self) -> impl Iterator<Item = (&CustomerFacts, &Activity)> {
        self.facts
            .iter()
            .zip(&self.activity)
            .filter(|(_, a)| a.orders > 0)
    }

    fn rfm(&self) -> Vec<(CustomerId, RfmRow)> {
        let as_of = day_of(self.as_of);
        let buyers: Vec<(&CustomerFacts, &Activity)> = self.buyers().collect();
        let inputs: Vec<RfmInput> = buyers
            .iter()
            .map(|(_, a)| RfmInput {
                recency_days: as_of - a.last_day.unwrap_or(as_of),
                frequency: a.orders,
                monetary_minor: a.spend_minor,
            })
            .collect();
        let scores = score(&inputs);
        buyers
            .iter()
            .zip(inputs.iter().zip(scores))
            .map(|((f, _), (i, s))| {
                (
                    f.id,
                    RfmRow {
                        customer_id: f.id.0,
                        customer_external_id: f.external_id.clone(),
                        recency_days: i.recency_days,
                        frequency: i.frequency,
                        monetary: i.monetary_minor as f64 / self.minor,
                        r: s.r,
                        f: s.f,
                        m: s.m,
                        segment: s.segment.as_str(),
                    },
                )
            })
            .collect()
    }

    fn rfm_summary(&self, rows: &[(CustomerId, RfmRow)]) -> RfmSummary {
        let mut grid = vec![vec![0_u64; 5]; 5];
        let mut by: HashMap<&str, (u64, f64)> = HashMap::new();
        for (_, r) in rows {
            let fm = (r.f + r.m).div_ceil(2);
            if let Some(cell) = grid
                .get_mut(usize::from(r.r.saturating_sub(1)))
                .and_then(|row| row.get_mut(usize::from(fm.saturating_sub(1))))
            {
                *cell += 1;
            }
            let e = by.entry(r.segment).or_default();
            e.0 += 1;
            e.1 += r.monetary;
        }
        RfmSummary {
            as_of: self.as_of,
            customers: rows.len() as u64,
            grid,
            segments: RfmSegment::ALL
                .iter()
                .map(|s| {
                    let (n, revenue) = by.get(s.as_str()).copied().unwrap_or_default();
                    RfmSegmentSummary {
                        segment: s.as_str().to_owned(),
                        customers: n,
                        revenue,
                    }
                })
                .collect(),
        }
    }

    fn cohorts(&self) -> CohortReport {
        let mut b = CohortBuilder::new(self.as_of_month());
        for (_, a) in self.buyers() {
            if let Some(first) = a.months.first() {
                b.add(*first, a.months.iter().copied());
            }
        }
        CohortReport {
            as_of: self.as_of,
            cells: cohort_rows(b.finish()),
        }
    }

    fn retention(&self, window: u32, segments: &[(String, Vec<i64>)]) -> RetentionReport {
        let last = self.as_of_month();
        let first = last - (RETENTION_MONTHS - 1);
        let mut overall = RetentionBuilder::new(first, last, window);
        let mut by_channel: BTreeMap<String, RetentionBuilder> = BTreeMap::new();
        let index: HashMap<i64, usize> = self
            .facts
            .iter()
            .enumerate()
            .map(|(k, f)| (f.id.0, k))
            .collect();
        for (f, a) in self.buyers() {
            overall.add(&a.months);
            let channel = f
                .acquisition_channel
                .clone()
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| "unknown".into());
            by_channel
                .entry(channel)
                .or_insert_with(|| RetentionBuilder::new(first, last, window))
                .add(&a.months);
        }
        let mut by_segment = BTreeMap::new();
        for (name, members) in segments {
            let mut b = RetentionBuilder::new(first, last, window);
            for id in members {
                if let Some(a) = index.get(id).and_then(|k| self.activity.get(*k)) {
                    b.add(&a.months);
                }
            }
            by_segment.insert(name.clone(), rows_of(b.finish()));
        }
        // Yearly retention: bought in the year before the last, and again in the last.
        let as_of = day_of(self.as_of);
        let (mut prior, mut kept, mut active, mut spend) = (0_u64, 0_u64, 0_u64, 0_i64);
        for (_, a) in self.buyers() {
            let in_prior = a
                .days
                .iter()
                .any(|d| (as_of - 730 < *d) && (*d <= as_of - 365));
            let in_last = a.days.iter().any(|d| *d > as_of - 365);
            if in_prior {
                prior += 1;
                if in_last {
                    kept += 1;
                }
            }
            if in_last {
                active += 1;
            }
        }
        for (_, a) in self.buyers() {
            spend += a.last_year_spend;
        }
        RetentionReport {
            as_of: self.as_of,
            window_months: window,
            overall: rows_of(overall.finish()),
            by_channel: by_channel
                .into_iter()
                .map(|(k, b)| (k, rows_of(b.finish())))
                .collect(),
            by_segment,
            yearly_retention: (prior > 0).then(|| kept as f64 / prior as f64),
            active_last_year: active,
            spend_per_active_customer: if active > 0 {
                spend as f64 / self.minor / active as f64
            } else {
                0.0
            },
        }
    }

    fn concentration(&self) -> ConcentrationReport {
        let mut spend: Vec<f64> = self
            .buyers()
            .map(|(_, a)| a.spend_minor as f64 / self.minor)
            .collect();
        let Concentration {
            customers,
            total,
            top20_share,
            gini,
            curve,
        } = concentration(&mut spend);
        ConcentrationReport {
            as_of: self.as_of,
            customers,
            revenue: total,
            top20_share,
            gini,
            curve,
        }
    }
}

/// The as-of moment of a day: its last second, so a purchase that day is 0 days ago.
fn moment_of(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(23, 59, 59)
        .map_or_else(Utc::now, |t| t.and_utc())
}

impl App {
    /// The as-of day asked for, or today.
    fn as_of(&self, as_of: Option<NaiveDate>) -> AppResult<NaiveDate> {
        let today = self.now().date_naive();
        match as_of {
            Some(d) if d > today => Err(AppError::parameter(
                "as_of",
                format!("{d} is in the future; the latest as-of day is today, {today}"),
            )),
            Some(d) if d.year() < 1900 => Err(AppError::parameter("as_of", "must be after 1900")),
            Some(d) => Ok(d),
            None => Ok(today),
        }
    }

    /// Reads every customer and their order days up to `as_of`: the one scan every report
    /// is computed from.
    async fn pass(&self, as_of: NaiveDate) -> AppResult<Pass> {
        let last_day = day_of(as_of);
        let facts = self.store().customer_facts().await?;
        let mut activity = vec![Activity::default(); facts.len()];
        // Both come in customer id order: walk them together, one order day at a time.
        let mut k = 0;
        self.store()
            .for_each_order_day(last_day, |d| {
                while facts.get(k).is_some_and(|f| f.id.0 < d.customer.0) {
                    k += 1;
                }
                let (Some(f), Some(a)) = (facts.get(k), activity.get_mut(k)) else {
                    return;
                };
                if f.id != d.customer {
                    return;
                }
                a.first_day.get_or_insert(d.day);
                a.last_day = Some(d.day);
                a.orders += d.orders;
                a.spend_minor += d.value_minor;
                if d.day > last_day - 365 {
                    a.last_year_spend += d.value_minor;
                }
                a.days.push(d.day);
                let m = month_index(date_of_day(d.day));
                if a.months.last() != Some(&m) {
                    a.months.push(m);
                }
            })
            .await?;
        Ok(Pass {
            as_of,
            facts,
            activity,
            minor: 10_f64
                .powi(tenure_domain::money::minor_exponent(self.reporting_currency()) as i32),
        })
    }

    /// Places every customer in their stage, scores RFM, works out every segment and stores
    /// the cohort, retention, RFM and concentration reports, as of `as_of` (today when
    /// not given).
    pub async fn refresh_analytics(
        &self,
        actor: &Actor,
        as_of: Option<NaiveDate>,
    ) -> AppResult<RefreshSummary> {
        require(actor, Permission::WriteCatalog)?;
        let started = std::time::Instant::now();
        let as_of = self.as_of(as_of)?;
        let now = if as_of == self.now().date_naive() {
            self.now()
        } else {
            moment_of(as_of)
        };
        let settings = self.current_lifecycle_settings().await?;
        let pass = self.pass(as_of).await?;
        let complaints = Complaints {
            contacts: self.store().last_complaints().await?,
            tickets: self.store().last_ticket_categories().await?,
        };
        let mut writes = RefreshWrites::default();
        let actor_name = actor.display_name();
        for (f, a) in pass.facts.iter().zip(&pass.activity) {
            if let Some(w) = place_in_refresh(f, a, &settings, now, &complaints, &actor_name) {
                writes.lifecycle.push(w);
            }
        }
        let stage_moves = writes
            .lifecycle
            .iter()
            .filter(|(_, _, t)| t.is_some())
            .count() as u64;

        let rfm = pass.rfm();
        let stored = self.store().stored_rfm().await?;
        for (id, row) in &rfm {
            let s = StoredRfm {
                r: row.r,
                f: row.f,
                m: row.m,
                segment: RfmSegment::from_scores(row.r, row.f, row.m),
            };
            if stored.get(id) != Some(&s) {
                writes.rfm.push((*id, s));
            }
        }
        let scored: std::collections::HashSet<CustomerId> = rfm.iter().map(|(id, _)| *id).collect();
        writes.rfm_removed = stored
            .keys()
            .filter(|id| !scored.contains(id))
            .copied()
            .collect();
        let rfm_changed = (writes.rfm.len() + writes.rfm_removed.len()) as u64;
        let day = as_of.to_string();
        let json = |v: serde_json::Result<serde_json::Value>| {
            v.map_err(|e| AppError::Internal(format!("a report could not be written: {e}")))
        };
        writes.reports = vec![
            (
                "rfm",
                day.clone(),
                json(serde_json::to_value(pass.rfm_summary(&rfm)))?,
            ),
            (
                "cohorts",
                day.clone(),
                json(serde_json::to_value(pass.cohorts()))?,
            ),
            (
                "concentration",
                day.clone(),
                json(serde_json::to_value(pass.concentration()))?,
            ),
        ];
        let customers = pass.facts.len() as u64;
        self.store()
            .apply_refresh(
                &writes,
                actor,
                &Event::AnalyticsRefreshed { customers }.change(),
            )
            .await?;

        let segments = self.rebuild_segments(actor, now).await?;
        let members: Vec<(String, Vec<i64>)> = segments
            .iter()
            .map(|(s, m)| (s.name.clone(), m.clone()))
            .collect();
        let retention = pass.retention(settings.churn_window_months(), &members);
        let reports = RefreshWrites {
            reports: vec![("retention", day, json(serde_json::to_value(retention))?)],
            ..RefreshWrites::default()
        };
        self.store()
            .apply_refresh(
                &reports,
                actor,
                &Event::AnalyticsRefreshed { customers }.change(),
            )
            .await?;
        Ok(RefreshSummary {
            as_of,
            customers,
            buyers: rfm.len() as u64,
            stage_moves,
            rfm_changed,
            segments: segments.len() as u64,
            stages: self.store().stage_counts().await?,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Every buyer's RFM values and scores as of `as_of`, computed afresh.
    pub async fn rfm(&self, actor: &Actor, as_of: Option<NaiveDate>) -> AppResult<Vec<RfmRow>> {
        require(actor, Permission::ReadAggregates)?;
        let pass = self.pass(self.as_of(as_of)?).await?;
        let masked = actor.role.sees_masked_personal_data();
        Ok(pass
            .rfm()
            .into_iter()
            .map(|(_, mut r)| {
                if masked {
                    r.customer_external_id = None;
                }
                r
            })
            .collect())
    }

    /// The stored report `name` when it is as of `as_of` (or of any day when not given),
    /// else `None`.
    async fn stored<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        as_of: Option<NaiveDate>,
    ) -> AppResult<Option<T>> {
        let Some(r) = self.store().report(name).await? else {
            return Ok(None);
        };
        if as_of.is_some_and(|d| d.to_string() != r.as_of) {
            return Ok(None);
        }
        serde_json::from_value(r.body)
            .map(Some)
            .map_err(|e| AppError::Internal(format!("the stored {name} report is unreadable: {e}")))
    }

    /// The RFM grid and named segments: the latest refresh's, or computed for `as_of`.
    pub async fn rfm_summary(
        &self,
        actor: &Actor,
        as_of: Option<NaiveDate>,
    ) -> AppResult<RfmSummary> {
        require(actor, Permission::ReadAggregates)?;
        if let Some(r) = self.stored("rfm", as_of).await? {
            return Ok(r);
        }
        let pass = self.pass(self.as_of(as_of)?).await?;
        let rows = pass.rfm();
        Ok(pass.rfm_summary(&rows))
    }

    /// The cohort matrix: the latest refresh's, or computed for `as_of`.
    pub async fn cohorts(
        &self,
        actor: &Actor,
        as_of: Option<NaiveDate>,
    ) -> AppResult<CohortReport> {
        require(actor, Permission::ReadAggregates)?;
        if let Some(r) = self.stored("cohorts", as_of).await? {
            return Ok(r);
        }
        Ok(self.pass(self.as_of(as_of)?).await?.cohorts())
    }

    /// Retention and attrition by month: the latest refresh's (with the segments), or
    /// computed for `as_of` (by channel, and by the segments' current members).
    pub async fn retention_report(
        &self,
        actor: &Actor,
        as_of: Option<NaiveDate>,
    ) -> AppResult<RetentionReport> {
        require(actor, Permission::ReadAggregates)?;
        if let Some(r) = self.stored("retention", as_of).await? {
            return Ok(r);
        }
        let settings = self.current_lifecycle_settings().await?;
        let pass = self.pass(self.as_of(as_of)?).await?;
        let mut members = Vec::new();
        for s in self.store().segments().await? {
            members.push((s.name.clone(), self.store().segment_member_ids(s.id).await?));
        }
        Ok(pass.retention(settings.churn_window_months(), &members))
    }

    /// Revenue concentration: the latest refresh's, or computed for `as_of`.
    pub async fn concentration(
        &self,
        actor: &Actor,
        as_of: Option<NaiveDate>,
    ) -> AppResult<ConcentrationReport> {
        require(actor, Permission::ReadAggregates)?;
        if let Some(r) = self.stored("concentration", as_of).await? {
            return Ok(r);
        }
        Ok(self.pass(self.as_of(as_of)?).await?.concentration())
    }

    /// What cutting defection by `inputs.defection_cut_points` is worth. Inputs left at
    /// `None` come from the business's own numbers: customers and yearly retention from the
    /// retention report, the margin from the yearly spend per active customer times
    /// `margin_rate`.
    pub async fn profit_simulation(
        &self,
        actor: &Actor,
        input: ProfitQuestion,
    ) -> AppResult<ProfitAnswer> {
        require(actor, Permission::ReadAggregates)?;
        let numbers = [
            ("defection_cut_points", Some(input.defection_cut_points)),
            ("margin_rate", Some(input.margin_rate)),
            ("acquisition_cost", Some(input.acquisition_cost)),
            ("discount_rate", Some(input.discount_rate)),
            ("retention", input.retention),
            ("yearly_spend_per_customer", input.yearly_spend_per_customer),
            ("customers", input.customers),
        ];
        for (field, v) in numbers {
            if v.is_some_and(|v| !v.is_finite()) {
                return Err(AppError::field(field, "must be a number"));
            }
        }
        // Beyond these the totals are no longer numbers (they overflow to infinity).
        for (field, v) in [
            ("customers", input.customers),
            ("yearly_spend_per_customer", input.yearly_spend_per_customer),
            ("acquisition_cost", Some(input.acquisition_cost)),
        ] {
            if v.is_some_and(|v| v.abs() > 1e12) {
                return Err(AppError::field(field, "must be at most 10^12"));
            }
        }
        if input.customers.is_some_and(|v| v < 0.0) {
            return Err(AppError::field("customers", "must be 0 or more"));
        }
        if input.yearly_spend_per_customer.is_some_and(|v| v < 0.0) {
            return Err(AppError::field(
                "yearly_spend_per_customer",
                "must be 0 or more",
            ));
        }
        let report = self.retention_report(actor, None).await?;
        if !(0.0..=1.0).contains(&input.margin_rate) {
            return Err(AppError::field("margin_rate", "must be between 0 and 1"));
        }
        let retention = match input.retention {
            Some(r) => r,
            None => report.yearly_retention.unwrap_or(0.0),
        };
        let spend = input
            .yearly_spend_per_customer
            .unwrap_or(report.spend_per_active_customer);
        let customers = input.customers.unwrap_or(report.active_last_year as f64);
        let inputs = ProfitInputs {
            customers,
            retention: retention.min(0.99),
            margin_per_customer: spend * input.margin_rate,
            acquisition_cost: input.acquisition_cost,
            discount_rate: input.discount_rate,
            horizon_years: input.horizon_years,
            defection_cut_points: input.defection_cut_points,
        };
        let effect = simulate(&inputs).map_err(|m| {
            let field = m
                .split_whitespace()
                .next()
                .unwrap_or("input")
                .trim_matches('`');
            AppError::field(field, m.clone())
        })?;
        Ok(ProfitAnswer {
            inputs,
            measured_retention: report.yearly_retention,
            spend_per_customer: spend,
            effect,
        })
    }
}

/// The question the profit simulator answers.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfitQuestion {
    pub defection_cut_points: f64,
    pub margin_rate: f64,
    pub acquisition_cost: f64,
    pub discount_rate: f64,
    pub horizon_years: u32,
    pub retention: Option<f64>,
    pub yearly_spend_per_customer: Option<f64>,
    pub customers: Option<f64>,
}

impl Default for ProfitQuestion {
    fn default() -> Self {
        ProfitQuestion {
            defection_cut_points: 5.0,
            margin_rate: 0.3,
            acquisition_cost: 0.0,
            discount_rate: 0.1,
            horizon_years: 10,
            retention: None,
            yearly_spend_per_customer: None,
            customers: None,
        }
    }
}

/// The simulator's answer, with the numbers it used.
#[derive(Debug, Clone)]
pub struct ProfitAnswer {
    pub inputs: ProfitInputs,
    pub measured_retention: Option<f64>,
    pub spend_per_customer: f64,
    pub effect: ProfitEffect,
}

/// Each customer's latest complaint on a channel and latest ticket (time, category), for
/// the loss reasons of those who churn.
pub(crate) struct Complaints {
    pub contacts: HashMap<CustomerId, i64>,
    pub tickets: HashMap<CustomerId, (i64, tenure_domain::service::TicketCategory)>,
}

/// Places one customer in the refresh; `None` when nothing about their record changes.
fn place_in_refresh(
    f: &CustomerFacts,
    a: &Activity,
    settings: &LifecycleSettings,
    now: DateTime<Utc>,
    complaints: &Complaints,
    actor_name: &str,
) -> Option<(LifecycleRecord, Option<i64>, Option<NewTransition>)> {
    let seen = f
        .lifecycle
        .as_ref()
        .map(|r| r.updated_at.timestamp_micros());
    let mut rec = f
        .lifecycle
        .clone()
        .unwrap_or_else(|| LifecycleRecord::new(f.id, now));
    let facts = StageFacts {
        first_purchase: a.first_day.and_then(day_start),
        last_purchase: a.last_day.and_then(day_start),
        orders: a.orders,
        purchase_days: a.days.len() as i64,
        p_alive: f.p_alive,
        qualified: rec.qualified(),
        returned_at: returned_after_lapse(&a.days, settings.churned_days).and_then(day_start),
    };
    let placement = place(&facts, settings, now);
    let stage = rec.override_stage.unwrap_or(placement.stage);
    let first = f.lifecycle.is_none();
    if !first && stage == rec.stage && placement.stage == rec.computed_stage {
        return None;
    }
    let inferred = if crate::lifecycle::needs_loss_reason(&rec, first, stage) {
        let since = (facts.last_purchase.unwrap_or(now)
            - Duration::days(crate::lifecycle::COMPLAINT_LOOKBACK_DAYS))
        .timestamp_micros();
        let ticket = complaints
            .tickets
            .get(&f.id)
            .filter(|(at, _)| *at >= since)
            .map(|(_, c)| *c);
        let contact = complaints
            .contacts
            .get(&f.id)
            .is_some_and(|at| *at >= since);
        tenure_domain::lifecycle::inferred_loss_reason(contact || ticket.is_some(), ticket)
    } else {
        tenure_domain::lifecycle::LossReason::Unknown
    };
    let transition = crate::lifecycle::apply_placement(
        &mut rec, first, placement, None, inferred, now, actor_name,
    );
    Some((rec, seen, transition))
}
