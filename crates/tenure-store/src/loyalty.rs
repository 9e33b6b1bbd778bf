//! The loyalty program's rows: members' accounts, the append-only points ledger and its lots,
//! tier changes, rewards, coupon campaigns and codes, and the idempotency keys of retried
//! requests.
//!
//! Every write that moves points locks the member's account row first (`FOR UPDATE` on
//! PostgreSQL; SQLite's writer slot serialises writes), so a balance is checked and taken
//! in one critical section and two concurrent requests never both spend the same points.
//! `CHECK (balance >= 0)` stands behind that.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use tenure_domain::ids::{CampaignId, CouponId, CustomerId, EntryId, OrderId, RewardId};
use tenure_domain::loyalty::{
    BonusEvent, Bucket, CampaignData, DiscountKind, EntryKind, RewardData, TierBasis, TierReason,
};

use crate::decode::parsed;
use crate::sql::Select;
use crate::time::{opt_time, time, to_micros};
use crate::{Backend, Page, Store, StoreError, StoreResult, WriteTx};

/// A member's account: the balances the ledger sums to, the tier, the referral code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoyaltyAccount {
    pub customer_id: CustomerId,
    pub balance: i64,
    pub pending: i64,
    pub owed: i64,
    pub tier: String,
    pub tier_since: DateTime<Utc>,
    pub grace_until: Option<DateTime<Utc>>,
    pub referral_code: String,
    pub referred_by: Option<CustomerId>,
    pub enrolled_at: DateTime<Utc>,
}

const ACCOUNT_COLUMNS: &str = "customer_id, balance, pending, owed, tier, tier_since, grace_until, referral_code, \
     referred_by, enrolled_at";

fn account_from_row(r: &AnyRow) -> StoreResult<LoyaltyAccount> {
    Ok(LoyaltyAccount {
        customer_id: CustomerId(r.try_get("customer_id")?),
        balance: r.try_get("balance")?,
        pending: r.try_get("pending")?,
        owed: r.try_get("owed")?,
        tier: r.try_get("tier")?,
        tier_since: time(r, "tier_since")?,
        grace_until: opt_time(r, "grace_until")?,
        referral_code: r.try_get("referral_code")?,
        referred_by: r.try_get::<Option<i64>, _>("referred_by")?.map(CustomerId),
        enrolled_at: time(r, "enrolled_at")?,
    })
}

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub id: EntryId,
    pub customer_id: CustomerId,
    pub at: DateTime<Utc>,
    pub kind: EntryKind,
    pub bucket: Bucket,
    pub points: i64,
    /// Of a reversal: the points already spent, owed from later earnings.
    pub deferred: i64,
    pub order_id: Option<OrderId>,
    pub reward_id: Option<RewardId>,
    pub bonus: Option<BonusEvent>,
    pub reason: String,
    pub actor_name: String,
}

const ENTRY_COLUMNS: &str = "id, customer_id, at, kind, bucket, points, deferred, order_id, reward_id, bonus, reason, actor_name";

pub(crate) fn entry_from_row(r: &AnyRow) -> StoreResult<LedgerEntry> {
    let bonus: Option<String> = r.try_get("bonus")?;
    Ok(LedgerEntry {
        id: EntryId(r.try_get("id")?),
        customer_id: CustomerId(r.try_get("customer_id")?),
        at: time(r, "at")?,
        kind: parsed(r, "kind")?,
        bucket: parsed(r, "bucket")?,
        points: r.try_get("points")?,
        deferred: r.try_get("deferred")?,
        order_id: r.try_get::<Option<i64>, _>("order_id")?.map(OrderId),
        reward_id: r.try_get::<Option<i64>, _>("reward_id")?.map(RewardId),
        bonus: bonus
            .map(|b| {
                b.parse()
                    .map_err(|e: String| StoreError::corrupt("bonus", e))
            })
            .transpose()?,
        reason: r.try_get("reason")?,
        actor_name: r.try_get("actor_name")?,
    })
}

/// A ledger entry to append.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub customer: CustomerId,
    pub at: DateTime<Utc>,
    pub kind: EntryKind,
    pub bucket: Bucket,
    pub points: i64,
    pub deferred: i64,
    pub order: Option<OrderId>,
    /// The order total an earn was computed on.
    pub base_minor: Option<i64>,
    pub reward: Option<RewardId>,
    pub bonus: Option<BonusEvent>,
    pub reason: String,
    pub actor_name: String,
    /// Makes the entry happen once: a second entry with the same key is not written.
    pub source_key: Option<String>,
}

/// A lot: what one credit gave and what is left of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotRow {
    pub id: i64,
    pub customer_id: CustomerId,
    pub order_id: Option<OrderId>,
    pub points: i64,
    pub remaining: i64,
    pub pending: bool,
    pub earned_at: DateTime<Utc>,
    pub available_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

const LOT_COLUMNS: &str =
    "id, customer_id, order_id, points, remaining, pending, earned_at, available_at, expires_at";

fn lot_from_row(r: &AnyRow) -> StoreResult<LotRow> {
    Ok(LotRow {
        id: r.try_get("id")?,
        customer_id: CustomerId(r.try_get("customer_id")?),
        order_id: r.try_get::<Option<i64>, _>("order_id")?.map(OrderId),
        points: r.try_get("points")?,
        remaining: r.try_get("remaining")?,
        pending: r.try_get::<i64, _>("pending")? == 1,
        earned_at: time(r, "earned_at")?,
        available_at: opt_time(r, "available_at")?,
        expires_at: opt_time(r, "expires_at")?,
    })
}

/// A lot to create with a credit.
#[derive(Debug, Clone)]
pub struct NewLot {
    pub customer: CustomerId,
    pub entry: EntryId,
    pub order: Option<OrderId>,
    pub points: i64,
    pub pending: bool,
    pub earned_at: DateTime<Utc>,
    pub available_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A change of tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierChange {
    pub id: i64,
    pub customer_id: CustomerId,
    pub at: DateTime<Utc>,
    pub from_tier: Option<String>,
    pub to_tier: String,
    pub reason: TierReason,
    pub qualifying: i64,
}

pub(crate) fn tier_change_from_row(r: &AnyRow) -> StoreResult<TierChange> {
    Ok(TierChange {
        id: r.try_get("id")?,
        customer_id: CustomerId(r.try_get("customer_id")?),
        at: time(r, "at")?,
        from_tier: r.try_get("from_tier")?,
        to_tier: r.try_get("to_tier")?,
        reason: parsed(r, "reason")?,
        qualifying: r.try_get("qualifying")?,
    })
}

pub(crate) const TIER_CHANGE_SELECT: &str =
    "SELECT id, customer_id, at, from_tier, to_tier, reason, qualifying FROM loyalty_tier_changes";

/// A reward of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reward {
    pub id: RewardId,
    pub data: RewardData,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const REWARD_SELECT: &str = "SELECT id, name, description, points_cost, stock, valid_from, valid_until, active, \
     created_at, updated_at FROM loyalty_rewards";

fn reward_from_row(r: &AnyRow) -> StoreResult<Reward> {
    Ok(Reward {
        id: RewardId(r.try_get("id")?),
        data: RewardData {
            name: r.try_get("name")?,
            description: r.try_get("description")?,
            points_cost: r.try_get("points_cost")?,
            stock: r.try_get("stock")?,
            valid_from: opt_time(r, "valid_from")?,
            valid_until: opt_time(r, "valid_until")?,
            active: r.try_get::<i64, _>("active")? == 1,
        },
        created_at: time(r, "created_at")?,
        updated_at: time(r, "updated_at")?,
    })
}

/// A coupon campaign with how many codes it has and how often they were used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    pub id: CampaignId,
    pub data: CampaignData,
    pub created_at: DateTime<Utc>,
    pub codes: i64,
    pub uses: i64,
}

const CAMPAIGN_SELECT: &str = "SELECT c.id, c.name, c.discount_kind, c.discount_value, c.max_uses, c.per_customer, \
     c.valid_from, c.valid_until, c.created_at, \
     (SELECT COUNT(*) FROM coupons k WHERE k.campaign_id = c.id) AS codes, \
     (SELECT COUNT(*) FROM coupon_uses u WHERE u.campaign_id = c.id) AS uses \
     FROM coupon_campaigns c";

fn campaign_from_row(r: &AnyRow) -> StoreResult<Campaign> {
    let kind: DiscountKind = parsed(r, "discount_kind")?;
    Ok(Campaign {
        id: CampaignId(r.try_get("id")?),
        data: CampaignData {
            name: r.try_get("name")?,
            discount_kind: kind,
            discount_value: r.try_get("discount_value")?,
            max_uses: r.try_get("max_uses")?,
            per_customer: r.try_get("per_customer")?,
            valid_from: opt_time(r, "valid_from")?,
            valid_until: opt_time(r, "valid_until")?,
        },
        created_at: time(r, "created_at")?,
        codes: r.try_get("codes")?,
        uses: r.try_get("uses")?,
    })
}

/// A coupon code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coupon {
    pub id: CouponId,
    pub campaign_id: CampaignId,
    pub code: String,
    pub uses: i64,
}

fn coupon_from_row(r: &AnyRow) -> StoreResult<Coupon> {
    Ok(Coupon {
        id: CouponId(r.try_get("id")?),
        campaign_id: CampaignId(r.try_get("campaign_id")?),
        code: r.try_get("code")?,
        uses: r.try_get("uses")?,
    })
}

/// The sums a member's account must equal: from the ledger, and from the lots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LedgerSums {
    pub available: i64,
    pub pending: i64,
    pub owed: i64,
    pub lots_available: i64,
    pub lots_pending: i64,
}

/// One member's standing for the tier evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierStanding {
    pub customer_id: CustomerId,
    pub tier: String,
    pub grace_until: Option<DateTime<Utc>>,
    /// Points earned, or minor units spent, over the window.
    pub value: i64,
}

/// Points moved per day and kind, for the earn-and-burn report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyFlow {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    pub kind: EntryKind,
    pub points: i64,
}

/// The points outstanding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Liability {
    pub members: i64,
    pub available: i64,
    pub pending: i64,
    pub owed: i64,
}

/// What a member's ledger sums to: the spendable and pending points, and what is owed
/// (reversals' deferred points less what later credits settled).
const LEDGER_SUMS: &str = "SELECT \
     CAST(COALESCE(SUM(CASE WHEN bucket = 'available' THEN points ELSE 0 END), 0) AS BIGINT) AS available, \
     CAST(COALESCE(SUM(CASE WHEN bucket = 'pending' THEN points ELSE 0 END), 0) AS BIGINT) AS pending, \
     CAST(COALESCE(SUM(deferred), 0) AS BIGINT) + CAST(COALESCE(SUM(CASE WHEN kind = 'reverse' AND order_id IS NULL THEN points ELSE 0 END), 0) AS BIGINT) AS owed \
     FROM loyalty_entries WHERE customer_id = $1";

fn lock_clause(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    }
}

impl Store {
    pub async fn loyalty_account(
        &self,
        customer: CustomerId,
    ) -> StoreResult<Option<LoyaltyAccount>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM loyalty_accounts WHERE customer_id = $1"
        )))
        .bind(customer.0)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// The member holding a referral code.
    pub async fn account_by_referral_code(
        &self,
        code: &str,
    ) -> StoreResult<Option<LoyaltyAccount>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM loyalty_accounts WHERE referral_code = $1"
        )))
        .bind(code.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// A member's lots with points left, closest expiry first.
    pub async fn loyalty_lots(&self, customer: CustomerId) -> StoreResult<Vec<LotRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {LOT_COLUMNS} FROM loyalty_lots WHERE customer_id = $1 AND remaining > 0 \
             ORDER BY CASE WHEN expires_at IS NULL THEN 1 ELSE 0 END, expires_at, id LIMIT 500"
        )))
        .bind(customer.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(lot_from_row).collect()
    }

    /// A member's ledger, newest first.
    pub async fn loyalty_entries(
        &self,
        customer: CustomerId,
        before: Option<EntryId>,
        limit: u32,
    ) -> StoreResult<Page<LedgerEntry, EntryId>> {
        let limit = i64::from(limit.clamp(1, 500));
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ENTRY_COLUMNS} FROM loyalty_entries WHERE customer_id = $1 AND id < $2 \
             ORDER BY id DESC LIMIT $3"
        )))
        .bind(customer.0)
        .bind(before.map_or(i64::MAX, |b| b.0))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let items = rows
            .iter()
            .map(entry_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::cut(items, limit, |e| e.id))
    }

    /// A member's tier changes, newest first (at most 100).
    pub async fn tier_changes(&self, customer: CustomerId) -> StoreResult<Vec<TierChange>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{TIER_CHANGE_SELECT} WHERE customer_id = $1 ORDER BY at DESC, id DESC LIMIT 100"
        )))
        .bind(customer.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(tier_change_from_row).collect()
    }

    /// What the member's account must equal, summed from the ledger and from the lots.
    pub async fn ledger_sums(&self, customer: CustomerId) -> StoreResult<LedgerSums> {
        let row = sqlx::query(LEDGER_SUMS)
            .bind(customer.0)
            .fetch_one(self.pool())
            .await?;
        let lots = sqlx::query(
            "SELECT CAST(COALESCE(SUM(CASE WHEN pending = 0 THEN remaining ELSE 0 END), 0) AS BIGINT) AS a, \
             CAST(COALESCE(SUM(CASE WHEN pending = 1 THEN remaining ELSE 0 END), 0) AS BIGINT) AS p \
             FROM loyalty_lots WHERE customer_id = $1",
        )
        .bind(customer.0)
        .fetch_one(self.pool())
        .await?;
        Ok(LedgerSums {
            available: row.try_get("available")?,
            pending: row.try_get("pending")?,
            owed: row.try_get("owed")?,
            lots_available: lots.try_get("a")?,
            lots_pending: lots.try_get("p")?,
        })
    }

    /// Members whose account differs from their ledger or lots (an integrity check: empty
    /// in a sound database).
    pub async fn unbalanced_members(&self, limit: u32) -> StoreResult<Vec<CustomerId>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT a.customer_id FROM loyalty_accounts a \
             LEFT JOIN (SELECT customer_id, \
                 SUM(CASE WHEN bucket = 'available' THEN points ELSE 0 END) AS av, \
                 SUM(CASE WHEN bucket = 'pending' THEN points ELSE 0 END) AS pe \
               FROM loyalty_entries GROUP BY customer_id) e ON e.customer_id = a.customer_id \
             LEFT JOIN (SELECT customer_id, \
                 SUM(CASE WHEN pending = 0 THEN remaining ELSE 0 END) AS av, \
                 SUM(CASE WHEN pending = 1 THEN remaining ELSE 0 END) AS pe \
               FROM loyalty_lots GROUP BY customer_id) l ON l.customer_id = a.customer_id \
             WHERE a.balance <> COALESCE(e.av, 0) OR a.pending <> COALESCE(e.pe, 0) \
                OR a.balance <> COALESCE(l.av, 0) OR a.pending <> COALESCE(l.pe, 0) \
             ORDER BY a.customer_id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        Ok(ids.into_iter().map(CustomerId).collect())
    }

    pub async fn rewards(
        &self,
        only_available_at: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<Reward>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{REWARD_SELECT} ORDER BY points_cost, id LIMIT 500"
        )))
        .fetch_all(self.pool())
        .await?;
        let all = rows
            .iter()
            .map(reward_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(match only_available_at {
            Some(now) => all.into_iter().filter(|r| r.data.available(now)).collect(),
            None => all,
        })
    }

    pub async fn reward(&self, id: RewardId) -> StoreResult<Reward> {
        let row = sqlx::query(AssertSqlSafe(format!("{REWARD_SELECT} WHERE id = $1")))
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound { what: "reward" })?;
        reward_from_row(&row)
    }

    pub async fn campaigns(&self) -> StoreResult<Vec<Campaign>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{CAMPAIGN_SELECT} ORDER BY c.id DESC LIMIT 500"
        )))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(campaign_from_row).collect()
    }

    pub async fn campaign(&self, id: CampaignId) -> StoreResult<Campaign> {
        let row = sqlx::query(AssertSqlSafe(format!("{CAMPAIGN_SELECT} WHERE c.id = $1")))
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound {
                what: "coupon campaign",
            })?;
        campaign_from_row(&row)
    }

    /// A campaign's codes in id order.
    pub async fn coupons(
        &self,
        campaign: CampaignId,
        after: Option<CouponId>,
        limit: u32,
    ) -> StoreResult<Page<Coupon, CouponId>> {
        let limit = i64::from(limit.clamp(1, 1000));
        let rows = sqlx::query(
            "SELECT id, campaign_id, code, uses FROM coupons WHERE campaign_id = $1 AND id > $2 \
             ORDER BY id LIMIT $3",
        )
        .bind(campaign.0)
        .bind(after.map_or(0, |a| a.0))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let items = rows
            .iter()
            .map(coupon_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::cut(items, limit, |c| c.id))
    }

    pub async fn loyalty_liability(&self) -> StoreResult<Liability> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS members, CAST(COALESCE(SUM(balance), 0) AS BIGINT) AS available, \
             CAST(COALESCE(SUM(pending), 0) AS BIGINT) AS pending, CAST(COALESCE(SUM(owed), 0) AS BIGINT) AS owed FROM loyalty_accounts",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(Liability {
            members: r.try_get("members")?,
            available: r.try_get("available")?,
            pending: r.try_get("pending")?,
            owed: r.try_get("owed")?,
        })
    }

    /// Points moved per UTC day and kind in `[from, to)`.
    pub async fn loyalty_flows(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<DailyFlow>> {
        let rows = sqlx::query(
            "SELECT at / 86400000000 AS day, kind, CAST(SUM(points) AS BIGINT) AS points FROM loyalty_entries \
             WHERE at >= $1 AND at < $2 AND kind <> 'release' GROUP BY at / 86400000000, kind ORDER BY 1, 2",
        )
        .bind(to_micros(from))
        .bind(to_micros(to))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DailyFlow {
                    day: r.try_get("day")?,
                    kind: parsed(r, "kind")?,
                    points: r.try_get("points")?,
                })
            })
            .collect()
    }

    /// Members per tier.
    pub async fn tier_counts(&self) -> StoreResult<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT tier, COUNT(*) AS n FROM loyalty_accounts GROUP BY tier")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("tier")?, r.try_get("n")?)))
            .collect()
    }

    /// Tier changes in `[from, to)` by from → to.
    pub async fn tier_moves(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<(Option<String>, String, i64)>> {
        let rows = sqlx::query(
            "SELECT from_tier, to_tier, COUNT(*) AS n FROM loyalty_tier_changes WHERE at >= $1 AND at < $2 \
             GROUP BY from_tier, to_tier ORDER BY 3 DESC",
        )
        .bind(to_micros(from))
        .bind(to_micros(to))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("from_tier")?,
                    r.try_get("to_tier")?,
                    r.try_get("n")?,
                ))
            })
            .collect()
    }

    /// Buying customers by membership and life-cycle stage: `(member, stage, customers)`.
    pub async fn members_by_stage(&self) -> StoreResult<Vec<(bool, String, i64)>> {
        let rows = sqlx::query(
            "SELECT CASE WHEN a.customer_id IS NULL THEN 0 ELSE 1 END AS member, l.stage, COUNT(*) AS n \
             FROM customer_lifecycle l LEFT JOIN loyalty_accounts a ON a.customer_id = l.customer_id \
             WHERE l.stage NOT IN ('potential', 'prospect') \
             GROUP BY CASE WHEN a.customer_id IS NULL THEN 0 ELSE 1 END, l.stage",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64, _>("member")? == 1,
                    r.try_get("stage")?,
                    r.try_get("n")?,
                ))
            })
            .collect()
    }

    /// Every member's standing over the window from `since`: points earned (orders and
    /// bonuses, less reversals), or minor units spent on completed orders in `currency`;
    /// streamed to `each`, in customer order, so a million members are never held at once.
    pub async fn for_each_tier_standing(
        &self,
        basis: TierBasis,
        since: DateTime<Utc>,
        currency: &str,
        mut each: impl FnMut(TierStanding),
    ) -> StoreResult<()> {
        use futures_util::TryStreamExt;
        let sql = match basis {
            TierBasis::Points => {
                "SELECT a.customer_id, a.tier, a.grace_until, COALESCE(v.value, 0) AS value \
                 FROM loyalty_accounts a LEFT JOIN (SELECT customer_id, CAST(SUM(points + deferred) AS BIGINT) AS value \
                   FROM loyalty_entries WHERE at >= $1 AND kind IN ('earn', 'bonus', 'reverse') \
                   AND (kind <> 'reverse' OR order_id IS NOT NULL) GROUP BY customer_id) v \
                 ON v.customer_id = a.customer_id WHERE $2 = $2 ORDER BY a.customer_id"
            }
            TierBasis::Spend => {
                "SELECT a.customer_id, a.tier, a.grace_until, COALESCE(v.value, 0) AS value \
                 FROM loyalty_accounts a LEFT JOIN (SELECT customer_id, CAST(SUM(total_minor) AS BIGINT) AS value \
                   FROM orders WHERE occurred_at >= $1 AND status = 'completed' AND currency = $2 \
                   GROUP BY customer_id) v ON v.customer_id = a.customer_id ORDER BY a.customer_id"
            }
        };
        let mut rows = sqlx::query(sql)
            .bind(to_micros(since))
            .bind(currency.to_owned())
            .fetch(self.pool());
        while let Some(r) = rows.try_next().await? {
            each(TierStanding {
                customer_id: CustomerId(r.try_get("customer_id")?),
                tier: r.try_get("tier")?,
                grace_until: opt_time(&r, "grace_until")?,
                value: r.try_get("value")?,
            });
        }
        Ok(())
    }

    /// One member's standing (see [`Store::tier_standings`]).
    pub async fn tier_value(
        &self,
        customer: CustomerId,
        basis: TierBasis,
        since: DateTime<Utc>,
        currency: &str,
    ) -> StoreResult<i64> {
        let sql = match basis {
            TierBasis::Points => {
                "SELECT CAST(COALESCE(SUM(points + deferred), 0) AS BIGINT) FROM loyalty_entries WHERE customer_id = $1 \
                 AND at >= $2 AND kind IN ('earn', 'bonus', 'reverse') \
                 AND (kind <> 'reverse' OR order_id IS NOT NULL) AND $3 = $3"
            }
            TierBasis::Spend => {
                "SELECT CAST(COALESCE(SUM(total_minor), 0) AS BIGINT) FROM orders WHERE customer_id = $1 \
                 AND occurred_at >= $2 AND status = 'completed' AND currency = $3"
            }
        };
        Ok(sqlx::query_scalar(sql)
            .bind(customer.0)
            .bind(to_micros(since))
            .bind(currency.to_owned())
            .fetch_one(self.pool())
            .await?)
    }

    /// Members whose birthday (month and day, `MM-DD`) is `month_day`, after `after`.
    pub async fn members_with_birthday(
        &self,
        month_day: &str,
        after: CustomerId,
        limit: u32,
    ) -> StoreResult<Vec<CustomerId>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT a.customer_id FROM loyalty_accounts a JOIN customers c ON c.id = a.customer_id \
             WHERE substr(c.birthday, 6, 5) = $1 AND a.customer_id > $2 ORDER BY a.customer_id LIMIT $3",
        )
        .bind(month_day.to_owned())
        .bind(after.0)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        Ok(ids.into_iter().map(CustomerId).collect())
    }

    /// Completed orders since `since` that have no earn entry yet, after `after` in id
    /// order: the orders an import brought in.
    pub async fn orders_without_earn(
        &self,
        since: DateTime<Utc>,
        after: OrderId,
        limit: u32,
    ) -> StoreResult<Vec<(OrderId, CustomerId)>> {
        let rows = sqlx::query(
            "SELECT o.id, o.customer_id FROM orders o WHERE o.id > $1 AND o.occurred_at >= $2 \
             AND o.status = 'completed' AND NOT EXISTS (SELECT 1 FROM loyalty_entries e \
               WHERE e.order_id = o.id AND e.kind = 'earn') ORDER BY o.id LIMIT $3",
        )
        .bind(after.0)
        .bind(to_micros(since))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    OrderId(r.try_get("id")?),
                    CustomerId(r.try_get("customer_id")?),
                ))
            })
            .collect()
    }
}

/// What an order's entries add up to for one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderEarn {
    /// The points the earn gave.
    pub earned: i64,
    /// The order total it was computed on.
    pub base_minor: i64,
    /// What the order's entries stand at now: earned less what reversals took or deferred.
    pub net: i64,
}

impl WriteTx<'_> {
    /// The member's account, locked until the transaction ends.
    pub async fn loyalty_account_for_update(
        &mut self,
        customer: CustomerId,
    ) -> StoreResult<Option<LoyaltyAccount>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM loyalty_accounts WHERE customer_id = $1{}",
            lock_clause(self.backend())
        )))
        .bind(customer.0)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// Opens an account; `false` when the referral code is taken (try another) — an account
    /// the customer has already is kept.
    pub async fn open_loyalty_account(
        &mut self,
        customer: CustomerId,
        tier: &str,
        referral_code: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        crate::sql::require(
            &mut self.tx,
            crate::sql::Table::Customers,
            customer.0,
            "customer_id",
        )
        .await?;
        let n = sqlx::query(
            "INSERT INTO loyalty_accounts (customer_id, balance, pending, owed, tier, tier_since, referral_code, \
             enrolled_at, updated_at) VALUES ($1, 0, 0, 0, $2, $3, $4, $3, $3) ON CONFLICT DO NOTHING",
        )
        .bind(customer.0)
        .bind(tier.to_owned())
        .bind(to_micros(now))
        .bind(referral_code.to_owned())
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Appends an entry; `None` when its source key was used already (the effect happened).
    pub async fn append_entry(&mut self, e: &NewEntry) -> StoreResult<Option<EntryId>> {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO loyalty_entries (customer_id, at, kind, bucket, points, deferred, order_id, base_minor, \
             reward_id, bonus, reason, actor_name, source_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (source_key) DO NOTHING RETURNING id",
        )
        .bind(e.customer.0)
        .bind(to_micros(e.at))
        .bind(e.kind.as_str())
        .bind(e.bucket.as_str())
        .bind(e.points)
        .bind(e.deferred)
        .bind(e.order.map(|o| o.0))
        .bind(e.base_minor)
        .bind(e.reward.map(|r| r.0))
        .bind(e.bonus.map(|b| b.as_str()))
        .bind(e.reason.clone())
        .bind(e.actor_name.clone())
        .bind(e.source_key.clone())
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(id.map(EntryId))
    }

    /// Whether an entry with this source key exists.
    pub async fn entry_key_used(&mut self, key: &str) -> StoreResult<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT id FROM loyalty_entries WHERE source_key = $1")
                .bind(key.to_owned())
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(found.is_some())
    }

    pub async fn add_lot(&mut self, l: &NewLot) -> StoreResult<i64> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO loyalty_lots (customer_id, entry_id, order_id, points, remaining, pending, earned_at, \
             available_at, expires_at) VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(l.customer.0)
        .bind(l.entry.0)
        .bind(l.order.map(|o| o.0))
        .bind(l.points)
        .bind(i64::from(l.pending))
        .bind(to_micros(l.earned_at))
        .bind(l.available_at.map(to_micros))
        .bind(l.expires_at.map(to_micros))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(id)
    }

    /// A member's lots with points left (the account must be locked).
    pub async fn open_lots(&mut self, customer: CustomerId) -> StoreResult<Vec<LotRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {LOT_COLUMNS} FROM loyalty_lots WHERE customer_id = $1 AND remaining > 0 ORDER BY id"
        )))
        .bind(customer.0)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(lot_from_row).collect()
    }

    /// Takes `points` from a lot.
    pub async fn take_from_lot(&mut self, lot: i64, points: i64) -> StoreResult<()> {
        let n = sqlx::query(
            "UPDATE loyalty_lots SET remaining = remaining - $2 WHERE id = $1 AND remaining >= $2",
        )
        .bind(lot)
        .bind(points)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Err(StoreError::Database(format!(
                "lot {lot} does not hold {points} points"
            )));
        }
        Ok(())
    }

    /// Moves the account's balances by the given amounts (the ledger entries are written
    /// beside); the CHECKs refuse a negative result.
    pub async fn move_points(
        &mut self,
        customer: CustomerId,
        available: i64,
        pending: i64,
        owed: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE loyalty_accounts SET balance = balance + $2, pending = pending + $3, owed = owed + $4, \
             updated_at = $5 WHERE customer_id = $1",
        )
        .bind(customer.0)
        .bind(available)
        .bind(pending)
        .bind(owed)
        .bind(to_micros(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Sets the account's balances to what its ledger sums to (after a merge moved entries).
    pub async fn rebalance_account(
        &mut self,
        customer: CustomerId,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let sums = sqlx::query(LEDGER_SUMS)
            .bind(customer.0)
            .fetch_one(&mut *self.tx)
            .await?;
        sqlx::query(
            "UPDATE loyalty_accounts SET balance = $2, pending = $3, owed = $4, updated_at = $5 \
             WHERE customer_id = $1",
        )
        .bind(customer.0)
        .bind(sums.try_get::<i64, _>("available")?)
        .bind(sums.try_get::<i64, _>("pending")?)
        .bind(sums.try_get::<i64, _>("owed")?)
        .bind(to_micros(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Whether the customer has any ledger entry.
    pub async fn has_ledger(&mut self, customer: CustomerId) -> StoreResult<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT id FROM loyalty_entries WHERE customer_id = $1 LIMIT 1")
                .bind(customer.0)
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(found.is_some())
    }

    /// The earn of an order for a member and what its entries stand at.
    pub async fn order_earn(
        &mut self,
        order: OrderId,
        customer: CustomerId,
    ) -> StoreResult<Option<OrderEarn>> {
        let row = sqlx::query(
            "SELECT CAST(SUM(CASE WHEN kind = 'earn' THEN points ELSE 0 END) AS BIGINT) AS earned, \
             MAX(CASE WHEN kind = 'earn' THEN base_minor END) AS base, \
             CAST(SUM(points - deferred) AS BIGINT) AS net, COUNT(*) AS n FROM loyalty_entries \
             WHERE order_id = $1 AND customer_id = $2 AND kind IN ('earn', 'reverse')",
        )
        .bind(order.0)
        .bind(customer.0)
        .fetch_one(&mut *self.tx)
        .await?;
        let n: i64 = row.try_get("n")?;
        if n == 0 {
            return Ok(None);
        }
        Ok(Some(OrderEarn {
            earned: row.try_get::<Option<i64>, _>("earned")?.unwrap_or(0),
            base_minor: row.try_get::<Option<i64>, _>("base")?.unwrap_or(0),
            net: row.try_get::<Option<i64>, _>("net")?.unwrap_or(0),
        }))
    }

    /// The members an order's entries belong to (it may have moved between customers).
    pub async fn order_members(&mut self, order: OrderId) -> StoreResult<Vec<CustomerId>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT customer_id FROM loyalty_entries WHERE order_id = $1 AND kind = 'earn'",
        )
        .bind(order.0)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(ids.into_iter().map(CustomerId).collect())
    }

    /// Lines of an order with their product's category: `(line total, category)`.
    pub async fn order_lines_with_category(
        &mut self,
        order: OrderId,
    ) -> StoreResult<Vec<(i64, Option<i64>)>> {
        let rows = sqlx::query(
            "SELECT l.total_minor, p.category_id FROM order_lines l LEFT JOIN products p ON p.id = l.product_id \
             WHERE l.order_id = $1 ORDER BY l.line_no",
        )
        .bind(order.0)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("total_minor")?, r.try_get("category_id")?)))
            .collect()
    }

    /// How many completed orders the customer has (the order being written included).
    pub async fn completed_orders(&mut self, customer: CustomerId) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM orders WHERE customer_id = $1 AND status = 'completed'",
        )
        .bind(customer.0)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    pub async fn set_tier(
        &mut self,
        customer: CustomerId,
        tier: &str,
        grace_until: Option<DateTime<Utc>>,
        changed: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE loyalty_accounts SET tier = $2, grace_until = $3, \
             tier_since = CASE WHEN $4 = 1 THEN $5 ELSE tier_since END, updated_at = $5 WHERE customer_id = $1",
        )
        .bind(customer.0)
        .bind(tier.to_owned())
        .bind(grace_until.map(to_micros))
        .bind(i64::from(changed))
        .bind(to_micros(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn record_tier_change(
        &mut self,
        customer: CustomerId,
        from: Option<&str>,
        to: &str,
        reason: TierReason,
        qualifying: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO loyalty_tier_changes (customer_id, at, from_tier, to_tier, reason, qualifying) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(customer.0)
        .bind(to_micros(now))
        .bind(from.map(str::to_owned))
        .bind(to.to_owned())
        .bind(reason.as_str())
        .bind(qualifying)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn set_referred_by(
        &mut self,
        customer: CustomerId,
        referrer: CustomerId,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE loyalty_accounts SET referred_by = $2 WHERE customer_id = $1")
            .bind(customer.0)
            .bind(referrer.0)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The member holding a referral code, as this transaction sees it.
    pub async fn referrer_by_code(&mut self, code: &str) -> StoreResult<Option<CustomerId>> {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT customer_id FROM loyalty_accounts WHERE referral_code = $1")
                .bind(code.to_owned())
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(id.map(CustomerId))
    }

    /// Makes pending lots whose time came spendable, up to `limit` lots; the members whose
    /// points moved.
    pub async fn release_pending(
        &mut self,
        now: DateTime<Utc>,
        actor_name: &str,
        limit: u32,
    ) -> StoreResult<Vec<CustomerId>> {
        let lots: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT id, customer_id FROM loyalty_lots WHERE pending = 1 AND available_at <= $1 \
             ORDER BY available_at, id LIMIT $2",
        )
        .bind(to_micros(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *self.tx)
        .await?;
        let mut members: Vec<CustomerId> = lots.iter().map(|l| CustomerId(l.1)).collect();
        members.sort();
        members.dedup();
        for m in &members {
            self.loyalty_account_for_update(*m).await?;
        }
        for (lot, customer) in lots {
            // Re-read under the account's lock: a reversal may have taken from it.
            let left: Option<i64> = sqlx::query_scalar(
                "UPDATE loyalty_lots SET pending = 0 WHERE id = $1 AND pending = 1 RETURNING remaining",
            )
            .bind(lot)
            .fetch_optional(&mut *self.tx)
            .await?;
            let Some(left) = left else { continue };
            if left > 0 {
                for (bucket, points) in [(Bucket::Pending, -left), (Bucket::Available, left)] {
                    self.append_entry(&NewEntry {
                        customer: CustomerId(customer),
                        at: now,
                        kind: EntryKind::Release,
                        bucket,
                        points,
                        deferred: 0,
                        order: None,
                        base_minor: None,
                        reward: None,
                        bonus: None,
                        reason: String::new(),
                        actor_name: actor_name.to_owned(),
                        source_key: Some(format!("release:lot:{lot}:{}", bucket.as_str())),
                    })
                    .await?;
                }
                self.move_points(CustomerId(customer), left, -left, 0, now)
                    .await?;
            }
        }
        Ok(members)
    }

    /// Expires what is left of up to `limit` spendable lots whose time is up; returns the
    /// lots expired and the members they belonged to. Set-based: one statement each for the
    /// entries, the lots and the balances (the amounts per member summed here from the lots
    /// read under the members' locks).
    pub async fn expire_lots(
        &mut self,
        now: DateTime<Utc>,
        actor_name: &str,
        limit: u32,
    ) -> StoreResult<(u64, Vec<CustomerId>)> {
        let due = "SELECT id, customer_id, remaining FROM loyalty_lots WHERE remaining > 0 \
                   AND expires_at IS NOT NULL AND expires_at <= $1 AND pending = 0";
        let mut lots: Vec<(i64, i64, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "{due} ORDER BY expires_at, id LIMIT $2"
        )))
        .bind(to_micros(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *self.tx)
        .await?;
        if lots.is_empty() {
            return Ok((0, Vec::new()));
        }
        let mut members: Vec<i64> = lots.iter().map(|l| l.1).collect();
        members.sort_unstable();
        members.dedup();
        if self.backend() == Backend::Postgres {
            // Lock the members, then read the lots again: a redemption may have taken from
            // one meanwhile (it holds the member's lock while it does).
            let mut s = Select::new("SELECT customer_id FROM loyalty_accounts");
            s.filter_in("customer_id IN ({})", &members)?;
            let (sql, args) = s.finish_unbounded("ORDER BY customer_id FOR UPDATE");
            sqlx::query_with(AssertSqlSafe(sql), args)
                .fetch_all(&mut *self.tx)
                .await?;
            let ids: Vec<i64> = lots.iter().map(|l| l.0).collect();
            let mut s = Select::new("SELECT id, customer_id, remaining FROM loyalty_lots");
            s.filter(
                "remaining > 0 AND expires_at IS NOT NULL AND pending = 0 AND expires_at <= {}",
                to_micros(now),
            )?;
            s.filter_in("id IN ({})", &ids)?;
            let (sql, args) = s.finish_unbounded("ORDER BY id");
            lots = sqlx::query_as_with(AssertSqlSafe(sql), args)
                .fetch_all(&mut *self.tx)
                .await?;
            if lots.is_empty() {
                return Ok((0, Vec::new()));
            }
        }
        let ids: Vec<i64> = lots.iter().map(|l| l.0).collect();
        let mut per_member: std::collections::BTreeMap<i64, i64> = Default::default();
        for (_, customer, remaining) in &lots {
            *per_member.entry(*customer).or_default() += remaining;
        }

        let mut s = Select::new(
            "INSERT INTO loyalty_entries (customer_id, at, kind, bucket, points, deferred, reason, actor_name, source_key) \
             SELECT customer_id, ",
        );
        let now_p = s.bind(to_micros(now))?;
        let actor_p = s.bind(actor_name.to_owned())?;
        let mut ps = Vec::with_capacity(ids.len());
        for id in &ids {
            ps.push(s.bind(*id)?);
        }
        let sql = format!(
            "{}{now_p}, 'expire', 'available', -remaining, 0, '', {actor_p}, 'expire:lot:' || CAST(id AS TEXT) \
             FROM loyalty_lots WHERE id IN ({}) ON CONFLICT (source_key) DO NOTHING",
            s.head(),
            ps.join(",")
        );
        let n = sqlx::query_with(AssertSqlSafe(sql), s.take_args())
            .execute(&mut *self.tx)
            .await?
            .rows_affected();
        if n != ids.len() as u64 {
            return Err(StoreError::Database(format!(
                "{} of {} lots had expired already",
                ids.len() as u64 - n,
                ids.len()
            )));
        }

        let mut s = Select::new("UPDATE loyalty_lots SET remaining = 0 WHERE ");
        let mut ps = Vec::with_capacity(ids.len());
        for id in &ids {
            ps.push(s.bind(*id)?);
        }
        let sql = format!("{}id IN ({})", s.head(), ps.join(","));
        sqlx::query_with(AssertSqlSafe(sql), s.take_args())
            .execute(&mut *self.tx)
            .await?;

        let mut s = Select::new("UPDATE loyalty_accounts SET balance = balance - CASE customer_id");
        let mut sql = String::new();
        for (customer, points) in &per_member {
            let c = s.bind(*customer)?;
            let p = s.bind(*points)?;
            sql.push_str(&format!(" WHEN {c} THEN {p}"));
        }
        let now_p = s.bind(to_micros(now))?;
        let mut ps = Vec::with_capacity(per_member.len());
        for customer in per_member.keys() {
            ps.push(s.bind(*customer)?);
        }
        let sql = format!(
            "{}{sql} ELSE 0 END, updated_at = {now_p} WHERE customer_id IN ({})",
            s.head(),
            ps.join(",")
        );
        sqlx::query_with(AssertSqlSafe(sql), s.take_args())
            .execute(&mut *self.tx)
            .await?;
        Ok((n, members.into_iter().map(CustomerId).collect()))
    }

    pub async fn create_reward(
        &mut self,
        d: &RewardData,
        now: DateTime<Utc>,
    ) -> StoreResult<Reward> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO loyalty_rewards (name, description, points_cost, stock, valid_from, valid_until, active, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
        )
        .bind(d.name.trim().to_owned())
        .bind(d.description.clone())
        .bind(d.points_cost)
        .bind(d.stock)
        .bind(d.valid_from.map(to_micros))
        .bind(d.valid_until.map(to_micros))
        .bind(i64::from(d.active))
        .bind(to_micros(now))
        .fetch_one(&mut *self.tx)
        .await?;
        self.reward_for_update(RewardId(id)).await
    }

    pub async fn update_reward(
        &mut self,
        id: RewardId,
        d: &RewardData,
        now: DateTime<Utc>,
    ) -> StoreResult<Reward> {
        sqlx::query(
            "UPDATE loyalty_rewards SET name = $2, description = $3, points_cost = $4, stock = $5, valid_from = $6, \
             valid_until = $7, active = $8, updated_at = $9 WHERE id = $1",
        )
        .bind(id.0)
        .bind(d.name.trim().to_owned())
        .bind(d.description.clone())
        .bind(d.points_cost)
        .bind(d.stock)
        .bind(d.valid_from.map(to_micros))
        .bind(d.valid_until.map(to_micros))
        .bind(i64::from(d.active))
        .bind(to_micros(now))
        .execute(&mut *self.tx)
        .await?;
        self.reward_for_update(id).await
    }

    /// A reward, locked until the transaction ends.
    pub async fn reward_for_update(&mut self, id: RewardId) -> StoreResult<Reward> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "{REWARD_SELECT} WHERE id = $1{}",
            lock_clause(self.backend())
        )))
        .bind(id.0)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(StoreError::NotFound { what: "reward" })?;
        reward_from_row(&row)
    }

    /// Takes one from a reward's stock (unlimited rewards have none to take).
    pub async fn take_reward_stock(&mut self, id: RewardId) -> StoreResult<()> {
        sqlx::query("UPDATE loyalty_rewards SET stock = stock - 1 WHERE id = $1 AND stock > 0")
            .bind(id.0)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn create_campaign(
        &mut self,
        d: &CampaignData,
        now: DateTime<Utc>,
    ) -> StoreResult<CampaignId> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO coupon_campaigns (name, discount_kind, discount_value, max_uses, per_customer, valid_from, \
             valid_until, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(d.name.trim().to_owned())
        .bind(d.discount_kind.as_str())
        .bind(d.discount_value)
        .bind(d.max_uses)
        .bind(d.per_customer)
        .bind(d.valid_from.map(to_micros))
        .bind(d.valid_until.map(to_micros))
        .bind(to_micros(now))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(CampaignId(id))
    }

    /// Adds a code to a campaign; `false` when the code exists already.
    pub async fn add_coupon(
        &mut self,
        campaign: CampaignId,
        code: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "INSERT INTO coupons (campaign_id, code, uses, created_at) VALUES ($1, $2, 0, $3) ON CONFLICT (code) DO NOTHING",
        )
        .bind(campaign.0)
        .bind(code.to_owned())
        .bind(to_micros(now))
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// A coupon by its code, locked until the transaction ends.
    pub async fn coupon_for_update(&mut self, code: &str) -> StoreResult<Option<Coupon>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT id, campaign_id, code, uses FROM coupons WHERE code = $1{}",
            lock_clause(self.backend())
        )))
        .bind(code.to_owned())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(coupon_from_row).transpose()
    }

    pub async fn campaign_in_tx(&mut self, id: CampaignId) -> StoreResult<Campaign> {
        let row = sqlx::query(AssertSqlSafe(format!("{CAMPAIGN_SELECT} WHERE c.id = $1")))
            .bind(id.0)
            .fetch_optional(&mut *self.tx)
            .await?
            .ok_or(StoreError::NotFound {
                what: "coupon campaign",
            })?;
        campaign_from_row(&row)
    }

    /// How often a customer used a campaign.
    pub async fn campaign_uses_by(
        &mut self,
        campaign: CampaignId,
        customer: CustomerId,
    ) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM coupon_uses WHERE campaign_id = $1 AND customer_id = $2",
        )
        .bind(campaign.0)
        .bind(customer.0)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    pub async fn record_coupon_use(
        &mut self,
        coupon: &Coupon,
        customer: CustomerId,
        order: Option<OrderId>,
        discount_minor: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        if let Some(o) = order {
            crate::sql::require(&mut self.tx, crate::sql::Table::Orders, o.0, "order_id").await?;
        }
        sqlx::query("UPDATE coupons SET uses = uses + 1 WHERE id = $1")
            .bind(coupon.id.0)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(
            "INSERT INTO coupon_uses (coupon_id, campaign_id, customer_id, order_id, discount_minor, at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(coupon.id.0)
        .bind(coupon.campaign_id.0)
        .bind(customer.0)
        .bind(order.map(|o| o.0))
        .bind(discount_minor)
        .bind(to_micros(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The answer stored for a request key: `(request hash, response)`.
    pub async fn idempotent_response(
        &mut self,
        scope: &str,
        key: &str,
    ) -> StoreResult<Option<(String, String)>> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT request_hash, response FROM idempotency_keys WHERE scope = $1 AND key = $2",
        )
        .bind(scope.to_owned())
        .bind(key.to_owned())
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row)
    }

    /// Stores the answer to a keyed request; `false` when a concurrent request with the same
    /// key stored one first (this transaction must then be rolled back).
    pub async fn store_idempotent_response(
        &mut self,
        scope: &str,
        key: &str,
        request_hash: &str,
        response: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, request_hash, response, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (scope, key) DO NOTHING",
        )
        .bind(scope.to_owned())
        .bind(key.to_owned())
        .bind(request_hash.to_owned())
        .bind(response.to_owned())
        .bind(to_micros(now))
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}

impl WriteTx<'_> {
    /// A setting that is written once and never changed (a signing secret): stores `value`
    /// unless one is stored, and returns the stored one — concurrent servers agree.
    pub async fn setting_once(
        &mut self,
        name: &str,
        value: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<String> {
        sqlx::query("INSERT INTO settings (name, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(name.to_owned())
            .bind(serde_json::Value::String(value.to_owned()).to_string())
            .bind(to_micros(now))
            .execute(&mut *self.tx)
            .await?;
        let text: String = sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name.to_owned())
            .fetch_one(&mut *self.tx)
            .await?;
        serde_json::from_str::<String>(&text)
            .map_err(|e| StoreError::corrupt("settings", e.to_string()))
    }
}

impl Store {
    /// The answer stored for a request key, outside any write.
    pub async fn idempotent_response(
        &self,
        scope: &str,
        key: &str,
    ) -> StoreResult<Option<(String, String)>> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT request_hash, response FROM idempotency_keys WHERE scope = $1 AND key = $2",
        )
        .bind(scope.to_owned())
        .bind(key.to_owned())
        .fetch_optional(self.pool())
        .await?;
        Ok(row)
    }
}
