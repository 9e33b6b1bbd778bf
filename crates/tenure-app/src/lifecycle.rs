//! The life cycle: the business's thresholds, placing a customer in their stage inside
//! every write that changes what the stage rule reads (an order moves "churned" to "won
//! back" at once), staff's manual stage, loss reason and prospect qualification, and the
//! reports over stages (counts, flows, loss reasons, who is worth winning back).

use chrono::{DateTime, Duration, Utc};
use tenure_domain::access::Permission;
use tenure_domain::changes::{Actor, Event};
use tenure_domain::ids::CustomerId;
use tenure_domain::lifecycle::{
    LifecycleSettings, LossReason, LossReasonSource, Stage, StageFacts, TransitionReason,
    inferred_loss_reason, parked, place, returned_after_lapse,
};
use tenure_store::WriteTx;
use tenure_store::lifecycle::{LifecycleRecord, NewTransition, Transition};

use crate::unit::{Context, Handler, HandlerFuture};
use crate::{App, AppError, AppResult, Listed, PageRequest, require};

/// The settings document holding the life-cycle thresholds.
pub const SETTINGS: &str = "lifecycle";

/// How long before a customer went silent a complaint counts as the reason they left.
pub(crate) const COMPLAINT_LOOKBACK_DAYS: i64 = 90;

/// Reads the business's thresholds (the defaults until it sets its own).
pub(crate) fn settings_from(value: Option<serde_json::Value>) -> AppResult<LifecycleSettings> {
    match value {
        None => Ok(LifecycleSettings::default()),
        Some(v) => serde_json::from_value(v).map_err(|e| {
            AppError::Internal(format!(
                "the stored life-cycle settings are unreadable: {e}"
            ))
        }),
    }
}

impl App {
    /// The thresholds in force, without a permission check (for use cases that checked
    /// their own).
    pub(crate) async fn current_lifecycle_settings(&self) -> AppResult<LifecycleSettings> {
        settings_from(self.store().setting(SETTINGS).await?)
    }
}

pub(crate) async fn settings_in(tx: &mut WriteTx<'_>) -> AppResult<LifecycleSettings> {
    settings_from(tx.setting(SETTINGS).await?)
}

/// What staff change about a customer's life cycle. `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LifecycleEdit {
    /// `Some(None)` removes the manual stage.
    pub override_stage: Option<Option<Stage>>,
    pub note: Option<String>,
    pub loss_reason: Option<LossReason>,
    pub money: Option<bool>,
    pub authority: Option<bool>,
    pub need: Option<bool>,
}

/// A customer's life cycle as the 360° page shows it.
#[derive(Debug, Clone)]
pub struct CustomerLifecycle {
    pub record: LifecycleRecord,
    pub history: Vec<Transition>,
    pub rfm: Option<tenure_store::refresh::StoredRfm>,
    pub segments: Vec<(String, DateTime<Utc>)>,
    pub win_back_min_clv: f64,
}

/// Stages now, the moves between them and why customers were lost, over a period.
#[derive(Debug, Clone)]
pub struct StageReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub counts: Vec<(Stage, u64)>,
    pub flows: Vec<(Option<Stage>, Stage, u64)>,
    pub loss_reasons: Vec<(Option<LossReason>, u64)>,
}

/// Places one customer at `now`, inside the transaction of the write that changed them:
/// recomputes the stage and the prospect counters, records a move with its reason, and
/// infers a loss reason on churn. Returns whether the stage moved.
pub(crate) async fn place_customer(
    tx: &mut WriteTx<'_>,
    actor: &Actor,
    customer: CustomerId,
    now: DateTime<Utc>,
    manual: Option<(TransitionReason, String)>,
) -> AppResult<bool> {
    let settings = settings_in(tx).await?;
    let existing = tx.lifecycle_for_update(customer).await?;
    let first_placement = existing.is_none();
    let mut rec = existing.unwrap_or_else(|| LifecycleRecord::new(customer, now));
    let stored = tx.stage_facts(customer).await?;

    if stored.orders == 0 {
        let mut counts = tx.contact_counts(customer, rec.qualified_at).await?;
        if let Some(signal) = counts.last_signal_at
            && rec.qualified_at.is_none_or(|q| signal > q)
        {
            counts = tx.contact_counts(customer, Some(signal)).await?;
        }
        rec.contact_attempts = counts.attempts;
        rec.attempts_since_progress = counts.attempts_since;
        rec.buying_signals = counts.buying_signals;
        rec.parked = parked(counts.attempts_since, &settings);
    } else {
        rec.parked = false;
    }

    let returned_at = returned_after_lapse(&stored.purchase_days, settings.churned_days)
        .and_then(|day| DateTime::from_timestamp(day * 86_400, 0));
    // The rule reads purchase days, as the refresh does, so both place a customer alike.
    let day_start = |d: Option<&i64>| d.and_then(|d| DateTime::from_timestamp(d * 86_400, 0));
    let facts = StageFacts {
        first_purchase: day_start(stored.purchase_days.first()),
        last_purchase: day_start(stored.purchase_days.last()),
        orders: stored.orders,
        purchase_days: i64::try_from(stored.purchase_days.len()).unwrap_or(i64::MAX),
        p_alive: stored.p_alive,
        qualified: rec.qualified(),
        returned_at,
    };
    let placement = place(&facts, &settings, now);
    let stage = rec.override_stage.unwrap_or(placement.stage);
    let inferred = if needs_loss_reason(&rec, first_placement, stage) {
        let since = stored.last_purchase.unwrap_or(now) - Duration::days(COMPLAINT_LOOKBACK_DAYS);
        let ticket = tx.ticket_category_between(customer, since, now).await?;
        let complained = ticket.is_some() || tx.complained_between(customer, since, now).await?;
        inferred_loss_reason(complained, ticket)
    } else {
        tenure_domain::lifecycle::LossReason::Unknown
    };
    let transition = apply_placement(
        &mut rec,
        first_placement,
        placement,
        manual,
        inferred,
        now,
        &actor.display_name(),
    );
    let moved = transition.is_some();
    if let Some(t) = &transition {
        tx.record_transition(t).await?;
    }
    tx.save_lifecycle(&rec).await?;
    Ok(moved)
}

/// Whether placing `rec` in `stage` moves a customer into "churned" with no loss reason yet,
/// so the caller must find out whether they complained.
pub(crate) fn needs_loss_reason(rec: &LifecycleRecord, first: bool, stage: Stage) -> bool {
    stage == Stage::Churned && (first || rec.stage != stage) && rec.loss_reason.is_none()
}

/// Applies a placement to a stage record at `now`, the same for a write and for the
/// refresh: the stage that counts (the manual one first); when it changed, the move to
/// record — into "churned" with the loss reason (staff's, else `inferred`),
/// out of it with the reason cleared for the next episode. `manual` replaces the rule's
/// reason for a staff edit. `None` when the stage stays.
pub(crate) fn apply_placement(
    rec: &mut LifecycleRecord,
    first: bool,
    placement: tenure_domain::lifecycle::Placement,
    manual: Option<(TransitionReason, String)>,
    inferred: tenure_domain::lifecycle::LossReason,
    now: DateTime<Utc>,
    actor_name: &str,
) -> Option<NewTransition> {
    rec.computed_stage = placement.stage;
    rec.updated_at = now;
    let stage = rec.override_stage.unwrap_or(placement.stage);
    if !first && stage == rec.stage {
        return None;
    }
    if needs_loss_reason(rec, first, stage) {
        rec.loss_reason = Some(inferred);
        rec.loss_reason_source = Some(LossReasonSource::Inferred);
    }
    if !first && rec.stage == Stage::Churned && stage != Stage::Churned {
        // A new episode: the next churn gets its own reason.
        rec.loss_reason = None;
        rec.loss_reason_source = None;
    }
    let (reason, detail) = manual.unwrap_or((placement.reason, placement.detail));
    let t = NewTransition {
        customer: rec.customer,
        at: now,
        from: (!first).then_some(rec.stage),
        to: stage,
        reason,
        detail,
        loss_reason: (stage == Stage::Churned)
            .then_some(rec.loss_reason)
            .flatten(),
        actor_name: actor_name.to_owned(),
    };
    rec.stage = stage;
    rec.stage_since = now;
    Some(t)
}

/// Keeps every customer's stage current inside the writes that change it.
pub struct Stages {
    pub clock: crate::Clock,
}

impl Handler for Stages {
    fn name(&self) -> &'static str {
        "life-cycle stage"
    }

    fn handle<'a>(&'a self, ctx: &'a mut Context<'_, '_>, event: &'a Event) -> HandlerFuture<'a> {
        Box::pin(async move {
            use Event::*;
            let customers = match event {
                CustomerCreated { .. }
                | OrderRecorded { .. }
                | OrderUpdated { .. }
                | OrderDeleted { .. }
                | InteractionRecorded { .. }
                | InteractionUpdated { .. }
                | InteractionDeleted { .. }
                | CustomersMerged { .. }
                | MergeUndone { .. } => event.customers(),
                _ => Vec::new(),
            };
            let merged = match event {
                CustomersMerged { merged, .. } => Some(*merged),
                _ => None,
            };
            for c in customers {
                if Some(c) == merged {
                    continue;
                }
                let actor = ctx.actor.clone();
                if place_customer(ctx.tx, &actor, c, self.clock.now(), None).await? {
                    ctx.emit(StageChanged { customer: c });
                }
            }
            Ok(())
        })
    }
}

impl App {
    /// The business's life-cycle thresholds.
    pub async fn lifecycle_settings(&self, actor: &Actor) -> AppResult<LifecycleSettings> {
        require(actor, Permission::ReadAggregates)?;
        self.current_lifecycle_settings().await
    }

    /// Sets the thresholds; stages follow them at the next write of each customer and at
    /// the next refresh.
    pub async fn set_lifecycle_settings(
        &self,
        actor: &Actor,
        settings: LifecycleSettings,
    ) -> AppResult<LifecycleSettings> {
        require(actor, Permission::WriteCatalog)?;
        settings.validate()?;
        let mut uow = self.begin(actor).await?;
        let value =
            serde_json::to_value(&settings).map_err(|e| AppError::Internal(e.to_string()))?;
        uow.tx.put_setting(SETTINGS, &value).await?;
        uow.emit(Event::SettingsChanged { name: SETTINGS });
        uow.commit().await?;
        Ok(settings)
    }

    /// A customer's stage record, stage history, RFM scores and segments.
    pub async fn customer_lifecycle(
        &self,
        actor: &Actor,
        id: CustomerId,
    ) -> AppResult<CustomerLifecycle> {
        require(actor, Permission::ReadAggregates)?;
        self.store().require_customer(id).await?;
        let settings = self.current_lifecycle_settings().await?;
        let record = match self.store().lifecycle(id).await? {
            Some(r) => r,
            None => LifecycleRecord::new(id, self.now()),
        };
        Ok(CustomerLifecycle {
            record,
            history: self.store().stage_history(id, 100).await?,
            rfm: self.store().rfm_of(id).await?,
            segments: self
                .store()
                .segments_of(id)
                .await?
                .into_iter()
                .map(|(s, since)| (s.name, since))
                .collect(),
            win_back_min_clv: settings.win_back_min_clv,
        })
    }

    /// Staff set a manual stage (or remove it), a loss reason, or a prospect's
    /// qualification; the customer is placed again in the same transaction.
    pub async fn edit_lifecycle(
        &self,
        actor: &Actor,
        id: CustomerId,
        edit: LifecycleEdit,
    ) -> AppResult<CustomerLifecycle> {
        require(actor, Permission::WriteCustomers)?;
        if let Some(note) = &edit.note
            && note.chars().count() > 500
        {
            return Err(AppError::field("note", "must be at most 500 characters"));
        }
        let now = self.now();
        let mut uow = self.begin(actor).await?;
        uow.tx.require_customer(id).await?;
        let mut rec = uow
            .tx
            .lifecycle_for_update(id)
            .await?
            .unwrap_or_else(|| LifecycleRecord::new(id, now));
        let mut manual = None;
        if let Some(o) = edit.override_stage {
            let note = edit.note.clone().filter(|n| !n.trim().is_empty());
            manual = Some(match o {
                Some(s) => (
                    TransitionReason::Override,
                    note.clone()
                        .unwrap_or_else(|| format!("set to {s} by hand")),
                ),
                None => (
                    TransitionReason::OverrideCleared,
                    note.clone()
                        .unwrap_or_else(|| "manual stage removed".into()),
                ),
            });
            rec.override_stage = o;
            rec.override_note = if o.is_some() { note } else { None };
        }
        let before = (rec.money, rec.authority, rec.need);
        rec.money = edit.money.unwrap_or(rec.money);
        rec.authority = edit.authority.unwrap_or(rec.authority);
        rec.need = edit.need.unwrap_or(rec.need);
        if (rec.money, rec.authority, rec.need) != before {
            // A change of qualification is progress: the contact count starts again.
            rec.qualified_at = Some(now);
        }
        if let Some(reason) = edit.loss_reason {
            rec.loss_reason = Some(reason);
            rec.loss_reason_source = Some(LossReasonSource::Staff);
            uow.tx.set_latest_loss_reason(id, reason).await?;
        }
        rec.updated_at = now;
        uow.tx.save_lifecycle(&rec).await?;
        let actor_clone = actor.clone();
        if place_customer(&mut uow.tx, &actor_clone, id, now, manual).await? {
            uow.emit(Event::StageChanged { customer: id });
        }
        uow.emit(Event::LifecycleEdited { customer: id });
        uow.commit().await?;
        self.customer_lifecycle(actor, id).await
    }

    /// Stage counts now, and the moves between stages and the loss reasons of `[from, to)`.
    pub async fn stage_report(
        &self,
        actor: &Actor,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> AppResult<StageReport> {
        require(actor, Permission::ReadAggregates)?;
        if from >= to {
            return Err(AppError::parameter("from", "must be before `to`"));
        }
        Ok(StageReport {
            from,
            to,
            counts: self.store().stage_counts().await?,
            flows: self.store().stage_flows(from, to).await?,
            loss_reasons: self.store().loss_reasons(from, to).await?,
        })
    }

    /// Churned customers whose predicted CLV passes the business's bar, most valuable
    /// first.
    pub async fn win_back(
        &self,
        actor: &Actor,
        page: PageRequest,
    ) -> AppResult<Listed<(tenure_domain::customer::Customer, f64, LifecycleRecord)>> {
        require(actor, Permission::ReadAggregates)?;
        let settings = self.current_lifecycle_settings().await?;
        let after = page
            .after::<WinBackPosition>()?
            .map(|p| (p.clv, CustomerId(p.id)));
        let found = self
            .store()
            .win_back(settings.win_back_min_clv, after, page.limit()?)
            .await?;
        let page = tenure_store::Page {
            items: found.items,
            next: found
                .next
                .map(|(clv, id)| WinBackPosition { clv, id: id.0 }),
        };
        Ok(crate::listed(page, |(c, v, r)| {
            (c.seen_by(actor.role), v, r)
        }))
    }

    /// Customers standing in `stage`, by id.
    pub async fn customers_in_stage(
        &self,
        actor: &Actor,
        stage: Stage,
        page: PageRequest,
    ) -> AppResult<Listed<(tenure_domain::customer::Customer, LifecycleRecord)>> {
        require(actor, Permission::ReadAggregates)?;
        let after = page.after::<StagePosition>()?.map(|p| CustomerId(p.0));
        let found = self
            .store()
            .customers_in_stage(stage, after, page.limit()?)
            .await?;
        let page = tenure_store::Page {
            items: found.items,
            next: found.next.map(|c| StagePosition(c.0)),
        };
        Ok(crate::listed(page, |(c, r)| (c.seen_by(actor.role), r)))
    }
}

/// The position in the win-back list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WinBackPosition {
    pub clv: f64,
    pub id: i64,
}

impl tenure_domain::cursor::CursorKey for WinBackPosition {
    const TAG: &'static str = "win_back";
    type Parts = (f64, i64);
    fn to_parts(&self) -> Self::Parts {
        (self.clv, self.id)
    }
    fn from_parts((clv, id): Self::Parts) -> Option<Self> {
        clv.is_finite().then_some(Self { clv, id })
    }
}

/// The position in a stage's customer list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StagePosition(pub i64);

impl tenure_domain::cursor::CursorKey for StagePosition {
    const TAG: &'static str = "stage";
    type Parts = (i64,);
    fn to_parts(&self) -> Self::Parts {
        (self.0,)
    }
    fn from_parts((id,): Self::Parts) -> Option<Self> {
        Some(Self(id))
    }
}
