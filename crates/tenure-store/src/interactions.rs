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
use crate::time::{now_micros, time};
use crate::{Store, StoreError, StoreResult, WriteTx, stats};

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
            occurred_at: time(row, "occurred_at")?,
        },
        created_at: time(row, "created_at")?,
    })
}

impl WriteTx<'_> {
    pub async fn create_interaction(&mut self, data: &InteractionData) -> StoreResult<Interaction> {
        check_refs(&mut self.tx, data).await?;
        let backend = self.backend();
        let id = backend.reserve_id(&mut self.tx, "interactions").await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO interactions (external_id, customer_id, channel, direction, kind, subject, body, \
             staff_user_id, buying_signal, occurred_at, created_at, id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {}",
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
        .bind(id)
        .fetch_one(&mut *self.tx)
        .await?;
        let interaction = interaction_from_row(&row)?;
        stats::refresh(&mut self.tx, data.customer_id, self.store).await?;
        Ok(interaction)
    }

    /// An interaction as this transaction sees it, locked on PostgreSQL until it ends.
    pub async fn get_interaction_for_update(
        &mut self,
        id: InteractionId,
    ) -> StoreResult<Interaction> {
        self.lock(Table::Interactions, id.0).await?;
        fetch(&mut self.tx, id).await
    }

    /// Replaces an interaction's data (its customer stays); the aggregates follow.
    pub async fn update_interaction(
        &mut self,
        id: InteractionId,
        data: &InteractionData,
    ) -> StoreResult<Interaction> {
        check_refs(&mut self.tx, data).await?;
        let n = sqlx::query(
            "UPDATE interactions SET channel = $2, direction = $3, kind = $4, subject = $5, body = $6, \
             staff_user_id = $7, buying_signal = $8, occurred_at = $9 WHERE id = $1",
        )
        .bind(id.0)
        .bind(data.channel.as_str())
        .bind(data.direction.as_str())
        .bind(data.kind.as_str())
        .bind(data.subject.clone())
        .bind(data.body.clone())
        .bind(data.staff_user_id.map(|s| s.0))
        .bind(i64::from(data.buying_signal))
        .bind(data.occurred_at.timestamp_micros())
        .execute(&mut *self.tx)
        .await?;
        if n.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "interaction",
            });
        }
        stats::refresh(&mut self.tx, data.customer_id, self.store).await?;
        fetch(&mut self.tx, id).await
    }

    /// Deletes an interaction; returns the customer it belonged to.
    pub async fn delete_interaction(&mut self, id: InteractionId) -> StoreResult<CustomerId> {
        let customer: Option<i64> =
            sqlx::query_scalar("DELETE FROM interactions WHERE id = $1 RETURNING customer_id")
                .bind(id.0)
                .fetch_optional(&mut *self.tx)
                .await?;
        let customer = CustomerId(customer.ok_or(StoreError::NotFound {
            what: "interaction",
        })?);
        stats::refresh(&mut self.tx, customer, self.store).await?;
        Ok(customer)
    }
}

async fn check_refs(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    data: &InteractionData,
) -> StoreResult<()> {
    require(tx, Table::Customers, data.customer_id.0, "customer_id").await?;
    if let Some(s) = data.staff_user_id {
        require(tx, Table::StaffUsers, s.0, "staff_user_id").await?;
    }
    Ok(())
}

async fn fetch(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: InteractionId,
) -> StoreResult<Interaction> {
    let row = sqlx::query(AssertSqlSafe(format!("{INTERACTION_SELECT} WHERE id = $1")))
        .bind(id.0)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound {
            what: "interaction",
        })?;
    interaction_from_row(&row)
}

impl Store {
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
        let (sql, args) = s.finish("ORDER BY id", limit + 1)?;
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
