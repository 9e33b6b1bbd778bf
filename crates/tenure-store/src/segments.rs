//! Segments: their rows, their members and history, and the compilation of a parsed
//! expression of the filter language (`tenure_domain::segment`) into a WHERE clause.
//!
//! The SQL is assembled only from the constant fragments below — one per field and
//! operator — and every value of the expression is bound, so no text a user typed ever
//! becomes SQL. Each comparison is two-valued: a missing value (no purchase, no prediction)
//! never equals anything and always differs, so `not (clv > 500)` and `clv <= 500 or clv`
//! missing mean the same.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::TryStreamExt;
use sqlx::any::AnyArguments;
use sqlx::{Arguments, Row};
use tenure_domain::ids::{CustomerId, SegmentId};
use tenure_domain::segment::{CmpOp, Expr, Field, Value};

use crate::decode::json;
use crate::sql::Bulk;
use crate::time::{opt_time, time};
use crate::{Store, StoreError, StoreResult, WriteTx};

/// Where every segment expression is evaluated: a customer with their aggregates,
/// prediction, stage record and RFM scores.
const BASE: &str = "FROM customers c \
     LEFT JOIN customer_stats s ON s.customer_id = c.id \
     LEFT JOIN customer_predictions p ON p.customer_id = c.id \
     LEFT JOIN customer_lifecycle l ON l.customer_id = c.id \
     LEFT JOIN customer_rfm r ON r.customer_id = c.id \
     LEFT JOIN loyalty_accounts la ON la.customer_id = c.id \
     LEFT JOIN customer_feedback cf ON cf.customer_id = c.id";

/// What a compiled expression needs besides itself.
#[derive(Debug, Clone)]
pub struct CompileContext {
    /// The moment "now" for recency.
    pub as_of: DateTime<Utc>,
    /// Minor units per major unit of the reporting currency.
    pub minor_per_major: f64,
    /// Segment ids by name, for `in_segment`.
    pub segments: HashMap<String, SegmentId>,
}

/// A WHERE condition with its bound values.
pub struct Compiled {
    sql: String,
    args: AnyArguments,
    n: usize,
}

const DAY_MICROS: i64 = 86_400_000_000;

fn day_start(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .map_or(i64::MIN, |t| t.and_utc().timestamp_micros())
}

/// The SQL expression of a field (never a value).
fn column(field: Field) -> &'static str {
    match field {
        Field::Stage => "COALESCE(l.stage, 'potential')",
        Field::RfmSegment => "r.segment",
        Field::Kind => "c.kind",
        Field::LossReason => "l.loss_reason",
        Field::Region => "c.region",
        Field::Locale => "c.locale",
        Field::AcquisitionChannel => "c.acquisition_channel",
        Field::AcquisitionSource => "c.acquisition_source",
        Field::Tag => "t.tag",
        Field::R => "r.r",
        Field::F => "r.f",
        Field::M => "r.m",
        Field::Orders => "COALESCE(s.orders_count, 0)",
        Field::Interactions => "COALESCE(s.interactions_count, 0)",
        // Bound as-of time minus the last purchase, in whole days.
        Field::RecencyDays => "s.last_purchase_at",
        Field::Spend => "COALESCE(s.total_spend_minor, 0)",
        Field::Clv => "p.clv",
        Field::ExpectedValue => "p.expected_value",
        Field::PAlive => "p.p_alive",
        Field::ChurnRisk => "(1.0 - p.p_alive)",
        Field::ExpectedPurchases => "p.expected_purchases",
        Field::FirstPurchase => "s.first_purchase_at",
        Field::LastPurchase => "s.last_purchase_at",
        Field::LastContact => "s.last_contact_at",
        Field::Created => "c.created_at",
        Field::StageSince => "l.stage_since",
        Field::ProspectParked => "COALESCE(l.parked, 0)",
        Field::Email => "c.email",
        Field::Phone => "c.phone",
        Field::Birthday => "c.birthday",
        Field::Tier => "la.tier",
        Field::Points => "COALESCE(la.balance, 0)",
        Field::NpsGroup => "cf.nps_group",
        Field::Csat => "cf.csat_score",
        Field::OpenTickets => "COALESCE(cf.open_tickets, 0)",
    }
}

fn op_sql(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => " = ",
        CmpOp::Ne => " <> ",
        CmpOp::Lt => " < ",
        CmpOp::Le => " <= ",
        CmpOp::Gt => " > ",
        CmpOp::Ge => " >= ",
    }
}

impl Compiled {
    fn push(&mut self, s: &'static str) {
        self.sql.push_str(s);
    }

    fn bind<T>(&mut self, v: T) -> StoreResult<()>
    where
        T: 'static + Send + for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        self.args
            .add(v)
            .map_err(|e| StoreError::Database(format!("could not encode a value: {e}")))?;
        self.n += 1;
        self.sql.push('$');
        self.sql.push_str(&self.n.to_string());
        Ok(())
    }

    /// Binds a value of the field's type, converted to how it is stored.
    fn bind_value(&mut self, field: Field, v: &Value, ctx: &CompileContext) -> StoreResult<()> {
        match (field, v) {
            (Field::Spend, Value::Decimal(x)) => {
                self.bind((x * ctx.minor_per_major).round() as i64)
            }
            (Field::Spend, Value::Int(x)) => {
                self.bind((*x as f64 * ctx.minor_per_major).round() as i64)
            }
            (Field::ProspectParked, Value::Bool(b)) => self.bind(i64::from(*b)),
            (_, Value::Text(t)) => self.bind(t.clone()),
            (_, Value::Int(i)) => self.bind(*i),
            (_, Value::Decimal(x)) => self.bind(*x),
            (_, Value::Bool(b)) => self.bind(i64::from(*b)),
            (_, Value::Date(d)) => self.bind(day_start(*d)),
        }
    }

    fn expr(&mut self, e: &Expr, ctx: &CompileContext) -> StoreResult<()> {
        match e {
            Expr::And(items) | Expr::Or(items) => {
                let joiner = if matches!(e, Expr::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                if items.is_empty() {
                    self.push(if matches!(e, Expr::And(_)) {
                        "(1 = 1)"
                    } else {
                        "(1 = 0)"
                    });
                    return Ok(());
                }
                self.push("(");
                for (k, item) in items.iter().enumerate() {
                    if k > 0 {
                        self.push(joiner);
                    }
                    self.expr(item, ctx)?;
                }
                self.push(")");
            }
            Expr::Not(inner) => {
                self.push("(NOT ");
                self.expr(inner, ctx)?;
                self.push(")");
            }
            Expr::Const(true) => self.push("(1 = 1)"),
            Expr::Const(false) => self.push("(1 = 0)"),
            Expr::InSegment(name) => {
                let id = ctx.segments.get(name).ok_or_else(|| {
                    StoreError::Invalid(tenure_domain::Invalid::one(
                        "expression",
                        format!("there is no segment named \"{name}\""),
                    ))
                })?;
                self.push(
                    "EXISTS (SELECT 1 FROM segment_members sm WHERE sm.customer_id = c.id AND sm.segment_id = ",
                );
                self.bind(id.0)?;
                self.push(")");
            }
            Expr::Has(field) => {
                let c = column(*field);
                self.sql
                    .push_str(&format!("({c} IS NOT NULL AND {c} <> '')"));
            }
            Expr::Cmp { field, op, value } => self.cmp(*field, *op, value, ctx)?,
            Expr::In {
                field,
                values,
                negated,
            } => self.within(*field, values, *negated, ctx)?,
        }
        Ok(())
    }

    fn cmp(&mut self, field: Field, op: CmpOp, v: &Value, ctx: &CompileContext) -> StoreResult<()> {
        if field == Field::Tag {
            self.push(if op == CmpOp::Ne {
                "NOT EXISTS"
            } else {
                "EXISTS"
            });
            self.push(" (SELECT 1 FROM customer_tags t WHERE t.customer_id = c.id AND t.tag = ");
            self.bind_value(field, v, ctx)?;
            self.push(")");
            return Ok(());
        }
        if field == Field::RecencyDays {
            // recency_days op n, with recency = floor((as_of − last) / day), is
            // last op' a bound time: compare (as_of − last) in microseconds instead.
            let n = match v {
                Value::Int(n) => *n,
                Value::Decimal(x) => x.floor() as i64,
                _ => 0,
            };
            let as_of = ctx.as_of.timestamp_micros();
            let sql_op = op_sql(op);
            let (lo, hi) = (
                as_of.saturating_sub(n.saturating_mul(DAY_MICROS)),
                as_of.saturating_sub(n.saturating_add(1).saturating_mul(DAY_MICROS)),
            );
            // recency = n  ⇔  hi < last ≤ lo.
            return match op {
                CmpOp::Eq | CmpOp::Ne => {
                    self.push(if op == CmpOp::Eq {
                        "("
                    } else {
                        "(s.last_purchase_at IS NULL OR NOT ("
                    });
                    self.push("s.last_purchase_at IS NOT NULL AND s.last_purchase_at > ");
                    self.bind(hi)?;
                    self.push(" AND s.last_purchase_at <= ");
                    self.bind(lo)?;
                    self.push(if op == CmpOp::Eq { ")" } else { "))" });
                    Ok(())
                }
                _ => {
                    // recency > n ⇔ last ≤ hi; recency ≥ n ⇔ last ≤ lo;
                    // recency < n ⇔ last > lo; recency ≤ n ⇔ last > hi.
                    let _ = sql_op;
                    self.push("(s.last_purchase_at IS NOT NULL AND s.last_purchase_at ");
                    let (o, bound) = match op {
                        CmpOp::Gt => (" <= ", hi),
                        CmpOp::Ge => (" <= ", lo),
                        CmpOp::Lt => (" > ", lo),
                        _ => (" > ", hi),
                    };
                    self.push(o);
                    self.bind(bound)?;
                    self.push(")");
                    Ok(())
                }
            };
        }
        let c = column(field);
        if let Value::Date(d) = v {
            let start = day_start(*d);
            let next = start.saturating_add(DAY_MICROS);
            self.sql.push_str(&format!("({c} IS NOT NULL AND "));
            match op {
                CmpOp::Eq => {
                    self.sql.push_str(&format!("{c} >= "));
                    self.bind(start)?;
                    self.sql.push_str(&format!(" AND {c} < "));
                    self.bind(next)?;
                }
                CmpOp::Ne => {
                    self.sql.push_str(&format!("({c} < "));
                    self.bind(start)?;
                    self.sql.push_str(&format!(" OR {c} >= "));
                    self.bind(next)?;
                    self.push(")");
                }
                CmpOp::Lt => {
                    self.sql.push_str(&format!("{c} < "));
                    self.bind(start)?;
                }
                CmpOp::Le => {
                    self.sql.push_str(&format!("{c} < "));
                    self.bind(next)?;
                }
                CmpOp::Gt => {
                    self.sql.push_str(&format!("{c} >= "));
                    self.bind(next)?;
                }
                CmpOp::Ge => {
                    self.sql.push_str(&format!("{c} >= "));
                    self.bind(start)?;
                }
            }
            self.push(")");
            if op == CmpOp::Ne {
                // A missing date differs from every date.
                let wrapped = format!("({c} IS NULL OR {})", self.sql.split_off(0));
                self.sql = wrapped;
            }
            return Ok(());
        }
        if op == CmpOp::Ne {
            self.sql.push_str(&format!("({c} IS NULL OR {c} <> "));
        } else {
            self.sql.push_str(&format!("({c} IS NOT NULL AND {c}"));
            self.push(op_sql(op));
        }
        self.bind_value(field, v, ctx)?;
        self.push(")");
        Ok(())
    }

    fn within(
        &mut self,
        field: Field,
        values: &[Value],
        negated: bool,
        ctx: &CompileContext,
    ) -> StoreResult<()> {
        if values.is_empty() {
            self.push(if negated { "(1 = 1)" } else { "(1 = 0)" });
            return Ok(());
        }
        let list = |me: &mut Compiled| -> StoreResult<()> {
            me.push("(");
            for (k, v) in values.iter().enumerate() {
                if k > 0 {
                    me.push(", ");
                }
                me.bind_value(field, v, ctx)?;
            }
            me.push(")");
            Ok(())
        };
        if field == Field::Tag {
            self.push(if negated { "NOT EXISTS" } else { "EXISTS" });
            self.push(" (SELECT 1 FROM customer_tags t WHERE t.customer_id = c.id AND t.tag IN ");
            list(self)?;
            self.push(")");
            return Ok(());
        }
        let c = column(field);
        if negated {
            self.sql.push_str(&format!("({c} IS NULL OR {c} NOT IN "));
        } else {
            self.sql.push_str(&format!("({c} IS NOT NULL AND {c} IN "));
        }
        list(self)?;
        self.push(")");
        Ok(())
    }
}

/// Compiles `expr` into a condition over [`BASE`]'s aliases, numbering its placeholders
/// after `first` already bound ones.
pub fn compile(expr: &Expr, ctx: &CompileContext) -> StoreResult<Compiled> {
    let mut c = Compiled {
        sql: String::new(),
        args: AnyArguments::default(),
        n: 0,
    };
    c.expr(expr, ctx)?;
    Ok(c)
}

impl Compiled {
    /// The condition's text, for tests and logs (values are placeholders).
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// Appends a bound customer id condition, for evaluating one customer.
    fn and_customer(mut self, id: CustomerId) -> StoreResult<Self> {
        let cond = std::mem::take(&mut self.sql);
        self.sql = "c.id = ".to_owned();
        self.bind(id.0)?;
        self.sql.push_str(" AND ");
        self.sql.push_str(&cond);
        Ok(self)
    }
}

/// A stored segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRow {
    pub id: SegmentId,
    pub name: String,
    pub description: String,
    pub expression: String,
    pub depends_on: Vec<String>,
    pub members: i64,
    pub refreshed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// A segment to create or the new state of one.
#[derive(Debug, Clone)]
pub struct SegmentInput {
    pub name: String,
    pub description: String,
    pub expression: String,
    pub depends_on: Vec<String>,
}

/// One entry of a segment's history.
#[derive(Debug, Clone, PartialEq)]
pub struct MembershipChange {
    pub id: i64,
    pub segment: SegmentId,
    pub customer: CustomerId,
    pub at: DateTime<Utc>,
    pub entered: bool,
}

const SEGMENT_SELECT: &str = "SELECT id, name, description, expression, depends_on, members, \
     refreshed_at, created_at, updated_at, version FROM segments";

fn segment_from_row(r: &sqlx::any::AnyRow) -> StoreResult<SegmentRow> {
    Ok(SegmentRow {
        id: SegmentId(r.try_get("id")?),
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        expression: r.try_get("expression")?,
        depends_on: json(r, "depends_on")?,
        members: r.try_get("members")?,
        refreshed_at: opt_time(r, "refreshed_at")?,
        created_at: time(r, "created_at")?,
        updated_at: time(r, "updated_at")?,
        version: r.try_get("version")?,
    })
}

fn deps_json(d: &[String]) -> String {
    serde_json::to_string(d).unwrap_or_else(|_| "[]".into())
}

impl Store {
    /// Every segment, by name.
    pub async fn segments(&self) -> StoreResult<Vec<SegmentRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SEGMENT_SELECT} ORDER BY name"
        )))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(segment_from_row).collect()
    }

    pub async fn segment(&self, id: SegmentId) -> StoreResult<SegmentRow> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SEGMENT_SELECT} WHERE id = $1"
        )))
        .bind(id.0)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref()
            .map(segment_from_row)
            .transpose()?
            .ok_or(StoreError::NotFound { what: "segment" })
    }

    /// How many customers an expression selects now.
    pub async fn segment_count(&self, expr: &Expr, ctx: &CompileContext) -> StoreResult<u64> {
        let c = compile(expr, ctx)?;
        let n: i64 = sqlx::query_scalar_with(
            sqlx::AssertSqlSafe(format!("SELECT COUNT(*) {BASE} WHERE {}", c.sql)),
            c.args,
        )
        .fetch_one(self.reader())
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The ids an expression selects now, ascending.
    pub async fn segment_select(&self, expr: &Expr, ctx: &CompileContext) -> StoreResult<Vec<i64>> {
        let c = compile(expr, ctx)?;
        let mut rows = sqlx::query_scalar_with(
            sqlx::AssertSqlSafe(format!("SELECT c.id {BASE} WHERE {} ORDER BY c.id", c.sql)),
            c.args,
        )
        .fetch(self.pool());
        let mut out = Vec::new();
        while let Some(id) = rows.try_next().await? {
            out.push(id);
        }
        Ok(out)
    }

    /// A segment's member ids, ascending.
    pub async fn segment_member_ids(&self, id: SegmentId) -> StoreResult<Vec<i64>> {
        let mut rows = sqlx::query_scalar(
            "SELECT customer_id FROM segment_members WHERE segment_id = $1 ORDER BY customer_id",
        )
        .bind(id.0)
        .fetch(self.pool());
        let mut out = Vec::new();
        while let Some(id) = rows.try_next().await? {
            out.push(id);
        }
        Ok(out)
    }

    /// A page of a segment's members: (customer id, since), by id after `after`.
    pub async fn segment_members(
        &self,
        id: SegmentId,
        after: Option<CustomerId>,
        owner: Option<tenure_domain::ids::StaffUserId>,
        limit: u32,
    ) -> StoreResult<crate::Page<(CustomerId, DateTime<Utc>), CustomerId>> {
        let limit = i64::from(limit.clamp(1, 1000));
        let mut s = crate::sql::Select::new("SELECT customer_id, since FROM segment_members");
        s.filter("segment_id = {}", id.0)?;
        s.filter("customer_id > {}", after.map_or(i64::MIN, |c| c.0))?;
        s.owned_by(owner)?;
        let (sql, args) = s.finish("ORDER BY customer_id", limit + 1)?;
        let rows = sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
            .fetch_all(self.reader())
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            items.push((CustomerId(r.try_get("customer_id")?), time(r, "since")?));
        }
        Ok(crate::Page::cut(items, limit, |(c, _)| *c))
    }

    /// The segments a customer is in, by name.
    pub async fn segments_of(
        &self,
        customer: CustomerId,
    ) -> StoreResult<Vec<(SegmentRow, DateTime<Utc>)>> {
        let rows = sqlx::query(
            "SELECT g.id, g.name, g.description, g.expression, g.depends_on, g.members, g.refreshed_at, \
             g.created_at, g.updated_at, g.version, m.since FROM segment_members m \
             JOIN segments g ON g.id = m.segment_id WHERE m.customer_id = $1 ORDER BY g.name",
        )
        .bind(customer.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((segment_from_row(r)?, time(r, "since")?)))
            .collect()
    }

    /// A segment's history, newest first.
    pub async fn segment_history(
        &self,
        id: SegmentId,
        limit: u32,
    ) -> StoreResult<Vec<MembershipChange>> {
        let rows = sqlx::query(
            "SELECT id, segment_id, customer_id, at, change FROM segment_history WHERE segment_id = $1 \
             ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(id.0)
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let change: String = r.try_get("change")?;
                Ok(MembershipChange {
                    id: r.try_get("id")?,
                    segment: SegmentId(r.try_get("segment_id")?),
                    customer: CustomerId(r.try_get("customer_id")?),
                    at: time(r, "at")?,
                    entered: change == "entered",
                })
            })
            .collect()
    }
}

impl WriteTx<'_> {
    pub async fn create_segment(&mut self, s: &SegmentInput) -> StoreResult<SegmentId> {
        let now = crate::time::now_micros();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO segments (name, description, expression, depends_on, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(s.name.clone())
        .bind(s.description.clone())
        .bind(s.expression.clone())
        .bind(deps_json(&s.depends_on))
        .bind(now)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(SegmentId(id))
    }

    /// Updates a segment when it is still at `version`; `false` when it moved on.
    pub async fn update_segment(
        &mut self,
        id: SegmentId,
        version: i64,
        s: &SegmentInput,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE segments SET name = $1, description = $2, expression = $3, depends_on = $4, \
             updated_at = $5, version = version + 1 WHERE id = $6 AND version = $7",
        )
        .bind(s.name.clone())
        .bind(s.description.clone())
        .bind(s.expression.clone())
        .bind(deps_json(&s.depends_on))
        .bind(crate::time::now_micros())
        .bind(id.0)
        .bind(version)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_segment(&mut self, id: SegmentId) -> StoreResult<bool> {
        for sql in [
            "DELETE FROM segment_members WHERE segment_id = $1",
            "DELETE FROM segment_history WHERE segment_id = $1",
        ] {
            sqlx::query(sql).bind(id.0).execute(&mut *self.tx).await?;
        }
        let done = sqlx::query("DELETE FROM segments WHERE id = $1")
            .bind(id.0)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every segment as this transaction sees it.
    pub async fn segments(&mut self) -> StoreResult<Vec<SegmentRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SEGMENT_SELECT} ORDER BY name"
        )))
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(segment_from_row).collect()
    }

    /// The ids an expression selects, in this transaction.
    pub async fn segment_select(
        &mut self,
        expr: &Expr,
        ctx: &CompileContext,
    ) -> StoreResult<Vec<i64>> {
        let c = compile(expr, ctx)?;
        let ids: Vec<i64> = sqlx::query_scalar_with(
            sqlx::AssertSqlSafe(format!("SELECT c.id {BASE} WHERE {} ORDER BY c.id", c.sql)),
            c.args,
        )
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(ids)
    }

    /// A segment's member ids, ascending, in this transaction.
    pub async fn segment_member_ids(&mut self, id: SegmentId) -> StoreResult<Vec<i64>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT customer_id FROM segment_members WHERE segment_id = $1 ORDER BY customer_id",
        )
        .bind(id.0)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(ids)
    }

    /// Whether `customer` matches `expr` in this transaction.
    pub async fn segment_matches(
        &mut self,
        expr: &Expr,
        ctx: &CompileContext,
        customer: CustomerId,
    ) -> StoreResult<bool> {
        let c = compile(expr, ctx)?.and_customer(customer)?;
        let n: i64 = sqlx::query_scalar_with(
            sqlx::AssertSqlSafe(format!("SELECT COUNT(*) {BASE} WHERE {}", c.sql)),
            c.args,
        )
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(n > 0)
    }

    /// Whether `customer` is a member of `segment` now.
    pub async fn is_member(
        &mut self,
        segment: SegmentId,
        customer: CustomerId,
    ) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM segment_members WHERE segment_id = $1 AND customer_id = $2",
        )
        .bind(segment.0)
        .bind(customer.0)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(n > 0)
    }

    /// Adds and removes members, with their history, and records the new count and
    /// `refreshed` (when the whole segment was evaluated).
    pub async fn apply_membership(
        &mut self,
        segment: SegmentId,
        entered: &[i64],
        left: &[i64],
        at: DateTime<Utc>,
        refreshed: bool,
    ) -> StoreResult<()> {
        let at = at.timestamp_micros();
        for chunk in left.chunks(500) {
            let list: Vec<String> = (0..chunk.len()).map(|k| format!("${}", k + 2)).collect();
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM segment_members WHERE segment_id = $1 AND customer_id IN ({})",
                list.join(",")
            )))
            .bind(segment.0);
            for id in chunk {
                q = q.bind(*id);
            }
            q.execute(&mut *self.tx).await?;
        }
        let mut rows = Bulk::new(
            self.backend(),
            "INSERT INTO segment_members (segment_id, customer_id, since)",
            3,
        );
        for id in entered {
            rows.row(&mut self.tx, |a| {
                a.add(segment.0)?;
                a.add(*id)?;
                a.add(at)
            })
            .await?;
        }
        rows.flush(&mut self.tx).await?;
        let mut rows = Bulk::new(
            self.backend(),
            "INSERT INTO segment_history (segment_id, customer_id, at, change)",
            4,
        );
        for (ids, change) in [(entered, "entered"), (left, "left")] {
            for id in ids {
                rows.row(&mut self.tx, |a| {
                    a.add(segment.0)?;
                    a.add(*id)?;
                    a.add(at)?;
                    a.add(change.to_owned())
                })
                .await?;
            }
        }
        rows.flush(&mut self.tx).await?;
        let refreshed_at = if refreshed { Some(at) } else { None };
        sqlx::query(
            "UPDATE segments SET members = (SELECT COUNT(*) FROM segment_members WHERE segment_id = $1), \
             refreshed_at = COALESCE($2, refreshed_at) WHERE id = $1",
        )
        .bind(segment.0)
        .bind(refreshed_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
