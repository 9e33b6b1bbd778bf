//! Streaming exports: every record of a kind, in id order, with the columns its import
//! takes. A record without an external id is exported under `tenure-{id}` (orders:
//! `tenure-order-{id}`, ...), so the rows that refer to it still name it.

use futures_util::{Stream, StreamExt};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreResult};

/// What an export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    Customers,
    /// The plain purchase log: completed orders only.
    Purchases,
    Orders,
    OrderLines,
    Interactions,
    Products,
}

/// How a column is read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Int,
    /// Minor units in the row's `currency` column.
    Money,
    /// Microseconds since the epoch.
    Time,
    /// A JSON list of strings, written `a;b`.
    List,
    /// 0 or 1, written `true`/`false`.
    Bool,
}

/// One exported value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
    Money {
        minor: Option<i64>,
        currency: String,
    },
    Time(i64),
    List(Vec<String>),
    Bool(bool),
}

use ColumnType::{Bool, Int, List, Money, Text, Time};

const CUSTOMER_KEY: &str = "COALESCE(c.external_id, 'tenure-' || CAST(c.id AS TEXT))";

impl ExportKind {
    /// The columns, named as the import names them.
    pub fn columns(self) -> &'static [(&'static str, ColumnType)] {
        match self {
            ExportKind::Customers => &[
                ("external_id", Text),
                ("kind", Text),
                ("name", Text),
                ("email", Text),
                ("phone", Text),
                ("birthday", Text),
                ("locale", Text),
                ("region", Text),
                ("acquisition_source", Text),
                ("acquisition_channel", Text),
                ("tags", List),
            ],
            ExportKind::Purchases => &[
                ("customer_external_id", Text),
                ("occurred_at", Time),
                ("amount", Money),
                ("order_external_id", Text),
                ("currency", Text),
                ("channel", Text),
            ],
            ExportKind::Orders => &[
                ("external_id", Text),
                ("customer_external_id", Text),
                ("occurred_at", Time),
                ("currency", Text),
                ("total", Money),
                ("channel", Text),
                ("status", Text),
            ],
            ExportKind::OrderLines => &[
                ("order_external_id", Text),
                ("line_no", Int),
                ("product_external_id", Text),
                ("description", Text),
                ("quantity", Int),
                ("unit_price", Money),
                ("total", Money),
                ("currency", Text),
            ],
            ExportKind::Interactions => &[
                ("external_id", Text),
                ("customer_external_id", Text),
                ("occurred_at", Time),
                ("channel", Text),
                ("direction", Text),
                ("kind", Text),
                ("subject", Text),
                ("body", Text),
                ("buying_signal", Bool),
            ],
            ExportKind::Products => &[
                ("external_id", Text),
                ("name", Text),
                ("category", Text),
                ("price", Money),
                ("currency", Text),
            ],
        }
    }

    fn sql(self) -> String {
        let order_key = "COALESCE(o.external_id, 'tenure-order-' || CAST(o.id AS TEXT))";
        match self {
            ExportKind::Customers => format!(
                "SELECT {CUSTOMER_KEY} AS external_id, c.kind, c.name, c.email, c.phone, c.birthday, c.locale, \
                 c.region, c.acquisition_source, c.acquisition_channel, c.tags FROM customers c ORDER BY c.id"
            ),
            ExportKind::Purchases => format!(
                "SELECT {CUSTOMER_KEY} AS customer_external_id, o.occurred_at, o.total_minor AS amount, \
                 {order_key} AS order_external_id, o.currency, o.channel \
                 FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.status = 'completed' ORDER BY o.id"
            ),
            ExportKind::Orders => format!(
                "SELECT {order_key} AS external_id, {CUSTOMER_KEY} AS customer_external_id, o.occurred_at, \
                 o.currency, o.total_minor AS total, o.channel, o.status \
                 FROM orders o JOIN customers c ON c.id = o.customer_id ORDER BY o.id"
            ),
            ExportKind::OrderLines => format!(
                "SELECT {order_key} AS order_external_id, l.line_no, \
                 COALESCE(p.external_id, 'tenure-product-' || CAST(p.id AS TEXT)) AS product_external_id, \
                 l.description, l.quantity, l.unit_price_minor AS unit_price, l.total_minor AS total, o.currency \
                 FROM order_lines l JOIN orders o ON o.id = l.order_id \
                 LEFT JOIN products p ON p.id = l.product_id ORDER BY l.order_id, l.line_no"
            ),
            ExportKind::Interactions => format!(
                "SELECT COALESCE(i.external_id, 'tenure-interaction-' || CAST(i.id AS TEXT)) AS external_id, \
                 {CUSTOMER_KEY} AS customer_external_id, i.occurred_at, i.channel, i.direction, i.kind, \
                 i.subject, i.body, i.buying_signal \
                 FROM interactions i JOIN customers c ON c.id = i.customer_id ORDER BY i.id"
            ),
            ExportKind::Products => "SELECT COALESCE(p.external_id, 'tenure-product-' || CAST(p.id AS TEXT)) \
                 AS external_id, p.name, k.name AS category, p.price_minor AS price, p.currency \
                 FROM products p LEFT JOIN product_categories k ON k.id = p.category_id ORDER BY p.id"
                .to_owned(),
        }
    }

    fn cells(self, row: &AnyRow) -> StoreResult<Vec<Cell>> {
        let columns = self.columns();
        let currency: Option<String> = if columns.iter().any(|c| c.1 == Money) {
            Some(row.try_get("currency")?)
        } else {
            None
        };
        columns
            .iter()
            .map(|&(name, ty)| {
                Ok(match ty {
                    Text => Cell::Text(row.try_get(name)?),
                    Int => Cell::Int(row.try_get(name)?),
                    Money => Cell::Money {
                        minor: row.try_get(name)?,
                        currency: currency.clone().unwrap_or_default(),
                    },
                    Time => Cell::Time(row.try_get(name)?),
                    List => Cell::List(crate::decode::json(row, "tags")?),
                    Bool => Cell::Bool(row.try_get::<i64, _>(name)? != 0),
                })
            })
            .collect()
    }
}

impl Store {
    /// Every record of `kind`, in id order, as it is read (nothing is held in memory).
    pub fn export(&self, kind: ExportKind) -> impl Stream<Item = StoreResult<Vec<Cell>>> + '_ {
        sqlx::query(sqlx::AssertSqlSafe(kind.sql()))
            .fetch(self.pool())
            .map(move |row| kind.cells(&row?))
    }
}
