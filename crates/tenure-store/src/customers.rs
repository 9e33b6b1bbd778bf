//! Customers: create, read, update, delete, list with filters, search; their tags, search
//! terms and consent history, written in the same transaction as the customer row.

use chrono::NaiveDate;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{AssertSqlSafe, Row};
use tenure_domain::customer::{
    Consent, ConsentChange, Customer, CustomerData, CustomerKind, CustomerPatch, CustomerStats,
    apply_consents, search_terms,
};
use tenure_domain::ids::{AccountId, CustomerId, StaffUserId};
use tenure_domain::search::{prefix_upper_bound, query_prefixes};

use crate::Page;
use crate::decode::{json, parsed};
use crate::sql::{Bulk, Select, add_arg as add};
use crate::sql::{Table, require};
use crate::time::{now_micros, opt_time, time};
use crate::{Store, StoreError, StoreResult, WriteTx};

/// What a customer list is filtered by. All given filters must hold.
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    /// Free text: partial names (any script), email, phone, external id.
    pub q: Option<String>,
    pub kind: Option<CustomerKind>,
    pub tag: Option<String>,
    pub account_id: Option<AccountId>,
    pub owner_id: Option<StaffUserId>,
    pub external_id: Option<String>,
    pub email: Option<String>,
    /// Bounds (inclusive) on the stored predictions: customers without a prediction match
    /// none of them.
    pub clv_min: Option<f64>,
    pub clv_max: Option<f64>,
    pub p_alive_min: Option<f64>,
    pub p_alive_max: Option<f64>,
    /// Without `q`: newest customers first (highest id), instead of oldest first.
    pub newest_first: bool,
}

pub(crate) const CUSTOMER_SELECT: &str = "SELECT c.id, c.external_id, c.kind, c.name, c.email, c.phone, c.birthday, \
     c.locale, c.region, c.acquisition_source, c.acquisition_channel, c.account_id, c.owner_id, c.tags, \
     c.contact_points, c.preferences, c.custom_fields, c.consents, c.created_at, c.updated_at, c.version, \
     s.first_purchase_at, s.last_purchase_at, s.orders_count, s.purchase_days, s.total_spend_minor, \
     s.repeat_spend_minor, s.interactions_count, s.last_contact_at \
     FROM customers c JOIN customer_stats s ON s.customer_id = c.id";

/// The same columns, reached from the search index.
const CUSTOMER_SEARCH_SELECT: &str = "SELECT c.id, c.external_id, c.kind, c.name, c.email, c.phone, c.birthday, \
     c.locale, c.region, c.acquisition_source, c.acquisition_channel, c.account_id, c.owner_id, c.tags, \
     c.contact_points, c.preferences, c.custom_fields, c.consents, c.created_at, c.updated_at, c.version, \
     s.first_purchase_at, s.last_purchase_at, s.orders_count, s.purchase_days, s.total_spend_minor, \
     s.repeat_spend_minor, s.interactions_count, s.last_contact_at, t.term AS match_term \
     FROM customer_search_terms t JOIN customers c ON c.id = t.customer_id \
     JOIN customer_stats s ON s.customer_id = c.id";

pub use tenure_domain::search::SearchPosition;

/// Filters shared by listing and searching.
fn add_filters(s: &mut Select, filter: &CustomerFilter) -> StoreResult<()> {
    if let Some(k) = filter.kind {
        s.filter("c.kind = {}", k.as_str().to_owned())?;
    }
    if let Some(t) = &filter.tag {
        s.filter(
            "EXISTS (SELECT 1 FROM customer_tags ct WHERE ct.tag = {} AND ct.customer_id = c.id)",
            t.clone(),
        )?;
    }
    if let Some(a) = filter.account_id {
        s.filter("c.account_id = {}", a.0)?;
    }
    if let Some(o) = filter.owner_id {
        s.filter("c.owner_id = {}", o.0)?;
    }
    if let Some(x) = &filter.external_id {
        s.filter("c.external_id = {}", x.clone())?;
    }
    if let Some(e) = &filter.email {
        s.filter("c.email = {}", e.clone())?;
    }
    for (bound, condition) in [
        (
            filter.clv_min,
            "EXISTS (SELECT 1 FROM customer_predictions p WHERE p.customer_id = c.id AND p.clv >= {})",
        ),
        (
            filter.clv_max,
            "EXISTS (SELECT 1 FROM customer_predictions p WHERE p.customer_id = c.id AND p.clv <= {})",
        ),
        (
            filter.p_alive_min,
            "EXISTS (SELECT 1 FROM customer_predictions p WHERE p.customer_id = c.id AND p.p_alive >= {})",
        ),
        (
            filter.p_alive_max,
            "EXISTS (SELECT 1 FROM customer_predictions p WHERE p.customer_id = c.id AND p.p_alive <= {})",
        ),
    ] {
        if let Some(v) = bound {
            s.filter(condition, v)?;
        }
    }
    Ok(())
}

pub(crate) fn customer_from_row(row: &AnyRow) -> StoreResult<Customer> {
    let birthday: Option<String> = row.try_get("birthday")?;
    let birthday = birthday
        .map(|b| {
            NaiveDate::parse_from_str(&b, "%Y-%m-%d")
                .map_err(|e| StoreError::corrupt("birthday", e.to_string()))
        })
        .transpose()?;
    let data = CustomerData {
        kind: parsed(row, "kind")?,
        name: row.try_get("name")?,
        external_id: row.try_get("external_id")?,
        email: row.try_get("email")?,
        phone: row.try_get("phone")?,
        birthday,
        locale: row.try_get("locale")?,
        region: row.try_get("region")?,
        acquisition_source: row.try_get("acquisition_source")?,
        acquisition_channel: row.try_get("acquisition_channel")?,
        account_id: row.try_get::<Option<i64>, _>("account_id")?.map(AccountId),
        owner_id: row.try_get::<Option<i64>, _>("owner_id")?.map(StaffUserId),
        tags: json(row, "tags")?,
        contact_points: json(row, "contact_points")?,
        preferences: json(row, "preferences")?,
        custom_fields: json(row, "custom_fields")?,
    };
    Ok(Customer {
        id: CustomerId(row.try_get("id")?),
        data,
        consents: json::<Vec<Consent>>(row, "consents")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        version: row.try_get("version")?,
        stats: CustomerStats {
            first_purchase_at: opt_time(row, "first_purchase_at")?,
            last_purchase_at: opt_time(row, "last_purchase_at")?,
            orders_count: row.try_get("orders_count")?,
            purchase_days: row.try_get("purchase_days")?,
            total_spend_minor: row.try_get("total_spend_minor")?,
            repeat_spend_minor: row.try_get("repeat_spend_minor")?,
            interactions_count: row.try_get("interactions_count")?,
            last_contact_at: opt_time(row, "last_contact_at")?,
        },
    })
}

/// One stored value of a customer's writable columns.
pub(crate) enum Field {
    Text(Option<String>),
    Int(Option<i64>),
}

/// The 16 writable columns of a customer, in the order every statement lists them:
/// external_id, kind, name, email, phone, birthday, locale, region, acquisition_source,
/// acquisition_channel, account_id, owner_id, tags, contact_points, preferences,
/// custom_fields.
pub(crate) fn fields(d: &CustomerData) -> [Field; 16] {
    use Field::{Int, Text};
    [
        Text(d.external_id.clone()),
        Text(Some(d.kind.as_str().to_owned())),
        Text(Some(d.name.clone())),
        Text(d.email.clone()),
        Text(d.phone.clone()),
        Text(d.birthday.map(|b| b.format("%Y-%m-%d").to_string())),
        Text(d.locale.clone()),
        Text(d.region.clone()),
        Text(d.acquisition_source.clone()),
        Text(d.acquisition_channel.clone()),
        Int(d.account_id.map(|a| a.0)),
        Int(d.owner_id.map(|o| o.0)),
        Text(Some(to_json(&d.tags))),
        Text(Some(to_json(&d.contact_points))),
        Text(Some(to_json(&d.preferences))),
        Text(Some(to_json(&d.custom_fields))),
    ]
}

/// Adds the 16 writable columns of a customer (see [`fields`]).
fn add_fields(args: &mut AnyArguments, d: &CustomerData) -> StoreResult<()> {
    for f in fields(d) {
        match f {
            Field::Text(t) => add(args, t)?,
            Field::Int(i) => add(args, i)?,
        }
    }
    Ok(())
}

fn field_args(d: &CustomerData) -> StoreResult<AnyArguments> {
    let mut args = AnyArguments::default();
    add_fields(&mut args, d)?;
    Ok(args)
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    // Serialising plain data (strings, maps of JSON values) into a String cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

impl WriteTx<'_> {
    /// Creates a customer with its tags, search terms, consent history and an empty
    /// aggregate row.
    pub async fn create_customer(
        &mut self,
        data: &CustomerData,
        consents: &[ConsentChange],
    ) -> StoreResult<Customer> {
        check_references(&mut self.tx, data).await?;
        let now = now_micros();
        let mut current = Vec::new();
        apply_consents(&mut current, consents);
        let backend = self.backend();
        let id = backend.reserve_id(&mut self.tx, "customers").await?;
        let mut args = field_args(data)?;
        add(&mut args, to_json(&current))?;
        add(&mut args, now)?;
        add(&mut args, id)?;
        sqlx::query_with(
            "INSERT INTO customers (external_id, kind, name, email, phone, birthday, locale, region, \
             acquisition_source, acquisition_channel, account_id, owner_id, tags, contact_points, preferences, \
             custom_fields, consents, created_at, updated_at, version, id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18, 1, $19)",
            args,
        )
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("INSERT INTO customer_stats (customer_id) VALUES ($1)")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        let keys = write_index(&mut self.tx, id, data, None).await?;
        self.key_changes.extend(keys);
        record_consents(&mut self.tx, id, consents).await?;
        fetch(&mut self.tx, CustomerId(id)).await
    }

    /// Applies a patch. With `expected_version` the update happens only if the customer is
    /// still at that version; without it, the patch applies to whatever is current.
    pub async fn update_customer(
        &mut self,
        id: CustomerId,
        patch: &CustomerPatch,
        expected_version: Option<i64>,
    ) -> StoreResult<Customer> {
        let before = fetch_for_update(self, id).await?;
        if let Some(v) = expected_version
            && v != before.version
        {
            return Err(StoreError::VersionMismatch {
                current: before.version,
            });
        }
        let mut data = before.data.clone();
        patch.apply(&mut data);
        check_references(&mut self.tx, &data).await?;
        let mut consents = before.consents.clone();
        apply_consents(&mut consents, &patch.consents);
        let keys = rewrite(&mut self.tx, id, &data, &consents, &before.data).await?;
        self.key_changes.extend(keys);
        record_consents(&mut self.tx, id.0, &patch.consents).await?;
        fetch(&mut self.tx, id).await
    }

    /// Deletes a customer and everything that belongs to them, in every table of the
    /// registry (see [`crate::registry`]).
    pub async fn delete_customer(&mut self, id: CustomerId) -> StoreResult<()> {
        if !self.lock(Table::Customers, id.0).await? {
            return Err(StoreError::NotFound { what: "customer" });
        }
        let keys = delete_tx(&mut self.tx, id, false).await?;
        self.key_changes.extend(keys);
        Ok(())
    }

    /// Inserts many customers at once (tags, search terms and aggregate rows included),
    /// with multi-row statements. For loading large data sets; ids are returned in input
    /// order.
    pub async fn insert_customers(
        &mut self,
        batch: &[CustomerData],
    ) -> StoreResult<Vec<CustomerId>> {
        let backend = self.backend();
        let ids = insert_customers_tx(&mut self.tx, backend, batch).await?;
        for (d, id) in batch.iter().zip(&ids) {
            self.key_changes
                .extend(key_changes(id.0, &[], &search_terms(d)));
        }
        Ok(ids)
    }

    /// A customer as this transaction sees it.
    pub async fn get_customer(&mut self, id: CustomerId) -> StoreResult<Customer> {
        fetch(&mut self.tx, id).await
    }
}

impl Store {
    /// Every customer in id order, read as the stream is consumed.
    pub fn stream_customers(&self) -> impl futures_util::Stream<Item = StoreResult<Customer>> + '_ {
        use futures_util::StreamExt;
        sqlx::query(AssertSqlSafe(format!("{CUSTOMER_SELECT} ORDER BY c.id")))
            .fetch(self.pool())
            .map(|row| customer_from_row(&row?))
    }

    /// `NotFound` unless the customer exists.
    pub async fn require_customer(&self, id: CustomerId) -> StoreResult<()> {
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM customers WHERE id = $1")
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?;
        exists
            .map(|_| ())
            .ok_or(StoreError::NotFound { what: "customer" })
    }

    /// The customers with these ids (those that exist), in id order.
    pub async fn customers_by_ids(&self, ids: &[i64]) -> StoreResult<Vec<Customer>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut s = Select::new(CUSTOMER_SELECT);
            s.filter_in("c.id IN ({})", chunk)?;
            let (sql, args) = s.finish_unbounded("ORDER BY c.id");
            let rows = sqlx::query_with(AssertSqlSafe(sql), args)
                .fetch_all(self.pool())
                .await?;
            for r in &rows {
                out.push(customer_from_row(r)?);
            }
        }
        out.sort_by_key(|c| c.id);
        Ok(out)
    }

    pub async fn get_customer(&self, id: CustomerId) -> StoreResult<Customer> {
        let row = sqlx::query(AssertSqlSafe(format!("{CUSTOMER_SELECT} WHERE c.id = $1")))
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound { what: "customer" })?;
        customer_from_row(&row)
    }

    pub async fn find_customer_by_external_id(
        &self,
        external_id: &str,
    ) -> StoreResult<Option<Customer>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "{CUSTOMER_SELECT} WHERE c.external_id = $1"
        )))
        .bind(external_id.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(customer_from_row).transpose()
    }

    /// Lists customers in id order, after `after`, matching every given filter. A
    /// free-text `q` is answered by [`Store::search_customers`] instead.
    pub async fn list_customers(
        &self,
        filter: &CustomerFilter,
        after: Option<CustomerId>,
        limit: u32,
    ) -> StoreResult<Page<Customer, CustomerId>> {
        let mut s = Select::new(CUSTOMER_SELECT);
        if let Some(a) = after {
            if filter.newest_first {
                s.filter("c.id < {}", a.0)?;
            } else {
                s.filter("c.id > {}", a.0)?;
            }
        }
        add_filters(&mut s, filter)?;
        let limit = i64::from(limit.clamp(1, 1000));
        let order = if filter.newest_first {
            "ORDER BY c.id DESC"
        } else {
            "ORDER BY c.id"
        };
        let (sql, args) = s.finish(order, limit + 1)?;
        let rows = sqlx::query_with(AssertSqlSafe(sql), args)
            .fetch_all(self.reader())
            .await?;
        let items = rows
            .iter()
            .map(customer_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::cut(items, limit, |c| c.id))
    }

    /// Searches customers by `filter.q` (partial names in any script, email, phone,
    /// external id), also applying the other filters.
    ///
    /// Results come in the order of the matching term, then id: the scan walks the term
    /// index from the query's prefix and stops after `limit` customers, so its cost does
    /// not grow with the number of matches. Each customer appears once, at their first
    /// matching term.
    pub async fn search_customers(
        &self,
        filter: &CustomerFilter,
        after: Option<SearchPosition>,
        limit: u32,
    ) -> StoreResult<Page<Customer, SearchPosition>> {
        let mut parts = query_prefixes(filter.q.as_deref().unwrap_or(""));
        // The longest part is likely the most selective: it drives the scan.
        parts.sort_by_key(|p| std::cmp::Reverse(p.chars().count()));
        let Some((driver, others)) = parts.split_first() else {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        };
        let mut s = Select::new(CUSTOMER_SEARCH_SELECT);
        let upper = prefix_upper_bound(driver).unwrap_or_else(|| "\u{10FFFF}".repeat(2));
        s.filter2("t.term >= {1} AND t.term < {2}", driver.clone(), upper)?;
        s.filter(
            "NOT EXISTS (SELECT 1 FROM customer_search_terms d WHERE d.customer_id = t.customer_id \
             AND d.term >= {} AND d.term < t.term)",
            driver.clone(),
        )?;
        if let Some(a) = after {
            s.filter2(
                "(t.term > {1} OR (t.term = {1} AND t.customer_id > {2}))",
                a.term,
                a.id.0,
            )?;
        }
        for p in others {
            let upper = prefix_upper_bound(p).unwrap_or_else(|| "\u{10FFFF}".repeat(2));
            s.filter2(
                "EXISTS (SELECT 1 FROM customer_search_terms e WHERE e.customer_id = t.customer_id \
                 AND e.term >= {1} AND e.term < {2})",
                p.clone(),
                upper,
            )?;
        }
        add_filters(&mut s, filter)?;
        let limit = i64::from(limit.clamp(1, 1000));
        let (sql, args) = s.finish("ORDER BY t.term, t.customer_id", limit + 1)?;
        let rows = sqlx::query_with(AssertSqlSafe(sql), args)
            .fetch_all(self.reader())
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        let mut last = None;
        for row in rows.iter().take(limit as usize) {
            let c = customer_from_row(row)?;
            last = Some(SearchPosition {
                term: row.try_get("match_term")?,
                id: c.id,
            });
            items.push(c);
        }
        let next = if rows.len() as i64 > limit {
            last
        } else {
            None
        };
        Ok(Page { items, next })
    }
}

/// Inserts customers with their tags, search terms and aggregate rows inside `tx`.
pub(crate) async fn insert_customers_tx(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: crate::Backend,
    batch: &[CustomerData],
) -> StoreResult<Vec<CustomerId>> {
    let ids = backend.reserve_ids(tx, "customers", batch.len()).await?;
    let now = now_micros();
    let mut customers = Bulk::new(
        backend,
        "INSERT INTO customers (id, external_id, kind, name, email, phone, birthday, locale, region, \
         acquisition_source, acquisition_channel, account_id, owner_id, tags, contact_points, preferences, \
         custom_fields, consents, created_at, updated_at)",
        20,
    );
    let mut stats = Bulk::new(backend, "INSERT INTO customer_stats (customer_id)", 1);
    let mut tags = Bulk::new(backend, "INSERT INTO customer_tags (tag, customer_id)", 2);
    let mut terms = Bulk::new(
        backend,
        "INSERT INTO customer_search_terms (term, customer_id)",
        2,
    );
    for (d, &id) in batch.iter().zip(&ids) {
        customers
            .row(tx, |r| {
                r.add(id)?;
                add_fields(r.args(), d)?;
                r.add("[]".to_owned())?;
                r.add(now)?;
                r.add(now)
            })
            .await?;
    }
    customers.flush(tx).await?;
    for &id in &ids {
        stats.row(tx, |r| r.add(id)).await?;
    }
    stats.flush(tx).await?;
    // The derived rows go in key order: each index page is then visited once per batch
    // instead of once per customer, which is what keeps large loads fast.
    let mut tag_rows: Vec<(&str, i64)> = batch
        .iter()
        .zip(&ids)
        .flat_map(|(d, &id)| d.tags.iter().map(move |t| (t.as_str(), id)))
        .collect();
    tag_rows.sort_unstable();
    for (t, id) in tag_rows {
        tags.row(tx, |r| {
            r.add(t.to_owned())?;
            r.add(id)
        })
        .await?;
    }
    tags.flush(tx).await?;
    let mut term_rows: Vec<(String, i64)> = batch
        .iter()
        .zip(&ids)
        .flat_map(|(d, &id)| search_terms(d).into_iter().map(move |t| (t, id)))
        .collect();
    term_rows.sort_unstable();
    for (t, id) in term_rows {
        terms
            .row(tx, |r| {
                r.add(t)?;
                r.add(id)
            })
            .await?;
    }
    terms.flush(tx).await?;
    Ok(ids.into_iter().map(CustomerId).collect())
}

/// Checks that the account and owner a customer points at exist, with a field-level error.
async fn check_references(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    data: &CustomerData,
) -> StoreResult<()> {
    if let Some(a) = data.account_id {
        require(tx, Table::Accounts, a.0, "account_id").await?;
    }
    if let Some(o) = data.owner_id {
        require(tx, Table::StaffUsers, o.0, "owner_id").await?;
    }
    Ok(())
}

pub(crate) async fn fetch(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: CustomerId,
) -> StoreResult<Customer> {
    let row = sqlx::query(AssertSqlSafe(format!("{CUSTOMER_SELECT} WHERE c.id = $1")))
        .bind(id.0)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound { what: "customer" })?;
    customer_from_row(&row)
}

/// Reads a customer and, on PostgreSQL, locks the row until the transaction ends.
pub(crate) async fn fetch_for_update(w: &mut WriteTx<'_>, id: CustomerId) -> StoreResult<Customer> {
    w.lock(Table::Customers, id.0).await?;
    fetch(&mut w.tx, id).await
}

/// Replaces a customer's profile and consents (bumping its version) and re-indexes it;
/// returns the match keys gained and lost.
pub(crate) async fn rewrite(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: CustomerId,
    data: &CustomerData,
    consents: &[Consent],
    before: &CustomerData,
) -> StoreResult<Vec<KeyChange>> {
    let mut args = field_args(data)?;
    add(&mut args, to_json(&consents))?;
    add(&mut args, now_micros())?;
    add(&mut args, id.0)?;
    sqlx::query_with(
        "UPDATE customers SET external_id = $1, kind = $2, name = $3, email = $4, phone = $5, birthday = $6, \
         locale = $7, region = $8, acquisition_source = $9, acquisition_channel = $10, account_id = $11, \
         owner_id = $12, tags = $13, contact_points = $14, preferences = $15, custom_fields = $16, \
         consents = $17, updated_at = $18, version = version + 1 WHERE id = $19",
        args,
    )
    .execute(&mut **tx)
    .await?;
    write_index(tx, id.0, data, Some(before)).await
}

/// Inserts a customer row with a given id and creation time (a merge being undone), with
/// its index and an aggregate row to be recomputed; returns the match keys gained.
pub(crate) async fn reinsert(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: CustomerId,
    data: &CustomerData,
    consents: &[Consent],
    created_at: i64,
) -> StoreResult<Vec<KeyChange>> {
    check_references(tx, data).await?;
    let mut args = AnyArguments::default();
    add(&mut args, id.0)?;
    add_fields(&mut args, data)?;
    add(&mut args, to_json(&consents))?;
    add(&mut args, created_at)?;
    add(&mut args, now_micros())?;
    sqlx::query_with(
        "INSERT INTO customers (id, external_id, kind, name, email, phone, birthday, locale, region, \
         acquisition_source, acquisition_channel, account_id, owner_id, tags, contact_points, preferences, \
         custom_fields, consents, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, 1)",
        args,
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO customer_stats (customer_id) VALUES ($1)")
        .bind(id.0)
        .execute(&mut **tx)
        .await?;
    write_index(tx, id.0, data, None).await
}

/// Deletes a customer's rows from every table of the registry, children first, then the
/// customer row; returns the match keys lost. A merge keeps the records (merge records,
/// aliases) it re-points instead.
pub(crate) async fn delete_tx(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: CustomerId,
    keep_records: bool,
) -> StoreResult<Vec<KeyChange>> {
    let keys = stored_keys(tx, id).await?;
    if !keep_records {
        crate::privacy::scrub_logs(tx, id).await?;
    }
    delete_belongings(tx, id, keep_records).await?;
    let n = sqlx::query("DELETE FROM customers WHERE id = $1")
        .bind(id.0)
        .execute(&mut **tx)
        .await?;
    if n.rows_affected() == 0 {
        return Err(StoreError::NotFound { what: "customer" });
    }
    Ok(key_changes(id.0, &keys, &[]))
}

/// Deletes what belongs to a customer in every registered table but the customer row and
/// the change log. Many of these tables carry no foreign key (bulk loads do not pay a
/// per-row check, and a distributed database may not enforce one), so nothing is left to
/// a cascade.
async fn delete_belongings(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: CustomerId,
    keep_records: bool,
) -> StoreResult<()> {
    for table in crate::registry::CUSTOMER_TABLES.iter().rev() {
        if let Some(sql) = table.delete_sql(keep_records) {
            sqlx::query(AssertSqlSafe(sql))
                .bind(id.0)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

/// A match key a customer gained or lost in a write: the duplicate candidates of the
/// key's other holders may change with it (see `WriteTx::take_key_changes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChange {
    pub key: String,
    pub customer: CustomerId,
    /// Gained (true) or lost.
    pub joined: bool,
}

/// The match-key changes between two sets of search terms.
pub(crate) fn key_changes(id: i64, before: &[String], after: &[String]) -> Vec<KeyChange> {
    let is_key = |t: &&String| t.starts_with(tenure_domain::duplicates::KEY_PREFIX);
    let mut out: Vec<KeyChange> = before
        .iter()
        .filter(is_key)
        .filter(|k| !after.contains(k))
        .map(|k| KeyChange {
            key: k.clone(),
            customer: CustomerId(id),
            joined: false,
        })
        .collect();
    out.extend(
        after
            .iter()
            .filter(is_key)
            .filter(|k| !before.contains(k))
            .map(|k| KeyChange {
                key: k.clone(),
                customer: CustomerId(id),
                joined: true,
            }),
    );
    out
}

/// Rewrites a customer's tags and search terms when they changed; returns the match keys
/// gained and lost.
async fn write_index(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: i64,
    data: &CustomerData,
    before: Option<&CustomerData>,
) -> StoreResult<Vec<KeyChange>> {
    if before.is_none_or(|b| b.tags != data.tags) {
        if before.is_some() {
            sqlx::query("DELETE FROM customer_tags WHERE customer_id = $1")
                .bind(id)
                .execute(&mut **tx)
                .await?;
        }
        for tag in &data.tags {
            sqlx::query("INSERT INTO customer_tags (tag, customer_id) VALUES ($1, $2)")
                .bind(tag.clone())
                .bind(id)
                .execute(&mut **tx)
                .await?;
        }
    }
    let terms = search_terms(data);
    let old_terms = before.map(search_terms).unwrap_or_default();
    let changes = key_changes(id, &old_terms, &terms);
    if before.is_none() || old_terms != terms {
        if before.is_some() {
            sqlx::query("DELETE FROM customer_search_terms WHERE customer_id = $1")
                .bind(id)
                .execute(&mut **tx)
                .await?;
        }
        for term in terms {
            sqlx::query("INSERT INTO customer_search_terms (term, customer_id) VALUES ($1, $2)")
                .bind(term)
                .bind(id)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(changes)
}

/// A customer's match keys as stored.
pub(crate) async fn stored_keys(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: CustomerId,
) -> StoreResult<Vec<String>> {
    let (lo, hi) = tenure_domain::duplicates::key_range();
    Ok(sqlx::query_scalar(
        "SELECT term FROM customer_search_terms WHERE customer_id = $1 AND term >= $2 AND term < $3 \
         ORDER BY term",
    )
    .bind(id.0)
    .bind(lo)
    .bind(hi)
    .fetch_all(&mut **tx)
    .await?)
}

async fn record_consents(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: i64,
    changes: &[ConsentChange],
) -> StoreResult<()> {
    for c in changes {
        sqlx::query("INSERT INTO consent_events (customer_id, channel, status, source, at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(c.channel.as_str())
            .bind(c.status.as_str())
            .bind(c.source.clone())
            .bind(c.at.timestamp_micros())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
