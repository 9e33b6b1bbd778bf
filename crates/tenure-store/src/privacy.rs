//! Privacy requests: everything held about one customer, read from every table of the
//! registry; and erasure, which removes a customer's personal data from every one of those
//! tables while their orders, points and tickets stay, so totals, ledgers and reports do
//! not change.

use serde_json::{Map, Value};
use sqlx::AssertSqlSafe;
use tenure_domain::ids::CustomerId;

use crate::registry::{CUSTOMER_TABLES, CustomerTable, Ownership};
use crate::sql::Table;
use crate::{Store, StoreError, StoreResult, WriteTx};

/// What an erased customer's personal columns become: JSON documents become empty ones,
/// the customer's own optional fields become NULL, other text becomes empty (NULL stays
/// NULL), and a referral code, which must stay unique, names only the account.
fn erased_value(table: &CustomerTable, column: &str) -> std::borrow::Cow<'static, str> {
    let fixed = match (table.name, column) {
        (_, "tags" | "contact_points" | "consents" | "attachments") => "'[]'",
        (_, "preferences" | "custom_fields") => "'{}'",
        // A merge record's profiles stay readable (the merge can still be listed and
        // undone), holding nothing but an empty name.
        (_, "survivor_before" | "survivor_after" | "merged_profile") => {
            let empty = tenure_domain::duplicates::Profile {
                data: tenure_domain::customer::CustomerData::named(""),
                consents: Vec::new(),
            };
            let json = serde_json::to_string(&empty).unwrap_or_else(|_| "{}".into());
            return format!("'{}'", json.replace('\'', "''")).into();
        }
        ("customers", "name") => "''",
        ("customers", _) => "NULL",
        ("loyalty_accounts", "referral_code") => "('erased-' || CAST(customer_id AS TEXT))",
        (_, c) => match c {
            "override_note" | "address" | "body_html" | "comment" | "text"
            | "merged_external_id" | "fields" => "NULL",
            _ => "''",
        },
    };
    fixed.into()
}

/// Whether erasure deletes a table's rows of the customer rather than blanking them:
/// copies derived from the profile (tags, search terms), the aliases that are nothing but
/// old external ids, and the audit log's last-known values.
fn erased_by_delete(table: &CustomerTable) -> bool {
    matches!(
        table.name,
        "customer_tags" | "customer_search_terms" | "customer_aliases" | "audit_snapshots"
    )
}

/// The customers merged into `id`, and those merged into them, and so on: their history
/// (their change-log entries) now belongs to `id`.
async fn merged_into(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: CustomerId,
) -> StoreResult<Vec<i64>> {
    let mut all = vec![id.0];
    let mut next = 0;
    while next < all.len() && all.len() < 10_000 {
        let found: Vec<i64> =
            sqlx::query_scalar("SELECT merged_id FROM customer_merges WHERE survivor_id = $1")
                .bind(all[next])
                .fetch_all(&mut **tx)
                .await?;
        for f in found {
            if !all.contains(&f) {
                all.push(f);
            }
        }
        next += 1;
    }
    Ok(all)
}

/// Clears the personal values the logs hold about the customer (and the customers merged
/// into them): the logs keep that something was done, by whom and when, not what it was.
pub(crate) async fn scrub_logs(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: CustomerId,
) -> StoreResult<()> {
    let ids = merged_into(tx, id).await?;
    for table in CUSTOMER_TABLES
        .iter()
        .filter(|t| t.ownership == Ownership::Log && !t.personal.is_empty())
    {
        let sets: Vec<String> = table
            .personal
            .iter()
            .map(|c| format!("{c} = {}", erased_value(table, c)))
            .collect();
        for column in table.columns {
            for chunk in ids.chunks(500) {
                let params: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
                let sql = format!(
                    "UPDATE {} SET {} WHERE {column} IN ({})",
                    table.name,
                    sets.join(", "),
                    params.join(", ")
                );
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for i in chunk {
                    q = q.bind(*i);
                }
                q.execute(&mut **tx).await?;
            }
        }
    }
    Ok(())
}

impl WriteTx<'_> {
    /// Erases the customer's personal data in every table of the registry. Their id, their
    /// orders with amounts, their points, tickets, answers' scores and stage stay, so
    /// aggregates and ledger totals are what they were.
    pub async fn erase_customer(&mut self, id: CustomerId) -> StoreResult<()> {
        let exists = self.lock(Table::Customers, id.0).await?
            && sqlx::query_scalar::<_, i64>("SELECT id FROM customers WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&mut *self.tx)
                .await?
                .is_some();
        if !exists {
            return Err(StoreError::NotFound { what: "customer" });
        }
        let keys = crate::customers::stored_keys(&mut self.tx, id).await?;
        scrub_logs(&mut self.tx, id).await?;
        for table in CUSTOMER_TABLES.iter().rev() {
            if table.personal.is_empty() || table.ownership == Ownership::Log {
                continue;
            }
            let condition: Vec<String> =
                table.columns.iter().map(|c| format!("{c} = $1")).collect();
            let sql = if erased_by_delete(table) {
                format!(
                    "DELETE FROM {} WHERE {}",
                    table.name,
                    condition.join(" OR ")
                )
            } else {
                let sets: Vec<String> = table
                    .personal
                    .iter()
                    .map(|c| format!("{c} = {}", erased_value(table, c)))
                    .collect();
                format!(
                    "UPDATE {} SET {} WHERE {}",
                    table.name,
                    sets.join(", "),
                    condition.join(" OR ")
                )
            };
            sqlx::query(AssertSqlSafe(sql))
                .bind(id.0)
                .execute(&mut *self.tx)
                .await?;
        }
        self.key_changes
            .extend(crate::customers::key_changes(id.0, &keys, &[]));
        Ok(())
    }
}

/// Every table's rows of one customer, each row a JSON object of its columns.
pub type CustomerData = Vec<(&'static str, Vec<Map<String, Value>>)>;

impl Store {
    /// Everything held about a customer, table by table (the registry's tables; secrets
    /// are not among them). `NotFound` unless the customer exists.
    pub async fn customer_data(&self, id: CustomerId) -> StoreResult<CustomerData> {
        self.require_customer(id).await?;
        let mut out = Vec::new();
        for table in CUSTOMER_TABLES {
            let condition: Vec<String> =
                table.columns.iter().map(|c| format!("{c} = $1")).collect();
            let sql = format!(
                "SELECT * FROM {} WHERE {} ORDER BY 1",
                table.name,
                condition.join(" OR ")
            );
            let rows = sqlx::query(AssertSqlSafe(sql))
                .bind(id.0)
                .fetch_all(self.pool())
                .await?;
            let rows = rows
                .iter()
                .map(|r| crate::changes::row_state(r, &[]))
                .collect::<StoreResult<Vec<_>>>()?;
            out.push((table.name, rows));
        }
        Ok(out)
    }
}

impl Store {
    /// Customers with no purchase, contact or change since `before` (and created before
    /// it) who are not erased yet, the oldest first: those a retention period has run out
    /// for.
    pub async fn inactive_customers(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> StoreResult<Vec<CustomerId>> {
        let t = crate::to_micros(before);
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT c.id FROM customers c LEFT JOIN customer_stats s ON s.customer_id = c.id \
             WHERE c.created_at < $1 AND c.updated_at < $1 \
             AND COALESCE(s.last_purchase_at, 0) < $1 AND COALESCE(s.last_contact_at, 0) < $1 \
             AND NOT EXISTS (SELECT 1 FROM change_log l WHERE l.customer_id = c.id \
                             AND l.entity = 'customer' AND l.operation = 'erase') \
             ORDER BY c.id LIMIT $2",
        )
        .bind(t)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        Ok(ids.into_iter().map(CustomerId).collect())
    }
}
