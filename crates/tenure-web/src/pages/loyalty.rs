//! The loyalty pages: the program's page (`/loyalty`: points liability, earn and burn,
//! members per tier and tier movement, redemption rate, members' retention against
//! non-members, and the forms for the program, rewards and coupon campaigns), the loyalty
//! panel of the 360° page with its adjustment and reward forms, and the member page a
//! customer opens from a signed link (`/m/{token}`), without signing in.

use axum::Form;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use tenure_app::AppError;
use tenure_app::loyalty::{Idempotency, MemberView};
use tenure_domain::access::Permission;
use tenure_domain::changes::Actor;
use tenure_domain::ids::{CustomerId, RewardId};
use tenure_domain::jobs::JobKind;
use tenure_domain::loyalty::{
    Bonuses, CampaignData, CategoryRate, DiscountKind, LoyaltyProgram, RewardData, Tier, TierBasis,
};

use super::customers::see_other;
use super::{param, path_id, query_pairs};
use crate::charts::{self, Series};
use crate::i18n::Lang;
use crate::render::{app_error, page, ser};
use crate::session::{Ctx, field};

/// A fresh key for a form that moves points: a second submit of the same form (a double
/// click, a reload) carries the same key and changes nothing.
fn form_key() -> String {
    tenure_app::random_hex(16)
}

#[derive(Serialize)]
struct LotView {
    remaining: i64,
    pending: bool,
    expires_at: Option<String>,
}

#[derive(Serialize)]
struct EntryView {
    at: String,
    kind: String,
    points: i64,
    deferred: i64,
    reason: String,
    actor: String,
}

#[derive(Serialize)]
struct StandingView {
    member: bool,
    balance: i64,
    pending: i64,
    owed: i64,
    tier: String,
    tier_since: String,
    grace_until: Option<String>,
    privileges: Vec<String>,
    qualifying: i64,
    basis: String,
    next_tier: Option<String>,
    to_go: Option<i64>,
    /// 0–100, progress from this tier's threshold to the next.
    progress: u32,
    referral_code: String,
    expiring_soon: i64,
    lots: Vec<LotView>,
    entries: Vec<EntryView>,
    tiers: Vec<(String, String, String)>,
}

fn standing(v: &MemberView, now: DateTime<Utc>) -> StandingView {
    let to_go = v.to_next_tier();
    let progress = match (&v.tier, &v.next_tier) {
        (Some(t), Some(n)) if n.threshold > t.threshold => {
            let span = (n.threshold - t.threshold) as f64;
            (((v.qualifying - t.threshold) as f64 / span).clamp(0.0, 1.0) * 100.0).round() as u32
        }
        (_, None) => 100,
        _ => 0,
    };
    StandingView {
        member: v.member,
        balance: v.account.balance,
        pending: v.account.pending,
        owed: v.account.owed,
        tier: v.account.tier.clone(),
        tier_since: v.account.tier_since.to_rfc3339(),
        grace_until: v.account.grace_until.map(|g| g.to_rfc3339()),
        privileges: v
            .tier
            .as_ref()
            .map(|t| t.privileges.clone())
            .unwrap_or_default(),
        qualifying: v.qualifying,
        basis: v.program.tier_basis.to_string(),
        next_tier: v.next_tier.as_ref().map(|t| t.name.clone()),
        to_go,
        progress,
        referral_code: v.account.referral_code.clone(),
        expiring_soon: v.expiring_within(now, 30),
        lots: v
            .lots
            .iter()
            .take(20)
            .map(|l| LotView {
                remaining: l.remaining,
                pending: l.pending,
                expires_at: l.expires_at.map(|e| e.to_rfc3339()),
            })
            .collect(),
        entries: v
            .history
            .items
            .iter()
            .filter(|e| e.kind != tenure_domain::loyalty::EntryKind::Release)
            .take(15)
            .map(|e| EntryView {
                at: e.at.to_rfc3339(),
                kind: e.kind.to_string(),
                points: e.points,
                deferred: e.deferred,
                reason: e.reason.clone(),
                actor: e.actor_name.clone(),
            })
            .collect(),
        tiers: v
            .tier_history
            .iter()
            .take(10)
            .map(|t| {
                (
                    t.at.to_rfc3339(),
                    t.from_tier.clone().unwrap_or_default(),
                    t.to_tier.clone(),
                )
            })
            .collect(),
    }
}

/// The loyalty panel of the 360° page.
#[derive(Serialize)]
pub(crate) struct CustomerLoyalty {
    enabled: bool,
    standing: StandingView,
    rewards: Vec<(i64, String, i64, bool)>,
    key: String,
    link: Option<String>,
    link_expires: Option<String>,
    /// A coupon just used: its code and the discount in minor units.
    coupon: Option<(String, i64)>,
}

#[allow(clippy::result_large_err)]
pub(crate) async fn customer_view(
    ctx: &Ctx,
    actor: &Actor,
    id: CustomerId,
) -> Result<CustomerLoyalty, Response> {
    let app = &ctx.state.app;
    let v = match app
        .member(actor, id, &tenure_app::PageRequest::first(15))
        .await
    {
        Ok(v) => v,
        Err(e) => return Err(app_error(ctx, e)),
    };
    let rewards = match app.rewards(actor).await {
        Ok(r) => r,
        Err(e) => return Err(app_error(ctx, e)),
    };
    let now = app.now();
    let pairs = query_pairs(&ctx.query);
    let link = param(&pairs, "member_link").map(|t| format!("{}/m/{t}", app.options().base_url));
    Ok(CustomerLoyalty {
        enabled: v.program.enabled,
        rewards: rewards
            .into_iter()
            .filter(|r| r.data.available(now))
            .map(|r| {
                (
                    r.id.0,
                    r.data.name,
                    r.data.points_cost,
                    r.data.points_cost <= v.account.balance,
                )
            })
            .collect(),
        standing: standing(&v, now),
        key: form_key(),
        link,
        link_expires: param(&pairs, "member_link_until").map(str::to_owned),
        coupon: param(&pairs, "coupon").map(|c| {
            (
                c.to_owned(),
                param(&pairs, "discount")
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(0),
            )
        }),
    })
}

/// The 360° page's loyalty forms: an adjustment, a reward, a member link.
pub async fn customer_action(
    ctx: Ctx,
    Path(raw): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::WriteCustomers));
    let Some(id) = path_id(&raw) else {
        return ctx.not_found();
    };
    let customer = CustomerId(id);
    let app = &ctx.state.app;
    let back = format!("/customers/{id}#h-loyalty");
    let key = field(&form, "_key").to_owned();
    match field(&form, "action") {
        "adjust" => {
            let Ok(points) = field(&form, "points").trim().parse::<i64>() else {
                return app_error(
                    &ctx,
                    AppError::field("points", ctx.t("loyalty-points-whole")),
                );
            };
            let reason = field(&form, "reason").to_owned();
            let idem = match Idempotency::new(&key, &(id, points, &reason)) {
                Ok(k) => k,
                Err(e) => return app_error(&ctx, e),
            };
            match app
                .adjust_points(&actor, customer, points, &reason, Some(&idem))
                .await
            {
                Ok(_) => see_other(&back),
                Err(e) => app_error(&ctx, e),
            }
        }
        "reward" => {
            let Some(reward) = path_id(field(&form, "reward_id")) else {
                return ctx.not_found();
            };
            let idem = match Idempotency::new(&key, &(id, reward)) {
                Ok(k) => k,
                Err(e) => return app_error(&ctx, e),
            };
            match app
                .redeem_reward(&actor, customer, RewardId(reward), Some(&idem))
                .await
            {
                Ok(_) => see_other(&back),
                Err(e) => app_error(&ctx, e),
            }
        }
        "coupon" => {
            let amount = field(&form, "order_amount").trim().replace(',', ".");
            let order_minor = match amount.as_str() {
                "" => 0,
                a => match a.parse::<f64>() {
                    Ok(v) if v.is_finite() && v >= 0.0 => {
                        let exp = tenure_domain::money::minor_exponent(app.reporting_currency());
                        (v * 10f64.powi(exp as i32)).round() as i64
                    }
                    _ => {
                        return app_error(
                            &ctx,
                            AppError::field("order_amount", ctx.t("loyalty-not-a-number")),
                        );
                    }
                },
            };
            let code = field(&form, "code").to_owned();
            let idem = match Idempotency::new(&key, &(id, &code, order_minor)) {
                Ok(k) => k,
                Err(e) => return app_error(&ctx, e),
            };
            match app
                .use_coupon(&actor, customer, &code, None, order_minor, Some(&idem))
                .await
            {
                Ok(r) => see_other(&format!(
                    "/customers/{id}?coupon={}&discount={}#h-loyalty",
                    r.code, r.discount_minor
                )),
                Err(e) => app_error(&ctx, e),
            }
        }
        "enrol" => match app.enrol(&actor, customer).await {
            Ok(_) => see_other(&back),
            Err(e) => app_error(&ctx, e),
        },
        "link" => match app.member_link(&actor, customer, 30).await {
            Ok((token, until)) => see_other(&format!(
                "/customers/{id}?member_link={token}&member_link_until={}#h-loyalty",
                until.to_rfc3339().replace('+', "%2B")
            )),
            Err(e) => app_error(&ctx, e),
        },
        _ => ctx.not_found(),
    }
}

/// A program form's values as typed, for showing them again with their errors.
#[derive(Serialize, Default)]
struct ProgramForm {
    enabled: bool,
    starts_at: String,
    points_per_unit: String,
    min_order: String,
    lifetime_days: String,
    pending_days: String,
    point_value: String,
    tier_basis: String,
    tier_window_days: String,
    tier_grace_days: String,
    welcome: String,
    birthday: String,
    referral: String,
    referred: String,
    survey_answered: String,
    /// name, threshold, multiplier, privileges (one per line)
    tiers: Vec<(String, String, String, String)>,
    categories: Vec<(String, String)>,
    /// Field (`points_per_unit`, `tiers[2].threshold`, ...) → message.
    errors: std::collections::BTreeMap<String, String>,
}

fn program_form(p: &LoyaltyProgram) -> ProgramForm {
    let mut tiers: Vec<(String, String, String, String)> = p
        .tiers
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.threshold.to_string(),
                t.multiplier.to_string(),
                t.privileges.join("\n"),
            )
        })
        .collect();
    tiers.push(Default::default());
    let mut categories: Vec<(String, String)> = p
        .categories
        .iter()
        .map(|c| (c.category_id.to_string(), c.multiplier.to_string()))
        .collect();
    categories.push(Default::default());
    ProgramForm {
        enabled: p.enabled,
        starts_at: p
            .starts_at
            .map(|s| s.date_naive().to_string())
            .unwrap_or_default(),
        points_per_unit: p.points_per_unit.to_string(),
        min_order: p.min_order.to_string(),
        lifetime_days: p.lifetime_days.to_string(),
        pending_days: p.pending_days.to_string(),
        point_value: p.point_value.to_string(),
        tier_basis: p.tier_basis.to_string(),
        tier_window_days: p.tier_window_days.to_string(),
        tier_grace_days: p.tier_grace_days.to_string(),
        welcome: p.bonuses.welcome.to_string(),
        birthday: p.bonuses.birthday.to_string(),
        referral: p.bonuses.referral.to_string(),
        referred: p.bonuses.referred.to_string(),
        survey_answered: p.bonuses.survey_answered.to_string(),
        tiers,
        categories,
        errors: Default::default(),
    }
}

/// Reads the program form; the values as typed and every field at fault when it does not
/// parse or the program is not valid.
fn parse_program(ctx: &Ctx, form: &[(String, String)]) -> Result<LoyaltyProgram, Box<ProgramForm>> {
    let get = |name: &str| field(form, name).trim().to_owned();
    let mut errors: Vec<(String, String)> = Vec::new();
    let mut num = |name: &str| -> f64 {
        match get(name).replace(',', ".").parse::<f64>() {
            Ok(v) if v.is_finite() => v,
            _ => {
                errors.push((name.to_owned(), ctx.t("loyalty-not-a-number")));
                0.0
            }
        }
    };
    let points_per_unit = num("points_per_unit");
    let min_order = num("min_order");
    let point_value = num("point_value");
    let mut int = |name: &str| -> i64 {
        match get(name).parse::<i64>() {
            Ok(v) => v,
            Err(_) => {
                errors.push((name.to_owned(), ctx.t("loyalty-points-whole")));
                0
            }
        }
    };
    let days = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
    let lifetime_days = days(int("lifetime_days"));
    let pending_days = days(int("pending_days"));
    let tier_window_days = days(int("tier_window_days"));
    let tier_grace_days = days(int("tier_grace_days"));
    let bonuses = Bonuses {
        welcome: int("bonuses.welcome"),
        birthday: int("bonuses.birthday"),
        referral: int("bonuses.referral"),
        referred: int("bonuses.referred"),
        survey_answered: int("bonuses.survey_answered"),
    };
    let mut tiers = Vec::new();
    let mut typed_tiers = Vec::new();
    for i in 0..21 {
        let name = get(&format!("tier_name_{i}"));
        let threshold = get(&format!("tier_threshold_{i}"));
        let multiplier = get(&format!("tier_multiplier_{i}"));
        let privileges = field(form, &format!("tier_privileges_{i}")).to_owned();
        if name.is_empty() && threshold.is_empty() {
            continue;
        }
        typed_tiers.push((
            name.clone(),
            threshold.clone(),
            multiplier.clone(),
            privileges.clone(),
        ));
        let n = tiers.len();
        let threshold = threshold.parse::<i64>().unwrap_or_else(|_| {
            errors.push((
                format!("tiers[{n}].threshold"),
                ctx.t("loyalty-points-whole"),
            ));
            0
        });
        let multiplier = multiplier
            .replace(',', ".")
            .parse::<f64>()
            .unwrap_or_else(|_| {
                errors.push((
                    format!("tiers[{n}].multiplier"),
                    ctx.t("loyalty-not-a-number"),
                ));
                1.0
            });
        tiers.push(Tier {
            name,
            threshold,
            multiplier,
            privileges: privileges
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
        });
    }
    let mut categories = Vec::new();
    let mut typed_categories = Vec::new();
    for i in 0..50 {
        let id = get(&format!("category_id_{i}"));
        let m = get(&format!("category_multiplier_{i}"));
        if id.is_empty() {
            continue;
        }
        typed_categories.push((id.clone(), m.clone()));
        let n = categories.len();
        categories.push(CategoryRate {
            category_id: id.parse().unwrap_or_else(|_| {
                errors.push((
                    format!("categories[{n}].category_id"),
                    ctx.t("loyalty-points-whole"),
                ));
                0
            }),
            multiplier: m.replace(',', ".").parse().unwrap_or_else(|_| {
                errors.push((
                    format!("categories[{n}].multiplier"),
                    ctx.t("loyalty-not-a-number"),
                ));
                1.0
            }),
        });
    }
    let starts_at = match get("starts_at").as_str() {
        "" => None,
        d => match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
            Ok(d) => d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()),
            Err(_) => {
                errors.push(("starts_at".into(), ctx.t("loyalty-not-a-date")));
                None
            }
        },
    };
    let program = LoyaltyProgram {
        enabled: form.iter().any(|(k, v)| k == "enabled" && v == "on"),
        starts_at,
        points_per_unit,
        min_order,
        categories,
        bonuses,
        lifetime_days,
        pending_days,
        point_value,
        tier_basis: get("tier_basis").parse().unwrap_or(TierBasis::Points),
        tier_window_days,
        tier_grace_days,
        tiers,
    };
    if errors.is_empty()
        && let Err(invalid) = program.validate()
    {
        errors.extend(invalid.0.into_iter().map(|e| (e.field, e.message)));
    }
    if errors.is_empty() {
        return Ok(program);
    }
    let mut typed = program_form(&program);
    typed.starts_at = get("starts_at");
    typed.points_per_unit = get("points_per_unit");
    typed.min_order = get("min_order");
    typed.point_value = get("point_value");
    typed.lifetime_days = get("lifetime_days");
    typed.pending_days = get("pending_days");
    typed.tier_window_days = get("tier_window_days");
    typed.tier_grace_days = get("tier_grace_days");
    typed.welcome = get("bonuses.welcome");
    typed.birthday = get("bonuses.birthday");
    typed.referral = get("bonuses.referral");
    typed.referred = get("bonuses.referred");
    typed.survey_answered = get("bonuses.survey_answered");
    typed_tiers.push(Default::default());
    typed.tiers = typed_tiers;
    typed_categories.push(Default::default());
    typed.categories = typed_categories;
    typed.errors = errors.into_iter().collect();
    Err(Box::new(typed))
}

fn month_label(lang: Lang, period: &str) -> String {
    let mut parts = period.split('-');
    match (
        parts.next().and_then(|y| y.parse::<i32>().ok()),
        parts.next().and_then(|m| m.parse::<u32>().ok()),
    ) {
        (Some(y), Some(m)) => lang.month(y, m),
        _ => period.to_owned(),
    }
}

async fn render_loyalty(ctx: &Ctx, form: Option<ProgramForm>, status: StatusCode) -> Response {
    let actor = step!(ctx.allowed(Permission::ReadAggregates));
    let app = &ctx.state.app;
    let program = fetch!(ctx, app.loyalty_program(&actor).await);
    let report = fetch!(ctx, app.loyalty_report(&actor, 12).await);
    let rewards = fetch!(ctx, app.rewards(&actor).await);
    let campaigns = fetch!(ctx, app.campaigns(&actor).await);
    let lang = ctx.lang;
    let months: Vec<String> = report
        .flows
        .iter()
        .map(|f| month_label(lang, &f.period))
        .collect();
    let earned: Vec<f64> = report
        .flows
        .iter()
        .map(|f| (f.earned + f.bonus) as f64)
        .collect();
    let burned: Vec<f64> = report
        .flows
        .iter()
        .map(|f| (f.redeemed + f.expired) as f64)
        .collect();
    let flow_chart = charts::lines(
        &ctx.t("loyalty-earn-burn"),
        &months,
        &[
            Series {
                name: &ctx.t("loyalty-earned"),
                values: &earned,
                class: "line-a",
            },
            Series {
                name: &ctx.t("loyalty-burned"),
                values: &burned,
                class: "line-b",
            },
        ],
        &|v| lang.number(v.round() as i64),
    );
    let tier_labels: Vec<String> = report.tiers.iter().map(|(t, _)| t.clone()).collect();
    let tier_values: Vec<f64> = report.tiers.iter().map(|(_, n)| *n as f64).collect();
    let tier_chart = charts::bars(
        &ctx.t("loyalty-members-per-tier"),
        &tier_labels,
        &tier_values,
        &|v| lang.number(v.round() as i64),
    );
    let share = |(a, n): (u64, u64)| (n > 0).then(|| a as f64 / n as f64);
    let now = app.now();
    let notice =
        param(&query_pairs(&ctx.query), "notice").map(|n| ctx.t(&format!("loyalty-notice-{n}")));
    page(
        ctx,
        status,
        "loyalty.html",
        None,
        minijinja::context! {
            enabled => program.enabled,
            liability => ser(&report.liability),
            currency => app.reporting_currency(),
            flow_chart, tier_chart,
            flows => ser(&report.flows.iter().rev().map(|f| (month_label(lang, &f.period), f.earned, f.bonus, f.redeemed, f.expired, f.reversed, f.adjusted)).collect::<Vec<_>>()),
            tiers => ser(&report.tiers),
            moves => ser(&report.tier_moves),
            redemption_rate => report.redemption_rate,
            members_active => share(report.retention[0]),
            members_base => report.retention[0].1,
            others_active => share(report.retention[1]),
            others_base => report.retention[1].1,
            form => ser(&form.unwrap_or_else(|| program_form(&program))),
            rewards => ser(&rewards.iter().map(|r| (r.id.0, r.data.name.clone(), r.data.points_cost, r.data.stock, r.data.available(now))).collect::<Vec<_>>()),
            campaigns => ser(&campaigns.iter().map(|c| (c.id.0, c.data.name.clone(), c.data.discount_kind.to_string(), c.data.discount_value, c.codes, c.uses, c.data.valid_until.map(|u| u.to_rfc3339()))).collect::<Vec<_>>()),
            may_write => actor.allows(Permission::WriteCatalog),
            notice,
        },
    )
}

pub async fn show(ctx: Ctx) -> Response {
    render_loyalty(&ctx, None, StatusCode::OK).await
}

pub async fn save_program(ctx: Ctx, Form(form): Form<Vec<(String, String)>>) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::WriteCatalog));
    let program = match parse_program(&ctx, &form) {
        Ok(p) => p,
        Err(typed) => {
            return render_loyalty(&ctx, Some(*typed), StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    match ctx.state.app.set_loyalty_program(&actor, program).await {
        Ok(_) => see_other("/loyalty?notice=saved"),
        Err(e) => app_error(&ctx, e),
    }
}

pub async fn create_reward(ctx: Ctx, Form(form): Form<Vec<(String, String)>>) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::WriteCatalog));
    let stock = field(&form, "stock").trim();
    let Ok(points_cost) = field(&form, "points_cost").trim().parse::<i64>() else {
        return app_error(
            &ctx,
            AppError::field("points_cost", ctx.t("loyalty-points-whole")),
        );
    };
    let stock = match stock {
        "" => None,
        s => match s.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return app_error(
                    &ctx,
                    AppError::field("stock", ctx.t("loyalty-points-whole")),
                );
            }
        },
    };
    let data = RewardData {
        name: field(&form, "name").to_owned(),
        description: field(&form, "description").to_owned(),
        points_cost,
        stock,
        valid_from: None,
        valid_until: None,
        active: true,
    };
    match ctx.state.app.create_reward(&actor, data).await {
        Ok(_) => see_other("/loyalty?notice=reward#h-rewards"),
        Err(e) => app_error(&ctx, e),
    }
}

/// Switches a reward on or off.
pub async fn toggle_reward(
    ctx: Ctx,
    Path(raw): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::WriteCatalog));
    let Some(id) = path_id(&raw) else {
        return ctx.not_found();
    };
    let app = &ctx.state.app;
    let rewards = fetch!(&ctx, app.rewards(&actor).await);
    let Some(r) = rewards.into_iter().find(|r| r.id.0 == id) else {
        return ctx.not_found();
    };
    let mut data = r.data;
    data.active = !data.active;
    match app.update_reward(&actor, RewardId(id), data).await {
        Ok(_) => see_other("/loyalty#h-rewards"),
        Err(e) => app_error(&ctx, e),
    }
}

pub async fn create_campaign(ctx: Ctx, Form(form): Form<Vec<(String, String)>>) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::WriteCatalog));
    let kind: DiscountKind = field(&form, "discount_kind")
        .parse()
        .unwrap_or(DiscountKind::Percent);
    let value = field(&form, "discount_value").trim().replace(',', ".");
    let discount_value = match (kind, value.parse::<f64>()) {
        (DiscountKind::Percent, Ok(v)) => v.round() as i64,
        (DiscountKind::Amount, Ok(v)) => {
            let exp = tenure_domain::money::minor_exponent(ctx.state.app.reporting_currency());
            (v * 10f64.powi(exp as i32)).round() as i64
        }
        (_, Err(_)) => {
            return app_error(
                &ctx,
                AppError::field("discount_value", ctx.t("loyalty-not-a-number")),
            );
        }
    };
    #[allow(clippy::result_large_err)]
    let opt_int = |name: &str| -> Result<Option<i64>, Response> {
        match field(&form, name).trim() {
            "" => Ok(None),
            s => s
                .parse::<i64>()
                .map(Some)
                .map_err(|_| app_error(&ctx, AppError::field(name, ctx.t("loyalty-points-whole")))),
        }
    };
    let max_uses = step!(opt_int("max_uses"));
    let per_customer = step!(opt_int("per_customer")).unwrap_or(1);
    let generate = step!(opt_int("generate")).unwrap_or(0);
    let valid_until = match field(&form, "valid_until").trim() {
        "" => None,
        d => match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
            Ok(d) => d.and_hms_opt(23, 59, 59).map(|t| t.and_utc()),
            Err(_) => {
                return app_error(
                    &ctx,
                    AppError::field("valid_until", ctx.t("loyalty-not-a-date")),
                );
            }
        },
    };
    let codes: Vec<String> = field(&form, "codes")
        .split([',', '\n', ' '])
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    let data = CampaignData {
        name: field(&form, "name").to_owned(),
        discount_kind: kind,
        discount_value,
        max_uses,
        per_customer,
        valid_from: None,
        valid_until,
    };
    let generate = u32::try_from(generate.max(0)).unwrap_or(u32::MAX);
    match ctx
        .state
        .app
        .create_campaign(&actor, data, &codes, generate)
        .await
    {
        Ok(_) => see_other("/loyalty?notice=campaign#h-campaigns"),
        Err(e) => app_error(&ctx, e),
    }
}

/// Queues the expiry run or the tier evaluation now.
pub async fn run(ctx: Ctx, Form(form): Form<Vec<(String, String)>>) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::WriteCatalog));
    let kind = match field(&form, "run") {
        "expire" => JobKind::LoyaltyExpire,
        "tiers" => JobKind::LoyaltyTiers,
        _ => return ctx.not_found(),
    };
    match ctx.state.app.queue_job(&actor, kind).await {
        Ok(_) => see_other("/loyalty?notice=queued"),
        Err(e) => app_error(&ctx, e),
    }
}

/// The dashboard's loyalty panel: members, outstanding points and their value, tiers.
#[derive(Serialize)]
pub(crate) struct DashboardLoyalty {
    members: i64,
    points: i64,
    value: f64,
    tiers: Vec<(String, i64)>,
}

pub(crate) fn dashboard_view(
    summary: Option<(tenure_app::loyalty::LiabilityReport, Vec<(String, i64)>)>,
) -> Option<DashboardLoyalty> {
    summary.map(|(l, tiers)| DashboardLoyalty {
        members: l.members,
        points: l.available + l.pending,
        value: l.value,
        tiers,
    })
}

/// The member page: what a customer sees from their signed link, on their phone, in their
/// language, without signing in.
pub async fn member(mut ctx: Ctx, Path(token): Path<String>) -> Response {
    let app = ctx.state.app.clone();
    let m = match app.member_page(&token).await {
        Ok(m) => m,
        Err(AppError::Forbidden(_)) => {
            return crate::render::error_page(
                &ctx,
                StatusCode::FORBIDDEN,
                &ctx.t("member-link-invalid"),
            );
        }
        Err(e) => return app_error(&ctx, e),
    };
    if !ctx.lang_given
        && let Some(l) = m.locale.as_deref().and_then(Lang::from_tag)
    {
        ctx.lang = l;
    }
    let now = app.now();
    let s = standing(&m.view, now);
    let affordable: Vec<(String, i64, String)> = m
        .rewards
        .iter()
        .filter(|r| r.data.points_cost <= m.view.account.balance)
        .map(|r| {
            (
                r.data.name.clone(),
                r.data.points_cost,
                r.data.description.clone(),
            )
        })
        .collect();
    let later: Vec<(String, i64, i64)> = m
        .rewards
        .iter()
        .filter(|r| r.data.points_cost > m.view.account.balance)
        .take(3)
        .map(|r| {
            (
                r.data.name.clone(),
                r.data.points_cost,
                r.data.points_cost - m.view.account.balance,
            )
        })
        .collect();
    // Points by the day they expire, the nearest three days.
    let mut by_day: std::collections::BTreeMap<NaiveDate, (i64, DateTime<Utc>)> =
        Default::default();
    for l in m.view.lots.iter().filter(|l| !l.pending) {
        if let Some(e) = l.expires_at {
            let slot = by_day.entry(e.date_naive()).or_insert((0, e));
            slot.0 += l.remaining;
        }
    }
    let expiring: Vec<(i64, String)> = by_day
        .into_values()
        .take(3)
        .map(|(n, e)| (n, e.to_rfc3339()))
        .collect();
    page(
        &ctx,
        StatusCode::OK,
        "member.html",
        None,
        minijinja::context! {
            name => m.name,
            s => ser(&s),
            affordable => ser(&affordable),
            later => ser(&later),
            expiring => ser(&expiring),
            inbox => m.inbox.iter().map(|x| (
                x.subject.clone(),
                x.body_text.clone(),
                x.sent_at.unwrap_or(x.created_at).to_rfc3339(),
                x.read_at.is_none(),
            )).collect::<Vec<_>>(),
            link_until => m.expires_at.to_rfc3339(),
        },
    )
}
