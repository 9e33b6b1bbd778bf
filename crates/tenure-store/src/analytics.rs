//! What the customer-base models read and write: each customer's purchase days with their
//! spend, the fits, and the per-customer predictions.

use futures_util::TryStreamExt;
use sqlx::Row;
use tenure_domain::catalog::OrderStatus;
use tenure_domain::ids::{CustomerId, StaffUserId};

use crate::Page;
use crate::sql::Bulk;
use crate::time::{now_micros, time};
use crate::{Store, StoreResult};
use tenure_domain::changes::{Actor, Change};
use tenure_domain::customer::Customer;

/// One customer's purchase day: the completed orders of that UTC day, and their value in
/// the reporting currency (minor units; orders in other currencies count as purchases
/// without value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurchaseDay {
    pub customer: CustomerId,
    /// Days since 1970-01-01.
    pub day: i64,
    pub value_minor: i64,
}

pub use tenure_domain::prediction::{AtRiskPosition, Prediction};

/// A model fit to record beside the predictions made from it.
#[derive(Debug, Clone)]
pub struct FitRecord {
    pub model: String,
    /// The parameters and whatever else the fit reports, as a JSON object.
    pub params: serde_json::Value,
    pub log_likelihood: f64,
    pub customers: i64,
    pub calibration_end: String,
}

/// Records one fit, binding `$1..$6` as [`FitRecord`]'s fields and the time.
pub(crate) const RECORD_FIT: &str = "INSERT INTO model_fits (model, params, log_likelihood, customers, \
     calibration_end, created_at) VALUES ($1, $2, $3, $4, $5, $6)";

/// Each customer's purchase days with their value in the reporting currency ($1), from
/// orders with status $2 up to day $3.
const PURCHASE_DAYS: &str = "SELECT customer_id, purchase_day, \
     CAST(SUM(CASE WHEN currency = $1 THEN total_minor ELSE 0 END) AS BIGINT) AS value_minor \
     FROM orders WHERE status = $2 AND purchase_day <= $3 \
     GROUP BY customer_id, purchase_day ORDER BY customer_id, purchase_day";

/// One customer's completed orders of one day: how many, and their value in the reporting
/// currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderDay {
    pub customer: CustomerId,
    pub day: i64,
    pub orders: i64,
    pub value_minor: i64,
}

/// [`PURCHASE_DAYS`] with the number of orders of each day.
const ORDER_DAYS: &str = "SELECT customer_id, purchase_day, COUNT(*) AS orders, \
     CAST(SUM(CASE WHEN currency = $1 THEN total_minor ELSE 0 END) AS BIGINT) AS value_minor \
     FROM orders WHERE status = $2 AND purchase_day <= $3 \
     GROUP BY customer_id, purchase_day ORDER BY customer_id, purchase_day";

impl Store {
    /// Calls `f` with every customer's order days up to and including `last_day`, in
    /// customer and day order, without holding them all in memory.
    pub async fn for_each_order_day(
        &self,
        last_day: i64,
        mut f: impl FnMut(OrderDay),
    ) -> StoreResult<()> {
        let currency = self.reporting_currency().to_owned();
        let status = OrderStatus::Completed.as_str();
        if let Some(done) = self
            .read_sqlite(|c| {
                let mut statement = c.prepare(ORDER_DAYS)?;
                let mut rows = statement.query(rusqlite::params![currency, status, last_day])?;
                while let Some(r) = rows.next()? {
                    f(OrderDay {
                        customer: CustomerId(r.get(0)?),
                        day: r.get(1)?,
                        orders: r.get(2)?,
                        value_minor: r.get(3)?,
                    });
                }
                Ok(())
            })
            .await
        {
            return done;
        }
        let mut rows = sqlx::query(ORDER_DAYS)
            .bind(currency.clone())
            .bind(status)
            .bind(last_day)
            .fetch(self.pool());
        while let Some(row) = rows.try_next().await? {
            f(OrderDay {
                customer: CustomerId(row.try_get("customer_id")?),
                day: row.try_get("purchase_day")?,
                orders: row.try_get("orders")?,
                value_minor: row.try_get("value_minor")?,
            });
        }
        Ok(())
    }

    /// Every customer's purchase days up to and including `last_day`, in customer and day
    /// order.
    pub async fn purchase_days(&self, last_day: i64) -> StoreResult<Vec<PurchaseDay>> {
        let currency = self.reporting_currency().to_owned();
        let status = OrderStatus::Completed.as_str();
        if let Some(days) = self
            .read_sqlite(|c| {
                let mut statement = c.prepare(PURCHASE_DAYS)?;
                let rows =
                    statement.query_map(rusqlite::params![currency, status, last_day], |r| {
                        Ok(PurchaseDay {
                            customer: CustomerId(r.get(0)?),
                            day: r.get(1)?,
                            value_minor: r.get(2)?,
                        })
                    })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
        {
            return days;
        }
        let mut rows = sqlx::query(PURCHASE_DAYS)
            .bind(currency.clone())
            .bind(status)
            .bind(last_day)
            .fetch(self.pool());
        let mut out = Vec::new();
        while let Some(row) = rows.try_next().await? {
            out.push(PurchaseDay {
                customer: CustomerId(row.try_get("customer_id")?),
                day: row.try_get("purchase_day")?,
                value_minor: row.try_get("value_minor")?,
            });
        }
        Ok(out)
    }

    /// Replaces every customer's prediction with these and records the fits they came
    /// from, with the change-log entry `change` for `by`, in one transaction. On a SQLite
    /// file this runs on the bulk-load connection.
    pub async fn replace_predictions(
        &self,
        predictions: &[(CustomerId, Prediction)],
        fits: &[FitRecord],
        by: &Actor,
        change: &Change,
    ) -> StoreResult<()> {
        if let Some(done) = self
            .load_sqlite(|c| {
                crate::load::sqlite::replace_predictions(c, predictions, fits, (by, change))
            })
            .await
        {
            return done;
        }
        let mut w = self.begin_write().await?;
        sqlx::query("DELETE FROM customer_predictions")
            .execute(&mut *w.tx)
            .await?;
        let mut rows = Bulk::new(
            self.backend(),
            "INSERT INTO customer_predictions (customer_id, p_alive, expected_purchases, expected_value, clv, \
             horizon_days, computed_at, value_at_risk)",
            8,
        );
        for (id, p) in predictions {
            rows.row(&mut w.tx, |r| {
                r.add(id.0)?;
                r.add(p.p_alive)?;
                r.add(p.expected_purchases)?;
                r.add(p.expected_value)?;
                r.add(p.clv)?;
                r.add(p.horizon_days)?;
                r.add(p.computed_at.timestamp_micros())?;
                r.add(p.value_at_risk())
            })
            .await?;
        }
        rows.flush(&mut w.tx).await?;
        for f in fits {
            sqlx::query(RECORD_FIT)
                .bind(f.model.clone())
                .bind(f.params.to_string())
                .bind(f.log_likelihood)
                .bind(f.customers)
                .bind(f.calibration_end.clone())
                .bind(now_micros())
                .execute(&mut *w.tx)
                .await?;
        }
        w.append_change(by, change).await?;
        w.commit().await
    }

    /// A customer's latest prediction, if the models have run since they bought.
    pub async fn prediction(&self, id: CustomerId) -> StoreResult<Option<Prediction>> {
        let row = sqlx::query(
            "SELECT p_alive, expected_purchases, expected_value, clv, horizon_days, computed_at \
             FROM customer_predictions WHERE customer_id = $1",
        )
        .bind(id.0)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(prediction_from_row).transpose()
    }
}

impl Store {
    /// Customers with a prediction, by value at risk (see [`Prediction::value_at_risk`]),
    /// highest first, `limit` after the position `after`.
    pub async fn at_risk(
        &self,
        after: Option<AtRiskPosition>,
        owner: Option<StaffUserId>,
        limit: u32,
    ) -> StoreResult<Page<(Customer, Prediction), AtRiskPosition>> {
        let limit = i64::from(limit.clamp(1, 1000));
        // The first page starts above every value the models give.
        let (value, id) = after.map_or((f64::MAX, i64::MAX), |p| (p.value_at_risk, p.customer.0));
        let mut s = crate::sql::Select::new(
            "SELECT customer_id, p_alive, expected_purchases, expected_value, clv, horizon_days, \
             computed_at, value_at_risk FROM customer_predictions",
        );
        // The position is the last customer's row as stored, read again here: a value that
        // came back from the cursor one unit in the last place off would repeat or skip a
        // customer at the page boundary. The cursor's own value serves when that customer's
        // prediction has gone since.
        s.filter3(
            "(value_at_risk < COALESCE((SELECT l.value_at_risk FROM customer_predictions l \
             WHERE l.customer_id = {3}), {1}) OR (value_at_risk = COALESCE((SELECT \
             l.value_at_risk FROM customer_predictions l WHERE l.customer_id = {3}), {2}) \
             AND customer_id < {3}))",
            value,
            value,
            id,
        )?;
        s.owned_by(owner)?;
        let (sql, args) = s.finish("ORDER BY value_at_risk DESC, customer_id DESC", limit + 1)?;
        let rows = sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
            .fetch_all(self.reader())
            .await?;
        let mut ranked = Vec::with_capacity(rows.len());
        for r in &rows {
            ranked.push((
                CustomerId(r.try_get("customer_id")?),
                prediction_from_row(r)?,
                r.try_get::<f64, _>("value_at_risk")?,
            ));
        }
        let ids: Vec<i64> = ranked.iter().map(|r| r.0.0).collect();
        let mut customers: std::collections::HashMap<i64, Customer> = self
            .customers_by_ids(&ids)
            .await?
            .into_iter()
            .map(|c| (c.id.0, c))
            .collect();
        let items: Vec<(Customer, Prediction, f64)> = ranked
            .into_iter()
            .filter_map(|(id, p, v)| Some((customers.remove(&id.0)?, p, v)))
            .collect();
        let page = Page::cut(items, limit, |(c, _, v)| AtRiskPosition {
            value_at_risk: *v,
            customer: c.id,
        });
        Ok(Page {
            items: page.items.into_iter().map(|(c, p, _)| (c, p)).collect(),
            next: page.next,
        })
    }
}

/// A `customer_predictions` row as a prediction.
pub(crate) fn prediction_from_row(r: &sqlx::any::AnyRow) -> StoreResult<Prediction> {
    Ok(Prediction {
        p_alive: r.try_get("p_alive")?,
        expected_purchases: r.try_get("expected_purchases")?,
        expected_value: r.try_get("expected_value")?,
        clv: r.try_get("clv")?,
        horizon_days: r.try_get("horizon_days")?,
        computed_at: time(r, "computed_at")?,
    })
}
