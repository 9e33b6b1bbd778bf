//! Orders and products: their vocabularies and the rules that derive values from them.

use chrono::{DateTime, Utc};

use crate::money;
use crate::text_enum;
use crate::validation::{Collector, InputContext};

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

/// Most lines on one order.
pub const LINES_MAX: usize = 500;
/// Longest line description, in characters.
pub const DESCRIPTION_MAX: usize = 500;
/// Longest product name, in characters.
pub const PRODUCT_NAME_MAX: usize = 200;
/// Longest category name, in characters.
pub const CATEGORY_NAME_MAX: usize = 100;

/// One order line as given (a JSON body, a CSV row, a form), before it is checked. Field
/// errors are named `product_id`, `description`, `quantity`, `unit_price_minor` and
/// `total_minor`.
#[derive(Debug, Clone, Default)]
pub struct OrderLineInput {
    pub product_id: Option<i64>,
    pub description: String,
    pub quantity: i64,
    pub unit_price_minor: i64,
    /// Quantity × unit price when left out.
    pub total_minor: Option<i64>,
}

impl OrderLineInput {
    /// Checks the line, recording errors under `prefix` + field name.
    pub fn parse(self, c: &mut Collector, prefix: &str) -> Option<OrderLine> {
        let f = |name: &str| format!("{prefix}{name}");
        let description = c.check(
            &f("description"),
            crate::validation::text(&self.description, DESCRIPTION_MAX, false),
        );
        let quantity = c.check(&f("quantity"), money::check_quantity(self.quantity));
        let unit = c.check(
            &f("unit_price_minor"),
            money::check_amount(self.unit_price_minor),
        );
        let total = match (self.total_minor, quantity, unit) {
            (Some(t), _, _) => c.check(&f("total_minor"), money::check_amount(t)),
            (None, Some(q), Some(u)) => c.check(&f("total_minor"), money::line_total(q, u)),
            (None, _, _) => None,
        };
        let product_id = match self.product_id {
            Some(p) => Some(c.check(&f("product_id"), crate::validation::positive_id(p))?),
            None => None,
        };
        Some(OrderLine {
            product_id: product_id.map(crate::ids::ProductId),
            description: description?,
            quantity: quantity?,
            unit_price_minor: unit?,
            total_minor: total?,
        })
    }
}

/// Checks every line, naming errors `lines[i].field`.
fn parse_lines(c: &mut Collector, lines: Vec<OrderLineInput>) -> Option<Vec<OrderLine>> {
    if lines.len() > LINES_MAX {
        c.push("lines", format!("at most {LINES_MAX} lines"));
        return None;
    }
    let mut out = Vec::with_capacity(lines.len());
    let mut ok = true;
    for (i, l) in lines.into_iter().enumerate() {
        match l.parse(c, &format!("lines[{i}].")) {
            Some(l) => out.push(l),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// An order total: the one given, or the sum of the lines; never negative, within the cap.
fn order_total(c: &mut Collector, given: Option<i64>, lines: Option<&[OrderLine]>) -> Option<i64> {
    let total = match given {
        Some(t) => Ok(t),
        None => {
            lines_total(lines?).ok_or_else(|| "the sum of the lines is out of range".to_owned())
        }
    };
    c.check("total_minor", total.and_then(money::check_total))
}

/// An order as given, before it is checked: the same rules for a JSON body, a row of a
/// purchase log or orders file, and a form. Errors are named after the fields
/// (`external_id`, `occurred_at`, `currency`, `total_minor`, `lines[i].…`).
#[derive(Debug, Clone)]
pub struct OrderInput {
    pub external_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
    /// The reporting currency when left out.
    pub currency: Option<String>,
    /// The sum of the lines when left out.
    pub total_minor: Option<i64>,
    pub channel: Option<SalesChannel>,
    pub status: Option<OrderStatus>,
    pub lines: Vec<OrderLineInput>,
}

/// A checked order, not yet tied to a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFields {
    pub external_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub currency: String,
    pub total_minor: i64,
    pub channel: SalesChannel,
    pub status: OrderStatus,
    pub lines: Vec<OrderLine>,
}

impl OrderFields {
    pub fn for_customer(self, customer_id: crate::ids::CustomerId) -> OrderData {
        OrderData {
            external_id: self.external_id,
            customer_id,
            occurred_at: self.occurred_at,
            currency: self.currency,
            total_minor: self.total_minor,
            channel: self.channel,
            status: self.status,
            lines: self.lines,
        }
    }
}

impl OrderInput {
    /// Checks every field, recording what is wrong in `c`; `None` when anything was.
    pub fn parse(self, c: &mut Collector, ctx: &InputContext<'_>) -> Option<OrderFields> {
        let external_id = c.check_opt("external_id", self.external_id, |x| {
            crate::validation::external_id(&x)
        });
        ctx.not_future(c, "occurred_at", self.occurred_at);
        let currency = ctx.currency(c, "currency", self.currency.as_deref());
        let lines = parse_lines(c, self.lines);
        let total = order_total(c, self.total_minor, lines.as_deref());
        if !c.is_clean() {
            return None;
        }
        Some(OrderFields {
            external_id,
            occurred_at: self.occurred_at,
            currency: currency?,
            total_minor: total?,
            channel: self.channel.unwrap_or(SalesChannel::Other),
            status: self.status.unwrap_or(OrderStatus::Completed),
            lines: lines?,
        })
    }
}

/// A change to an order: fields left out stay. New lines without a total make the total
/// their sum again.
#[derive(Debug, Clone, Default)]
pub struct OrderPatch {
    pub customer_id: Option<i64>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub currency: Option<String>,
    pub total_minor: Option<i64>,
    pub channel: Option<SalesChannel>,
    pub status: Option<OrderStatus>,
    pub lines: Option<Vec<OrderLineInput>>,
}

impl OrderPatch {
    /// Applies the patch to `d` under the same rules as [`OrderInput`].
    pub fn apply(self, d: &mut OrderData, ctx: &InputContext<'_>) -> Result<(), crate::Invalid> {
        let mut c = Collector::new();
        if let Some(id) = self.customer_id
            && let Some(id) = c.check("customer_id", crate::validation::positive_id(id))
        {
            d.customer_id = crate::ids::CustomerId(id);
        }
        if let Some(at) = self.occurred_at {
            ctx.not_future(&mut c, "occurred_at", at);
            d.occurred_at = at;
        }
        if let Some(cur) = self.currency
            && let Some(cur) = ctx.currency(&mut c, "currency", Some(&cur))
        {
            d.currency = cur;
        }
        if let Some(ch) = self.channel {
            d.channel = ch;
        }
        if let Some(s) = self.status {
            d.status = s;
        }
        let lines_changed = self.lines.is_some();
        if let Some(l) = self.lines
            && let Some(l) = parse_lines(&mut c, l)
        {
            d.lines = l;
        }
        if (self.total_minor.is_some() || lines_changed)
            && let Some(t) = order_total(&mut c, self.total_minor, Some(&d.lines))
        {
            d.total_minor = t;
        }
        c.finish()
    }
}

/// A product as given, before it is checked. The category is chosen by the interface (an
/// id from the API, a name from a catalogue file).
#[derive(Debug, Clone, Default)]
pub struct ProductInput {
    pub external_id: Option<String>,
    pub name: String,
    pub price_minor: Option<i64>,
    /// The reporting currency when left out.
    pub currency: Option<String>,
    /// Active when left out.
    pub active: Option<bool>,
}

/// A product price: between 0 and the amount cap.
pub fn parse_price(v: i64) -> Result<i64, String> {
    money::check_total(v).map_err(|_| format!("must be between 0 and {}", money::AMOUNT_MAX))
}

/// A category name: 1–100 characters.
pub fn parse_category_name(s: &str) -> Result<String, String> {
    crate::validation::required_text(s, CATEGORY_NAME_MAX)
}

impl ProductInput {
    /// Checks every field into a product without a category.
    pub fn parse(self, c: &mut Collector, ctx: &InputContext<'_>) -> Option<ProductData> {
        let name = c.check(
            "name",
            crate::validation::required_text(&self.name, PRODUCT_NAME_MAX),
        );
        let external_id = match self.external_id {
            Some(x) => Some(c.check("external_id", crate::validation::external_id(&x))?),
            None => None,
        };
        let price_minor = match self.price_minor {
            Some(p) => Some(c.check("price_minor", parse_price(p))?),
            None => None,
        };
        let currency = ctx.currency(c, "currency", self.currency.as_deref());
        Some(ProductData {
            external_id,
            name: name?,
            category_id: None,
            price_minor,
            currency: currency?,
            active: self.active.unwrap_or(true),
        })
    }
}

/// A change to a product: fields left out stay; `Some(None)` clears.
#[derive(Debug, Clone, Default)]
pub struct ProductPatch {
    pub name: Option<String>,
    pub category_id: Option<Option<i64>>,
    pub price_minor: Option<Option<i64>>,
    pub currency: Option<String>,
    pub active: Option<bool>,
}

impl ProductPatch {
    pub fn apply(self, d: &mut ProductData) -> Result<(), crate::Invalid> {
        let mut c = Collector::new();
        if let Some(n) = c.check_opt("name", self.name, |s| {
            crate::validation::required_text(&s, PRODUCT_NAME_MAX)
        }) {
            d.name = n;
        }
        match self.category_id {
            Some(Some(v)) => {
                if let Some(v) = c.check("category_id", crate::validation::positive_id(v)) {
                    d.category_id = Some(crate::ids::CategoryId(v));
                }
            }
            Some(None) => d.category_id = None,
            None => {}
        }
        match self.price_minor {
            Some(Some(v)) => {
                if let Some(v) = c.check("price_minor", parse_price(v)) {
                    d.price_minor = Some(v);
                }
            }
            Some(None) => d.price_minor = None,
            None => {}
        }
        if let Some(cur) = c.check_opt("currency", self.currency, |s| money::parse_currency(&s)) {
            d.currency = cur;
        }
        if let Some(a) = self.active {
            d.active = a;
        }
        c.finish()
    }
}

#[cfg(test)]
mod input_tests {
    use super::*;

    fn ctx() -> InputContext<'static> {
        InputContext {
            now: Utc::now(),
            reporting_currency: "USD",
        }
    }

    fn order(total: Option<i64>, lines: Vec<OrderLineInput>) -> OrderInput {
        OrderInput {
            external_id: None,
            occurred_at: Utc::now(),
            currency: None,
            total_minor: total,
            channel: None,
            status: None,
            lines,
        }
    }

    fn fields(c: Collector) -> Vec<String> {
        c.into_errors().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn totals_are_never_negative_and_never_wrap() {
        for bad in [-1, i64::MIN, money::AMOUNT_MAX + 1] {
            let mut c = Collector::new();
            assert!(order(Some(bad), vec![]).parse(&mut c, &ctx()).is_none());
            assert_eq!(fields(c), ["total_minor"], "{bad}");
        }
        let mut c = Collector::new();
        let o = order(None, vec![]).parse(&mut c, &ctx());
        assert_eq!(
            o.map(|o| (o.total_minor, o.currency)),
            Some((0, "USD".into()))
        );
    }

    #[test]
    fn line_totals_overflowing_are_errors_not_saturated() {
        let line = OrderLineInput {
            quantity: money::QUANTITY_MAX,
            unit_price_minor: money::AMOUNT_MAX,
            ..Default::default()
        };
        let mut c = Collector::new();
        assert!(order(None, vec![line]).parse(&mut c, &ctx()).is_none());
        assert_eq!(fields(c), ["lines[0].total_minor"]);
    }

    #[test]
    fn a_discount_line_may_be_negative_but_the_order_may_not() {
        let lines = vec![
            OrderLineInput {
                quantity: 2,
                unit_price_minor: 500,
                ..Default::default()
            },
            OrderLineInput {
                quantity: 1,
                unit_price_minor: -200,
                description: "voucher".into(),
                ..Default::default()
            },
        ];
        let mut c = Collector::new();
        let o = order(None, lines.clone()).parse(&mut c, &ctx());
        assert_eq!(o.map(|o| o.total_minor), Some(800));
        let mut c = Collector::new();
        let lines = vec![OrderLineInput {
            quantity: 1,
            unit_price_minor: -200,
            ..Default::default()
        }];
        assert!(order(None, lines).parse(&mut c, &ctx()).is_none());
        assert_eq!(fields(c), ["total_minor"]);
    }

    #[test]
    fn orders_from_the_future_are_refused() {
        let mut o = order(Some(1), vec![]);
        o.occurred_at = Utc::now() + chrono::Duration::days(3);
        let mut c = Collector::new();
        assert!(o.parse(&mut c, &ctx()).is_none());
        assert_eq!(fields(c), ["occurred_at"]);
    }
}
