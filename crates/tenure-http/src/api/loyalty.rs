//! `/api/v1/loyalty/*`: the program, points (earn, redeem, adjust), rewards, coupon
//! campaigns and codes, referrals; `/api/v1/customers/{id}/loyalty` and the member link;
//! `/api/v1/analytics/loyalty`. Every request that moves points or uses a code carries an
//! `Idempotency-Key`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenure_app::loyalty::{CouponReceipt, Idempotency, MemberView, PointsReceipt};
use tenure_app::model::{LedgerEntry, LotRow, Reward, TierChange};
use tenure_domain::ids::{CampaignId, CustomerId, OrderId, RewardId};
use tenure_domain::loyalty::{
    BonusEvent, Bucket, CampaignData, EntryKind, LoyaltyProgram, RewardData, TierReason,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ListResponse, PageParams};
use crate::auth::{self, Authorized};
use crate::extract::{Id, Json, Query};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_member))
        .routes(routes!(member_link))
        .routes(routes!(earn))
        .routes(routes!(redeem))
        .routes(routes!(adjust))
        .routes(routes!(enrol))
        .routes(routes!(get_program, put_program))
        .routes(routes!(list_rewards, create_reward))
        .routes(routes!(update_reward))
        .routes(routes!(redeem_reward))
        .routes(routes!(list_campaigns, create_campaign))
        .routes(routes!(get_campaign))
        .routes(routes!(use_coupon))
        .routes(routes!(referral))
        .routes(routes!(report))
}

/// The `Idempotency-Key` of a request that moves points, with a digest of its body.
fn key_of(headers: &HeaderMap, body: &impl Serialize) -> Result<Idempotency, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Err(ApiError::field(
            "Idempotency-Key",
            "this request needs an Idempotency-Key header (any unique string per request)",
        ));
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::field("Idempotency-Key", "must be printable ASCII"))?;
    Ok(Idempotency::new(key, body)?)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LotDto {
    pub points: i64,
    pub remaining: i64,
    /// Waiting for the order's return window to close.
    pub pending: bool,
    pub order_id: Option<i64>,
    pub earned_at: DateTime<Utc>,
    pub available_at: Option<DateTime<Utc>>,
    /// `null`: never expires.
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<LotRow> for LotDto {
    fn from(l: LotRow) -> Self {
        LotDto {
            points: l.points,
            remaining: l.remaining,
            pending: l.pending,
            order_id: l.order_id.map(|o| o.0),
            earned_at: l.earned_at,
            available_at: l.available_at,
            expires_at: l.expires_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LedgerEntryDto {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub kind: EntryKind,
    pub bucket: Bucket,
    /// Signed: positive for a credit.
    pub points: i64,
    /// Of a reversal: points already spent, owed from later earnings.
    pub deferred: i64,
    pub order_id: Option<i64>,
    pub reward_id: Option<i64>,
    pub bonus: Option<BonusEvent>,
    pub reason: String,
    pub actor: String,
}

impl From<LedgerEntry> for LedgerEntryDto {
    fn from(e: LedgerEntry) -> Self {
        LedgerEntryDto {
            id: e.id.0,
            at: e.at,
            kind: e.kind,
            bucket: e.bucket,
            points: e.points,
            deferred: e.deferred,
            order_id: e.order_id.map(|o| o.0),
            reward_id: e.reward_id.map(|r| r.0),
            bonus: e.bonus,
            reason: e.reason,
            actor: e.actor_name,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TierChangeDto {
    pub at: DateTime<Utc>,
    pub from: Option<String>,
    pub to: String,
    pub reason: TierReason,
    /// Points earned (or money spent) over the window when it was decided.
    pub qualifying: i64,
}

impl From<TierChange> for TierChangeDto {
    fn from(t: TierChange) -> Self {
        TierChangeDto {
            at: t.at,
            from: t.from_tier,
            to: t.to_tier,
            reason: t.reason,
            qualifying: t.qualifying,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NextTierDto {
    pub name: String,
    pub threshold: i64,
    /// What is still needed, in the program's tier basis.
    pub to_go: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LoyaltyMemberDto {
    pub customer_id: i64,
    /// Whether the customer has an account (every buyer has one once the program is on).
    pub member: bool,
    /// Spendable points.
    pub balance: i64,
    /// Points waiting for their orders' return window.
    pub pending: i64,
    /// Points taken back after they were spent, to come from the next points earned.
    pub owed: i64,
    pub tier: String,
    pub tier_since: DateTime<Utc>,
    /// Set while the member is below their tier: they keep it until then.
    pub grace_until: Option<DateTime<Utc>>,
    pub privileges: Vec<String>,
    /// Points earned (or money spent) over the rolling window.
    pub qualifying: i64,
    pub next_tier: Option<NextTierDto>,
    pub referral_code: Option<String>,
    pub referred_by: Option<i64>,
    /// Lots with points left, closest expiry first.
    pub lots: Vec<LotDto>,
    /// The ledger, newest first (`?limit=&cursor=`).
    pub history: ListResponse<LedgerEntryDto>,
    pub tier_history: Vec<TierChangeDto>,
}

impl From<MemberView> for LoyaltyMemberDto {
    fn from(v: MemberView) -> Self {
        let to_go = v.to_next_tier();
        let member = v.member;
        LoyaltyMemberDto {
            customer_id: v.account.customer_id.0,
            member,
            balance: v.account.balance,
            pending: v.account.pending,
            owed: v.account.owed,
            tier: v.account.tier,
            tier_since: v.account.tier_since,
            grace_until: v.account.grace_until,
            privileges: v.tier.map(|t| t.privileges).unwrap_or_default(),
            qualifying: v.qualifying,
            next_tier: v.next_tier.map(|t| NextTierDto {
                name: t.name,
                threshold: t.threshold,
                to_go: to_go.unwrap_or(0),
            }),
            referral_code: member.then_some(v.account.referral_code),
            referred_by: v.account.referred_by.map(|c| c.0),
            lots: v.lots.into_iter().map(LotDto::from).collect(),
            history: ListResponse::of(v.history, LedgerEntryDto::from),
            tier_history: v
                .tier_history
                .into_iter()
                .map(TierChangeDto::from)
                .collect(),
        }
    }
}

/// A member's points: balance, lots with expiry, tier and progress to the next, and the
/// ledger (paged).
#[utoipa::path(get, path = "/api/v1/customers/{id}/loyalty", tag = "loyalty",
    params(("id" = i64, Path), PageParams), security(("bearer" = [])),
    responses((status = 200, body = LoyaltyMemberDto), (status = 404, body = crate::problem::Problem)))]
async fn get_member(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Id(id): Id,
    Query(p): Query<PageParams>,
) -> Result<axum::Json<LoyaltyMemberDto>, ApiError> {
    let v = state
        .app
        .member(&caller.actor, CustomerId(id), &p.page())
        .await?;
    Ok(axum::Json(v.into()))
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberLinkBody {
    /// How long the link works, 1–366 days (default 30).
    #[serde(default)]
    pub days: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MemberLinkDto {
    /// The signed token; the page is at `/m/{token}`.
    pub token: String,
    /// The page's address (absolute when `TENURE_BASE_URL` is set).
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// A signed, expiring link to the customer's member page (no login needed to open it).
#[utoipa::path(post, path = "/api/v1/customers/{id}/member-link", tag = "loyalty",
    params(("id" = i64, Path)), request_body = MemberLinkBody, security(("bearer" = [])),
    responses((status = 201, body = MemberLinkDto), (status = 404, body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem)))]
async fn member_link(
    caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
    Json(body): Json<MemberLinkBody>,
) -> Result<impl IntoResponse, ApiError> {
    let (token, expires_at) = state
        .app
        .member_link(&caller.actor, CustomerId(id), body.days.unwrap_or(30))
        .await?;
    let url = format!("{}/m/{token}", state.app.options().base_url);
    Ok((
        StatusCode::CREATED,
        axum::Json(MemberLinkDto {
            token,
            url,
            expires_at,
        }),
    ))
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointsBody {
    pub customer_id: i64,
    /// Whole points, 1–1000000000000.
    pub points: i64,
    #[serde(default)]
    pub reason: String,
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustBody {
    pub customer_id: i64,
    /// Signed: positive credits, negative debits (never below the balance).
    pub points: i64,
    /// Why (required; shown in the member's history with who did it).
    pub reason: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReceiptDto {
    pub entry_id: Option<i64>,
    pub customer_id: i64,
    /// Points moved: positive for a credit.
    pub points: i64,
    /// The spendable balance after.
    pub balance: i64,
    pub pending: i64,
    pub at: DateTime<Utc>,
}

impl From<PointsReceipt> for ReceiptDto {
    fn from(r: PointsReceipt) -> Self {
        ReceiptDto {
            entry_id: r.entry_id.map(|e| e.0),
            customer_id: r.customer_id.0,
            points: r.points,
            balance: r.balance,
            pending: r.pending,
            at: r.at,
        }
    }
}

fn positive(id: i64, field: &str) -> Result<(), ApiError> {
    if id <= 0 {
        return Err(tenure_app::AppError::field(field, "must be a positive id").into());
    }
    Ok(())
}

/// Credit points by hand. A replay with the same `Idempotency-Key` answers the first answer
/// and changes nothing; the same key with another body is a 422.
#[utoipa::path(post, path = "/api/v1/loyalty/earn", tag = "loyalty", request_body = PointsBody,
    params(("Idempotency-Key" = String, Header, description = "Unique per request; a retry sends the same key.")),
    security(("bearer" = [])),
    responses((status = 201, body = ReceiptDto), (status = 404, body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem)))]
async fn earn(
    caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<PointsBody>,
) -> Result<impl IntoResponse, ApiError> {
    let key = key_of(&headers, &body)?;
    positive(body.customer_id, "customer_id")?;
    let r = state
        .app
        .earn_points(
            &caller.actor,
            CustomerId(body.customer_id),
            body.points,
            &body.reason,
            Some(&key),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(ReceiptDto::from(r))))
}

/// Spend points; a 409 when the balance does not cover them.
#[utoipa::path(post, path = "/api/v1/loyalty/redeem", tag = "loyalty", request_body = PointsBody,
    params(("Idempotency-Key" = String, Header, description = "Unique per request; a retry sends the same key.")),
    security(("bearer" = [])),
    responses((status = 201, body = ReceiptDto), (status = 404, body = crate::problem::Problem),
        (status = 409, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
async fn redeem(
    caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<PointsBody>,
) -> Result<impl IntoResponse, ApiError> {
    let key = key_of(&headers, &body)?;
    positive(body.customer_id, "customer_id")?;
    let r = state
        .app
        .redeem_points(
            &caller.actor,
            CustomerId(body.customer_id),
            body.points,
            &body.reason,
            Some(&key),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(ReceiptDto::from(r))))
}

/// A correction by staff, with its reason.
#[utoipa::path(post, path = "/api/v1/loyalty/adjust", tag = "loyalty", request_body = AdjustBody,
    params(("Idempotency-Key" = String, Header, description = "Unique per request; a retry sends the same key.")),
    security(("bearer" = [])),
    responses((status = 201, body = ReceiptDto), (status = 404, body = crate::problem::Problem),
        (status = 409, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
async fn adjust(
    caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<AdjustBody>,
) -> Result<impl IntoResponse, ApiError> {
    let key = key_of(&headers, &body)?;
    positive(body.customer_id, "customer_id")?;
    let r = state
        .app
        .adjust_points(
            &caller.actor,
            CustomerId(body.customer_id),
            body.points,
            &body.reason,
            Some(&key),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(ReceiptDto::from(r))))
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolBody {
    pub customer_id: i64,
}

/// Enrol a customer before their first purchase (opens the account, gives the referral
/// code). Enrolling twice changes nothing.
#[utoipa::path(post, path = "/api/v1/loyalty/enrol", tag = "loyalty", request_body = EnrolBody,
    security(("bearer" = [])),
    responses((status = 200, body = LoyaltyMemberDto), (status = 404, body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem)))]
async fn enrol(
    caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    Json(body): Json<EnrolBody>,
) -> Result<axum::Json<LoyaltyMemberDto>, ApiError> {
    positive(body.customer_id, "customer_id")?;
    let id = CustomerId(body.customer_id);
    state.app.enrol(&caller.actor, id).await?;
    let v = state
        .app
        .member(&caller.actor, id, &tenure_app::PageRequest::default())
        .await?;
    Ok(axum::Json(v.into()))
}

/// The program: earn rules, bonuses, lifetime, tiers.
#[utoipa::path(get, path = "/api/v1/loyalty/program", tag = "loyalty", security(("bearer" = [])),
    responses((status = 200, body = LoyaltyProgram)))]
async fn get_program(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
) -> Result<axum::Json<LoyaltyProgram>, ApiError> {
    Ok(axum::Json(state.app.loyalty_program(&caller.actor).await?))
}

/// Sets the program (fields left out take their defaults).
#[utoipa::path(put, path = "/api/v1/loyalty/program", tag = "loyalty", request_body = LoyaltyProgram,
    security(("bearer" = [])),
    responses((status = 200, body = LoyaltyProgram), (status = 422, body = crate::problem::Problem)))]
async fn put_program(
    caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Json(body): Json<LoyaltyProgram>,
) -> Result<axum::Json<LoyaltyProgram>, ApiError> {
    Ok(axum::Json(
        state.app.set_loyalty_program(&caller.actor, body).await?,
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RewardDto {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub points_cost: i64,
    /// How many are left; `null`: unlimited.
    pub stock: Option<i64>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Reward> for RewardDto {
    fn from(r: Reward) -> Self {
        RewardDto {
            id: r.id.0,
            name: r.data.name,
            description: r.data.description,
            points_cost: r.data.points_cost,
            stock: r.data.stock,
            valid_from: r.data.valid_from,
            valid_until: r.data.valid_until,
            active: r.data.active,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The rewards catalogue.
#[utoipa::path(get, path = "/api/v1/loyalty/rewards", tag = "loyalty", security(("bearer" = [])),
    responses((status = 200, body = ListResponse<RewardDto>)))]
async fn list_rewards(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
) -> Result<axum::Json<ListResponse<RewardDto>>, ApiError> {
    let r = state.app.rewards(&caller.actor).await?;
    Ok(axum::Json(ListResponse::all(
        r.into_iter().map(RewardDto::from).collect(),
    )))
}

#[utoipa::path(post, path = "/api/v1/loyalty/rewards", tag = "loyalty", request_body = RewardData,
    security(("bearer" = [])),
    responses((status = 201, body = RewardDto), (status = 422, body = crate::problem::Problem)))]
async fn create_reward(
    caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Json(body): Json<RewardData>,
) -> Result<impl IntoResponse, ApiError> {
    let r = state.app.create_reward(&caller.actor, body).await?;
    Ok((StatusCode::CREATED, axum::Json(RewardDto::from(r))))
}

#[utoipa::path(put, path = "/api/v1/loyalty/rewards/{id}", tag = "loyalty", params(("id" = i64, Path)),
    request_body = RewardData, security(("bearer" = [])),
    responses((status = 200, body = RewardDto), (status = 404, body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem)))]
async fn update_reward(
    caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Id(id): Id,
    Json(body): Json<RewardData>,
) -> Result<axum::Json<RewardDto>, ApiError> {
    let r = state
        .app
        .update_reward(&caller.actor, RewardId(id), body)
        .await?;
    Ok(axum::Json(r.into()))
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemRewardBody {
    pub customer_id: i64,
}

/// Redeem a reward for a member: its points and one of its stock; 409 when the balance does
/// not cover it or it is not available.
#[utoipa::path(post, path = "/api/v1/loyalty/rewards/{id}/redeem", tag = "loyalty", params(("id" = i64, Path),
    ("Idempotency-Key" = String, Header, description = "Unique per request; a retry sends the same key.")),
    request_body = RedeemRewardBody, security(("bearer" = [])),
    responses((status = 201, body = ReceiptDto), (status = 404, body = crate::problem::Problem),
        (status = 409, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
async fn redeem_reward(
    caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
    headers: HeaderMap,
    Json(body): Json<RedeemRewardBody>,
) -> Result<impl IntoResponse, ApiError> {
    let key = key_of(&headers, &(id, &body))?;
    positive(body.customer_id, "customer_id")?;
    let r = state
        .app
        .redeem_reward(
            &caller.actor,
            CustomerId(body.customer_id),
            RewardId(id),
            Some(&key),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(ReceiptDto::from(r))))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CampaignDto {
    pub id: i64,
    pub name: String,
    pub discount_kind: tenure_domain::loyalty::DiscountKind,
    /// Whole percent or minor units of the reporting currency.
    pub discount_value: i64,
    /// Uses per code; `null`: unlimited.
    pub max_uses: Option<i64>,
    pub per_customer: i64,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub codes: i64,
    pub uses: i64,
}

impl From<tenure_app::model::Campaign> for CampaignDto {
    fn from(c: tenure_app::model::Campaign) -> Self {
        CampaignDto {
            id: c.id.0,
            name: c.data.name,
            discount_kind: c.data.discount_kind,
            discount_value: c.data.discount_value,
            max_uses: c.data.max_uses,
            per_customer: c.data.per_customer,
            valid_from: c.data.valid_from,
            valid_until: c.data.valid_until,
            created_at: c.created_at,
            codes: c.codes,
            uses: c.uses,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/loyalty/campaigns", tag = "loyalty", security(("bearer" = [])),
    responses((status = 200, body = ListResponse<CampaignDto>)))]
async fn list_campaigns(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
) -> Result<axum::Json<ListResponse<CampaignDto>>, ApiError> {
    let c = state.app.campaigns(&caller.actor).await?;
    Ok(axum::Json(ListResponse::all(
        c.into_iter().map(CampaignDto::from).collect(),
    )))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignBody {
    pub name: String,
    pub discount_kind: tenure_domain::loyalty::DiscountKind,
    /// Whole percent (1–100) or minor units of the reporting currency.
    pub discount_value: i64,
    /// Uses per code: 1 for single-use codes; `null` for unlimited.
    #[serde(default)]
    pub max_uses: Option<i64>,
    /// How often one customer may use the campaign (default 1).
    #[serde(default)]
    pub per_customer: Option<i64>,
    #[serde(default)]
    pub valid_from: Option<DateTime<Utc>>,
    #[serde(default)]
    pub valid_until: Option<DateTime<Utc>>,
    /// Codes to use (a code printed on a flyer, shared by many).
    #[serde(default)]
    pub codes: Vec<String>,
    /// How many random codes to make (single codes to hand out), at most 10000.
    #[serde(default)]
    pub generate: u32,
}

/// A coupon campaign with its codes.
#[utoipa::path(post, path = "/api/v1/loyalty/campaigns", tag = "loyalty", request_body = CampaignBody,
    security(("bearer" = [])),
    responses((status = 201, body = CampaignDto), (status = 422, body = crate::problem::Problem)))]
async fn create_campaign(
    caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Json(body): Json<CampaignBody>,
) -> Result<impl IntoResponse, ApiError> {
    if body.codes.len() > 10_000 {
        return Err(tenure_app::AppError::field("codes", "at most 10000 codes at once").into());
    }
    let c = state
        .app
        .create_campaign(
            &caller.actor,
            CampaignData {
                name: body.name,
                discount_kind: body.discount_kind,
                discount_value: body.discount_value,
                max_uses: body.max_uses,
                per_customer: body.per_customer.unwrap_or(1),
                valid_from: body.valid_from,
                valid_until: body.valid_until,
            },
            &body.codes,
            body.generate,
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(CampaignDto::from(c))))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CouponDto {
    pub code: String,
    pub uses: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CampaignDetailDto {
    pub campaign: CampaignDto,
    pub coupons: ListResponse<CouponDto>,
}

#[utoipa::path(get, path = "/api/v1/loyalty/campaigns/{id}", tag = "loyalty", params(("id" = i64, Path), PageParams),
    security(("bearer" = [])),
    responses((status = 200, body = CampaignDetailDto), (status = 404, body = crate::problem::Problem)))]
async fn get_campaign(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Id(id): Id,
    Query(p): Query<PageParams>,
) -> Result<axum::Json<CampaignDetailDto>, ApiError> {
    let (c, coupons) = state
        .app
        .campaign(&caller.actor, CampaignId(id), &p.page())
        .await?;
    Ok(axum::Json(CampaignDetailDto {
        campaign: c.into(),
        coupons: ListResponse::of(coupons, |k| CouponDto {
            code: k.code,
            uses: k.uses,
        }),
    }))
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponUseBody {
    pub code: String,
    pub customer_id: i64,
    #[serde(default)]
    pub order_id: Option<i64>,
    /// The order's amount in minor units, for the discount (default 0).
    #[serde(default)]
    pub order_minor: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CouponReceiptDto {
    pub code: String,
    pub campaign_id: i64,
    pub customer_id: i64,
    pub order_id: Option<i64>,
    /// The discount on `order_minor`, in minor units.
    pub discount_minor: i64,
    pub at: DateTime<Utc>,
}

impl From<CouponReceipt> for CouponReceiptDto {
    fn from(r: CouponReceipt) -> Self {
        CouponReceiptDto {
            code: r.code,
            campaign_id: r.campaign_id.0,
            customer_id: r.customer_id.0,
            order_id: r.order_id.map(|o| o.0),
            discount_minor: r.discount_minor,
            at: r.at,
        }
    }
}

/// Use a coupon code: 409 when it is used up, out of its dates, or the customer reached the
/// campaign's limit; 422 when no such code exists.
#[utoipa::path(post, path = "/api/v1/loyalty/coupons/redeem", tag = "loyalty", request_body = CouponUseBody,
    params(("Idempotency-Key" = String, Header, description = "Unique per request; a retry sends the same key.")),
    security(("bearer" = [])),
    responses((status = 201, body = CouponReceiptDto), (status = 404, body = crate::problem::Problem),
        (status = 409, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
async fn use_coupon(
    caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<CouponUseBody>,
) -> Result<impl IntoResponse, ApiError> {
    let key = key_of(&headers, &body)?;
    positive(body.customer_id, "customer_id")?;
    if let Some(o) = body.order_id {
        positive(o, "order_id")?;
    }
    let r = state
        .app
        .use_coupon(
            &caller.actor,
            CustomerId(body.customer_id),
            &body.code,
            body.order_id.map(OrderId),
            body.order_minor,
            Some(&key),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(CouponReceiptDto::from(r))))
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferralBody {
    /// The new customer.
    pub customer_id: i64,
    /// The referral code of the member who brought them.
    pub code: String,
}

/// Link a new customer to the member who referred them; both get their bonus on the new
/// customer's first purchase, once.
#[utoipa::path(post, path = "/api/v1/loyalty/referrals", tag = "loyalty", request_body = ReferralBody,
    security(("bearer" = [])),
    responses((status = 200, body = LoyaltyMemberDto), (status = 404, body = crate::problem::Problem),
        (status = 409, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
async fn referral(
    caller: Authorized<auth::WriteCustomers>,
    State(state): State<AppState>,
    Json(body): Json<ReferralBody>,
) -> Result<axum::Json<LoyaltyMemberDto>, ApiError> {
    positive(body.customer_id, "customer_id")?;
    let id = CustomerId(body.customer_id);
    state
        .app
        .apply_referral(&caller.actor, id, &body.code)
        .await?;
    let v = state
        .app
        .member(&caller.actor, id, &tenure_app::PageRequest::default())
        .await?;
    Ok(axum::Json(v.into()))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// Months back, 1–60 (default 12).
    pub months: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PointsFlowDto {
    /// `YYYY-MM`.
    pub period: String,
    pub earned: i64,
    pub bonus: i64,
    pub redeemed: i64,
    pub expired: i64,
    pub reversed: i64,
    pub adjusted: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TierCountDto {
    pub tier: String,
    pub members: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TierMoveDto {
    pub from: Option<String>,
    pub to: String,
    pub members: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RetentionShareDto {
    /// Buying customers still new, active, loyal or won back.
    pub active: u64,
    pub customers: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LoyaltyReportDto {
    pub members: i64,
    /// Spendable points outstanding.
    pub points_available: i64,
    pub points_pending: i64,
    pub points_owed: i64,
    /// Outstanding points at the program's point value, in major units.
    pub liability: f64,
    pub flows: Vec<PointsFlowDto>,
    pub tiers: Vec<TierCountDto>,
    pub tier_moves: Vec<TierMoveDto>,
    /// Points redeemed over points credited in the period.
    pub redemption_rate: Option<f64>,
    pub members_retention: RetentionShareDto,
    pub non_members_retention: RetentionShareDto,
}

/// Points liability, earn and burn per month, members per tier and tier movement,
/// redemption rate, retention of members against non-members.
#[utoipa::path(get, path = "/api/v1/analytics/loyalty", tag = "loyalty", params(ReportParams),
    security(("bearer" = [])),
    responses((status = 200, body = LoyaltyReportDto), (status = 400, body = crate::problem::Problem)))]
async fn report(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Query(p): Query<ReportParams>,
) -> Result<axum::Json<LoyaltyReportDto>, ApiError> {
    let r = state
        .app
        .loyalty_report(&caller.actor, p.months.unwrap_or(12))
        .await?;
    let share = |(active, customers): (u64, u64)| RetentionShareDto { active, customers };
    Ok(axum::Json(LoyaltyReportDto {
        members: r.liability.members,
        points_available: r.liability.available,
        points_pending: r.liability.pending,
        points_owed: r.liability.owed,
        liability: r.liability.value,
        flows: r
            .flows
            .into_iter()
            .map(|f| PointsFlowDto {
                period: f.period,
                earned: f.earned,
                bonus: f.bonus,
                redeemed: f.redeemed,
                expired: f.expired,
                reversed: f.reversed,
                adjusted: f.adjusted,
            })
            .collect(),
        tiers: r
            .tiers
            .into_iter()
            .map(|(tier, members)| TierCountDto { tier, members })
            .collect(),
        tier_moves: r
            .tier_moves
            .into_iter()
            .map(|(from, to, members)| TierMoveDto { from, to, members })
            .collect(),
        redemption_rate: r.redemption_rate,
        members_retention: share(r.retention[0]),
        non_members_retention: share(r.retention[1]),
    }))
}
