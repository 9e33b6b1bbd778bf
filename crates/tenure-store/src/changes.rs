//! The change log: one row per domain event, appended in the transaction of the write that
//! emitted it, so a rolled-back write leaves no entry and a committed one exactly one.

use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::{AnyRow, AnyTypeInfoKind};
use tenure_domain::changes::{Actor, Change, Entity, Operation};
use tenure_domain::ids::CustomerId;

use crate::decode::parsed;
use crate::sql::Select;
use crate::time::{now_micros, time};
use crate::{Page, Store, StoreResult, WriteTx};

/// The statement every connection kind appends with, binding `$1..$10` as
/// [`entry_values`] lists them.
pub(crate) const APPEND: &str = "INSERT INTO change_log (at, actor_kind, actor_id, actor_name, source, entity, \
     entity_id, operation, customer_id, detail, fields) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

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
    /// The fields the change set, with their values before and after (JSON).
    pub fields: Option<String>,
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
        fields: None,
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
    /// For a change to one record, each field it changed: `{"before": .., "after": ..}`
    /// (`before` missing when the record was last written before the audit log kept
    /// values; both cleared when the customer was erased).
    pub fields: Option<serde_json::Value>,
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
        fields: row
            .try_get::<Option<String>, _>("fields")?
            .map(|f| serde_json::from_str(&f))
            .transpose()
            .map_err(|e| crate::StoreError::corrupt("fields", e.to_string()))?,
    })
}

impl WriteTx<'_> {
    /// Appends one entry to the change log, with the values of the fields it changed when
    /// it is about one record the audit log follows.
    pub async fn append_change(&mut self, actor: &Actor, change: &Change) -> StoreResult<()> {
        let mut v = entry_values(actor, change);
        v.fields = self.audit_fields(change).await?;
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
            .bind(v.fields)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

/// Which change-log entries to list.
#[derive(Debug, Clone, Default)]
pub struct ChangeFilter {
    pub customer_id: Option<CustomerId>,
    /// Who acted: a user's or token's name as the entry records it.
    pub actor: Option<String>,
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    pub entity: Option<tenure_domain::changes::Entity>,
    /// Newest first (the cursor then counts down).
    pub newest_first: bool,
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
             customer_id, detail, fields FROM change_log",
        );
        if let Some(c) = filter.customer_id {
            s.filter("customer_id = {}", c.0)?;
        }
        if let Some(a) = &filter.actor {
            s.filter("actor_name = {}", a.clone())?;
        }
        if let Some(t) = filter.since {
            s.filter("at >= {}", t.timestamp_micros())?;
        }
        if let Some(t) = filter.until {
            s.filter("at < {}", t.timestamp_micros())?;
        }
        if let Some(e) = filter.entity {
            s.filter("entity = {}", e.as_str().to_owned())?;
        }
        let order = if filter.newest_first {
            if let Some(a) = after {
                s.filter("id < {}", a)?;
            }
            "ORDER BY id DESC"
        } else {
            if let Some(a) = after {
                s.filter("id > {}", a)?;
            }
            "ORDER BY id"
        };
        let limit = i64::from(limit.clamp(1, 1000));
        let (sql, args) = s.finish(order, limit + 1)?;
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

/// Where the audit log finds the record an entry is about: its table, the column it is
/// found by, and the columns never copied into the log (secrets, and times every write
/// moves).
struct Audited {
    table: &'static str,
    key: &'static str,
    hidden: &'static [&'static str],
}

/// The records whose values the audit log keeps, by what the change log calls them.
fn audited(entity: Entity) -> Option<Audited> {
    let (table, key, hidden): (_, _, &'static [&'static str]) = match entity {
        Entity::Customer => ("customers", "id", &["updated_at", "version"]),
        Entity::Order => ("orders", "id", &["updated_at"]),
        Entity::Interaction => ("interactions", "id", &["updated_at"]),
        Entity::Account => ("accounts", "id", &["updated_at"]),
        Entity::Product => ("products", "id", &["updated_at"]),
        Entity::Category => ("product_categories", "id", &[]),
        Entity::User => ("staff_users", "id", &["password_hash"]),
        Entity::Token => ("api_tokens", "id", &["token_hash"]),
        Entity::Segment => ("segments", "id", &["updated_at"]),
        Entity::Lifecycle => ("customer_lifecycle", "customer_id", &["updated_at"]),
        Entity::Loyalty => ("loyalty_accounts", "customer_id", &["updated_at"]),
        Entity::Reward => ("loyalty_rewards", "id", &["updated_at"]),
        Entity::Coupon => ("coupon_campaigns", "id", &["updated_at"]),
        Entity::Ticket => ("tickets", "id", &["updated_at"]),
        Entity::Task => ("tasks", "id", &["updated_at"]),
        Entity::Survey => ("surveys", "id", &["updated_at"]),
        Entity::Settings => ("settings", "name", &["updated_at"]),
        Entity::Webhook => ("webhook_endpoints", "id", &["updated_at", "secret"]),
        _ => return None,
    };
    Some(Audited { table, key, hidden })
}

/// One record's values as the audit log keeps them: column name to JSON value.
pub(crate) fn row_state(row: &AnyRow, hidden: &[&str]) -> StoreResult<Map<String, Value>> {
    use sqlx::{Column, ValueRef};
    let mut out = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let name = column.name();
        if hidden.contains(&name) {
            continue;
        }
        let raw = row.try_get_raw(i)?;
        let value = if raw.is_null() {
            Value::Null
        } else {
            match raw.type_info().kind() {
                AnyTypeInfoKind::Null | AnyTypeInfoKind::Blob => continue,
                AnyTypeInfoKind::Bool => Value::from(row.try_get::<bool, _>(i)?),
                AnyTypeInfoKind::SmallInt | AnyTypeInfoKind::Integer | AnyTypeInfoKind::BigInt => {
                    Value::from(row.try_get::<i64, _>(i)?)
                }
                AnyTypeInfoKind::Real | AnyTypeInfoKind::Double => {
                    serde_json::Number::from_f64(row.try_get::<f64, _>(i)?)
                        .map_or(Value::Null, Value::Number)
                }
                AnyTypeInfoKind::Text => Value::from(row.try_get::<String, _>(i)?),
            }
        };
        out.insert(name.to_owned(), value);
    }
    Ok(out)
}

/// The fields that differ between two states of a record, each as
/// `{"before": .., "after": ..}`; `before` is left out when the earlier state is not known.
pub fn field_changes(
    before: Option<&Map<String, Value>>,
    after: &Map<String, Value>,
) -> Map<String, Value> {
    let mut out = Map::new();
    let null = Value::Null;
    let mut names: Vec<&String> = after.keys().collect();
    if let Some(b) = before {
        names.extend(b.keys().filter(|k| !after.contains_key(*k)));
    }
    for name in names {
        let now = after.get(name).unwrap_or(&null);
        let change = match before {
            Some(b) => {
                let was = b.get(name).unwrap_or(&null);
                if was == now {
                    continue;
                }
                serde_json::json!({ "before": was, "after": now })
            }
            None if now.is_null() => continue,
            None => serde_json::json!({ "after": now }),
        };
        out.insert(name.clone(), change);
    }
    out
}

impl WriteTx<'_> {
    /// The fields a change set on its record, compared with what the record looked like
    /// after its previous change (kept in `audit_snapshots`, which this then updates):
    /// everything it holds for a create, what differs for an update, everything it held for
    /// a delete. `None` for changes to many rows or to nothing the audit log follows.
    async fn audit_fields(&mut self, change: &Change) -> StoreResult<Option<String>> {
        let Some(audited) = audited(change.entity) else {
            return Ok(None);
        };
        // Settings are found by name, every other record by its id.
        let (snapshot_entity, key): (String, KeyValue) = match change.entity {
            Entity::Settings => {
                let name = change
                    .detail
                    .as_deref()
                    .and_then(|d| serde_json::from_str::<Value>(d).ok())
                    .and_then(|d| d.get("name").and_then(Value::as_str).map(str::to_owned));
                let Some(name) = name else {
                    return Ok(None);
                };
                (format!("settings:{name}"), KeyValue::Text(name))
            }
            entity => match change.entity_id {
                Some(id) => (entity.as_str().to_owned(), KeyValue::Id(id)),
                None => return Ok(None),
            },
        };
        let snapshot_id = match &key {
            KeyValue::Id(id) => *id,
            KeyValue::Text(_) => 0,
        };
        let sql = format!("SELECT * FROM {} WHERE {} = $1", audited.table, audited.key);
        let query = sqlx::query(sqlx::AssertSqlSafe(sql));
        let row = match &key {
            KeyValue::Id(id) => query.bind(*id),
            KeyValue::Text(name) => query.bind(name.clone()),
        }
        .fetch_optional(&mut *self.tx)
        .await?;
        let after = row
            .as_ref()
            .map(|r| row_state(r, audited.hidden))
            .transpose()?;
        let before: Option<Map<String, Value>> = sqlx::query_scalar::<_, String>(
            "SELECT state FROM audit_snapshots WHERE entity = $1 AND entity_id = $2",
        )
        .bind(snapshot_entity.clone())
        .bind(snapshot_id)
        .fetch_optional(&mut *self.tx)
        .await?
        .and_then(|s| serde_json::from_str(&s).ok());
        let fields = match (&before, &after) {
            (_, Some(now)) => {
                let state = Value::Object(now.clone()).to_string();
                sqlx::query(
                    "INSERT INTO audit_snapshots (entity, entity_id, customer_id, state) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (entity, entity_id) \
                     DO UPDATE SET customer_id = excluded.customer_id, state = excluded.state",
                )
                .bind(snapshot_entity)
                .bind(snapshot_id)
                .bind(change.customer_id.map(|c| c.0))
                .bind(state)
                .execute(&mut *self.tx)
                .await?;
                let before = match change.operation {
                    // A new record had nothing before it.
                    Operation::Create => Some(Map::new()),
                    _ => before,
                };
                field_changes(before.as_ref(), now)
            }
            (Some(was), None) => {
                sqlx::query("DELETE FROM audit_snapshots WHERE entity = $1 AND entity_id = $2")
                    .bind(snapshot_entity)
                    .bind(snapshot_id)
                    .execute(&mut *self.tx)
                    .await?;
                let gone: Map<String, Value> =
                    was.keys().map(|k| (k.clone(), Value::Null)).collect();
                field_changes(Some(was), &gone)
            }
            (None, None) => return Ok(None),
        };
        Ok((!fields.is_empty()).then(|| Value::Object(fields).to_string()))
    }
}

enum KeyValue {
    Id(i64),
    Text(String),
}

impl WriteTx<'_> {
    /// Records that the request with `key` wrote, in the write's own transaction; `false`
    /// when the key is recorded already (this transaction must then be rolled back).
    pub async fn reserve_request_key(
        &mut self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, request_hash, response, created_at) \
             VALUES ($1, $2, $3, '', $4) ON CONFLICT (scope, key) DO NOTHING",
        )
        .bind(scope.to_owned())
        .bind(key.to_owned())
        .bind(fingerprint.to_owned())
        .bind(now.timestamp_micros())
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}

/// What is stored of a keyed request: the digest of what it asked and its answer (empty
/// while the answer is not stored yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRequest {
    pub fingerprint: String,
    pub response: String,
}

impl Store {
    pub async fn request_key(&self, scope: &str, key: &str) -> StoreResult<Option<StoredRequest>> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT request_hash, response FROM idempotency_keys WHERE scope = $1 AND key = $2",
        )
        .bind(scope.to_owned())
        .bind(key.to_owned())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(fingerprint, response)| StoredRequest {
            fingerprint,
            response,
        }))
    }

    /// Stores the answer to a keyed request whose write recorded the key.
    pub async fn answer_request_key(
        &self,
        scope: &str,
        key: &str,
        response: &str,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE idempotency_keys SET response = $3 WHERE scope = $1 AND key = $2")
            .bind(scope.to_owned())
            .bind(key.to_owned())
            .bind(response.to_owned())
            .execute(&mut *tx.tx)
            .await?;
        tx.commit().await
    }

    /// Forgets the keys of requests older than `before` (a day is what clients retry in).
    pub async fn forget_request_keys(
        &self,
        before: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope LIKE 'http:%' AND created_at < $1",
        )
        .bind(before.timestamp_micros())
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }
}
