//! A small builder for queries whose WHERE clause depends on which filters are given.
//! The SQL text is always assembled from constant fragments; values are always bound.

use sqlx::any::AnyArguments;
use sqlx::{Arguments, Encode, Type};

use crate::{StoreError, StoreResult};

/// Adds one bound value to a statement's arguments.
pub(crate) fn add_arg<T>(args: &mut AnyArguments, value: T) -> StoreResult<()>
where
    T: 'static + Send + for<'q> Encode<'q, sqlx::Any> + Type<sqlx::Any>,
{
    args.add(value)
        .map_err(|e| StoreError::Database(format!("could not encode a value: {e}")))
}

/// A record's customer is owned by the staff member `{}`.
pub(crate) const OWNED_BY: &str = "customer_id IN (SELECT id FROM customers WHERE owner_id = {})";

pub(crate) struct Select {
    sql: String,
    conditions: Vec<String>,
    args: AnyArguments,
    n: usize,
}

impl Select {
    pub fn new(head: &'static str) -> Self {
        Self {
            sql: head.to_owned(),
            conditions: Vec::new(),
            args: AnyArguments::default(),
            n: 0,
        }
    }

    /// Binds a value and returns its placeholder.
    pub fn bind<T>(&mut self, value: T) -> StoreResult<String>
    where
        T: 'static + Send + for<'q> Encode<'q, sqlx::Any> + Type<sqlx::Any>,
    {
        add_arg(&mut self.args, value)?;
        self.n += 1;
        Ok(format!("${}", self.n))
    }

    /// Only the records of customers `owner` owns, when a list is limited to one staff
    /// member's customers.
    pub fn owned_by(&mut self, owner: Option<tenure_domain::ids::StaffUserId>) -> StoreResult<()> {
        match owner {
            Some(o) => self.filter(OWNED_BY, o.0),
            None => Ok(()),
        }
    }

    /// Adds a condition; `{}` in the fragment is replaced by the placeholder of `value`.
    pub fn filter<T>(&mut self, fragment: &'static str, value: T) -> StoreResult<()>
    where
        T: 'static + Send + for<'q> Encode<'q, sqlx::Any> + Type<sqlx::Any>,
    {
        let p = self.bind(value)?;
        self.conditions.push(fragment.replace("{}", &p));
        Ok(())
    }

    /// Adds a condition with two values, `{1}` and `{2}`.
    pub fn filter2<T, U>(&mut self, fragment: &'static str, a: T, b: U) -> StoreResult<()>
    where
        T: 'static + Send + for<'q> Encode<'q, sqlx::Any> + Type<sqlx::Any>,
        U: 'static + Send + for<'q> Encode<'q, sqlx::Any> + Type<sqlx::Any>,
    {
        let pa = self.bind(a)?;
        let pb = self.bind(b)?;
        self.conditions
            .push(fragment.replace("{1}", &pa).replace("{2}", &pb));
        Ok(())
    }

    /// Adds a condition with three values, `{1}`, `{2}` and `{3}`.
    pub fn filter3<T, U, V>(&mut self, fragment: &'static str, a: T, b: U, c: V) -> StoreResult<()>
    where
        T: 'static + Send + for<'q> Encode<'q, sqlx::Any> + Type<sqlx::Any>,
        U: 'static + Send + for<'q> Encode<'q, sqlx::Any> + Type<sqlx::Any>,
        V: 'static + Send + for<'q> Encode<'q, sqlx::Any> + Type<sqlx::Any>,
    {
        let pa = self.bind(a)?;
        let pb = self.bind(b)?;
        let pc = self.bind(c)?;
        self.conditions.push(
            fragment
                .replace("{1}", &pa)
                .replace("{2}", &pb)
                .replace("{3}", &pc),
        );
        Ok(())
    }

    /// The statement's head, for statements assembled around bound placeholders.
    pub fn head(&self) -> &str {
        &self.sql
    }

    /// The bound values, leaving none behind.
    pub fn take_args(&mut self) -> AnyArguments {
        std::mem::take(&mut self.args)
    }

    /// Adds `fragment` with `{}` replaced by a list of placeholders, one per value.
    pub fn filter_in(&mut self, fragment: &'static str, values: &[i64]) -> StoreResult<()> {
        let mut ps = Vec::with_capacity(values.len());
        for v in values {
            ps.push(self.bind(*v)?);
        }
        self.conditions.push(fragment.replace("{}", &ps.join(",")));
        Ok(())
    }

    /// Finishes a page query: the WHERE clause, `order` (an `ORDER BY ...`), and a `LIMIT`
    /// binding `limit`. A list query cannot be built without its limit.
    pub fn finish(
        mut self,
        order: &'static str,
        limit: i64,
    ) -> StoreResult<(String, AnyArguments)> {
        let p = self.bind(limit)?;
        self.where_clause();
        self.sql.push(' ');
        self.sql.push_str(order);
        self.sql.push_str(" LIMIT ");
        self.sql.push_str(&p);
        Ok((self.sql, self.args))
    }

    /// Finishes a query whose size the filters bound (rows of a list of ids), without a
    /// limit.
    pub fn finish_unbounded(mut self, order: &'static str) -> (String, AnyArguments) {
        self.where_clause();
        if !order.is_empty() {
            self.sql.push(' ');
            self.sql.push_str(order);
        }
        (self.sql, self.args)
    }

    fn where_clause(&mut self) {
        if !self.conditions.is_empty() {
            self.sql.push_str(" WHERE ");
            self.sql.push_str(&self.conditions.join(" AND "));
        }
    }
}

/// Collects rows for a multi-row `INSERT ... VALUES (...), (...)` and sends them in
/// batches that stay under both databases' limits on bound values.
pub(crate) struct Bulk {
    backend: crate::Backend,
    head: &'static str,
    /// `ON CONFLICT (column) DO NOTHING`, when duplicates are to be skipped.
    skip_conflicts_on: Option<&'static str>,
    affected: u64,
    width: usize,
    rows: usize,
    args: AnyArguments,
}

/// The values of one row being added to a [`Bulk`].
pub(crate) struct RowArgs<'a> {
    args: &'a mut AnyArguments,
}

impl RowArgs<'_> {
    /// The statement's arguments, to add several values at once.
    pub fn args(&mut self) -> &mut AnyArguments {
        self.args
    }

    pub fn add<T>(&mut self, value: T) -> StoreResult<()>
    where
        T: 'static + Send + for<'q> Encode<'q, sqlx::Any> + Type<sqlx::Any>,
    {
        add_arg(self.args, value)
    }
}

/// Bound values per statement. SQLite allows 32,766 and PostgreSQL 65,535, but over TCP a
/// statement much larger than one segment (64 KiB on loopback) waits ~40 ms for a delayed
/// ACK (the driver does not set TCP_NODELAY), so statements stay around 16 KiB.
const MAX_VALUES: usize = 1_000;

impl Bulk {
    pub fn new(backend: crate::Backend, head: &'static str, width: usize) -> Self {
        Self {
            backend,
            head,
            skip_conflicts_on: None,
            affected: 0,
            width,
            rows: 0,
            args: AnyArguments::default(),
        }
    }

    /// Skips rows that would break the uniqueness of `column` instead of failing.
    pub fn on_conflict_do_nothing(mut self, column: &'static str) -> Self {
        self.skip_conflicts_on = Some(column);
        self
    }

    /// Rows written so far.
    pub fn rows_affected(&self) -> u64 {
        self.affected
    }

    /// Adds a row (which must add exactly `width` values), sending a batch when full.
    /// Rows of earlier batches may be sent before the caller's other statements, so a
    /// table referred to by others must be flushed first by the caller where it matters.
    pub async fn row(
        &mut self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        add: impl FnOnce(&mut RowArgs<'_>) -> StoreResult<()>,
    ) -> StoreResult<()> {
        add(&mut RowArgs {
            args: &mut self.args,
        })?;
        self.rows += 1;
        if (self.rows + 1) * self.width > MAX_VALUES {
            self.flush(tx).await?;
        }
        Ok(())
    }

    pub async fn flush(
        &mut self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ) -> StoreResult<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let mut sql = String::with_capacity(self.head.len() + self.rows * self.width * 5);
        sql.push_str(self.head);
        sql.push_str(" VALUES ");
        let mut n = 0;
        for r in 0..self.rows {
            if r > 0 {
                sql.push(',');
            }
            sql.push('(');
            for c in 0..self.width {
                if c > 0 {
                    sql.push(',');
                }
                n += 1;
                self.backend.push_placeholder(&mut sql, n);
            }
            sql.push(')');
        }
        if let Some(column) = self.skip_conflicts_on {
            sql.push_str(" ON CONFLICT (");
            sql.push_str(column);
            sql.push_str(") DO NOTHING");
        }
        let args = std::mem::take(&mut self.args);
        self.rows = 0;
        self.affected += sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        Ok(())
    }
}

/// Tables that other rows refer to by id.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Table {
    Customers,
    Accounts,
    StaffUsers,
    Products,
    Categories,
    Orders,
    Interactions,
    Merges,
}

impl Table {
    /// Locks one row on PostgreSQL (see `WriteTx::lock`).
    pub(crate) fn lock_sql(self) -> &'static str {
        match self {
            Table::Customers => "SELECT id FROM customers WHERE id = $1 FOR UPDATE",
            Table::Accounts => "SELECT id FROM accounts WHERE id = $1 FOR UPDATE",
            Table::StaffUsers => "SELECT id FROM staff_users WHERE id = $1 FOR UPDATE",
            Table::Products => "SELECT id FROM products WHERE id = $1 FOR UPDATE",
            Table::Categories => "SELECT id FROM product_categories WHERE id = $1 FOR UPDATE",
            Table::Orders => "SELECT id FROM orders WHERE id = $1 FOR UPDATE",
            Table::Interactions => "SELECT id FROM interactions WHERE id = $1 FOR UPDATE",
            Table::Merges => "SELECT id FROM customer_merges WHERE id = $1 FOR UPDATE",
        }
    }

    fn exists_sql(self) -> &'static str {
        match self {
            Table::Customers => "SELECT id FROM customers WHERE id = $1",
            Table::Accounts => "SELECT id FROM accounts WHERE id = $1",
            Table::StaffUsers => "SELECT id FROM staff_users WHERE id = $1",
            Table::Products => "SELECT id FROM products WHERE id = $1",
            Table::Categories => "SELECT id FROM product_categories WHERE id = $1",
            Table::Orders => "SELECT id FROM orders WHERE id = $1",
            Table::Interactions => "SELECT id FROM interactions WHERE id = $1",
            Table::Merges => "SELECT id FROM customer_merges WHERE id = $1",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Table::Customers => "customer",
            Table::Accounts => "account",
            Table::StaffUsers => "staff user",
            Table::Products => "product",
            Table::Categories => "category",
            Table::Orders => "order",
            Table::Interactions => "interaction",
            Table::Merges => "merge",
        }
    }
}

/// Fails with a field-level error naming `field` when `table` has no row `id`, so a
/// reference to a missing row is reported as bad input rather than a constraint error.
pub(crate) async fn require(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    table: Table,
    id: i64,
    field: &'static str,
) -> StoreResult<()> {
    let found: Option<i64> = sqlx::query_scalar(table.exists_sql())
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(StoreError::BadReference {
            field,
            message: format!("{} {id} does not exist", table.noun()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_query_applies_its_limit() {
        let mut s = Select::new("SELECT id FROM customer_merges");
        s.filter("id < {}", 10_i64).unwrap();
        let (sql, _) = s.finish("ORDER BY id DESC", 3).unwrap();
        assert_eq!(
            sql,
            "SELECT id FROM customer_merges WHERE id < $1 ORDER BY id DESC LIMIT $2"
        );
    }
}
