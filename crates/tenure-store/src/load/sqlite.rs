//! Imports into a SQLite file through one plain connection with prepared single-row
//! statements, without the per-value cost of the generic driver (which made million-row
//! imports several times slower than SQLite itself). [`super::postgres`] is its PostgreSQL
//! twin: the same rows under the same rules.
//!
//! Each batch is one `BEGIN IMMEDIATE` transaction, taken while holding the store's writer
//! slot, so it serialises with every other write of this process and of others.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use tenure_domain::catalog::{OrderStatus, purchase_day};
use tenure_domain::customer::{CustomerData, search_terms};

use tenure_domain::changes::{Actor, Change, Entity};

use super::{
    BatchOutcome, CUSTOMER_COLUMNS, INTERACTION_COLUMNS, InteractionRow, ORDER_COLUMNS,
    OrderLineRow, ProductRow, PurchaseRow, add_created, batch_change, distinct, fresh_customers,
    placeholders, rebuild_chunks,
};
use crate::customers::{Field, fields};
use crate::time::now_micros;
use crate::{StoreResult, dialect};

/// `$n` placeholders of a shared statement as SQLite's `?n`.
fn positional(sql: &str) -> String {
    sql.replace('$', "?")
}

/// Appends a change-log entry inside the batch's transaction.
pub(crate) fn append_change(
    tx: &Transaction<'_>,
    actor: &Actor,
    change: &Change,
) -> StoreResult<()> {
    let v = crate::changes::entry_values(actor, change);
    tx.prepare_cached(&positional(crate::changes::APPEND))?
        .execute(params![
            v.at,
            v.actor_kind,
            v.actor_id,
            v.actor_name,
            v.source,
            v.entity,
            v.entity_id,
            v.operation,
            v.customer_id,
            v.detail,
            v.fields
        ])?;
    Ok(())
}

/// The file a `sqlite:` URL names; `None` for in-memory databases.
pub(crate) fn file_of(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.contains(":memory:")).then(|| path.to_owned())
}

/// Opens the import connection. Its CHECK constraints are not evaluated: every value it
/// writes into a checked column comes from a domain type that holds only allowed values
/// (a channel, a status, a kind), and SQLite evaluates an `IN (...)` check by building a
/// small table for every row, which doubled the cost of an insert. Its cache is a quarter
/// of a GiB, so that a load stays well under a GiB of memory.
pub(crate) fn open(path: &str) -> StoreResult<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; \
         PRAGMA foreign_keys = ON; PRAGMA cache_size = -262144; PRAGMA temp_store = FILE; \
         PRAGMA ignore_check_constraints = ON;",
    )?;
    Ok(conn)
}

fn begin(conn: &mut Connection) -> StoreResult<Transaction<'_>> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

fn to_sql(f: &Field) -> &dyn rusqlite::ToSql {
    match f {
        Field::Text(t) => t,
        Field::Int(i) => i,
    }
}

/// External id → customer id for those that exist, merged-away customers' external ids
/// included (they name the survivor).
fn customer_ids(tx: &Transaction<'_>, keys: &[&str]) -> StoreResult<HashMap<String, i64>> {
    let mut by_id = tx.prepare_cached("SELECT id FROM customers WHERE external_id = ?1")?;
    let mut by_alias =
        tx.prepare_cached("SELECT customer_id FROM customer_aliases WHERE external_id = ?1")?;
    let mut out = HashMap::with_capacity(keys.len());
    for k in keys {
        let id: Option<i64> = by_id.query_row([k], |r| r.get(0)).optional()?;
        let id = match id {
            Some(id) => Some(id),
            None => by_alias.query_row([k], |r| r.get(0)).optional()?,
        };
        if let Some(id) = id {
            out.insert((*k).to_owned(), id);
        }
    }
    Ok(out)
}

/// Inserts customers with their aggregate row, tags and search terms; returns their ids.
fn insert_customers(tx: &Transaction<'_>, batch: &[CustomerData]) -> StoreResult<Vec<i64>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let max: i64 = tx.query_row(dialect::SQLITE_LAST_CUSTOMER_ID, [], |r| r.get(0))?;
    let ids: Vec<i64> = (max + 1..=max + batch.len() as i64).collect();
    let now = now_micros();
    {
        let mut customer = tx.prepare_cached(&format!(
            "INSERT INTO customers ({CUSTOMER_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, '[]', ?18, ?18)"
        ))?;
        let mut stat = tx.prepare_cached("INSERT INTO customer_stats (customer_id) VALUES (?1)")?;
        for (d, &id) in batch.iter().zip(&ids) {
            let f = fields(d);
            let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(18);
            values.push(&id);
            values.extend(f.iter().map(to_sql));
            values.push(&now);
            customer.execute(values.as_slice())?;
            stat.execute([id])?;
        }
    }
    // Derived rows in key order: each index page is then visited once per batch.
    let mut tags: Vec<(&str, i64)> = batch
        .iter()
        .zip(&ids)
        .flat_map(|(d, &id)| d.tags.iter().map(move |t| (t.as_str(), id)))
        .collect();
    tags.sort_unstable();
    let mut tag =
        tx.prepare_cached("INSERT INTO customer_tags (tag, customer_id) VALUES (?1, ?2)")?;
    for (t, id) in tags {
        tag.execute(params![t, id])?;
    }
    let mut terms: Vec<(String, i64)> = batch
        .iter()
        .zip(&ids)
        .flat_map(|(d, &id)| search_terms(d).into_iter().map(move |t| (t, id)))
        .collect();
    let staged: i64 = tx.query_row(super::first::TERMS_STAGED, [], |r| r.get(0))?;
    let mut term = if staged > 0 {
        tx.prepare_cached("INSERT INTO first_load_terms (term, customer_id) VALUES (?1, ?2)")?
    } else {
        terms.sort_unstable();
        tx.prepare_cached("INSERT INTO customer_search_terms (term, customer_id) VALUES (?1, ?2)")?
    };
    for (t, id) in &terms {
        term.execute(params![t, id])?;
    }
    Ok(ids)
}

/// The ids of the customers these external ids name, creating placeholders for the unknown.
fn resolve_customers<'k>(
    tx: &Transaction<'_>,
    keys: impl Iterator<Item = &'k str>,
) -> StoreResult<(HashMap<String, i64>, u64)> {
    let keys = distinct(keys);
    let mut ids = customer_ids(tx, &keys)?;
    let missing = placeholders(keys.iter().copied(), &ids);
    let created = insert_customers(tx, &missing)?;
    add_created(&mut ids, &missing, &created);
    Ok((ids, created.len() as u64))
}

/// Recomputes the aggregates of the touched customers, unless a first load is under way
/// (it rebuilds everyone's once at its end).
fn rebuild_stats(tx: &Transaction<'_>, currency: &str, touched: Vec<i64>) -> StoreResult<()> {
    let first_load: i64 = tx.query_row(super::first::PENDING, [], |r| r.get(0))?;
    if first_load > 0 {
        return Ok(());
    }
    for (chunk, delete, insert) in rebuild_chunks(touched) {
        // `$n` would be a named parameter in SQLite; `?n` is the n-th.
        let mut delete = tx.prepare_cached(&positional(&delete))?;
        delete.execute(rusqlite::params_from_iter(&chunk))?;
        let mut insert = tx.prepare_cached(&positional(&insert))?;
        let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(chunk.len() + 2);
        let status = OrderStatus::Completed.as_str();
        values.push(&status);
        values.push(&currency);
        values.extend(chunk.iter().map(|i| i as &dyn rusqlite::ToSql));
        insert.execute(values.as_slice())?;
    }
    Ok(())
}

pub(crate) fn import_customers(
    conn: &mut Connection,
    batch: &[CustomerData],
    by: &Actor,
) -> StoreResult<BatchOutcome> {
    let tx = begin(conn)?;
    let keys = distinct(batch.iter().filter_map(|c| c.external_id.as_deref()));
    let fresh = fresh_customers(batch, &customer_ids(&tx, &keys)?);
    insert_customers(&tx, &fresh)?;
    let outcome = BatchOutcome::of(batch.len(), fresh.len() as u64, 0);
    append_change(&tx, by, &batch_change(Entity::Customer, &outcome))?;
    tx.commit()?;
    Ok(outcome)
}

/// A batch of rows that belong to customers named by external id (orders, interactions):
/// unknown customers are created, each row is written by `write` with the prepared
/// `insert` (it returns how many rows it wrote), and the touched customers' aggregates are
/// recomputed, all in one transaction.
/// How a batch's rows reach their table: the table, whose ids the rows name from its last
/// (see `dialect::SQLITE_LAST_ORDER_ID`), and the prepared insert.
struct Insert<'a> {
    table: Entity,
    last_id: &'static str,
    sql: &'a str,
}

/// Writes one row with the prepared statement: the row, its customer, its id and the time;
/// returns how many rows it wrote.
type WriteRow<'f, R> = dyn FnMut(&mut rusqlite::CachedStatement<'_>, &R, i64, i64, i64) -> rusqlite::Result<usize>
    + 'f;

fn import_for_customers<R>(
    conn: &mut Connection,
    currency: &str,
    batch: &[R],
    by: &Actor,
    customer: impl Fn(&R) -> &str,
    insert: Insert<'_>,
    write: &mut WriteRow<'_, R>,
) -> StoreResult<BatchOutcome> {
    let tx = begin(conn)?;
    let (ids, created) = resolve_customers(&tx, batch.iter().map(&customer))?;
    let now = now_micros();
    let mut touched = Vec::with_capacity(batch.len());
    {
        // Ids follow the highest ever used, never a deleted one; a row skipped as stored
        // already leaves its id unused.
        let mut next: i64 = tx.query_row(insert.last_id, [], |r| r.get(0))?;
        let mut statement = tx.prepare_cached(insert.sql)?;
        for r in batch {
            let Some(&id) = ids.get(customer(r)) else {
                continue;
            };
            next += 1;
            if write(&mut statement, r, id, next, now)? > 0 {
                touched.push(id);
            }
        }
    }
    let entity = insert.table;
    let inserted = touched.len() as u64;
    rebuild_stats(&tx, currency, touched)?;
    let outcome = BatchOutcome::of(batch.len(), inserted, created);
    append_change(&tx, by, &batch_change(entity, &outcome))?;
    tx.commit()?;
    Ok(outcome)
}

pub(crate) fn import_purchases(
    conn: &mut Connection,
    currency: &str,
    batch: &[PurchaseRow],
    by: &Actor,
) -> StoreResult<BatchOutcome> {
    import_for_customers(
        conn,
        currency,
        batch,
        by,
        |p| p.customer_external_id.as_str(),
        Insert {
            table: Entity::Order,
            last_id: dialect::SQLITE_LAST_ORDER_ID,
            sql: &format!(
                "INSERT INTO orders ({ORDER_COLUMNS}, created_at, updated_at, id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10) ON CONFLICT (external_id) DO NOTHING"
            ),
        },
        &mut |statement, p, customer, id, now| {
            statement.execute(params![
                p.order_external_id,
                customer,
                p.occurred_at.timestamp_micros(),
                purchase_day(p.occurred_at),
                p.currency,
                p.total_minor,
                p.channel.as_str(),
                p.status.as_str(),
                now,
                id
            ])
        },
    )
}

pub(crate) fn import_interactions(
    conn: &mut Connection,
    currency: &str,
    batch: &[InteractionRow],
    by: &Actor,
) -> StoreResult<BatchOutcome> {
    import_for_customers(
        conn,
        currency,
        batch,
        by,
        |i| i.customer_external_id.as_str(),
        Insert {
            table: Entity::Interaction,
            last_id: dialect::SQLITE_LAST_INTERACTION_ID,
            sql: &format!(
                "INSERT INTO interactions ({INTERACTION_COLUMNS}, created_at, id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT (external_id) DO NOTHING"
            ),
        },
        &mut |statement, i, customer, id, now| {
            let d = &i.data;
            statement.execute(params![
                i.external_id,
                customer,
                d.channel.as_str(),
                d.direction.as_str(),
                d.kind.as_str(),
                d.subject,
                d.body,
                d.staff_user_id.map(|s| s.0),
                i64::from(d.buying_signal),
                d.occurred_at.timestamp_micros(),
                now,
                id
            ])
        },
    )
}

pub(crate) fn import_order_lines(
    conn: &mut Connection,
    currency: &str,
    batch: &[OrderLineRow],
    by: &Actor,
) -> StoreResult<BatchOutcome> {
    let tx = begin(conn)?;
    let now = now_micros();
    let mut orders: HashMap<&str, Option<(i64, i64)>> = HashMap::new();
    let mut products: HashMap<&str, i64> = HashMap::new();
    let mut created = 0;
    let mut inserted = 0;
    let mut unknown_orders = Vec::new();
    {
        let mut find_order =
            tx.prepare_cached("SELECT id, customer_id FROM orders WHERE external_id = ?1")?;
        let mut find_product =
            tx.prepare_cached("SELECT id FROM products WHERE external_id = ?1")?;
        let mut new_product = tx.prepare_cached(
            "INSERT INTO products (external_id, name, currency, active, created_at, updated_at) \
             VALUES (?1, ?2, ?3, 1, ?4, ?4) RETURNING id",
        )?;
        let mut line = tx.prepare_cached(
            "INSERT INTO order_lines (order_id, customer_id, line_no, product_id, description, quantity, \
             unit_price_minor, total_minor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT (order_id, line_no) DO NOTHING",
        )?;
        for (i, l) in batch.iter().enumerate() {
            let key = l.order_external_id.as_str();
            let order = match orders.get(key) {
                Some(o) => *o,
                None => {
                    let o = find_order
                        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?;
                    orders.insert(key, o);
                    o
                }
            };
            let Some((order, customer)) = order else {
                unknown_orders.push(i);
                continue;
            };
            let product = match l.product_external_id.as_deref() {
                None => None,
                Some(p) => Some(match products.get(p) {
                    Some(id) => *id,
                    None => {
                        let found: Option<i64> =
                            find_product.query_row([p], |r| r.get(0)).optional()?;
                        let id = match found {
                            Some(id) => id,
                            None => {
                                created += 1;
                                new_product.query_row(
                                    params![p, format!("Product {p}"), currency, now],
                                    |r| r.get(0),
                                )?
                            }
                        };
                        products.insert(p, id);
                        id
                    }
                }),
            };
            inserted += line.execute(params![
                order,
                customer,
                l.line_no,
                product,
                l.description,
                l.quantity,
                l.unit_price_minor,
                l.total_minor
            ])? as u64;
        }
    }
    let outcome = BatchOutcome {
        inserted,
        skipped: (batch.len() - unknown_orders.len()) as u64 - inserted,
        customers_created: created,
        unknown_orders,
    };
    append_change(&tx, by, &batch_change(Entity::Order, &outcome))?;
    tx.commit()?;
    Ok(outcome)
}

pub(crate) fn import_products(
    conn: &mut Connection,
    batch: &[ProductRow],
    by: &Actor,
) -> StoreResult<BatchOutcome> {
    let tx = begin(conn)?;
    let now = now_micros();
    let mut inserted = 0;
    {
        let mut find_category =
            tx.prepare_cached("SELECT id FROM product_categories WHERE name = ?1")?;
        let mut new_category =
            tx.prepare_cached("INSERT INTO product_categories (name) VALUES (?1) RETURNING id")?;
        let mut product = tx.prepare_cached(
            "INSERT INTO products (external_id, name, category_id, price_minor, currency, active, created_at, \
             updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6) ON CONFLICT (external_id) DO NOTHING",
        )?;
        let mut categories: HashMap<&str, i64> = HashMap::new();
        for p in batch {
            let category = match p.category.as_deref() {
                None => None,
                Some(name) => Some(match categories.get(name) {
                    Some(id) => *id,
                    None => {
                        let found: Option<i64> =
                            find_category.query_row([name], |r| r.get(0)).optional()?;
                        let id = match found {
                            Some(id) => id,
                            None => new_category.query_row([name], |r| r.get(0))?,
                        };
                        categories.insert(name, id);
                        id
                    }
                }),
            };
            inserted += product.execute(params![
                p.external_id,
                p.name,
                category,
                p.price_minor,
                p.currency,
                now
            ])? as u64;
        }
    }
    let outcome = BatchOutcome::of(batch.len(), inserted, 0);
    append_change(&tx, by, &batch_change(Entity::Product, &outcome))?;
    tx.commit()?;
    Ok(outcome)
}

/// Replaces every stored prediction with these, in one transaction. The table's secondary
/// indexes are dropped for the load and built again from their stored definitions after it
/// (sorting a million values once instead of inserting them one by one: 5× faster).
pub(crate) fn replace_predictions(
    conn: &mut Connection,
    predictions: &[(tenure_domain::ids::CustomerId, crate::analytics::Prediction)],
    fits: &[crate::analytics::FitRecord],
    (by, change): (&Actor, &Change),
) -> StoreResult<()> {
    let tx = begin(conn)?;
    let indexes: Vec<(String, String)> = tx
        .prepare(
            "SELECT name, sql FROM sqlite_master \
             WHERE type = 'index' AND tbl_name = 'customer_predictions' AND sql IS NOT NULL",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    tx.execute("DELETE FROM customer_predictions", [])?;
    for (name, _) in &indexes {
        // The name comes from SQLite's own catalogue, quoted as an identifier.
        tx.execute(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")), [])?;
    }
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO customer_predictions (customer_id, p_alive, expected_purchases, \
             expected_value, clv, horizon_days, computed_at, value_at_risk) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for (id, p) in predictions {
            insert.execute(params![
                id.0,
                p.p_alive,
                p.expected_purchases,
                p.expected_value,
                p.clv,
                p.horizon_days,
                p.computed_at.timestamp_micros(),
                p.value_at_risk()
            ])?;
        }
    }
    for (_, sql) in &indexes {
        tx.execute(sql, [])?;
    }
    for f in fits {
        tx.prepare_cached(&positional(crate::analytics::RECORD_FIT))?
            .execute(params![
                f.model,
                f.params.to_string(),
                f.log_likelihood,
                f.customers,
                f.calibration_end,
                now_micros()
            ])?;
    }
    append_change(&tx, by, change)?;
    tx.commit()?;
    Ok(())
}

/// Moves a first load's staged search terms into their table.
pub(crate) fn move_staged_terms(conn: &mut Connection) -> StoreResult<()> {
    let tx = begin(conn)?;
    let has_terms: i64 = tx.query_row(super::first::HAS_TERMS, [], |r| r.get(0))?;
    if has_terms > 0 {
        tx.execute(super::first::DROP_SUPERSEDED_TERMS, [])?;
    }
    tx.execute(super::first::MOVE_TERMS, [])?;
    tx.execute("DELETE FROM first_load_terms", [])?;
    tx.commit()?;
    Ok(())
}

/// Builds one index a first load recorded, unless it exists; returns whether it built it.
pub(crate) fn build_recorded_index(
    conn: &mut Connection,
    name: &str,
    definition: &str,
) -> StoreResult<bool> {
    let tx = begin(conn)?;
    let exists: i64 = tx.query_row(
        &positional(super::first::index_exists_sql(crate::Backend::Sqlite)),
        [name],
        |r| r.get(0),
    )?;
    if exists == 0 {
        // The definition was read from SQLite's own catalogue.
        tx.execute_batch(definition)?;
    }
    tx.commit()?;
    Ok(exists == 0)
}

/// Rebuilds every customer's aggregates and ends the first load; returns the customers.
pub(crate) fn end_first_load(conn: &mut Connection, currency: &str) -> StoreResult<u64> {
    let tx = begin(conn)?;
    tx.execute("DELETE FROM customer_stats", [])?;
    let customers = write_all_stats(&tx, currency)?;
    tx.execute("DELETE FROM first_loads", [])?;
    tx.commit()?;
    Ok(customers)
}

/// One customer's aggregates, gathered from their orders and interactions in one pass.
#[derive(Default)]
struct Gathered {
    first_at: Option<i64>,
    last_at: Option<i64>,
    orders: i64,
    /// (purchase day, spend in the reporting currency) of every completed order.
    days: Vec<(i64, i64)>,
    interactions: i64,
    last_contact: Option<i64>,
}

impl Gathered {
    /// The counts of distinct days, total spend and repeat spend (spend on days after the
    /// first purchase day), as `stats::REBUILD` defines them.
    fn spend(&mut self) -> (i64, i64, i64) {
        self.days.sort_unstable();
        let first = self.days.first().map(|d| d.0);
        let mut distinct = 0;
        let mut last_day = None;
        let (mut total, mut repeat) = (0, 0);
        for &(day, spend) in &self.days {
            if last_day != Some(day) {
                distinct += 1;
                last_day = Some(day);
            }
            total += spend;
            if Some(day) > first {
                repeat += spend;
            }
        }
        (distinct, total, repeat)
    }
}

/// Writes every customer's aggregate row from one ordered pass over the customers, their
/// completed orders and their interactions (the set-based rebuild of `stats` for SQLite:
/// the same numbers, without the sort of every order SQLite's plan for it needs).
fn write_all_stats(tx: &Transaction<'_>, currency: &str) -> StoreResult<u64> {
    let mut customers = tx.prepare("SELECT id FROM customers ORDER BY id")?;
    let mut orders = tx.prepare(
        "SELECT customer_id, occurred_at, purchase_day, currency, total_minor FROM orders \
         WHERE status = ?1 ORDER BY customer_id",
    )?;
    let mut contacts = tx.prepare(
        "SELECT customer_id, COUNT(*), MAX(occurred_at) FROM interactions \
         GROUP BY customer_id ORDER BY customer_id",
    )?;
    let mut insert = tx.prepare(
        "INSERT INTO customer_stats (customer_id, first_purchase_at, last_purchase_at, orders_count, \
         purchase_days, total_spend_minor, repeat_spend_minor, interactions_count, last_contact_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    type OrderRow = (i64, i64, i64, String, i64);
    let mut orders = orders.query_map([OrderStatus::Completed.as_str()], |r| {
        Ok::<OrderRow, _>((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })?;
    let mut contacts = contacts.query_map([], |r| {
        Ok::<(i64, i64, Option<i64>), _>((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    let mut order = orders.next().transpose()?;
    let mut contact = contacts.next().transpose()?;
    let mut written = 0;
    let mut ids = customers.query([])?;
    while let Some(row) = ids.next()? {
        let id: i64 = row.get(0)?;
        let mut g = Gathered::default();
        while let Some((customer, at, day, cur, total)) = order.take() {
            if customer > id {
                order = Some((customer, at, day, cur, total));
                break;
            }
            if customer == id {
                g.first_at = Some(g.first_at.map_or(at, |f| f.min(at)));
                g.last_at = Some(g.last_at.map_or(at, |l| l.max(at)));
                g.orders += 1;
                g.days.push((day, if cur == currency { total } else { 0 }));
            }
            order = orders.next().transpose()?;
        }
        while let Some((customer, n, last)) = contact.take() {
            if customer > id {
                contact = Some((customer, n, last));
                break;
            }
            if customer == id {
                g.interactions = n;
                g.last_contact = last;
            }
            contact = contacts.next().transpose()?;
        }
        let (days, total, repeat) = g.spend();
        insert.execute(params![
            id,
            g.first_at,
            g.last_at,
            g.orders,
            days,
            total,
            repeat,
            g.interactions,
            g.last_contact
        ])?;
        written += 1;
    }
    Ok(written)
}
