//! Segments: expressions of the filter language, checked when saved (a parse error names
//! its column; a reference to a missing segment or a circle of references is refused),
//! membership kept by every write that changes a customer and rebuilt in dependency
//! order by the refresh, with history; and the live count and preview of an expression
//! being edited.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use tenure_domain::access::Permission;
use tenure_domain::changes::{Actor, Event};
use tenure_domain::customer::Customer;
use tenure_domain::ids::{CustomerId, SegmentId};
use tenure_domain::segment::{Expr, build_order, parse};
use tenure_store::WriteTx;
use tenure_store::segments::{CompileContext, MembershipChange, SegmentInput, SegmentRow};

use crate::unit::{Context, Handler, HandlerFuture};
use crate::{App, AppError, AppResult, Listed, PageRequest, require};

/// Longest segment name.
pub const NAME_MAX: usize = 100;
/// Longest description.
pub const DESCRIPTION_MAX: usize = 1_000;
/// Customers shown in each side of a preview.
const PREVIEW: usize = 10;

/// A segment as a user writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentDraft {
    pub name: String,
    pub description: String,
    pub expression: String,
}

/// A parse error of an expression, for a page that marks where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpressionError {
    pub message: String,
    pub position: usize,
    pub length: usize,
    pub caret: String,
}

/// The live count of an expression and who would enter and leave a segment with it.
#[derive(Debug, Clone)]
pub struct Preview {
    pub count: u64,
    pub as_of: DateTime<Utc>,
    /// Against the segment being edited, when there is one.
    pub entering: Option<(u64, Vec<Customer>)>,
    pub leaving: Option<(u64, Vec<Customer>)>,
}

fn minor_per_major(currency: &str) -> f64 {
    10_f64.powi(tenure_domain::money::minor_exponent(currency) as i32)
}

/// Parses an expression into a field error of `expression` that says where it fails.
pub fn check_expression(text: &str) -> Result<Expr, ExpressionError> {
    parse(text).map_err(|e| ExpressionError {
        message: e.to_string(),
        position: e.position,
        length: e.length,
        caret: e.caret(text),
    })
}

fn parsed(text: &str) -> AppResult<Expr> {
    check_expression(text).map_err(|e| AppError::field("expression", e.message))
}

/// The segments in the order they must be worked out, each with its parsed expression.
fn ordered(segments: &[SegmentRow]) -> AppResult<Vec<(SegmentRow, Expr)>> {
    let mut parsed_all = HashMap::new();
    let mut refs = Vec::new();
    for s in segments {
        let expr = parse(&s.expression).map_err(|e| {
            AppError::Internal(format!(
                "the stored filter of segment {} does not parse: {e}",
                s.name
            ))
        })?;
        refs.push((s.name.clone(), expr.segment_refs()));
        parsed_all.insert(s.name.clone(), (s.clone(), expr));
    }
    let order = build_order(&refs).map_err(|e| AppError::field("expression", e.to_string()))?;
    Ok(order
        .into_iter()
        .filter_map(|n| parsed_all.remove(&n))
        .collect())
}

fn context(segments: &[SegmentRow], as_of: DateTime<Utc>, currency: &str) -> CompileContext {
    CompileContext {
        as_of,
        minor_per_major: minor_per_major(currency),
        segments: segments.iter().map(|s| (s.name.clone(), s.id)).collect(),
    }
}

/// Checks a draft against the other segments: a name, a filter that parses, references
/// to segments that exist, and no circle through this one.
fn validate(draft: &SegmentDraft, others: &[SegmentRow]) -> AppResult<(SegmentInput, Expr)> {
    let name = draft.name.trim();
    let mut errors = Vec::new();
    if name.is_empty() {
        errors.push(tenure_domain::FieldError::new("name", "is required"));
    } else if name.chars().count() > NAME_MAX {
        errors.push(tenure_domain::FieldError::new(
            "name",
            format!("must be at most {NAME_MAX} characters"),
        ));
    }
    if draft.description.chars().count() > DESCRIPTION_MAX {
        errors.push(tenure_domain::FieldError::new(
            "description",
            format!("must be at most {DESCRIPTION_MAX} characters"),
        ));
    }
    let expr = match check_expression(&draft.expression) {
        Ok(e) => Some(e),
        Err(e) => {
            errors.push(tenure_domain::FieldError::new("expression", e.message));
            None
        }
    };
    if let Some(expr) = &expr {
        let known: HashSet<&str> = others.iter().map(|s| s.name.as_str()).collect();
        for r in expr.segment_refs() {
            if r == name {
                errors.push(tenure_domain::FieldError::new(
                    "expression",
                    format!("a segment cannot be built on itself (in_segment(\"{r}\"))"),
                ));
            } else if !known.contains(r.as_str()) {
                errors.push(tenure_domain::FieldError::new(
                    "expression",
                    format!("there is no segment named \"{r}\""),
                ));
            }
        }
        if errors.is_empty() {
            let mut refs: Vec<(String, Vec<String>)> = others
                .iter()
                .filter_map(|s| Some((s.name.clone(), parse(&s.expression).ok()?.segment_refs())))
                .collect();
            refs.push((name.to_owned(), expr.segment_refs()));
            if let Err(e) = build_order(&refs) {
                errors.push(tenure_domain::FieldError::new("expression", e.to_string()));
            }
        }
    }
    match expr {
        Some(expr) if errors.is_empty() => Ok((
            SegmentInput {
                name: name.to_owned(),
                description: draft.description.trim().to_owned(),
                expression: draft.expression.trim().to_owned(),
                depends_on: expr.segment_refs(),
            },
            expr,
        )),
        _ => Err(AppError::Invalid(tenure_domain::Invalid(errors))),
    }
}

/// Works out `segment` for everyone in this transaction and applies the difference.
async fn rebuild_one(
    tx: &mut WriteTx<'_>,
    segment: SegmentId,
    expr: &Expr,
    ctx: &CompileContext,
    now: DateTime<Utc>,
) -> AppResult<Vec<i64>> {
    let want = tx.segment_select(expr, ctx).await?;
    let have = tx.segment_member_ids(segment).await?;
    let (entered, left) = diff(&want, &have);
    tx.apply_membership(segment, &entered, &left, now, true)
        .await?;
    Ok(want)
}

/// (in `want` only, in `have` only), both ascending inputs.
fn diff(want: &[i64], have: &[i64]) -> (Vec<i64>, Vec<i64>) {
    let (mut i, mut j) = (0, 0);
    let (mut entered, mut left) = (Vec::new(), Vec::new());
    while i < want.len() || j < have.len() {
        match (want.get(i), have.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                entered.push(*a);
                i += 1;
            }
            (Some(_), Some(b)) => {
                left.push(*b);
                j += 1;
            }
            (Some(a), None) => {
                entered.push(*a);
                i += 1;
            }
            (None, Some(b)) => {
                left.push(*b);
                j += 1;
            }
            (None, None) => break,
        }
    }
    (entered, left)
}

/// Keeps segment membership current inside every write that changes a customer.
pub struct Membership {
    pub clock: crate::Clock,
}

impl Handler for Membership {
    fn name(&self) -> &'static str {
        "segment membership"
    }

    fn handle<'a>(&'a self, ctx: &'a mut Context<'_, '_>, event: &'a Event) -> HandlerFuture<'a> {
        Box::pin(async move {
            let customers = match event {
                Event::CustomerDeleted { .. } => Vec::new(),
                _ => event.customers(),
            };
            if customers.is_empty() {
                return Ok(());
            }
            let segments = ctx.tx.segments().await?;
            if segments.is_empty() {
                return Ok(());
            }
            let now = self.clock.now();
            let cctx = context(&segments, now, ctx.tx.reporting_currency());
            let ordered = ordered(&segments)?;
            for c in customers {
                for (s, expr) in &ordered {
                    let now_in = ctx.tx.segment_matches(expr, &cctx, c).await?;
                    let was_in = ctx.tx.is_member(s.id, c).await?;
                    if now_in != was_in {
                        let (entered, left) = if now_in {
                            (vec![c.0], Vec::new())
                        } else {
                            (Vec::new(), vec![c.0])
                        };
                        ctx.tx
                            .apply_membership(s.id, &entered, &left, now, false)
                            .await?;
                    }
                }
            }
            Ok(())
        })
    }
}

impl App {
    pub async fn segments(&self, actor: &Actor) -> AppResult<Vec<SegmentRow>> {
        require(actor, Permission::ReadAggregates)?;
        Ok(self.store().segments().await?)
    }

    pub async fn segment(&self, actor: &Actor, id: SegmentId) -> AppResult<SegmentRow> {
        require(actor, Permission::ReadAggregates)?;
        Ok(self.store().segment(id).await?)
    }

    /// Creates a segment and works out its members at once.
    pub async fn create_segment(
        &self,
        actor: &Actor,
        draft: SegmentDraft,
    ) -> AppResult<SegmentRow> {
        require(actor, Permission::WriteCatalog)?;
        let now = self.now();
        let mut uow = self.begin(actor).await?;
        let others = uow.tx.segments().await?;
        let (input, expr) = validate(&draft, &others)?;
        let id = uow.tx.create_segment(&input).await?;
        let all = uow.tx.segments().await?;
        let ctx = context(&all, now, self.reporting_currency());
        rebuild_one(&mut uow.tx, id, &expr, &ctx, now).await?;
        uow.emit(Event::SegmentCreated { segment: id });
        uow.commit().await?;
        Ok(self.store().segment(id).await?)
    }

    /// Changes a segment still at `version`, and works out it and every segment built on
    /// it again.
    pub async fn update_segment(
        &self,
        actor: &Actor,
        id: SegmentId,
        version: i64,
        draft: SegmentDraft,
    ) -> AppResult<SegmentRow> {
        require(actor, Permission::WriteCatalog)?;
        let now = self.now();
        let mut uow = self.begin(actor).await?;
        let all = uow.tx.segments().await?;
        let Some(current) = all.iter().find(|s| s.id == id).cloned() else {
            return Err(AppError::NotFound("segment not found".into()));
        };
        let others: Vec<SegmentRow> = all.iter().filter(|s| s.id != id).cloned().collect();
        if current.name != draft.name.trim()
            && let Some(user) = others.iter().find(|s| s.depends_on.contains(&current.name))
        {
            return Err(AppError::field(
                "name",
                format!(
                    "segment \"{}\" is built on this one by its name; change it first",
                    user.name
                ),
            ));
        }
        let (input, _) = validate(&draft, &others)?;
        if !uow.tx.update_segment(id, version, &input).await? {
            return Err(AppError::PreconditionFailed {
                current: current.version,
            });
        }
        let all = uow.tx.segments().await?;
        let ctx = context(&all, now, self.reporting_currency());
        for (s, expr) in ordered(&all)? {
            rebuild_one(&mut uow.tx, s.id, &expr, &ctx, now).await?;
        }
        uow.emit(Event::SegmentUpdated { segment: id });
        uow.commit().await?;
        Ok(self.store().segment(id).await?)
    }

    /// Deletes a segment no other segment is built on.
    pub async fn delete_segment(&self, actor: &Actor, id: SegmentId) -> AppResult<()> {
        require(actor, Permission::WriteCatalog)?;
        let mut uow = self.begin(actor).await?;
        let all = uow.tx.segments().await?;
        let Some(current) = all.iter().find(|s| s.id == id) else {
            return Err(AppError::NotFound("segment not found".into()));
        };
        if let Some(user) = all.iter().find(|s| s.depends_on.contains(&current.name)) {
            return Err(AppError::Conflict(format!(
                "segment \"{}\" is built on this one; change or delete it first",
                user.name
            )));
        }
        uow.tx.delete_segment(id).await?;
        uow.emit(Event::SegmentDeleted { segment: id });
        uow.commit().await?;
        Ok(())
    }

    /// How many customers `expression` selects now; with `against`, who would enter and
    /// who would leave that segment.
    pub async fn preview_segment(
        &self,
        actor: &Actor,
        expression: &str,
        against: Option<SegmentId>,
    ) -> AppResult<Preview> {
        require(actor, Permission::ReadAggregates)?;
        let expr = parsed(expression)?;
        let segments = self.store().segments().await?;
        for r in expr.segment_refs() {
            if !segments.iter().any(|s| s.name == r) {
                return Err(AppError::field(
                    "expression",
                    format!("there is no segment named \"{r}\""),
                ));
            }
        }
        let as_of = self.now();
        let ctx = context(&segments, as_of, self.reporting_currency());
        let count = self.store().segment_count(&expr, &ctx).await?;
        let (mut entering, mut leaving) = (None, None);
        if let Some(id) = against {
            self.store().segment(id).await?;
            let want = self.store().segment_select(&expr, &ctx).await?;
            let have = self.store().segment_member_ids(id).await?;
            let (e, l) = diff(&want, &have);
            let show = |ids: &[i64]| ids.iter().take(PREVIEW).copied().collect::<Vec<_>>();
            let role = actor.role;
            let people = |v: Vec<Customer>| v.into_iter().map(|c| c.seen_by(role)).collect();
            entering = Some((
                e.len() as u64,
                people(self.store().customers_by_ids(&show(&e)).await?),
            ));
            leaving = Some((
                l.len() as u64,
                people(self.store().customers_by_ids(&show(&l)).await?),
            ));
        }
        Ok(Preview {
            count,
            as_of,
            entering,
            leaving,
        })
    }

    /// A page of a segment's members with the time each entered.
    pub async fn segment_members(
        &self,
        actor: &Actor,
        id: SegmentId,
        page: PageRequest,
    ) -> AppResult<Listed<(Customer, DateTime<Utc>)>> {
        require(actor, Permission::ReadAggregates)?;
        self.store().segment(id).await?;
        let after = page
            .after::<crate::lifecycle::StagePosition>()?
            .map(|p| CustomerId(p.0));
        let found = self
            .store()
            .segment_members(id, after, self.owner_scope(actor).await?, page.limit()?)
            .await?;
        let ids: Vec<i64> = found.items.iter().map(|(c, _)| c.0).collect();
        let mut customers: HashMap<i64, Customer> = self
            .store()
            .customers_by_ids(&ids)
            .await?
            .into_iter()
            .map(|c| (c.id.0, c.seen_by(actor.role)))
            .collect();
        let items: Vec<(Customer, DateTime<Utc>)> = found
            .items
            .iter()
            .filter_map(|(c, since)| Some((customers.remove(&c.0)?, *since)))
            .collect();
        let page = tenure_store::Page {
            items,
            next: found.next.map(|c| crate::lifecycle::StagePosition(c.0)),
        };
        Ok(crate::listed(page, |x| x))
    }

    /// Who entered and left a segment, newest first.
    pub async fn segment_history(
        &self,
        actor: &Actor,
        id: SegmentId,
        limit: u32,
    ) -> AppResult<Vec<MembershipChange>> {
        require(actor, Permission::ReadAggregates)?;
        self.store().segment(id).await?;
        Ok(self.store().segment_history(id, limit).await?)
    }

    /// Works out every segment again, in dependency order, each in a transaction of its
    /// own; returns each segment's members.
    pub(crate) async fn rebuild_segments(
        &self,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> AppResult<Vec<(SegmentRow, Vec<i64>)>> {
        let segments = self.store().segments().await?;
        let ctx = context(&segments, now, self.reporting_currency());
        let mut out = Vec::new();
        for (s, expr) in ordered(&segments)? {
            let mut uow = self.begin(actor).await?;
            let members = rebuild_one(&mut uow.tx, s.id, &expr, &ctx, now).await?;
            uow.commit().await?;
            out.push((s, members));
        }
        Ok(out)
    }
}

/// Whether `customer` meets the expression `text`, inside a write (a journey's entry
/// condition or branch).
pub(crate) async fn matches_in(
    tx: &mut WriteTx<'_>,
    text: &str,
    customer: tenure_domain::ids::CustomerId,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let expr = parsed(text)?;
    let segments = tx.segments().await?;
    let cctx = context(&segments, now, tx.reporting_currency());
    Ok(tx.segment_matches(&expr, &cctx, customer).await?)
}

/// The customers who meet the expression `text` now, ascending.
pub(crate) async fn select(app: &App, text: &str, now: DateTime<Utc>) -> AppResult<Vec<i64>> {
    let expr = parsed(text)?;
    let segments = app.store().segments().await?;
    let cctx = context(&segments, now, app.reporting_currency());
    Ok(app.store().segment_select(&expr, &cctx).await?)
}

#[cfg(test)]
mod tests {
    use super::diff;

    #[test]
    fn the_difference_of_two_member_lists() {
        assert_eq!(diff(&[1, 2, 4, 6], &[2, 3, 4, 7]), (vec![1, 6], vec![3, 7]));
        assert_eq!(diff(&[], &[1]), (vec![], vec![1]));
        assert_eq!(diff(&[5], &[]), (vec![5], vec![]));
    }
}
