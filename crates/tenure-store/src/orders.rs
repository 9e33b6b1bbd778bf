//! Orders with their lines. Every write refreshes the customer's aggregates in the same
//! transaction.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use tenure_domain::catalog::{Order, OrderData, OrderLine, purchase_day};
use tenure_domain::ids::{CustomerId, OrderId, ProductId};

use crate::Page;
use crate::decode::parsed;
use crate::sql::Select;
use crate::sql::{Table, require};
use crate::time::{now_micros, time};
use crate::{Store, StoreError, StoreResult, WriteTx, stats};

pub(crate) const ORDER_SELECT: &str = "SELECT id, external_id, customer_id, occurred_at, currency, total_minor, channel, status, \
                            created_at, updated_at FROM orders";

pub(crate) fn order_from_row(row: &AnyRow, lines: Vec<OrderLine>) -> StoreResult<Order> {
    Ok(Order {
        id: OrderId(row.try_get("id")?),
        data: OrderData {
            external_id: row.try_get("external_id")?,
            customer_id: CustomerId(row.try_get("customer_id")?),
            occurred_at: time(row, "occurred_at")?,
            currency: row.try_get("currency")?,
            total_minor: row.try_get("total_minor")?,
            channel: parsed(row, "channel")?,
            status: parsed(row, "status")?,
            lines,
        },
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

/// Reads the lines of the given orders, grouped by order id.
pub(crate) async fn lines_of<'e, E>(
    exec: E,
    ids: &[i64],
) -> StoreResult<std::collections::HashMap<i64, Vec<OrderLine>>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let mut out: std::collections::HashMap<i64, Vec<OrderLine>> = std::collections::HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut s = Select::new(
        "SELECT order_id, product_id, description, quantity, unit_price_minor, total_minor FROM order_lines",
    );
    s.filter_in("order_id IN ({})", ids)?;
    let (sql, args) = s.finish_unbounded("ORDER BY order_id, line_no");
    let rows = sqlx::query_with(AssertSqlSafe(sql), args)
        .fetch_all(exec)
        .await?;
    for row in rows {
        let order_id: i64 = row.try_get("order_id")?;
        out.entry(order_id).or_default().push(OrderLine {
            product_id: row.try_get::<Option<i64>, _>("product_id")?.map(ProductId),
            description: row.try_get("description")?,
            quantity: row.try_get("quantity")?,
            unit_price_minor: row.try_get("unit_price_minor")?,
            total_minor: row.try_get("total_minor")?,
        });
    }
    Ok(out)
}

async fn check_refs(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    data: &OrderData,
) -> StoreResult<()> {
    require(tx, Table::Customers, data.customer_id.0, "customer_id").await?;
    for (i, l) in data.lines.iter().enumerate() {
        if let Some(p) = l.product_id {
            require(tx, Table::Products, p.0, "lines")
                .await
                .map_err(|e| match e {
                    StoreError::BadReference { field, message } => StoreError::BadReference {
                        field,
                        message: format!("line {}: {message}", i + 1),
                    },
                    other => other,
                })?;
        }
    }
    Ok(())
}

async fn write_lines(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    order: i64,
    data: &OrderData,
) -> StoreResult<()> {
    for (i, l) in data.lines.iter().enumerate() {
        sqlx::query(
            "INSERT INTO order_lines (order_id, customer_id, line_no, product_id, description, quantity, \
             unit_price_minor, total_minor) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(order)
        .bind(data.customer_id.0)
        .bind(i as i64 + 1)
        .bind(l.product_id.map(|p| p.0))
        .bind(l.description.clone())
        .bind(l.quantity)
        .bind(l.unit_price_minor)
        .bind(l.total_minor)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn fetch(tx: &mut sqlx::Transaction<'static, sqlx::Any>, id: OrderId) -> StoreResult<Order> {
    let row = sqlx::query(AssertSqlSafe(format!("{ORDER_SELECT} WHERE id = $1")))
        .bind(id.0)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound { what: "order" })?;
    let mut lines = lines_of(&mut **tx, &[id.0]).await?;
    order_from_row(&row, lines.remove(&id.0).unwrap_or_default())
}

impl WriteTx<'_> {
    pub async fn create_order(&mut self, data: &OrderData) -> StoreResult<Order> {
        check_refs(&mut self.tx, data).await?;
        let now = now_micros();
        let backend = self.backend();
        let id = backend.reserve_id(&mut self.tx, "orders").await?;
        sqlx::query(
            "INSERT INTO orders (external_id, customer_id, occurred_at, purchase_day, currency, total_minor, channel, \
             status, created_at, updated_at, id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)",
        )
        .bind(data.external_id.clone())
        .bind(data.customer_id.0)
        .bind(data.occurred_at.timestamp_micros())
        .bind(purchase_day(data.occurred_at))
        .bind(data.currency.clone())
        .bind(data.total_minor)
        .bind(data.channel.as_str())
        .bind(data.status.as_str())
        .bind(now)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        write_lines(&mut self.tx, id, data).await?;
        stats::refresh(&mut self.tx, data.customer_id, self.store).await?;
        fetch(&mut self.tx, OrderId(id)).await
    }

    /// An order as this transaction sees it, locked on PostgreSQL until it ends.
    pub async fn get_order_for_update(&mut self, id: OrderId) -> StoreResult<Order> {
        self.lock(Table::Orders, id.0).await?;
        fetch(&mut self.tx, id).await
    }

    /// Replaces an order's data (read it with [`WriteTx::get_order_for_update`] first).
    /// Both the old and the new customer's aggregates are refreshed.
    pub async fn update_order(&mut self, before: &Order, data: &OrderData) -> StoreResult<Order> {
        let id = before.id;
        check_refs(&mut self.tx, data).await?;
        sqlx::query(
            "UPDATE orders SET external_id = $2, customer_id = $3, occurred_at = $4, purchase_day = $5, currency = $6, \
             total_minor = $7, channel = $8, status = $9, updated_at = $10 WHERE id = $1",
        )
        .bind(id.0)
        .bind(data.external_id.clone())
        .bind(data.customer_id.0)
        .bind(data.occurred_at.timestamp_micros())
        .bind(purchase_day(data.occurred_at))
        .bind(data.currency.clone())
        .bind(data.total_minor)
        .bind(data.channel.as_str())
        .bind(data.status.as_str())
        .bind(now_micros())
        .execute(&mut *self.tx)
        .await?;
        if data.lines != before.data.lines || data.customer_id != before.data.customer_id {
            sqlx::query("DELETE FROM order_lines WHERE order_id = $1")
                .bind(id.0)
                .execute(&mut *self.tx)
                .await?;
            write_lines(&mut self.tx, id.0, data).await?;
        }
        // Both customers when the order moved, in id order so two moves never deadlock.
        let mut customers = vec![before.data.customer_id, data.customer_id];
        customers.sort();
        customers.dedup();
        for c in customers {
            stats::refresh(&mut self.tx, c, self.store).await?;
        }
        fetch(&mut self.tx, id).await
    }

    /// Deletes an order with its lines; returns the customer it belonged to.
    pub async fn delete_order(&mut self, id: OrderId) -> StoreResult<CustomerId> {
        let customer: Option<i64> =
            sqlx::query_scalar("DELETE FROM orders WHERE id = $1 RETURNING customer_id")
                .bind(id.0)
                .fetch_optional(&mut *self.tx)
                .await?;
        let customer = CustomerId(customer.ok_or(StoreError::NotFound { what: "order" })?);
        stats::refresh(&mut self.tx, customer, self.store).await?;
        Ok(customer)
    }
}

impl Store {
    pub async fn get_order(&self, id: OrderId) -> StoreResult<Order> {
        let row = sqlx::query(AssertSqlSafe(format!("{ORDER_SELECT} WHERE id = $1")))
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound { what: "order" })?;
        let mut lines = lines_of(self.pool(), &[id.0]).await?;
        order_from_row(&row, lines.remove(&id.0).unwrap_or_default())
    }

    /// Orders in id order, optionally of one customer.
    pub async fn list_orders(
        &self,
        customer: Option<CustomerId>,
        after: Option<OrderId>,
        limit: u32,
    ) -> StoreResult<Page<Order, OrderId>> {
        let mut s = Select::new(ORDER_SELECT);
        if let Some(c) = customer {
            s.filter("customer_id = {}", c.0)?;
        }
        if let Some(a) = after {
            s.filter("id > {}", a.0)?;
        }
        let limit = i64::from(limit.clamp(1, 1000));
        let (sql, args) = s.finish("ORDER BY id", limit + 1)?;
        let rows = sqlx::query_with(AssertSqlSafe(sql), args)
            .fetch_all(self.reader_unless(customer.is_some()))
            .await?;
        let ids: Vec<i64> = rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        let mut lines = lines_of(self.reader_unless(customer.is_some()), &ids).await?;
        let items = rows
            .iter()
            .map(|r| {
                let id: i64 = r.try_get("id")?;
                order_from_row(r, lines.remove(&id).unwrap_or_default())
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::cut(items, limit, |o| o.id))
    }
}
