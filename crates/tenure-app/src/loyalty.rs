//! The loyalty program: its configuration, the points ledger (earn, redeem, adjust, reverse,
//! expire, release), tiers, rewards, coupons, referrals, the member page's signed links and
//! the program's reports.
//!
//! Orders earn inside their own transaction: [`Loyalty`] is a handler of the unit of work,
//! so an order recorded through the API, the web or (after its batch) an import earns exactly
//! once — the earn entry is keyed `earn:order:ORDER:CUSTOMER` — and a refunded, reduced or
//! deleted order takes back what it earned, from the order's own lot first, then from the
//! lots closest to expiry; what was spent already is owed and taken from the next points
//! earned, so redeem-then-refund gains nothing.
//!
//! Every write that moves a member's points locks the member's account first; every
//! mutating request may carry an idempotency key ([`Idempotency`]): a replay answers what the
//! first request answered and writes nothing.

use base64::Engine;
use chrono::{DateTime, Datelike, Duration, Utc};
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use tenure_domain::access::Permission;
use tenure_domain::catalog::OrderStatus;
use tenure_domain::changes::{Actor, Event};
use tenure_domain::ids::{CampaignId, CustomerId, EntryId, OrderId, RewardId};
use tenure_domain::loyalty::{
    self as rules, BonusEvent, Bucket, CampaignData, EntryKind, LoyaltyProgram, OrderForPoints,
    RewardData, TierDecision, TierReason,
};
use tenure_store::WriteTx;
use tenure_store::loyalty::{
    Campaign, Coupon, LedgerEntry, Liability, LotRow, LoyaltyAccount, NewEntry, NewLot, Reward,
    TierChange,
};

use crate::unit::{Context, Handler, HandlerFuture};
use crate::{App, AppError, AppResult, Listed, PageRequest, listed, require};

/// The settings document holding the program.
pub const SETTINGS: &str = "loyalty";
const SECRET: &str = "member_link_secret";
/// Lots per transaction of the expiry and release runs.
const RUN_CHUNK: u32 = 2000;

fn program_from(value: Option<serde_json::Value>) -> AppResult<LoyaltyProgram> {
    match value {
        None => Ok(LoyaltyProgram::default()),
        Some(v) => serde_json::from_value(v).map_err(|e| {
            AppError::Internal(format!("the stored loyalty program is unreadable: {e}"))
        }),
    }
}

pub(crate) async fn program_in(tx: &mut WriteTx<'_>) -> AppResult<LoyaltyProgram> {
    program_from(tx.setting(SETTINGS).await?)
}

fn insufficient(balance: i64, points: i64) -> AppError {
    AppError::Conflict(format!(
        "the balance of {balance} points does not cover {points} points"
    ))
}

fn random_code(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::fill(&mut bytes[..]);
    bytes
        .iter()
        .map(|b| char::from(rules::CODE_ALPHABET[usize::from(*b) % rules::CODE_ALPHABET.len()]))
        .collect()
}

/// The member's account, locked; opened (with a referral code, at the base tier) when the
/// customer has none — the flag says whether it was.
async fn open_account(
    tx: &mut WriteTx<'_>,
    program: &LoyaltyProgram,
    customer: CustomerId,
    now: DateTime<Utc>,
) -> AppResult<(LoyaltyAccount, bool)> {
    if let Some(a) = tx.loyalty_account_for_update(customer).await? {
        return Ok((a, false));
    }
    for _ in 0..8 {
        if tx
            .open_loyalty_account(customer, program.base_tier(), &random_code(8), now)
            .await?
        {
            break;
        }
        if let Some(a) = tx.loyalty_account_for_update(customer).await? {
            return Ok((a, false));
        }
    }
    let acct = tx
        .loyalty_account_for_update(customer)
        .await?
        .ok_or_else(|| AppError::Internal("no free referral code after 8 tries".into()))?;
    tx.record_tier_change(
        customer,
        None,
        program.base_tier(),
        TierReason::Qualified,
        0,
        now,
    )
    .await?;
    Ok((acct, true))
}

/// The member's account, locked; a new one comes with the welcome bonus when the program
/// is on.
pub(crate) async fn account(
    tx: &mut WriteTx<'_>,
    program: &LoyaltyProgram,
    customer: CustomerId,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AppResult<LoyaltyAccount> {
    let (mut acct, opened) = open_account(tx, program, customer, now).await?;
    if opened && program.enabled && program.bonuses.welcome > 0 {
        credit(
            tx,
            program,
            &mut acct,
            Credit::bonus(BonusEvent::Welcome, program.bonuses.welcome, customer, None),
            actor,
            now,
        )
        .await?;
    }
    Ok(acct)
}

/// Points to credit.
struct Credit {
    kind: EntryKind,
    points: i64,
    order: Option<OrderId>,
    base_minor: Option<i64>,
    bonus: Option<BonusEvent>,
    reason: String,
    key: Option<String>,
    pending: bool,
}

impl Credit {
    /// Points given by hand, without an order.
    fn manual(kind: EntryKind, points: i64, reason: String) -> Credit {
        Credit {
            kind,
            points,
            order: None,
            base_minor: None,
            bonus: None,
            reason,
            key: None,
            pending: false,
        }
    }

    fn bonus(event: BonusEvent, points: i64, customer: CustomerId, tag: Option<String>) -> Credit {
        let key = match tag {
            Some(t) => format!("bonus:{event}:{customer}:{t}"),
            None => format!("bonus:{event}:{customer}"),
        };
        Credit {
            kind: EntryKind::Bonus,
            points,
            order: None,
            base_minor: None,
            bonus: Some(event),
            reason: String::new(),
            key: Some(key),
            pending: false,
        }
    }
}

/// Credits points (a lot of their own), settling first what the member owes from an earlier
/// reversal. `None` when the credit's key was used already.
async fn credit(
    tx: &mut WriteTx<'_>,
    program: &LoyaltyProgram,
    acct: &mut LoyaltyAccount,
    c: Credit,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AppResult<Option<EntryId>> {
    let customer = acct.customer_id;
    let bucket = if c.pending {
        Bucket::Pending
    } else {
        Bucket::Available
    };
    let Some(entry) = tx
        .append_entry(&NewEntry {
            customer,
            at: now,
            kind: c.kind,
            bucket,
            points: c.points,
            deferred: 0,
            order: c.order,
            base_minor: c.base_minor,
            reward: None,
            bonus: c.bonus,
            reason: c.reason,
            actor_name: actor.display_name(),
            source_key: c.key,
        })
        .await?
    else {
        return Ok(None);
    };
    let lot = tx
        .add_lot(&NewLot {
            customer,
            entry,
            order: c.order,
            points: c.points,
            pending: c.pending,
            earned_at: now,
            available_at: if c.pending {
                program.available_at(now)
            } else {
                None
            },
            expires_at: program.expiry(now),
        })
        .await?;
    let settle = acct.owed.min(c.points);
    if settle > 0 {
        tx.take_from_lot(lot, settle).await?;
        tx.append_entry(&NewEntry {
            customer,
            at: now,
            kind: EntryKind::Reverse,
            bucket,
            points: -settle,
            deferred: 0,
            order: None,
            base_minor: None,
            reward: None,
            bonus: None,
            reason: "settles points taken back after they were spent".into(),
            actor_name: actor.display_name(),
            source_key: None,
        })
        .await?;
    }
    let net = c.points - settle;
    let (available, pending) = if c.pending { (0, net) } else { (net, 0) };
    tx.move_points(customer, available, pending, -settle, now)
        .await?;
    acct.balance += available;
    acct.pending += pending;
    acct.owed -= settle;
    Ok(Some(entry))
}

/// Takes `points` from the member's spendable lots, closest expiry first, and records the
/// debit. The caller checked the balance.
async fn debit(
    tx: &mut WriteTx<'_>,
    acct: &mut LoyaltyAccount,
    d: Debit,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AppResult<EntryId> {
    // Points past their expiry are not spent, whether or not the expiry run came by yet:
    // they expire here, keyed like the run's own entries, so the run skips them.
    let mut lots = tx.open_lots(acct.customer_id).await?;
    let mut expired = 0;
    for l in lots
        .iter_mut()
        .filter(|l| !l.pending && l.expires_at.is_some_and(|e| e <= now))
    {
        if tx
            .append_entry(&NewEntry {
                customer: acct.customer_id,
                at: now,
                kind: EntryKind::Expire,
                bucket: Bucket::Available,
                points: -l.remaining,
                deferred: 0,
                order: None,
                base_minor: None,
                reward: None,
                bonus: None,
                reason: String::new(),
                actor_name: actor.display_name(),
                source_key: Some(format!("expire:lot:{}", l.id)),
            })
            .await?
            .is_some()
        {
            tx.take_from_lot(l.id, l.remaining).await?;
            expired += l.remaining;
            l.remaining = 0;
        }
    }
    if expired > 0 {
        tx.move_points(acct.customer_id, -expired, 0, 0, now)
            .await?;
        acct.balance -= expired;
    }
    if acct.balance < d.points {
        return Err(insufficient(acct.balance, d.points));
    }
    let spendable: Vec<rules::Lot> = lots
        .iter()
        .filter(|l| !l.pending)
        .map(|l| rules::Lot {
            id: l.id,
            remaining: l.remaining,
            expires_at: l.expires_at,
        })
        .collect();
    let (taken, short) = rules::consume(&spendable, d.points);
    if short > 0 {
        return Err(AppError::Internal(format!(
            "member {}'s lots hold {short} points less than the balance",
            acct.customer_id
        )));
    }
    for (lot, n) in taken {
        tx.take_from_lot(lot, n).await?;
    }
    let entry = tx
        .append_entry(&NewEntry {
            customer: acct.customer_id,
            at: now,
            kind: d.kind,
            bucket: Bucket::Available,
            points: -d.points,
            deferred: 0,
            order: None,
            base_minor: None,
            reward: d.reward,
            bonus: None,
            reason: d.reason,
            actor_name: actor.display_name(),
            source_key: None,
        })
        .await?
        .ok_or_else(|| AppError::Internal("an unkeyed entry was not written".into()))?;
    tx.move_points(acct.customer_id, -d.points, 0, 0, now)
        .await?;
    acct.balance -= d.points;
    Ok(entry)
}

struct Debit {
    kind: EntryKind,
    points: i64,
    reward: Option<RewardId>,
    reason: String,
}

/// Brings what an order's entries stand at for `member` down to what the order earns now
/// (`total`: its completed total, `None` when it no longer counts for this member).
async fn reconcile_order(
    tx: &mut WriteTx<'_>,
    order: OrderId,
    member: CustomerId,
    total: Option<i64>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let Some(mut acct) = tx.loyalty_account_for_update(member).await? else {
        return Ok(false);
    };
    let Some(earn) = tx.order_earn(order, member).await? else {
        return Ok(false);
    };
    let target = rules::order_points_now(earn.earned, earn.base_minor, total);
    let mut left = earn.net - target;
    if left <= 0 {
        return Ok(false);
    }
    let lots = tx.open_lots(member).await?;
    // The order's own lots first, then spendable lots, then pending ones — each closest
    // expiry first.
    let pick = |f: &dyn Fn(&LotRow) -> bool| -> Vec<rules::Lot> {
        lots.iter()
            .filter(|l| f(l))
            .map(|l| rules::Lot {
                id: l.id,
                remaining: l.remaining,
                expires_at: l.expires_at,
            })
            .collect()
    };
    let pending_of: std::collections::HashMap<i64, bool> =
        lots.iter().map(|l| (l.id, l.pending)).collect();
    let groups = [
        pick(&|l| l.order_id == Some(order)),
        pick(&|l| l.order_id != Some(order) && !l.pending),
        pick(&|l| l.order_id != Some(order) && l.pending),
    ];
    let (mut from_available, mut from_pending) = (0, 0);
    for g in groups {
        let (taken, short) = rules::consume(&g, left);
        for (lot, n) in taken {
            tx.take_from_lot(lot, n).await?;
            if pending_of.get(&lot).copied().unwrap_or(false) {
                from_pending += n;
            } else {
                from_available += n;
            }
        }
        left = short;
        if left == 0 {
            break;
        }
    }
    let reason = match total {
        None => format!("order {order} was refunded, cancelled, deleted or moved"),
        Some(t) => format!("order {order} was reduced to {}.{:02}", t / 100, t % 100),
    };
    let base = NewEntry {
        customer: member,
        at: now,
        kind: EntryKind::Reverse,
        bucket: Bucket::Available,
        points: -from_available,
        deferred: left,
        order: Some(order),
        base_minor: None,
        reward: None,
        bonus: None,
        reason,
        actor_name: actor.display_name(),
        source_key: None,
    };
    if from_available > 0 || left > 0 {
        tx.append_entry(&base).await?;
    }
    if from_pending > 0 {
        tx.append_entry(&NewEntry {
            bucket: Bucket::Pending,
            points: -from_pending,
            deferred: 0,
            ..base
        })
        .await?;
    }
    tx.move_points(member, -from_available, -from_pending, left, now)
        .await?;
    acct.owed += left;
    Ok(true)
}

/// Credits what an order earns its customer, once, with the referral bonuses of a first
/// purchase.
async fn earn_for_order(
    tx: &mut WriteTx<'_>,
    program: &LoyaltyProgram,
    order: OrderId,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AppResult<Option<CustomerId>> {
    if !program.enabled {
        return Ok(None);
    }
    let o = tx.get_order_for_update(order).await?;
    let member = o.data.customer_id;
    if o.data.status != OrderStatus::Completed {
        return Ok(None);
    }
    let key = format!("earn:order:{order}:{member}");
    if tx.entry_key_used(&key).await? {
        return Ok(None);
    }
    let lines = tx.order_lines_with_category(order).await?;
    let tier = tx
        .loyalty_account_for_update(member)
        .await?
        .map_or_else(|| program.base_tier().to_owned(), |a| a.tier);
    let Some(points) = program.order_points(
        &OrderForPoints {
            occurred_at: o.data.occurred_at,
            total_minor: o.data.total_minor,
            lines: &lines,
        },
        &tier,
    ) else {
        return Ok(None);
    };
    let mut acct = account(tx, program, member, actor, now).await?;
    credit(
        tx,
        program,
        &mut acct,
        Credit {
            kind: EntryKind::Earn,
            points,
            order: Some(order),
            base_minor: Some(o.data.total_minor),
            bonus: None,
            reason: String::new(),
            key: Some(key),
            pending: program.pending_days > 0,
        },
        actor,
        now,
    )
    .await?;
    referral_rewards(tx, program, &mut acct, actor, now).await?;
    Ok(Some(member))
}

/// On a referred member's first earning purchase: the bonus to both, once.
async fn referral_rewards(
    tx: &mut WriteTx<'_>,
    program: &LoyaltyProgram,
    acct: &mut LoyaltyAccount,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let Some(referrer) = acct.referred_by else {
        return Ok(());
    };
    let member = acct.customer_id;
    // Both bonuses go with the first earning purchase; later orders have nothing to do.
    if tx
        .entry_key_used(&format!("bonus:{}:{member}", BonusEvent::Referred))
        .await?
    {
        return Ok(());
    }
    if program.bonuses.referred > 0 {
        credit(
            tx,
            program,
            acct,
            Credit::bonus(BonusEvent::Referred, program.bonuses.referred, member, None),
            actor,
            now,
        )
        .await?;
    }
    if program.bonuses.referral > 0 {
        let mut r = account(tx, program, referrer, actor, now).await?;
        let mut c = Credit::bonus(
            BonusEvent::Referral,
            program.bonuses.referral,
            referrer,
            Some(member.to_string()),
        );
        c.reason = format!("referred customer {member}");
        credit(tx, program, &mut r, c, actor, now).await?;
    }
    Ok(())
}

/// Earns points for orders, takes them back from refunds and deletions, and keeps balances
/// equal to the ledger when a merge moves entries.
pub struct Loyalty {
    pub clock: crate::Clock,
}

impl Handler for Loyalty {
    fn name(&self) -> &'static str {
        "loyalty"
    }

    fn handle<'a>(&'a self, ctx: &'a mut Context<'_, '_>, event: &'a Event) -> HandlerFuture<'a> {
        Box::pin(async move {
            let now = self.clock.now();
            let mut changed: Vec<CustomerId> = Vec::new();
            match *event {
                Event::OrderRecorded { order, .. } => {
                    let program = program_in(ctx.tx).await?;
                    changed.extend(earn_for_order(ctx.tx, &program, order, ctx.actor, now).await?);
                }
                Event::OrderUpdated {
                    order, customer, ..
                } => {
                    // Nothing to do for an order that never earned while the program is off.
                    let members = ctx.tx.order_members(order).await?;
                    let program = program_in(ctx.tx).await?;
                    if members.is_empty() && !program.enabled {
                        return Ok(());
                    }
                    let o = ctx.tx.get_order_for_update(order).await?;
                    let total =
                        (o.data.status == OrderStatus::Completed).then_some(o.data.total_minor);
                    for member in members {
                        let t = if member == customer { total } else { None };
                        if reconcile_order(ctx.tx, order, member, t, ctx.actor, now).await? {
                            changed.push(member);
                        }
                    }
                    changed.extend(earn_for_order(ctx.tx, &program, order, ctx.actor, now).await?);
                }
                Event::OrderDeleted { order, .. } => {
                    for member in ctx.tx.order_members(order).await? {
                        if reconcile_order(ctx.tx, order, member, None, ctx.actor, now).await? {
                            changed.push(member);
                        }
                    }
                }
                // A merge moved the ledger's rows (the registry's owned tables) and took the
                // merged account with the customer; an undo moved them back. The accounts
                // follow their ledgers, without a welcome bonus: it was given once.
                Event::CustomersMerged { survivor, .. } | Event::MergeUndone { survivor, .. } => {
                    let restored = match *event {
                        Event::MergeUndone { restored, .. } => Some(restored),
                        _ => None,
                    };
                    let program = program_in(ctx.tx).await?;
                    for c in std::iter::once(survivor).chain(restored) {
                        if ctx.tx.has_ledger(c).await? {
                            open_account(ctx.tx, &program, c, now).await?;
                            ctx.tx.rebalance_account(c, now).await?;
                            changed.push(c);
                        }
                    }
                }
                _ => {}
            }
            changed.sort();
            changed.dedup();
            for customer in changed {
                ctx.emit(Event::PointsChanged { customer });
            }
            Ok(())
        })
    }
}

/// A request's idempotency key and a digest of what it asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    pub key: String,
    pub fingerprint: String,
}

impl Idempotency {
    /// A key as a client sends it: 1–200 printable ASCII characters.
    pub fn new(key: &str, request: &impl Serialize) -> AppResult<Idempotency> {
        if key.is_empty() || key.len() > 200 || !key.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            return Err(AppError::parameter(
                "Idempotency-Key",
                "must be 1–200 printable characters without spaces",
            ));
        }
        use sha2::Digest;
        let body = serde_json::to_vec(request).map_err(|e| AppError::Internal(e.to_string()))?;
        let digest = sha2::Sha256::digest(&body);
        Ok(Idempotency {
            key: key.to_owned(),
            fingerprint: crate::hex(&digest),
        })
    }
}

fn scope(actor: &Actor, operation: &str) -> String {
    format!("{}:{operation}", actor.label())
}

fn replayed<T: serde::de::DeserializeOwned>(
    stored: Option<(String, String)>,
    key: &Idempotency,
) -> AppResult<Option<T>> {
    match stored {
        None => Ok(None),
        Some((hash, _)) if hash != key.fingerprint => Err(AppError::field(
            "Idempotency-Key",
            "this key was used for a different request; use a new key for a new request",
        )),
        Some((_, response)) => serde_json::from_str(&response)
            .map(Some)
            .map_err(|e| AppError::Internal(format!("a stored response is unreadable: {e}"))),
    }
}

/// The first answer to `key` within `scope`, when this is a replay of it.
async fn earlier_answer<T: serde::de::DeserializeOwned>(
    tx: &mut WriteTx<'_>,
    scope: &str,
    key: Option<&Idempotency>,
) -> AppResult<Option<T>> {
    match key {
        Some(k) => replayed(tx.idempotent_response(scope, &k.key).await?, k),
        None => Ok(None),
    }
}

impl App {
    /// Stores `answer` for `key` with the write and commits it with `event`; when a
    /// concurrent request with the same key stored its answer first, this write is rolled
    /// back and that answer is the answer.
    async fn commit_keyed<T: Serialize + serde::de::DeserializeOwned>(
        &self,
        mut uow: crate::unit::UnitOfWork<'_>,
        scope: &str,
        key: Option<&Idempotency>,
        answer: T,
        event: Event,
    ) -> AppResult<T> {
        if let Some(k) = key {
            let body =
                serde_json::to_string(&answer).map_err(|e| AppError::Internal(e.to_string()))?;
            if !uow
                .tx
                .store_idempotent_response(scope, &k.key, &k.fingerprint, &body, self.now())
                .await?
            {
                drop(uow);
                return replayed(self.store().idempotent_response(scope, &k.key).await?, k)?
                    .ok_or_else(|| AppError::Internal("a keyed answer vanished".into()));
            }
        }
        uow.emit(event);
        uow.commit().await?;
        Ok(answer)
    }
}

/// What a points operation answers (and what a replay of it answers again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsReceipt {
    pub entry_id: Option<EntryId>,
    pub customer_id: CustomerId,
    /// Points moved: positive for a credit.
    pub points: i64,
    pub balance: i64,
    pub pending: i64,
    pub at: DateTime<Utc>,
}

/// What a coupon use answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponReceipt {
    pub code: String,
    pub campaign_id: CampaignId,
    pub customer_id: CustomerId,
    pub order_id: Option<OrderId>,
    pub discount_minor: i64,
    pub at: DateTime<Utc>,
}

/// A member's standing as the API, the 360° page and the member page show it.
#[derive(Debug, Clone)]
pub struct MemberView {
    /// Whether the customer has an account; when not, `account` shows what a new member's
    /// would be.
    pub member: bool,
    pub account: LoyaltyAccount,
    pub lots: Vec<LotRow>,
    pub tier: Option<rules::Tier>,
    pub next_tier: Option<rules::Tier>,
    /// Points earned (or minor units spent) over the tier window.
    pub qualifying: i64,
    pub history: Listed<LedgerEntry>,
    pub tier_history: Vec<TierChange>,
    pub program: LoyaltyProgram,
}

impl MemberView {
    /// What is still needed for the next tier.
    pub fn to_next_tier(&self) -> Option<i64> {
        self.next_tier
            .as_ref()
            .map(|t| (t.threshold - self.qualifying).max(0))
    }

    /// Points expiring within `days` of `now`.
    pub fn expiring_within(&self, now: DateTime<Utc>, days: i64) -> i64 {
        self.lots
            .iter()
            .filter(|l| {
                !l.pending
                    && l.expires_at
                        .is_some_and(|e| e <= now + Duration::days(days))
            })
            .map(|l| l.remaining)
            .sum()
    }
}

/// What the member page shows: the member's standing, the rewards on offer, who they are.
#[derive(Debug, Clone)]
pub struct MemberPage {
    pub view: MemberView,
    pub rewards: Vec<Reward>,
    pub name: String,
    pub locale: Option<String>,
    pub expires_at: DateTime<Utc>,
    /// The in-app messages sent to the member, newest first; opening the page reads them.
    pub inbox: Vec<crate::model::Message>,
}

/// A period's earn and burn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowRow {
    /// `YYYY-MM`.
    pub period: String,
    pub earned: i64,
    pub bonus: i64,
    pub redeemed: i64,
    pub expired: i64,
    pub reversed: i64,
    pub adjusted: i64,
}

/// The program's report.
#[derive(Debug, Clone, Serialize)]
pub struct LoyaltyReport {
    pub liability: LiabilityReport,
    pub flows: Vec<FlowRow>,
    pub tiers: Vec<(String, i64)>,
    pub tier_moves: Vec<(Option<String>, String, i64)>,
    /// Points redeemed over points credited, over the report's months.
    pub redemption_rate: Option<f64>,
    /// Share of buying customers still active (new, active, loyal or won back): members,
    /// then non-members, with the counts.
    pub retention: [(u64, u64); 2],
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct LiabilityReport {
    pub members: i64,
    pub available: i64,
    pub pending: i64,
    pub owed: i64,
    /// Outstanding points (available and pending) at the program's point value, in major units.
    pub value: f64,
}

/// What an expiry run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ExpiryReport {
    pub released_lots: u64,
    pub expired_lots: u64,
    pub members: u64,
    pub birthday_bonuses: u64,
}

/// What a tier evaluation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TierReport {
    pub members: u64,
    pub upgraded: u64,
    pub downgraded: u64,
    pub grace_started: u64,
}

fn month_of_day(day: i64) -> String {
    DateTime::from_timestamp(day * 86_400, 0)
        .map_or_else(String::new, |d| format!("{:04}-{:02}", d.year(), d.month()))
}

impl App {
    /// The program in force, without a permission check.
    pub(crate) async fn current_program(&self) -> AppResult<LoyaltyProgram> {
        program_from(self.store().setting(SETTINGS).await?)
    }

    pub async fn loyalty_program(&self, actor: &Actor) -> AppResult<LoyaltyProgram> {
        require(actor, Permission::ReadAggregates)?;
        self.current_program().await
    }

    /// Sets the program. Members whose tier the new program lacks move at the next tier
    /// evaluation.
    pub async fn set_loyalty_program(
        &self,
        actor: &Actor,
        program: LoyaltyProgram,
    ) -> AppResult<LoyaltyProgram> {
        require(actor, Permission::WriteCatalog)?;
        program.validate()?;
        let mut uow = self.begin(actor).await?;
        let value =
            serde_json::to_value(&program).map_err(|e| AppError::Internal(e.to_string()))?;
        uow.tx.put_setting(SETTINGS, &value).await?;
        uow.emit(Event::SettingsChanged { name: SETTINGS });
        uow.commit().await?;
        Ok(program)
    }

    /// A member's standing: balance, lots, tier and progress, history (paged).
    pub async fn member(
        &self,
        actor: &Actor,
        customer: CustomerId,
        page: &PageRequest,
    ) -> AppResult<MemberView> {
        require(actor, Permission::ReadAggregates)?;
        self.member_view(customer, page).await
    }

    async fn member_view(&self, customer: CustomerId, page: &PageRequest) -> AppResult<MemberView> {
        self.store().require_customer(customer).await?;
        let program = self.current_program().await?;
        let now = self.now();
        let stored = self.store().loyalty_account(customer).await?;
        let member = stored.is_some();
        let account = match stored {
            Some(a) => a,
            None => LoyaltyAccount {
                customer_id: customer,
                balance: 0,
                pending: 0,
                owed: 0,
                tier: program.base_tier().to_owned(),
                tier_since: now,
                grace_until: None,
                referral_code: String::new(),
                referred_by: None,
                enrolled_at: now,
            },
        };
        let since = now - Duration::days(i64::from(program.tier_window_days));
        let qualifying = self
            .store()
            .tier_value(
                customer,
                program.tier_basis,
                since,
                self.reporting_currency(),
            )
            .await?;
        let qualifying = match program.tier_basis {
            rules::TierBasis::Points => qualifying,
            rules::TierBasis::Spend => qualifying / 100,
        };
        let (limit, before) = (page.limit()?, page.after::<EntryId>()?);
        let history = listed(
            self.store()
                .loyalty_entries(customer, before, limit)
                .await?,
            |e| e,
        );
        Ok(MemberView {
            member,
            lots: self.store().loyalty_lots(customer).await?,
            tier: program.tier(&account.tier).cloned(),
            next_tier: program.next_tier(&account.tier).cloned(),
            qualifying,
            history,
            tier_history: self.store().tier_changes(customer).await?,
            account,
            program,
        })
    }

    /// Enrols a customer (opens their account) without waiting for a purchase.
    pub async fn enrol(&self, actor: &Actor, customer: CustomerId) -> AppResult<LoyaltyAccount> {
        require(actor, Permission::WriteCustomers)?;
        let now = self.now();
        let mut uow = self.begin(actor).await?;
        let program = program_in(&mut uow.tx).await?;
        let acct = account(&mut uow.tx, &program, customer, actor, now).await?;
        uow.emit(Event::PointsChanged { customer });
        uow.commit().await?;
        Ok(acct)
    }

    /// Runs a keyed points operation: a replay of `key` answers the first answer; the body
    /// `op` runs in the unit of work otherwise, and its answer is stored with the write.
    async fn keyed_points<F>(
        &self,
        actor: &Actor,
        operation: &str,
        key: Option<&Idempotency>,
        customer: CustomerId,
        op: F,
    ) -> AppResult<PointsReceipt>
    where
        F: for<'t, 's> FnOnce(
            &'t mut WriteTx<'s>,
            LoyaltyProgram,
            LoyaltyAccount,
            DateTime<Utc>,
        ) -> std::pin::Pin<
            Box<
                dyn std::future::Future<Output = AppResult<(Option<EntryId>, i64, LoyaltyAccount)>>
                    + Send
                    + 't,
            >,
        >,
    {
        let scope = scope(actor, operation);
        let now = self.now();
        let mut uow = self.begin(actor).await?;
        if let Some(r) = earlier_answer(&mut uow.tx, &scope, key).await? {
            return Ok(r);
        }
        let program = program_in(&mut uow.tx).await?;
        let acct = account(&mut uow.tx, &program, customer, actor, now).await?;
        let (entry, points, acct) = op(&mut uow.tx, program, acct, now).await?;
        let receipt = PointsReceipt {
            entry_id: entry,
            customer_id: customer,
            points,
            balance: acct.balance,
            pending: acct.pending,
            at: now,
        };
        self.commit_keyed(uow, &scope, key, receipt, Event::PointsChanged { customer })
            .await
    }

    /// Credits points by hand (a goodwill gesture, a promotion).
    pub async fn earn_points(
        &self,
        actor: &Actor,
        customer: CustomerId,
        points: i64,
        reason: &str,
        key: Option<&Idempotency>,
    ) -> AppResult<PointsReceipt> {
        require(actor, Permission::WriteCustomers)?;
        check_points(points)?;
        let reason = check_reason(reason, false)?;
        let actor2 = actor.clone();
        self.keyed_points(
            actor,
            "earn",
            key,
            customer,
            move |tx, program, mut acct, now| {
                Box::pin(async move {
                    let entry = credit(
                        tx,
                        &program,
                        &mut acct,
                        Credit::manual(EntryKind::Earn, points, reason),
                        &actor2,
                        now,
                    )
                    .await?;
                    Ok((entry, points, acct))
                })
            },
        )
        .await
    }

    /// Spends points; a 409 when the balance does not cover them.
    pub async fn redeem_points(
        &self,
        actor: &Actor,
        customer: CustomerId,
        points: i64,
        reason: &str,
        key: Option<&Idempotency>,
    ) -> AppResult<PointsReceipt> {
        require(actor, Permission::WriteCustomers)?;
        check_points(points)?;
        let reason = check_reason(reason, false)?;
        let actor2 = actor.clone();
        self.keyed_points(
            actor,
            "redeem",
            key,
            customer,
            move |tx, _program, mut acct, now| {
                Box::pin(async move {
                    let entry = debit(
                        tx,
                        &mut acct,
                        Debit {
                            kind: EntryKind::Redeem,
                            points,
                            reward: None,
                            reason,
                        },
                        &actor2,
                        now,
                    )
                    .await?;
                    Ok((Some(entry), -points, acct))
                })
            },
        )
        .await
    }

    /// A correction by staff, up or down, with its reason; a debit cannot exceed the balance.
    pub async fn adjust_points(
        &self,
        actor: &Actor,
        customer: CustomerId,
        points: i64,
        reason: &str,
        key: Option<&Idempotency>,
    ) -> AppResult<PointsReceipt> {
        require(actor, Permission::WriteCustomers)?;
        if points == 0 || points.unsigned_abs() > rules::POINTS_MAX.unsigned_abs() {
            return Err(AppError::field(
                "points",
                "must be non-zero, at most 1000000000000 either way",
            ));
        }
        let reason = check_reason(reason, true)?;
        let actor2 = actor.clone();
        self.keyed_points(
            actor,
            "adjust",
            key,
            customer,
            move |tx, program, mut acct, now| {
                Box::pin(async move {
                    let entry = if points > 0 {
                        credit(
                            tx,
                            &program,
                            &mut acct,
                            Credit {
                                kind: EntryKind::Adjust,
                                points,
                                order: None,
                                base_minor: None,
                                bonus: None,
                                reason,
                                key: None,
                                pending: false,
                            },
                            &actor2,
                            now,
                        )
                        .await?
                    } else {
                        Some(
                            debit(
                                tx,
                                &mut acct,
                                Debit {
                                    kind: EntryKind::Adjust,
                                    points: -points,
                                    reward: None,
                                    reason,
                                },
                                &actor2,
                                now,
                            )
                            .await?,
                        )
                    };
                    Ok((entry, points, acct))
                })
            },
        )
        .await
    }

    /// Redeems a reward of the catalogue: its points and one of its stock.
    pub async fn redeem_reward(
        &self,
        actor: &Actor,
        customer: CustomerId,
        reward: RewardId,
        key: Option<&Idempotency>,
    ) -> AppResult<PointsReceipt> {
        require(actor, Permission::WriteCustomers)?;
        let actor2 = actor.clone();
        self.keyed_points(actor, "reward", key, customer, move |tx, _program, mut acct, now| {
            Box::pin(async move {
                let r = tx.reward_for_update(reward).await?;
                if !r.data.available(now) {
                    return Err(AppError::Conflict(format!(
                        "the reward \"{}\" is not available now (inactive, out of its dates or out of stock)",
                        r.data.name
                    )));
                }
                let entry = debit(
                    tx,
                    &mut acct,
                    Debit {
                        kind: EntryKind::Redeem,
                        points: r.data.points_cost,
                        reward: Some(reward),
                        reason: r.data.name.clone(),
                    },
                    &actor2,
                    now,
                )
                .await?;
                tx.take_reward_stock(reward).await?;
                Ok((Some(entry), -r.data.points_cost, acct))
            })
        })
        .await
    }

    /// Gives a bonus event's points once per `tag` (the survey answered, the year of a
    /// birthday); `None` when it was given already or the program gives nothing for it.
    pub async fn grant_bonus(
        &self,
        actor: &Actor,
        customer: CustomerId,
        event: BonusEvent,
        tag: &str,
    ) -> AppResult<Option<PointsReceipt>> {
        require(actor, Permission::WriteCustomers)?;
        let now = self.now();
        let mut uow = self.begin(actor).await?;
        let program = program_in(&mut uow.tx).await?;
        let points = program.bonuses.points(event);
        if !program.enabled || points <= 0 {
            return Ok(None);
        }
        let mut acct = account(&mut uow.tx, &program, customer, actor, now).await?;
        let entry = credit(
            &mut uow.tx,
            &program,
            &mut acct,
            Credit::bonus(event, points, customer, Some(tag.to_owned())),
            actor,
            now,
        )
        .await?;
        uow.emit(Event::PointsChanged { customer });
        uow.commit().await?;
        Ok(entry.map(|e| PointsReceipt {
            entry_id: Some(e),
            customer_id: customer,
            points,
            balance: acct.balance,
            pending: acct.pending,
            at: now,
        }))
    }

    /// Links a customer to the member whose referral code they bring; the bonuses follow
    /// their first purchase. Refused for one's own code, a customer who has bought already or
    /// was referred already.
    pub async fn apply_referral(
        &self,
        actor: &Actor,
        customer: CustomerId,
        code: &str,
    ) -> AppResult<LoyaltyAccount> {
        require(actor, Permission::WriteCustomers)?;
        let code = rules::normalize_code(code);
        if !rules::valid_code(&code) {
            return Err(AppError::field("code", "is not a referral code"));
        }
        let now = self.now();
        let mut uow = self.begin(actor).await?;
        let Some(referrer) = uow.tx.referrer_by_code(&code).await? else {
            return Err(AppError::field("code", "no member has this referral code"));
        };
        if referrer == customer {
            return Err(AppError::field("code", "a member cannot refer themselves"));
        }
        let program = program_in(&mut uow.tx).await?;
        let mut acct = account(&mut uow.tx, &program, customer, actor, now).await?;
        if acct.referred_by.is_some() {
            return Err(AppError::Conflict(
                "this customer was referred already".into(),
            ));
        }
        if uow.tx.completed_orders(customer).await? > 0 {
            return Err(AppError::Conflict(
                "this customer has bought already; referrals reward new customers".into(),
            ));
        }
        uow.tx.set_referred_by(customer, referrer).await?;
        acct.referred_by = Some(referrer);
        uow.emit(Event::ReferralLinked { customer });
        uow.commit().await?;
        Ok(acct)
    }

    pub async fn rewards(&self, actor: &Actor) -> AppResult<Vec<Reward>> {
        require(actor, Permission::ReadAggregates)?;
        Ok(self.store().rewards(None).await?)
    }

    pub async fn create_reward(&self, actor: &Actor, data: RewardData) -> AppResult<Reward> {
        require(actor, Permission::WriteCatalog)?;
        data.validate()?;
        let mut uow = self.begin(actor).await?;
        let r = uow.tx.create_reward(&data, self.now()).await?;
        uow.emit(Event::RewardCreated { reward: r.id });
        uow.commit().await?;
        Ok(r)
    }

    pub async fn update_reward(
        &self,
        actor: &Actor,
        id: RewardId,
        data: RewardData,
    ) -> AppResult<Reward> {
        require(actor, Permission::WriteCatalog)?;
        data.validate()?;
        let mut uow = self.begin(actor).await?;
        uow.tx.reward_for_update(id).await?;
        let r = uow.tx.update_reward(id, &data, self.now()).await?;
        uow.emit(Event::RewardUpdated { reward: id });
        uow.commit().await?;
        Ok(r)
    }

    pub async fn campaigns(&self, actor: &Actor) -> AppResult<Vec<Campaign>> {
        require(actor, Permission::ReadAggregates)?;
        Ok(self.store().campaigns().await?)
    }

    pub async fn campaign(
        &self,
        actor: &Actor,
        id: CampaignId,
        page: &PageRequest,
    ) -> AppResult<(Campaign, Listed<Coupon>)> {
        require(actor, Permission::ReadAggregates)?;
        let (limit, after) = (page.limit()?, page.after::<tenure_domain::ids::CouponId>()?);
        Ok((
            self.store().campaign(id).await?,
            listed(self.store().coupons(id, after, limit).await?, |c| c),
        ))
    }

    /// Creates a campaign with the given codes (one code used by many) and `generate` random
    /// single codes.
    pub async fn create_campaign(
        &self,
        actor: &Actor,
        data: CampaignData,
        codes: &[String],
        generate: u32,
    ) -> AppResult<Campaign> {
        require(actor, Permission::WriteCatalog)?;
        data.validate()?;
        let mut errors = Vec::new();
        let codes: Vec<String> = codes.iter().map(|c| rules::normalize_code(c)).collect();
        if codes.iter().any(|c| !rules::valid_code(c)) {
            errors.push(tenure_domain::FieldError::new(
                "codes",
                "each code is 4–32 letters and digits",
            ));
        }
        if generate > 10_000 {
            errors.push(tenure_domain::FieldError::new(
                "generate",
                "at most 10000 codes at once",
            ));
        }
        if codes.is_empty() && generate == 0 {
            errors.push(tenure_domain::FieldError::new(
                "codes",
                "give codes, or a number of codes to generate",
            ));
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(tenure_domain::Invalid(errors)));
        }
        let now = self.now();
        let mut uow = self.begin(actor).await?;
        let id = uow.tx.create_campaign(&data, now).await?;
        for c in &codes {
            if !uow.tx.add_coupon(id, c, now).await? {
                return Err(AppError::field(
                    "codes",
                    format!("the code {c} exists already"),
                ));
            }
        }
        let mut made = 0;
        while made < generate {
            if uow.tx.add_coupon(id, &random_code(10), now).await? {
                made += 1;
            }
        }
        let campaign = uow.tx.campaign_in_tx(id).await?;
        uow.emit(Event::CampaignCreated { campaign: id });
        uow.commit().await?;
        Ok(campaign)
    }

    /// Uses a coupon code for a customer (and an order, when given): checks its dates, its
    /// uses and the customer's limit, and answers the discount on `order_minor`.
    pub async fn use_coupon(
        &self,
        actor: &Actor,
        customer: CustomerId,
        code: &str,
        order: Option<OrderId>,
        order_minor: i64,
        key: Option<&Idempotency>,
    ) -> AppResult<CouponReceipt> {
        require(actor, Permission::WriteCustomers)?;
        if !(0..=tenure_domain::money::AMOUNT_MAX).contains(&order_minor) {
            return Err(AppError::field(
                "order_minor",
                "must be a non-negative amount",
            ));
        }
        let code = rules::normalize_code(code);
        let scope = scope(actor, "coupon");
        let now = self.now();
        let mut uow = self.begin(actor).await?;
        if let Some(r) = earlier_answer(&mut uow.tx, &scope, key).await? {
            return Ok(r);
        }
        self.store().require_customer(customer).await?;
        let Some(coupon) = uow.tx.coupon_for_update(&code).await? else {
            return Err(AppError::field("code", "no such coupon code"));
        };
        let campaign = uow.tx.campaign_in_tx(coupon.campaign_id).await?;
        if !campaign.data.valid_at(now) {
            return Err(AppError::Conflict(format!(
                "the coupon {code} is not valid now"
            )));
        }
        if campaign.data.max_uses.is_some_and(|m| coupon.uses >= m) {
            return Err(AppError::Conflict(format!("the coupon {code} was used up")));
        }
        if uow.tx.campaign_uses_by(campaign.id, customer).await? >= campaign.data.per_customer {
            return Err(AppError::Conflict(format!(
                "this customer used the campaign \"{}\" as often as it allows",
                campaign.data.name
            )));
        }
        let discount = campaign.data.discount(order_minor);
        uow.tx
            .record_coupon_use(&coupon, customer, order, discount, now)
            .await?;
        let receipt = CouponReceipt {
            code: code.clone(),
            campaign_id: campaign.id,
            customer_id: customer,
            order_id: order,
            discount_minor: discount,
            at: now,
        };
        let event = Event::CouponUsed {
            customer,
            campaign: campaign.id,
        };
        self.commit_keyed(uow, &scope, key, receipt, event).await
    }

    /// Releases pending points whose window closed, expires lots whose lifetime ended and
    /// gives the day's birthday bonuses; in chunks, each its own transaction, so a run that
    /// stops part-way is completed by the next. Running it twice changes nothing.
    pub async fn run_loyalty_expiry(&self, actor: &Actor) -> AppResult<ExpiryReport> {
        require(actor, Permission::WriteCatalog)?;
        let now = self.now();
        let mut report = ExpiryReport::default();
        let mut members = std::collections::HashSet::new();
        loop {
            let mut uow = self.begin(actor).await?;
            let touched = uow
                .tx
                .release_pending(now, &actor.display_name(), RUN_CHUNK)
                .await?;
            if touched.is_empty() {
                break;
            }
            report.released_lots += touched.len() as u64;
            members.extend(touched.iter().copied());
            uow.commit().await?;
        }
        loop {
            let mut uow = self.begin(actor).await?;
            let (lots, touched) = uow
                .tx
                .expire_lots(now, &actor.display_name(), RUN_CHUNK)
                .await?;
            if touched.is_empty() {
                break;
            }
            report.expired_lots += lots;
            members.extend(touched.iter().copied());
            uow.commit().await?;
        }
        let program = self.current_program().await?;
        if program.enabled && program.bonuses.birthday > 0 {
            let md = format!("{:02}-{:02}", now.month(), now.day());
            let mut after = CustomerId(0);
            loop {
                let batch = self.store().members_with_birthday(&md, after, 500).await?;
                let Some(last) = batch.last() else { break };
                after = *last;
                for c in batch {
                    if self
                        .grant_bonus(actor, c, BonusEvent::Birthday, &now.year().to_string())
                        .await?
                        .is_some()
                    {
                        report.birthday_bonuses += 1;
                    }
                }
            }
        }
        report.members = members.len() as u64;
        if report.members > 0 || report.birthday_bonuses > 0 {
            let mut uow = self.begin(actor).await?;
            uow.emit(Event::LoyaltyRun {
                members: report.members,
            });
            uow.commit().await?;
        }
        Ok(report)
    }

    /// Credits the orders that have no earn yet (an import's orders, orders from before the
    /// program was switched on within its start): the same rule, keyed by the order, so
    /// running it again credits nothing twice.
    pub async fn earn_missing(&self, actor: &Actor) -> AppResult<u64> {
        require(actor, Permission::WriteCustomers)?;
        let program = self.current_program().await?;
        if !program.enabled {
            return Ok(0);
        }
        let since = program.starts_at.unwrap_or(DateTime::<Utc>::MIN_UTC);
        let mut after = OrderId(0);
        let mut credited = 0;
        loop {
            let batch = self.store().orders_without_earn(since, after, 500).await?;
            let Some(last) = batch.last() else { break };
            after = last.0;
            let now = self.now();
            let mut uow = self.begin(actor).await?;
            let mut changed = Vec::new();
            for (order, _) in batch {
                if let Some(c) = earn_for_order(&mut uow.tx, &program, order, actor, now).await? {
                    credited += 1;
                    changed.push(c);
                }
            }
            changed.sort();
            changed.dedup();
            for customer in changed {
                uow.emit(Event::PointsChanged { customer });
            }
            uow.commit().await?;
        }
        Ok(credited)
    }

    /// Moves members between tiers by what they earned (or spent) over the window: up at
    /// once, down after the grace period; every change recorded.
    pub async fn evaluate_tiers(&self, actor: &Actor) -> AppResult<TierReport> {
        require(actor, Permission::WriteCatalog)?;
        let program = self.current_program().await?;
        let now = self.now();
        let since = now - Duration::days(i64::from(program.tier_window_days));
        let mut members = 0u64;
        let mut decisions: Vec<(CustomerId, String, i64, TierDecision)> = Vec::new();
        self.store()
            .for_each_tier_standing(program.tier_basis, since, self.reporting_currency(), |s| {
                members += 1;
                let value = match program.tier_basis {
                    rules::TierBasis::Points => s.value,
                    rules::TierBasis::Spend => s.value / 100,
                };
                let d = program.evaluate_tier(&s.tier, value, s.grace_until, now);
                if d != TierDecision::Keep {
                    decisions.push((s.customer_id, s.tier, value, d));
                }
            })
            .await?;
        let mut report = TierReport {
            members,
            ..TierReport::default()
        };
        for chunk in decisions.chunks(500) {
            let mut uow = self.begin(actor).await?;
            for (customer, from, value, d) in chunk {
                match d {
                    TierDecision::Keep => {}
                    TierDecision::EndGrace => {
                        uow.tx.set_tier(*customer, from, None, false, now).await?;
                    }
                    TierDecision::StartGrace { until } => {
                        uow.tx
                            .set_tier(*customer, from, Some(*until), false, now)
                            .await?;
                        report.grace_started += 1;
                    }
                    TierDecision::Change { to, reason } => {
                        uow.tx.set_tier(*customer, to, None, true, now).await?;
                        uow.tx
                            .record_tier_change(*customer, Some(from), to, *reason, *value, now)
                            .await?;
                        let up = program.tiers.iter().position(|t| &t.name == to)
                            > program.tiers.iter().position(|t| &t.name == from);
                        if up {
                            report.upgraded += 1;
                        } else {
                            report.downgraded += 1;
                        }
                        uow.emit(Event::TierChanged {
                            customer: *customer,
                        });
                    }
                }
            }
            uow.commit().await?;
        }
        Ok(report)
    }

    /// The program's report over the last `months` months.
    /// The points outstanding with their value, and members per tier in the program's order:
    /// the report's first part and the dashboard's panel.
    async fn liability_and_tiers(
        &self,
        program: &LoyaltyProgram,
    ) -> AppResult<(LiabilityReport, Vec<(String, i64)>)> {
        let Liability {
            members,
            available,
            pending,
            owed,
        } = self.store().loyalty_liability().await?;
        let mut tiers = self.store().tier_counts().await?;
        tiers.sort_by_key(|(t, _)| {
            program
                .tiers
                .iter()
                .position(|p| &p.name == t)
                .unwrap_or(usize::MAX)
        });
        let liability = LiabilityReport {
            members,
            available,
            pending,
            owed,
            value: (available + pending) as f64 * program.point_value,
        };
        Ok((liability, tiers))
    }

    /// The dashboard's loyalty panel: `None` while the program is off. Two reads of the
    /// accounts, none of the ledger.
    pub async fn loyalty_summary(
        &self,
        actor: &Actor,
    ) -> AppResult<Option<(LiabilityReport, Vec<(String, i64)>)>> {
        require(actor, Permission::ReadAggregates)?;
        let program = self.current_program().await?;
        if !program.enabled {
            return Ok(None);
        }
        Ok(Some(self.liability_and_tiers(&program).await?))
    }

    pub async fn loyalty_report(&self, actor: &Actor, months: u32) -> AppResult<LoyaltyReport> {
        require(actor, Permission::ReadAggregates)?;
        let program = self.current_program().await?;
        let now = self.now();
        let months = months.clamp(1, 60);
        let from = now - Duration::days(i64::from(months) * 31);
        let (liability, tiers) = self.liability_and_tiers(&program).await?;
        let mut flows: std::collections::BTreeMap<String, FlowRow> = Default::default();
        for f in self
            .store()
            .loyalty_flows(from, now + Duration::seconds(1))
            .await?
        {
            let period = month_of_day(f.day);
            let row = flows.entry(period.clone()).or_insert_with(|| FlowRow {
                period,
                earned: 0,
                bonus: 0,
                redeemed: 0,
                expired: 0,
                reversed: 0,
                adjusted: 0,
            });
            match f.kind {
                EntryKind::Earn => row.earned += f.points,
                EntryKind::Bonus => row.bonus += f.points,
                EntryKind::Redeem => row.redeemed -= f.points,
                EntryKind::Expire => row.expired -= f.points,
                EntryKind::Reverse => row.reversed -= f.points,
                EntryKind::Adjust => row.adjusted += f.points,
                EntryKind::Release => {}
            }
        }
        let flows: Vec<FlowRow> = flows.into_values().collect();
        let credited: i64 = flows.iter().map(|f| f.earned + f.bonus).sum();
        let redeemed: i64 = flows.iter().map(|f| f.redeemed).sum();
        let mut retention = [(0u64, 0u64); 2];
        for (member, stage, n) in self.store().members_by_stage().await? {
            let slot = &mut retention[usize::from(!member)];
            let n = u64::try_from(n).unwrap_or(0);
            slot.1 += n;
            if matches!(stage.as_str(), "new" | "active" | "loyal" | "won_back") {
                slot.0 += n;
            }
        }
        Ok(LoyaltyReport {
            liability,
            flows,
            tiers,
            tier_moves: self
                .store()
                .tier_moves(from, now + Duration::seconds(1))
                .await?,
            redemption_rate: (credited > 0).then(|| redeemed as f64 / credited as f64),
            retention,
        })
    }

    /// Members whose account differs from their ledger (empty in a sound database).
    pub async fn unbalanced_members(&self, actor: &Actor) -> AppResult<Vec<CustomerId>> {
        require(actor, Permission::ReadAggregates)?;
        Ok(self.store().unbalanced_members(100).await?)
    }

    pub(crate) async fn link_secret(&self) -> AppResult<Vec<u8>> {
        self.secret(SECRET).await
    }

    pub(crate) fn sign(secret: &[u8], message: &str) -> AppResult<String> {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        mac.update(message.as_bytes());
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// A signed token for a customer's member page, valid for `days`.
    pub async fn member_link(
        &self,
        actor: &Actor,
        customer: CustomerId,
        days: u32,
    ) -> AppResult<(String, DateTime<Utc>)> {
        require(actor, Permission::ReadCustomers)?;
        if !(1..=366).contains(&days) {
            return Err(AppError::field("days", "must be between 1 and 366"));
        }
        self.store().require_customer(customer).await?;
        let expires = self.now() + Duration::days(i64::from(days));
        let message = format!("{}.{}", customer.0, expires.timestamp());
        let sig = Self::sign(&self.link_secret().await?, &message)?;
        Ok((format!("{message}.{sig}"), expires))
    }

    /// The member page behind a signed token; a forged, altered or expired token is refused.
    pub async fn member_page(&self, token: &str) -> AppResult<MemberPage> {
        let refused = || AppError::Forbidden("this member link is not valid".into());
        let mut parts = token.splitn(3, '.');
        let (Some(id), Some(exp), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(refused());
        };
        let (Ok(id), Ok(exp)) = (id.parse::<i64>(), exp.parse::<i64>()) else {
            return Err(refused());
        };
        let expected = Self::sign(&self.link_secret().await?, &format!("{id}.{exp}"))?;
        if !crate::constant_eq(&expected, sig) {
            return Err(refused());
        }
        if exp < self.now().timestamp() {
            return Err(AppError::Forbidden(
                "this member link has expired; ask for a new one".into(),
            ));
        }
        let view = self
            .member_view(CustomerId(id), &PageRequest::default())
            .await
            .map_err(|e| match e {
                AppError::NotFound(_) => refused(),
                other => other,
            })?;
        let rewards = self.store().rewards(Some(self.now())).await?;
        let customer = self.store().get_customer(CustomerId(id)).await?;
        let inbox = self.inbox(CustomerId(id)).await?;
        Ok(MemberPage {
            inbox,
            view,
            rewards,
            name: tenure_domain::customer::display_name(&customer.data.name),
            locale: customer.data.locale,
            expires_at: DateTime::from_timestamp(exp, 0).unwrap_or_else(|| self.now()),
        })
    }
}

fn check_points(points: i64) -> AppResult<()> {
    if !(1..=rules::POINTS_MAX).contains(&points) {
        return Err(AppError::field(
            "points",
            "must be between 1 and 1000000000000",
        ));
    }
    Ok(())
}

fn check_reason(reason: &str, required: bool) -> AppResult<String> {
    let r = reason.trim();
    if required && r.is_empty() {
        return Err(AppError::field("reason", "say why the points are adjusted"));
    }
    if r.chars().count() > 500 {
        return Err(AppError::field("reason", "at most 500 characters"));
    }
    Ok(r.to_owned())
}

/// Gives a bonus event's points once per `tag` inside another use case's transaction (a
/// survey answered); `false` when the program is off, gives nothing for it, or the tag had
/// its bonus already.
pub(crate) async fn bonus_in(
    tx: &mut WriteTx<'_>,
    actor: &Actor,
    customer: CustomerId,
    event: BonusEvent,
    tag: &str,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let program = program_in(tx).await?;
    let points = program.bonuses.points(event);
    if !program.enabled || points <= 0 {
        return Ok(false);
    }
    let mut acct = account(tx, &program, customer, actor, now).await?;
    let entry = credit(
        tx,
        &program,
        &mut acct,
        Credit::bonus(event, points, customer, Some(tag.to_owned())),
        actor,
        now,
    )
    .await?;
    Ok(entry.is_some())
}

/// Credits points a journey step gives, once per `key`; false when the program is off or
/// the key was used.
pub(crate) async fn journey_points_in(
    tx: &mut WriteTx<'_>,
    actor: &Actor,
    customer: CustomerId,
    points: i64,
    reason: &str,
    key: &str,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let program = program_in(tx).await?;
    if !program.enabled {
        return Ok(false);
    }
    let mut acct = account(tx, &program, customer, actor, now).await?;
    let mut c = Credit::manual(EntryKind::Earn, points, reason.to_owned());
    c.key = Some(key.to_owned());
    let entry = credit(tx, &program, &mut acct, c, actor, now).await?;
    Ok(entry.is_some())
}
