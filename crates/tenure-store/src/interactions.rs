//! Interactions on every channel. Every write refreshes the customer's aggregates (number
//! of interactions, last contact) in the same transaction.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use tenure_domain::ids::{CustomerId, InteractionId, StaffUserId};
use tenure_domain::interaction::{Interaction, InteractionData};

use crate::Page;
use crate::decode::parsed;
use crate::sql::Select;
use crate::sql::{Table, require};
use crate::time::{from_micros, now_micros};
use crate::{Store, StoreError, StoreResult, stats};

pub(crate) const INTERACTION_SELECT: &str = "SELECT id, external_id, customer_id, channel, direction, kind, subject, \
     body, staff_user_id, buying_signal, occurred_at, created_at FROM interactions";

pub(crate) fn interaction_from_row(row: &AnyRow) -> StoreResult<Interaction> {
    Ok(Interaction {
        id: InteractionId(row.try_get("id")?),
        data: InteractionData {
            external_id: row.try_get("external_id")?,
            customer_id: CustomerId(row.try_get("customer_id")?),
            channel: parsed(row, "channel")?,
            direction: parsed(row, "direction")?,
            kind: parsed(row, "kind")?,
            subject: row.try_get("subject")?,
            body: row.try_get("body")?,
            staff_user_id: row
                .try_get::<Option<i64>, _>("staff_user_id")?
                .map(StaffUserId),
            buying_signal: row.try_get::<i64, _>("buying_signal")? != 0,
            occurred_at: from_micros(row.try_get("occurred_at")?),
        },
        created_at: from_micros(row.try_get("created_at")?),
    })
}

impl Store {
    pub async fn create_interaction(&self, data: &InteractionData) -> StoreResult<Interaction> {
        let mut w = self.begin_write().await?;
        require(
            &mut w.tx,
            Table::Customers,
            data.customer_id.0,
            "customer_id",
        )
        .await?;
        if let Some(s) = data.staff_user_id {
            require(&mut w.tx, Table::StaffUsers, s.0, "staff_user_id").await?;
        }
        let row = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO interactions (external_id, customer_id, channel, direction, kind, subject, body, \
             staff_user_id, buying_signal, occurred_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {}",
            INTERACTION_SELECT.trim_start_matches("SELECT ").trim_end_matches(" FROM interactions")
        )))
        .bind(data.external_id.clone())
        .bind(data.customer_id.0)
        .bind(data.channel.as_str())
        .bind(data.direction.as_str())
        .bind(data.kind.as_str())
        .bind(data.subject.clone())
        .bind(data.body.clone())
        .bind(data.staff_user_id.map(|s| s.0))
        .bind(i64::from(data.buying_signal))
        .bind(data.occurred_at.timestamp_micros())
        .bind(now_micros())
        .fetch_one(&mut *w.tx)
        .await?;
        let interaction = interaction_from_row(&row)?;
        stats::refresh(&mut w.tx, data.customer_id, self).await?;
        w.commit().await?;
        Ok(interaction)
    }

    pub async fn get_interaction(&self, id: InteractionId) -> StoreResult<Interaction> {
        let row = sqlx::query(AssertSqlSafe(format!("{INTERACTION_SELECT} WHERE id = $1")))
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound {
                what: "interaction",
            })?;
        interaction_from_row(&row)
    }

    pub async fn delete_interaction(&self, id: InteractionId) -> StoreResult<()> {
        let mut w = self.begin_write().await?;
        let customer: Option<i64> =
            sqlx::query_scalar("DELETE FROM interactions WHERE id = $1 RETURNING customer_id")
                .bind(id.0)
                .fetch_optional(&mut *w.tx)
                .await?;
        let customer = customer.ok_or(StoreError::NotFound {
            what: "interaction",
        })?;
        stats::refresh(&mut w.tx, CustomerId(customer), self).await?;
        w.commit().await
    }

    pub async fn list_interactions(
        &self,
        customer: Option<CustomerId>,
        after: Option<InteractionId>,
        limit: u32,
    ) -> StoreResult<Page<Interaction, InteractionId>> {
        let mut s = Select::new(INTERACTION_SELECT);
        if let Some(c) = customer {
            s.filter("customer_id = {}", c.0)?;
        }
        if let Some(a) = after {
            s.filter("id > {}", a.0)?;
        }
        let limit = i64::from(limit.clamp(1, 1000));
        let (sql, args) = s.finish("ORDER BY id LIMIT {}", limit + 1)?;
        let rows = sqlx::query_with(AssertSqlSafe(sql), args)
            .fetch_all(self.pool())
            .await?;
        let items = rows
            .iter()
            .map(interaction_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::cut(items, limit, |i| i.id))
    }
}
