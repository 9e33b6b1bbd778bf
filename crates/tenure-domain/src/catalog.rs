//! Orders and products: their vocabularies and the rules that derive values from them.

use chrono::{DateTime, Utc};

use crate::text_enum;

text_enum! {
    /// Where an order was placed.
    pub enum SalesChannel {
        Store => "store",
        Online => "online",
        Phone => "phone",
        App => "app",
        Marketplace => "marketplace",
        Distributor => "distributor",
        Other => "other",
    }
}

text_enum! {
    /// An order's state. Only completed orders count as purchases in the aggregates.
    pub enum OrderStatus {
        Completed => "completed",
        Cancelled => "cancelled",
        Refunded => "refunded",
    }
}

/// Microseconds in a day.
pub const DAY_MICROS: i64 = 86_400_000_000;

/// The UTC day (days since 1970-01-01) on which a purchase happened. Purchases on the same
/// day count as one purchase day, as in the buy-till-you-die literature.
pub fn purchase_day(occurred_at: DateTime<Utc>) -> i64 {
    occurred_at.timestamp_micros().div_euclid(DAY_MICROS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purchase_day_is_the_utc_day() {
        let t = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|d| d.with_timezone(&Utc))
                .unwrap_or_default()
        };
        assert_eq!(purchase_day(t("1970-01-01T23:59:59Z")), 0);
        assert_eq!(purchase_day(t("1970-01-02T00:00:00Z")), 1);
        assert_eq!(purchase_day(t("1969-12-31T12:00:00Z")), -1);
        assert_eq!(
            purchase_day(t("1997-01-01T08:00:00+08:00")),
            purchase_day(t("1997-01-01T00:00:00Z"))
        );
    }
}

/// A product category; categories may nest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub id: crate::ids::CategoryId,
    pub name: String,
    pub parent_id: Option<crate::ids::CategoryId>,
}

/// The writable fields of a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductData {
    pub external_id: Option<String>,
    pub name: String,
    pub category_id: Option<crate::ids::CategoryId>,
    pub price_minor: Option<i64>,
    pub currency: String,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: crate::ids::ProductId,
    pub data: ProductData,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    pub product_id: Option<crate::ids::ProductId>,
    pub description: String,
    pub quantity: i64,
    pub unit_price_minor: i64,
    pub total_minor: i64,
}

/// The writable fields of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderData {
    pub external_id: Option<String>,
    pub customer_id: crate::ids::CustomerId,
    pub occurred_at: DateTime<Utc>,
    pub currency: String,
    pub total_minor: i64,
    pub channel: SalesChannel,
    pub status: OrderStatus,
    pub lines: Vec<OrderLine>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: crate::ids::OrderId,
    pub data: OrderData,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The total of a set of lines; `None` on overflow.
pub fn lines_total(lines: &[OrderLine]) -> Option<i64> {
    lines
        .iter()
        .try_fold(0_i64, |acc, l| acc.checked_add(l.total_minor))
}
