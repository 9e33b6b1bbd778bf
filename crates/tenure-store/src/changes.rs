//! The change log: one row per domain event, appended in the transaction of the write that
//! emitted it, so a rolled-back write leaves no entry and a committed one exactly one.

use sqlx::Row;
use sqlx::any::AnyRow;
use tenure_domain::changes::{Actor, Change};
use tenure_domain::ids::CustomerId;

use crate::decode::parsed;
use crate::sql::Select;
use crate::time::{now_micros, time};
use crate::{Page, Store, StoreResult, WriteTx};

/// The statement every connection kind appends with, binding `$1..$10` as
/// [`entry_values`] lists them.
pub(crate) const APPEND: &str = "INSERT INTO change_log (at, actor_kind, actor_id, actor_name, source, entity, \
     entity_id, operation, customer_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// The values of one entry, in the order of [`APPEND`].
pub(crate) struct EntryValues {
    pub at: i64,
    pub actor_kind: &'static str,
    pub actor_id: Option<i64>,
    pub actor_name: String,
    pub source: &'static str,
    pub entity: &'static str,
    pub entity_id: Option<i64>,
    pub operation: &'static str,
    pub customer_id: Option<i64>,
    pub detail: Option<String>,
}

pub(crate) fn entry_values(actor: &Actor, change: &Change) -> EntryValues {
    EntryValues {
        at: now_micros(),
        actor_kind: actor.kind.as_str(),
        actor_id: actor.id,
        actor_name: actor.name.clone(),
        source: actor.source.as_str(),
        entity: change.entity.as_str(),
        entity_id: change.entity_id,
        operation: change.operation.as_str(),
        customer_id: change.customer_id.map(|c| c.0),
        detail: change.detail.clone(),
    }
}

/// A stored change-log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor_kind: tenure_domain::changes::ActorKind,
    pub actor_id: Option<i64>,
    pub actor_name: String,
    pub source: tenure_domain::changes::Source,
    pub change: Change,
}

fn record_from_row(row: &AnyRow) -> StoreResult<ChangeRecord> {
    Ok(ChangeRecord {
        id: row.try_get("id")?,
        at: time(row, "at")?,
        actor_kind: parsed(row, "actor_kind")?,
        actor_id: row.try_get("actor_id")?,
        actor_name: row.try_get("actor_name")?,
        source: parsed(row, "source")?,
        change: Change {
            entity: parsed(row, "entity")?,
            entity_id: row.try_get("entity_id")?,
            operation: parsed(row, "operation")?,
            customer_id: row
                .try_get::<Option<i64>, _>("customer_id")?
                .map(CustomerId),
            detail: row.try_get("detail")?,
        },
    })
}

impl WriteTx<'_> {
    /// Appends one entry to the change log.
    pub async fn append_change(&mut self, actor: &Actor, change: &Change) -> StoreResult<()> {
        let v = entry_values(actor, change);
        sqlx::query(APPEND)
            .bind(v.at)
            .bind(v.actor_kind)
            .bind(v.actor_id)
            .bind(v.actor_name)
            .bind(v.source)
            .bind(v.entity)
            .bind(v.entity_id)
            .bind(v.operation)
            .bind(v.customer_id)
            .bind(v.detail)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

/// Which change-log entries to list.
#[derive(Debug, Clone, Default)]
pub struct ChangeFilter {
    pub customer_id: Option<CustomerId>,
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

impl Store {
    /// Change-log entries in the order they were written, after entry `after`.
    pub async fn changes(
        &self,
        filter: &ChangeFilter,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Page<ChangeRecord, i64>> {
        let mut s = Select::new(
            "SELECT id, at, actor_kind, actor_id, actor_name, source, entity, entity_id, operation, \
             customer_id, detail FROM change_log",
        );
        if let Some(c) = filter.customer_id {
            s.filter("customer_id = {}", c.0)?;
        }
        if let Some(t) = filter.since {
            s.filter("at >= {}", t.timestamp_micros())?;
        }
        if let Some(a) = after {
            s.filter("id > {}", a)?;
        }
        let limit = i64::from(limit.clamp(1, 1000));
        let (sql, args) = s.finish("ORDER BY id", limit + 1)?;
        let rows = sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
            .fetch_all(self.pool())
            .await?;
        let items = rows
            .iter()
            .map(record_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::cut(items, limit, |r| r.id))
    }
}
