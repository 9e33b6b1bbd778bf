//! Per-customer aggregates: refreshed for one customer inside every order and interaction
//! write, and rebuilt for everyone from raw rows by a set-based query.
//!
//! Both paths define the same numbers: over completed orders, the first and last purchase
//! time, the number of orders and of distinct purchase days, total spend and repeat spend
//! (spend on days after the first purchase day) in the reporting currency; over
//! interactions, their number and the time of the latest.

use tenure_domain::catalog::OrderStatus;
use tenure_domain::ids::CustomerId;

use crate::{Store, StoreResult, WriteTx};

/// Recomputes one customer's aggregate row from their orders and interactions.
///
/// On PostgreSQL the row is locked first, in a statement of its own: a concurrent writer
/// for the same customer waits here until the other commits, and the UPDATE that follows
/// then reads with a fresh snapshot that includes the other's rows. (Without the lock, the
/// UPDATE's subqueries would read the snapshot taken before the wait and lose them.)
pub(crate) async fn refresh(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    customer: CustomerId,
    store: &Store,
) -> StoreResult<()> {
    if store.backend() == crate::Backend::Postgres {
        sqlx::query("SELECT customer_id FROM customer_stats WHERE customer_id = $1 FOR UPDATE")
            .bind(customer.0)
            .execute(&mut **tx)
            .await?;
    }
    let reporting_currency = store.reporting_currency();
    sqlx::query(
        "UPDATE customer_stats SET \
           first_purchase_at = (SELECT MIN(occurred_at) FROM orders WHERE customer_id = $1 AND status = $2), \
           last_purchase_at = (SELECT MAX(occurred_at) FROM orders WHERE customer_id = $1 AND status = $2), \
           orders_count = (SELECT COUNT(*) FROM orders WHERE customer_id = $1 AND status = $2), \
           purchase_days = (SELECT COUNT(DISTINCT purchase_day) FROM orders WHERE customer_id = $1 AND status = $2), \
           total_spend_minor = (SELECT CAST(COALESCE(SUM(total_minor), 0) AS BIGINT) FROM orders \
                                WHERE customer_id = $1 AND status = $2 AND currency = $3), \
           repeat_spend_minor = (SELECT CAST(COALESCE(SUM(total_minor), 0) AS BIGINT) FROM orders \
                                 WHERE customer_id = $1 AND status = $2 AND currency = $3 AND purchase_day > \
                                   (SELECT MIN(purchase_day) FROM orders WHERE customer_id = $1 AND status = $2)), \
           interactions_count = (SELECT COUNT(*) FROM interactions WHERE customer_id = $1), \
           last_contact_at = (SELECT MAX(occurred_at) FROM interactions WHERE customer_id = $1) \
         WHERE customer_id = $1",
    )
    .bind(customer.0)
    .bind(OrderStatus::Completed.as_str())
    .bind(reporting_currency.to_owned())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The set-based recomputation; `{f}`, `{o}`, `{i}` and `{c}` take the filters that limit it
/// to some customers.
const REBUILD: &str = "INSERT INTO customer_stats (customer_id, first_purchase_at, last_purchase_at, orders_count, \
       purchase_days, total_spend_minor, repeat_spend_minor, interactions_count, last_contact_at) \
     SELECT c.id, o.first_at, o.last_at, COALESCE(o.n, 0), COALESCE(o.days, 0), COALESCE(o.spend, 0), \
            COALESCE(o.repeat_spend, 0), COALESCE(i.n, 0), i.last_at \
     FROM customers c \
     LEFT JOIN ( \
       SELECT od.customer_id, MIN(od.occurred_at) AS first_at, MAX(od.occurred_at) AS last_at, \
              COUNT(*) AS n, COUNT(DISTINCT od.purchase_day) AS days, \
              CAST(SUM(CASE WHEN od.currency = $2 THEN od.total_minor ELSE 0 END) AS BIGINT) AS spend, \
              CAST(SUM(CASE WHEN od.currency = $2 AND od.purchase_day > f.first_day \
                            THEN od.total_minor ELSE 0 END) AS BIGINT) AS repeat_spend \
       FROM orders od \
       JOIN (SELECT customer_id, MIN(purchase_day) AS first_day FROM orders WHERE status = $1 {f} \
             GROUP BY customer_id) f ON f.customer_id = od.customer_id \
       WHERE od.status = $1 {o} \
       GROUP BY od.customer_id \
     ) o ON o.customer_id = c.id \
     LEFT JOIN ( \
       SELECT customer_id, COUNT(*) AS n, MAX(occurred_at) AS last_at FROM interactions {i} GROUP BY customer_id \
     ) i ON i.customer_id = c.id {c}";

/// The statements that recompute `n` customers' aggregates: a DELETE binding the ids as
/// `$1..$n`, and an INSERT binding the completed status as `$1`, the reporting currency as
/// `$2` and the ids as `$3..`.
pub(crate) fn rebuild_some_sql(n: usize) -> (String, String) {
    let own: Vec<String> = (0..n).map(|k| format!("${}", k + 1)).collect();
    let list: Vec<String> = (0..n).map(|k| format!("${}", k + 3)).collect();
    let list = list.join(",");
    let delete = format!(
        "DELETE FROM customer_stats WHERE customer_id IN ({})",
        own.join(",")
    );
    let insert = REBUILD
        .replace("{f}", &format!("AND customer_id IN ({list})"))
        .replace("{o}", &format!("AND od.customer_id IN ({list})"))
        .replace("{i}", &format!("WHERE customer_id IN ({list})"))
        .replace("{c}", &format!("WHERE c.id IN ({list})"));
    (delete, insert)
}

/// The statement that recomputes everyone's aggregates (into an emptied table), binding
/// the completed status as `$1` and the reporting currency as `$2`.
pub(crate) fn rebuild_all_sql() -> String {
    REBUILD
        .replace("{f}", "")
        .replace("{o}", "")
        .replace("{i}", "")
        .replace("{c}", "")
}

/// Recomputes the aggregates of `customers` (of everyone when `None`) from raw rows, set-based.
pub(crate) async fn rebuild(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    reporting_currency: &str,
    customers: Option<&[i64]>,
) -> StoreResult<u64> {
    let Some(ids) = customers else {
        sqlx::query("DELETE FROM customer_stats")
            .execute(&mut **tx)
            .await?;
        let done = sqlx::query(sqlx::AssertSqlSafe(rebuild_all_sql()))
            .bind(OrderStatus::Completed.as_str())
            .bind(reporting_currency.to_owned())
            .execute(&mut **tx)
            .await?;
        return Ok(done.rows_affected());
    };
    let mut total = 0;
    for chunk in ids.chunks(500) {
        let (delete_sql, insert_sql) = rebuild_some_sql(chunk.len());
        let mut delete = sqlx::query(sqlx::AssertSqlSafe(delete_sql));
        for id in chunk {
            delete = delete.bind(*id);
        }
        delete.execute(&mut **tx).await?;
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(insert_sql))
            .bind(OrderStatus::Completed.as_str())
            .bind(reporting_currency.to_owned());
        for id in chunk {
            insert = insert.bind(*id);
        }
        total += insert.execute(&mut **tx).await?.rows_affected();
    }
    Ok(total)
}

impl WriteTx<'_> {
    /// Rebuilds every customer's aggregates from raw orders and interactions. Returns the
    /// number of customers.
    pub async fn rebuild_aggregates(&mut self) -> StoreResult<u64> {
        let currency = self.reporting_currency().to_owned();
        rebuild(&mut self.tx, &currency, None).await
    }
}

impl Store {
    /// Every customer's aggregates, in id order (for checks and exports).
    pub async fn all_customer_stats(
        &self,
    ) -> StoreResult<Vec<(CustomerId, tenure_domain::customer::CustomerStats)>> {
        use sqlx::Row;
        let rows = sqlx::query(
            "SELECT customer_id, first_purchase_at, last_purchase_at, orders_count, purchase_days, \
             total_spend_minor, repeat_spend_minor, interactions_count, last_contact_at \
             FROM customer_stats ORDER BY customer_id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let t = |c: &'static str| crate::time::opt_time(row, c);
                Ok((
                    CustomerId(row.try_get("customer_id")?),
                    tenure_domain::customer::CustomerStats {
                        first_purchase_at: t("first_purchase_at")?,
                        last_purchase_at: t("last_purchase_at")?,
                        orders_count: row.try_get("orders_count")?,
                        purchase_days: row.try_get("purchase_days")?,
                        total_spend_minor: row.try_get("total_spend_minor")?,
                        repeat_spend_minor: row.try_get("repeat_spend_minor")?,
                        interactions_count: row.try_get("interactions_count")?,
                        last_contact_at: t("last_contact_at")?,
                    },
                ))
            })
            .collect()
    }
}
