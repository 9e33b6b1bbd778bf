//! What the web application keeps: sessions by the hash of their cookie, failed sign-ins
//! for throttling, a staff member's language, and the dashboard's figures.

use sqlx::Row;
use tenure_domain::access::{Role, StaffUser};
use tenure_domain::ids::StaffUserId;

use crate::time::{from_micros, now_micros};
use crate::users::token_hash;
use crate::{Store, StoreError, StoreResult, WriteTx};

/// A live session and who holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub user: StaffUser,
    pub csrf: String,
    pub lang: Option<String>,
    pub last_seen_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

impl WriteTx<'_> {
    /// Stores a new session for `user` under the hash of `token`, and removes the
    /// sessions whose time is up (so the table holds about a week of sign-ins).
    pub async fn create_session(
        &mut self,
        token: &str,
        user: StaffUserId,
        csrf: &str,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<()> {
        let now = now_micros();
        sqlx::query(
            "INSERT INTO web_sessions (token_hash, user_id, csrf, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(token_hash(token))
        .bind(user.0)
        .bind(csrf.to_owned())
        .bind(now)
        .bind(expires_at.timestamp_micros())
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Ends the session of `token`, if there is one.
    pub async fn delete_session(&mut self, token: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1")
            .bind(token_hash(token))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Ends every session of the user the session `token` belongs to (signing out on
    /// every device); how many ended.
    pub async fn delete_sessions_of(&mut self, token: &str) -> StoreResult<u64> {
        let n = sqlx::query(
            "DELETE FROM web_sessions WHERE user_id = \
             (SELECT user_id FROM web_sessions WHERE token_hash = $1)",
        )
        .bind(token_hash(token))
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        Ok(n)
    }

    /// Records a failed sign-in under each of `keys` and forgets failures older than
    /// `forget_before`.
    pub async fn record_login_failure(
        &mut self,
        keys: &[String],
        forget_before: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<()> {
        let now = now_micros();
        for key in keys {
            sqlx::query("INSERT INTO login_failures (key, at) VALUES ($1, $2)")
                .bind(key.clone())
                .bind(now)
                .execute(&mut *self.tx)
                .await?;
        }
        sqlx::query("DELETE FROM login_failures WHERE at < $1")
            .bind(forget_before.timestamp_micros())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Forgets the failed sign-ins under `key` (after a successful one).
    pub async fn clear_login_failures(&mut self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_failures WHERE key = $1")
            .bind(key.to_owned())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Sets a staff member's language (`None`: the browser's).
    pub async fn set_user_lang(
        &mut self,
        user: StaffUserId,
        lang: Option<&str>,
    ) -> StoreResult<()> {
        let n = sqlx::query("UPDATE staff_users SET lang = $2 WHERE id = $1")
            .bind(user.0)
            .bind(lang.map(str::to_owned))
            .execute(&mut *self.tx)
            .await?;
        if n.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "user" });
        }
        Ok(())
    }
}

impl Store {
    /// The live session of `token`: `None` when unknown, expired, or idle since before
    /// `idle_since`. Marks it seen when it was last seen before `touch_before`.
    pub async fn session(
        &self,
        token: &str,
        idle_since: chrono::DateTime<chrono::Utc>,
        touch_before: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Option<WebSession>> {
        let hash = token_hash(token);
        let now = now_micros();
        let row = sqlx::query(
            "SELECT u.id, u.email, u.name, u.role, u.created_at, u.lang, s.csrf, s.last_seen_at, s.expires_at \
             FROM web_sessions s JOIN staff_users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.last_seen_at >= $3",
        )
        .bind(hash.clone())
        .bind(now)
        .bind(idle_since.timestamp_micros())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let role: String = row.try_get("role")?;
        let last_seen: i64 = row.try_get("last_seen_at")?;
        let session = WebSession {
            user: StaffUser {
                id: StaffUserId(row.try_get("id")?),
                email: row.try_get("email")?,
                name: row.try_get("name")?,
                role: role
                    .parse::<Role>()
                    .map_err(|e| StoreError::corrupt("role", e))?,
                created_at: from_micros(row.try_get("created_at")?)?,
            },
            csrf: row.try_get("csrf")?,
            lang: row.try_get("lang")?,
            last_seen_at: from_micros(last_seen)?,
            expires_at: from_micros(row.try_get("expires_at")?)?,
        };
        if last_seen < touch_before.timestamp_micros() {
            // Outside a write transaction: a lost touch only shortens the idle time.
            sqlx::query("UPDATE web_sessions SET last_seen_at = $2 WHERE token_hash = $1")
                .bind(hash)
                .bind(now)
                .execute(self.pool())
                .await?;
        }
        Ok(Some(session))
    }

    /// How many sign-ins failed under `key` since `since`, and the earliest of them.
    pub async fn login_failures(
        &self,
        key: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<(u32, Option<chrono::DateTime<chrono::Utc>>)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(at) AS first FROM login_failures WHERE key = $1 AND at >= $2",
        )
        .bind(key.to_owned())
        .bind(since.timestamp_micros())
        .fetch_one(self.pool())
        .await?;
        let n: i64 = row.try_get("n")?;
        let first: Option<i64> = row.try_get("first")?;
        Ok((
            u32::try_from(n).unwrap_or(u32::MAX),
            first.map(from_micros).transpose()?,
        ))
    }

    /// A staff member's chosen language.
    pub async fn user_lang(&self, user: StaffUserId) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT lang FROM staff_users WHERE id = $1")
                .bind(user.0)
                .fetch_optional(self.pool())
                .await?
                .flatten(),
        )
    }

    /// Removes sessions that have ended.
    pub async fn delete_ended_sessions(
        &self,
        idle_since: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<u64> {
        let n = sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1 OR last_seen_at < $2")
            .bind(now_micros())
            .bind(idle_since.timestamp_micros())
            .execute(self.pool())
            .await?;
        Ok(n.rows_affected())
    }
}

/// The dashboard's figures for a range of days.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DashboardFigures {
    pub customers: u64,
    /// Customers whose first purchase fell in the range.
    pub new_customers: u64,
    /// Customers who bought in the range.
    pub active_customers: u64,
    /// Completed orders in the range, in the reporting currency, by purchase day:
    /// (day number since the epoch, orders, value in minor units).
    pub revenue_by_day: Vec<(i64, u64, i64)>,
    /// New customers of the range by acquisition channel (`None`: not recorded).
    pub acquisition: Vec<(Option<String>, u64)>,
    /// Customers by CLV band: the counts below each of the bounds, then above the last.
    pub clv_bands: Vec<u64>,
    /// Customers with a prediction.
    pub predicted: u64,
}

impl Store {
    /// The dashboard's figures over purchase days `first_day..=last_day`, CLV counted in
    /// the bands below each of `clv_bounds` (ascending, in the reporting currency's units).
    pub async fn dashboard(
        &self,
        first_day: i64,
        last_day: i64,
        clv_bounds: &[f64],
    ) -> StoreResult<DashboardFigures> {
        let pool = self.reader();
        let day_us = 86_400_000_000_i64;
        let (from, to) = (first_day * day_us, (last_day + 1) * day_us);
        let customers: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM customers")
            .fetch_one(pool)
            .await?;
        let new_customers: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM customer_stats WHERE first_purchase_at >= $1 AND first_purchase_at < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_one(pool)
        .await?;
        let active_customers: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT customer_id) FROM orders \
             WHERE purchase_day >= $1 AND purchase_day <= $2 AND status = 'completed'",
        )
        .bind(first_day)
        .bind(last_day)
        .fetch_one(pool)
        .await?;
        let rows = sqlx::query(
            "SELECT purchase_day, COUNT(*) AS n, CAST(SUM(total_minor) AS BIGINT) AS value FROM orders \
             WHERE purchase_day >= $1 AND purchase_day <= $2 AND status = 'completed' AND currency = $3 \
             GROUP BY purchase_day ORDER BY purchase_day",
        )
        .bind(first_day)
        .bind(last_day)
        .bind(self.reporting_currency().to_owned())
        .fetch_all(pool)
        .await?;
        let mut revenue_by_day = Vec::with_capacity(rows.len());
        for r in &rows {
            let n: i64 = r.try_get("n")?;
            revenue_by_day.push((
                r.try_get("purchase_day")?,
                u64::try_from(n).unwrap_or(0),
                r.try_get("value")?,
            ));
        }
        let rows = sqlx::query(
            "SELECT c.acquisition_channel AS channel, COUNT(*) AS n FROM customer_stats s \
             JOIN customers c ON c.id = s.customer_id \
             WHERE s.first_purchase_at >= $1 AND s.first_purchase_at < $2 \
             GROUP BY c.acquisition_channel ORDER BY n DESC",
        )
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await?;
        let mut acquisition = Vec::with_capacity(rows.len());
        for r in &rows {
            let n: i64 = r.try_get("n")?;
            acquisition.push((r.try_get("channel")?, u64::try_from(n).unwrap_or(0)));
        }
        // One scan of the predictions counts every band.
        let mut select = String::from("SELECT COUNT(*) AS total");
        for (i, _) in clv_bounds.iter().enumerate() {
            select.push_str(&format!(
                ", SUM(CASE WHEN clv < ${} THEN 1 ELSE 0 END) AS b{i}",
                i + 1
            ));
        }
        select.push_str(" FROM customer_predictions");
        // Only placeholders are formatted into the text; the bounds are bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(select));
        for b in clv_bounds {
            q = q.bind(*b);
        }
        let row = q.fetch_one(pool).await?;
        let predicted: i64 = row.try_get("total")?;
        let mut below = Vec::with_capacity(clv_bounds.len());
        for i in 0..clv_bounds.len() {
            let n: Option<i64> = row.try_get(format!("b{i}").as_str())?;
            below.push(n.unwrap_or(0));
        }
        // Cumulative counts into bands.
        let mut clv_bands = Vec::with_capacity(clv_bounds.len() + 1);
        let mut prev = 0;
        for n in below {
            clv_bands.push(u64::try_from(n - prev).unwrap_or(0));
            prev = n;
        }
        clv_bands.push(u64::try_from(predicted - prev).unwrap_or(0));
        Ok(DashboardFigures {
            customers: u64::try_from(customers).unwrap_or(0),
            new_customers: u64::try_from(new_customers).unwrap_or(0),
            active_customers: u64::try_from(active_customers).unwrap_or(0),
            revenue_by_day,
            acquisition,
            clv_bands,
            predicted: u64::try_from(predicted).unwrap_or(0),
        })
    }
}

/// A stored model fit.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFit {
    pub model: String,
    pub params: serde_json::Value,
    pub log_likelihood: f64,
    pub customers: i64,
    pub calibration_end: String,
    pub fitted_at: chrono::DateTime<chrono::Utc>,
}

impl Store {
    /// The latest fit of each model, oldest model first.
    pub async fn latest_fits(&self) -> StoreResult<Vec<StoredFit>> {
        let rows = sqlx::query(
            "SELECT model, params, log_likelihood, customers, calibration_end, created_at FROM model_fits \
             WHERE id IN (SELECT MAX(id) FROM model_fits GROUP BY model) ORDER BY id",
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                let params: String = r.try_get("params")?;
                Ok(StoredFit {
                    model: r.try_get("model")?,
                    params: serde_json::from_str(&params)
                        .map_err(|e| StoreError::corrupt("model_fits.params", e.to_string()))?,
                    log_likelihood: r.try_get("log_likelihood")?,
                    customers: r.try_get("customers")?,
                    calibration_end: r.try_get("calibration_end")?,
                    fitted_at: from_micros(r.try_get("created_at")?)?,
                })
            })
            .collect()
    }
}
