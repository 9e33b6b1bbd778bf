//! `/api/v1/analytics/*` (stages, RFM, cohorts, retention, concentration, win-back, the
//! profit simulator), the life-cycle settings, and one customer's life cycle.

use axum::extract::State;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tenure_app::lifecycle::{CustomerLifecycle, LifecycleEdit};
use tenure_app::retention::ProfitQuestion;
use tenure_domain::ids::CustomerId;
use tenure_domain::lifecycle::{
    LifecycleSettings, LossReason, LossReasonSource, Stage, TransitionReason,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::customers::CustomerDto;
use super::{ListResponse, double_option, page};
use crate::auth::{self, Authorized};
use crate::extract::{Id, Json, Query};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(stages))
        .routes(routes!(rfm))
        .routes(routes!(cohorts))
        .routes(routes!(retention))
        .routes(routes!(pareto))
        .routes(routes!(win_back))
        .routes(routes!(profit))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(get_lifecycle, patch_lifecycle))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AsOfParams {
    /// The day the report is as of (default: the latest refresh's report, or today).
    pub as_of: Option<NaiveDate>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StageCountDto {
    pub stage: Stage,
    pub customers: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FlowDto {
    /// `null` for a customer's first placement.
    pub from: Option<Stage>,
    pub to: Stage,
    pub moves: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LossReasonCountDto {
    /// `null` while nobody has given or inferred one.
    pub reason: Option<LossReason>,
    pub customers: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StageReportDto {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub counts: Vec<StageCountDto>,
    pub flows: Vec<FlowDto>,
    pub loss_reasons: Vec<LossReasonCountDto>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PeriodParams {
    /// Start of the period (default: 30 days before `to`).
    pub from: Option<DateTime<Utc>>,
    /// End of the period, exclusive (default: now).
    pub to: Option<DateTime<Utc>>,
}

/// Customers per stage now, the moves between stages in the period and why the customers
/// who churned in it were lost.
#[utoipa::path(get, path = "/api/v1/analytics/stages", tag = "analytics", params(PeriodParams),
    security(("bearer" = [])), responses((status = 200, body = StageReportDto), (status = 400, body = crate::problem::Problem)))]
async fn stages(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Query(p): Query<PeriodParams>,
) -> Result<axum::Json<StageReportDto>, ApiError> {
    let to =
        p.to.unwrap_or_else(|| state.app.now() + Duration::seconds(1));
    let from = p.from.unwrap_or(to - Duration::days(30));
    let r = state.app.stage_report(&caller.actor, from, to).await?;
    Ok(axum::Json(StageReportDto {
        from: r.from,
        to: r.to,
        counts: r
            .counts
            .into_iter()
            .map(|(stage, customers)| StageCountDto { stage, customers })
            .collect(),
        flows: r
            .flows
            .into_iter()
            .map(|(from, to, moves)| FlowDto { from, to, moves })
            .collect(),
        loss_reasons: r
            .loss_reasons
            .into_iter()
            .map(|(reason, customers)| LossReasonCountDto { reason, customers })
            .collect(),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RfmSegmentDto {
    /// champions, loyal, potential_loyalists, new, promising, need_attention,
    /// about_to_sleep, at_risk, cant_lose_them, hibernating, lost.
    pub segment: String,
    pub customers: u64,
    /// Their spend, in major units of the reporting currency.
    pub revenue: f64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RfmSummaryDto {
    pub as_of: NaiveDate,
    pub customers: u64,
    /// `grid[r-1][fm-1]`: buyers with that R score and that (F+M)/2 score (rounded up).
    pub grid: Vec<Vec<u64>>,
    pub segments: Vec<RfmSegmentDto>,
}

/// The RFM grid and the named segments (quintile scores 1–5; equal values share the
/// lower score).
#[utoipa::path(get, path = "/api/v1/analytics/rfm", tag = "analytics", params(AsOfParams),
    security(("bearer" = [])), responses((status = 200, body = RfmSummaryDto), (status = 400, body = crate::problem::Problem)))]
async fn rfm(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Query(p): Query<AsOfParams>,
) -> Result<axum::Json<RfmSummaryDto>, ApiError> {
    let s = state.app.rfm_summary(&caller.actor, p.as_of).await?;
    Ok(axum::Json(RfmSummaryDto {
        as_of: s.as_of,
        customers: s.customers,
        grid: s.grid,
        segments: s
            .segments
            .into_iter()
            .map(|g| RfmSegmentDto {
                segment: g.segment,
                customers: g.customers,
                revenue: g.revenue,
            })
            .collect(),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CohortCellDto {
    /// Acquisition month, `YYYY-MM`.
    pub cohort: String,
    /// Months since acquisition.
    pub period: u32,
    pub size: u64,
    /// Customers of the cohort who bought in that month.
    pub active: u64,
    pub retention: f64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CohortsDto {
    pub as_of: NaiveDate,
    pub cells: Vec<CohortCellDto>,
}

/// The cohort retention matrix by acquisition month.
#[utoipa::path(get, path = "/api/v1/analytics/cohorts", tag = "analytics", params(AsOfParams),
    security(("bearer" = [])), responses((status = 200, body = CohortsDto), (status = 400, body = crate::problem::Problem)))]
async fn cohorts(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Query(p): Query<AsOfParams>,
) -> Result<axum::Json<CohortsDto>, ApiError> {
    let r = state.app.cohorts(&caller.actor, p.as_of).await?;
    Ok(axum::Json(CohortsDto {
        as_of: r.as_of,
        cells: r
            .cells
            .into_iter()
            .map(|c| CohortCellDto {
                cohort: c.cohort,
                period: c.period,
                size: c.size,
                active: c.active,
                retention: c.retention,
            })
            .collect(),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RetentionRowDto {
    /// `YYYY-MM`.
    pub period: String,
    /// Customers within the churn window at the start of the month.
    pub base: u64,
    pub retained: u64,
    pub lost: u64,
    /// `retained / base`; `null` when the base is empty.
    pub retention: Option<f64>,
    /// `1 − retention`.
    pub attrition: Option<f64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RetentionDto {
    pub as_of: NaiveDate,
    pub window_months: u32,
    pub overall: Vec<RetentionRowDto>,
    pub by_channel: std::collections::BTreeMap<String, Vec<RetentionRowDto>>,
    pub by_segment: std::collections::BTreeMap<String, Vec<RetentionRowDto>>,
    pub yearly_retention: Option<f64>,
    pub active_last_year: u64,
    pub spend_per_active_customer: f64,
}

fn rows(v: Vec<tenure_app::retention::RetentionRow>) -> Vec<RetentionRowDto> {
    v.into_iter()
        .map(|p| RetentionRowDto {
            period: p.period,
            base: p.base,
            retained: p.retained,
            lost: p.lost,
            retention: p.retention,
            attrition: p.attrition,
        })
        .collect()
}

/// Retention and attrition by month, overall, by acquisition channel and by segment.
#[utoipa::path(get, path = "/api/v1/analytics/retention", tag = "analytics", params(AsOfParams),
    security(("bearer" = [])), responses((status = 200, body = RetentionDto), (status = 400, body = crate::problem::Problem)))]
async fn retention(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Query(p): Query<AsOfParams>,
) -> Result<axum::Json<RetentionDto>, ApiError> {
    let r = state.app.retention_report(&caller.actor, p.as_of).await?;
    Ok(axum::Json(RetentionDto {
        as_of: r.as_of,
        window_months: r.window_months,
        overall: rows(r.overall),
        by_channel: r
            .by_channel
            .into_iter()
            .map(|(k, v)| (k, rows(v)))
            .collect(),
        by_segment: r
            .by_segment
            .into_iter()
            .map(|(k, v)| (k, rows(v)))
            .collect(),
        yearly_retention: r.yearly_retention,
        active_last_year: r.active_last_year,
        spend_per_active_customer: r.spend_per_active_customer,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ConcentrationDto {
    pub as_of: NaiveDate,
    pub customers: u64,
    pub revenue: f64,
    /// The revenue share of the top 20 % of buyers.
    pub top20_share: f64,
    pub gini: f64,
    /// `[share of customers, share of revenue]` for every percent of buyers, top first.
    pub curve: Vec<[f64; 2]>,
}

/// Revenue concentration (Pareto): the top 20 %'s share, the curve and the Gini coefficient.
#[utoipa::path(get, path = "/api/v1/analytics/pareto", tag = "analytics", params(AsOfParams),
    security(("bearer" = [])), responses((status = 200, body = ConcentrationDto), (status = 400, body = crate::problem::Problem)))]
async fn pareto(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Query(p): Query<AsOfParams>,
) -> Result<axum::Json<ConcentrationDto>, ApiError> {
    let r = state.app.concentration(&caller.actor, p.as_of).await?;
    Ok(axum::Json(ConcentrationDto {
        as_of: r.as_of,
        customers: r.customers,
        revenue: r.revenue,
        top20_share: r.top20_share,
        gini: r.gini,
        curve: r.curve.into_iter().map(|(a, b)| [a, b]).collect(),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WinBackDto {
    pub customer: CustomerDto,
    /// Predicted CLV, the ranking.
    pub clv: f64,
    pub churned_since: DateTime<Utc>,
    pub loss_reason: Option<LossReason>,
}

/// Churned customers worth winning back: predicted CLV at least the business's bar,
/// most valuable first.
#[utoipa::path(get, path = "/api/v1/analytics/win-back", tag = "analytics", params(super::PageParams),
    security(("bearer" = [])), responses((status = 200, body = ListResponse<WinBackDto>), (status = 400, body = crate::problem::Problem)))]
async fn win_back(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Query(p): Query<super::PageParams>,
) -> Result<axum::Json<ListResponse<WinBackDto>>, ApiError> {
    let found = state
        .app
        .win_back(&caller.actor, page(p.limit, &p.cursor))
        .await?;
    Ok(axum::Json(ListResponse::of(found, |(c, clv, r)| {
        WinBackDto {
            customer: c.into(),
            clv,
            churned_since: r.stage_since,
            loss_reason: r.loss_reason,
        }
    })))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProfitParams {
    /// Percentage points by which defection falls (default 5).
    pub defection_cut_points: Option<f64>,
    /// Share of spend that is margin, 0–1 (default 0.3).
    pub margin_rate: Option<f64>,
    /// What winning one customer costs, at most 10^12 (default 0).
    pub acquisition_cost: Option<f64>,
    /// Yearly discount rate, 0–1 (default 0.1).
    pub discount_rate: Option<f64>,
    /// Years counted, 1–50 (default 10).
    pub horizon_years: Option<u32>,
    /// Yearly retention now (default: measured).
    pub retention: Option<f64>,
    /// Yearly spend of an active customer, 0 to 10^12 (default: measured).
    pub yearly_spend_per_customer: Option<f64>,
    /// Customers at the start, 0 to 10^12 (default: those active in the last year).
    pub customers: Option<f64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ScenarioDto {
    pub retention: f64,
    pub defection: f64,
    pub average_lifetime_years: f64,
    /// Net present value of a customer's margins over the horizon, less acquisition.
    pub value_per_customer: f64,
    pub total_value: f64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ProfitDto {
    pub measured_retention: Option<f64>,
    pub spend_per_customer: f64,
    pub margin_per_customer: f64,
    pub customers: f64,
    pub now: ScenarioDto,
    pub improved: ScenarioDto,
    pub value_change: f64,
    /// The rise in the value of a customer's margins, as a fraction (0.25 = +25 %).
    pub profit_increase: f64,
}

fn scenario(s: &tenure_app::retention::Scenario) -> ScenarioDto {
    ScenarioDto {
        retention: s.retention,
        defection: s.defection,
        average_lifetime_years: s.average_lifetime_years,
        value_per_customer: s.value_per_customer,
        total_value: s.total_value,
    }
}

/// What cutting defection by some points is worth, over the business's own retention and
/// spend unless given.
#[utoipa::path(get, path = "/api/v1/analytics/profit", tag = "analytics", params(ProfitParams),
    security(("bearer" = [])), responses((status = 200, body = ProfitDto), (status = 422, body = crate::problem::Problem)))]
async fn profit(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Query(p): Query<ProfitParams>,
) -> Result<axum::Json<ProfitDto>, ApiError> {
    let d = ProfitQuestion::default();
    let q = ProfitQuestion {
        defection_cut_points: p.defection_cut_points.unwrap_or(d.defection_cut_points),
        margin_rate: p.margin_rate.unwrap_or(d.margin_rate),
        acquisition_cost: p.acquisition_cost.unwrap_or(d.acquisition_cost),
        discount_rate: p.discount_rate.unwrap_or(d.discount_rate),
        horizon_years: p.horizon_years.unwrap_or(d.horizon_years),
        retention: p.retention,
        yearly_spend_per_customer: p.yearly_spend_per_customer,
        customers: p.customers,
    };
    let a = state.app.profit_simulation(&caller.actor, q).await?;
    Ok(axum::Json(ProfitDto {
        measured_retention: a.measured_retention,
        spend_per_customer: a.spend_per_customer,
        margin_per_customer: a.inputs.margin_per_customer,
        customers: a.inputs.customers,
        now: scenario(&a.effect.now),
        improved: scenario(&a.effect.improved),
        value_change: a.effect.value_change,
        profit_increase: a.effect.profit_increase,
    }))
}

/// The life-cycle thresholds of the business.
#[utoipa::path(get, path = "/api/v1/settings/lifecycle", tag = "analytics",
    security(("bearer" = [])), responses((status = 200, body = LifecycleSettings)))]
async fn get_settings(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
) -> Result<axum::Json<LifecycleSettings>, ApiError> {
    Ok(axum::Json(
        state.app.lifecycle_settings(&caller.actor).await?,
    ))
}

/// Sets the life-cycle thresholds (fields left out take their defaults); stages follow
/// at each customer's next write and at the next refresh.
#[utoipa::path(put, path = "/api/v1/settings/lifecycle", tag = "analytics", request_body = LifecycleSettings,
    security(("bearer" = [])), responses((status = 200, body = LifecycleSettings), (status = 422, body = crate::problem::Problem)))]
async fn put_settings(
    caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Json(body): Json<LifecycleSettings>,
) -> Result<axum::Json<LifecycleSettings>, ApiError> {
    Ok(axum::Json(
        state
            .app
            .set_lifecycle_settings(&caller.actor, body)
            .await?,
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TransitionDto {
    pub at: DateTime<Utc>,
    pub from: Option<Stage>,
    pub to: Stage,
    pub reason: TransitionReason,
    /// The reason in a sentence.
    pub detail: String,
    pub loss_reason: Option<LossReason>,
    pub by: String,
}

impl From<tenure_app::model::Transition> for TransitionDto {
    fn from(t: tenure_app::model::Transition) -> Self {
        TransitionDto {
            at: t.at,
            from: t.from,
            to: t.to,
            reason: t.reason,
            detail: t.detail,
            loss_reason: t.loss_reason,
            by: t.actor_name,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RfmScoreDto {
    pub r: u8,
    pub f: u8,
    pub m: u8,
    pub segment: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SegmentMembershipDto {
    pub name: String,
    pub since: DateTime<Utc>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LifecycleDto {
    pub customer_id: i64,
    pub stage: Stage,
    /// What the rule gives, whatever the manual stage says.
    pub computed_stage: Stage,
    pub stage_since: DateTime<Utc>,
    pub override_stage: Option<Stage>,
    pub override_note: Option<String>,
    pub loss_reason: Option<LossReason>,
    pub loss_reason_source: Option<LossReasonSource>,
    pub money: bool,
    pub authority: bool,
    pub need: bool,
    pub contact_attempts: i64,
    pub attempts_since_progress: i64,
    pub buying_signals: i64,
    /// Too many contacts without progress.
    pub parked: bool,
    pub rfm: Option<RfmScoreDto>,
    pub segments: Vec<SegmentMembershipDto>,
    /// Newest first.
    pub history: Vec<TransitionDto>,
}

impl From<CustomerLifecycle> for LifecycleDto {
    fn from(l: CustomerLifecycle) -> Self {
        let r = l.record;
        LifecycleDto {
            customer_id: r.customer.0,
            stage: r.stage,
            computed_stage: r.computed_stage,
            stage_since: r.stage_since,
            override_stage: r.override_stage,
            override_note: r.override_note,
            loss_reason: r.loss_reason,
            loss_reason_source: r.loss_reason_source,
            money: r.money,
            authority: r.authority,
            need: r.need,
            contact_attempts: r.contact_attempts,
            attempts_since_progress: r.attempts_since_progress,
            buying_signals: r.buying_signals,
            parked: r.parked,
            rfm: l.rfm.map(|s| RfmScoreDto {
                r: s.r,
                f: s.f,
                m: s.m,
                segment: s.segment.as_str().to_owned(),
            }),
            segments: l
                .segments
                .into_iter()
                .map(|(name, since)| SegmentMembershipDto { name, since })
                .collect(),
            history: l.history.into_iter().map(TransitionDto::from).collect(),
        }
    }
}

/// A customer's stage with its history, prospect qualification, RFM scores and segments.
#[utoipa::path(get, path = "/api/v1/customers/{id}/lifecycle", tag = "customers", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 200, body = LifecycleDto), (status = 404, body = crate::problem::Problem)))]
async fn get_lifecycle(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<axum::Json<LifecycleDto>, ApiError> {
    Ok(axum::Json(
        state
            .app
            .customer_lifecycle(&caller.actor, CustomerId(id))
            .await?
            .into(),
    ))
}

/// The body of `PATCH /api/v1/customers/{id}/lifecycle`: fields left out stay as they are.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LifecyclePatch {
    /// A manual stage; `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(nullable)]
    pub override_stage: Option<Option<Stage>>,
    /// Why (kept with the manual stage and the move), at most 500 characters.
    #[schema(max_length = 500)]
    pub note: Option<String>,
    pub loss_reason: Option<LossReason>,
    pub money: Option<bool>,
    pub authority: Option<bool>,
    pub need: Option<bool>,
}

/// Set a manual stage, a loss reason or a prospect's qualification; the customer is placed
/// again at once.
#[utoipa::path(patch, path = "/api/v1/customers/{id}/lifecycle", tag = "customers", params(("id" = i64, Path)),
    request_body = LifecyclePatch, security(("bearer" = [])),
    responses((status = 200, body = LifecycleDto), (status = 404, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
async fn patch_lifecycle(
    caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
    Json(body): Json<LifecyclePatch>,
) -> Result<axum::Json<LifecycleDto>, ApiError> {
    let edit = LifecycleEdit {
        override_stage: body.override_stage,
        note: body.note,
        loss_reason: body.loss_reason,
        money: body.money,
        authority: body.authority,
        need: body.need,
    };
    Ok(axum::Json(
        state
            .app
            .edit_lifecycle(&caller.actor, CustomerId(id), edit)
            .await?
            .into(),
    ))
}
