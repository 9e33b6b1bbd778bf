//! Journeys: who enters (an event of a write, or a schedule: birthdays, holidays,
//! anniversaries, expiring points, a daily look at a segment), what each step does, and the
//! messages they decide, written to the outbox in the step's own transaction.
//!
//! - An event enrols inside the write that caused it ([`Journeys`] is a handler of the
//!   unit of work), so a purchase and its welcome commit together or not at all.
//! - A schedule enrols by occasion (a birthday's year, a holiday's date): the enrolment is
//!   unique per journey, customer and occasion, so a run repeated after a crash, or by two
//!   workers at once, enrols nobody twice.
//! - [`App::advance_journeys`] runs the due steps of each enrolment in one transaction
//!   with the enrolment locked; a send step renders its template and writes the message with
//!   the rules applied: consent, quiet hours in the customer's time zone, the frequency cap
//!   with priorities, the send window. Every decision not to send is a message row with its
//!   reason, so a journey's page can say who was not sent and why.
//! - The templates, the ready-made journeys and delivery live in [`crate::messages`].

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use tenure_domain::access::Permission;
use tenure_domain::changes::{Actor, Event};
use tenure_domain::customer::{ConsentChannel, ConsentStatus, Customer, CustomerPatch};
use tenure_domain::ids::{CustomerId, EnrollmentId, JourneyId};
use tenure_domain::journey::{
    Channel, EnrollmentStatus, EventKind, JourneyDefinition, JourneySettings, Lift, MessageClass,
    MessageStatus, QuietHours, Reentry, SkipReason, Step, Trigger, holiday_on, in_control,
    is_birthday, local_instant, parse_local_time,
};
use tenure_domain::lifecycle::Stage;
use tenure_store::WriteTx;
use tenure_store::journeys::{
    ConversionCounts, Enrollment, Journey, JourneyCounts, NewEnrollment, NewMessage,
};

use crate::unit::{Context, Handler, HandlerFuture};
use crate::{App, AppError, AppResult, require};

const SETTINGS: &str = "journeys";

pub(crate) fn settings_from(v: Option<serde_json::Value>) -> AppResult<JourneySettings> {
    match v {
        None => Ok(JourneySettings::default()),
        Some(v) => serde_json::from_value(v).map_err(|e| {
            AppError::Internal(format!("the stored journey settings are unreadable: {e}"))
        }),
    }
}

/// The journey settings and the business's time zone, read inside a write.
pub(crate) async fn rules_in(tx: &mut WriteTx<'_>) -> AppResult<Rules> {
    let settings = settings_from(tx.setting(SETTINGS).await?)?;
    let quiet = settings
        .check()
        .map_err(|e| AppError::Internal(format!("the stored journey settings are invalid: {e}")))?;
    let zone = crate::service::service_in(tx).await?.hours.time_zone();
    Ok(Rules {
        settings,
        quiet,
        zone,
    })
}

/// What every send decision needs: the settings, the quiet hours, the business's zone.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    pub settings: JourneySettings,
    pub quiet: QuietHours,
    pub zone: Tz,
}

/// A customer's time zone: their own when their profile names one, else the business's.
pub(crate) fn zone_of(c: &Customer, business: Tz) -> Tz {
    c.data.time_zone().unwrap_or(business)
}

/// Whether a customer who last entered at `last` may enter again now for a new occasion.
fn may_reenter(rule: Reentry, last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    match (rule, last) {
        (_, None) | (Reentry::EachOccasion, _) => true,
        (Reentry::Never, Some(_)) => false,
        (Reentry::AfterDays(d), Some(t)) => now - t >= Duration::days(i64::from(d)),
    }
}

/// Enrols `customer` in every switched-on journey that `event` starts (an event trigger of
/// that kind, and of that stage for a stage change) and whose entry condition they meet.
pub(crate) async fn enroll_on_event(
    tx: &mut WriteTx<'_>,
    event: EventKind,
    stage: Option<Stage>,
    customer: CustomerId,
    occasion: &str,
    now: DateTime<Utc>,
) -> AppResult<Vec<EnrollmentId>> {
    let mut out = Vec::new();
    for j in tx.enabled_journeys().await? {
        let Trigger::Event {
            event: e,
            stage: want,
        } = j.definition.trigger
        else {
            continue;
        };
        if e != event || (want.is_some() && want != stage) {
            continue;
        }
        if !j.definition.entry.trim().is_empty()
            && !crate::segments::matches_in(tx, &j.definition.entry, customer, now).await?
        {
            continue;
        }
        let last = tx.last_entries(j.id, &[customer.0]).await?;
        if !may_reenter(j.definition.reentry, last.get(&customer.0).copied(), now) {
            continue;
        }
        if let Some(id) = tx
            .enroll(&NewEnrollment {
                journey: j.id,
                customer,
                occasion: occasion.to_owned(),
                occasion_on: None,
                control: in_control(j.id.0, customer.0, j.definition.control_percent),
                at: now,
            })
            .await?
        {
            out.push(id);
        }
    }
    Ok(out)
}

/// Starts the event-triggered journeys inside the writes whose events start them.
pub struct Journeys {
    pub clock: crate::Clock,
}

impl Handler for Journeys {
    fn name(&self) -> &'static str {
        "journeys"
    }

    fn handle<'a>(&'a self, ctx: &'a mut Context<'_, '_>, event: &'a Event) -> HandlerFuture<'a> {
        Box::pin(async move {
            let now = self.clock.now();
            match *event {
                Event::OrderRecorded { customer, .. } => {
                    let c = ctx.tx.get_customer(customer).await?;
                    if c.stats.orders_count == 1 {
                        enroll_on_event(
                            ctx.tx,
                            EventKind::FirstPurchase,
                            None,
                            customer,
                            "first_purchase",
                            now,
                        )
                        .await?;
                    }
                }
                Event::StageChanged { customer } => {
                    if let Some(stage) = ctx
                        .tx
                        .lifecycle_for_update(customer)
                        .await?
                        .map(|r| r.stage)
                    {
                        let occasion = format!("stage:{stage}:{}", now.timestamp());
                        enroll_on_event(
                            ctx.tx,
                            EventKind::StageChanged,
                            Some(stage),
                            customer,
                            &occasion,
                            now,
                        )
                        .await?;
                    }
                }
                Event::TierChanged { customer } => {
                    if let Some(m) = ctx.tx.last_tier_move(customer).await?
                        && m.reason == "qualified"
                        && m.from_tier.is_some()
                    {
                        let occasion = format!("tier:{}", m.id);
                        enroll_on_event(
                            ctx.tx,
                            EventKind::TierUpgraded,
                            None,
                            customer,
                            &occasion,
                            now,
                        )
                        .await?;
                    }
                }
                Event::SurveyInvited {
                    invitation,
                    customer,
                    ..
                } => {
                    let occasion = format!("invitation:{invitation}");
                    enroll_on_event(
                        ctx.tx,
                        EventKind::SurveyInvited,
                        None,
                        customer,
                        &occasion,
                        now,
                    )
                    .await?;
                }
                Event::SurveyAnswered {
                    response, customer, ..
                } => {
                    let occasion = format!("response:{response}");
                    enroll_on_event(
                        ctx.tx,
                        EventKind::SurveyAnswered,
                        None,
                        customer,
                        &occasion,
                        now,
                    )
                    .await?;
                }
                _ => {}
            }
            Ok(())
        })
    }
}

/// A journey with what it has done.
#[derive(Debug, Clone)]
pub struct JourneyReport {
    pub journey: Journey,
    pub counts: JourneyCounts,
    pub lift: Lift,
}

/// What one evaluation of the scheduled journeys did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ScheduleRun {
    pub journeys: u64,
    pub enrolled: u64,
    pub control: u64,
}

/// Who a schedule enrols today: (customer, occasion, its local date).
type Entrants = Vec<(i64, String, NaiveDate)>;

impl App {
    // -- journeys --------------------------------------------------------------------

    /// Every journey, the ready-made ones stored on first use.
    pub async fn journeys(&self, actor: &Actor) -> AppResult<Vec<Journey>> {
        require(actor, Permission::ReadAggregates)?;
        self.ensure_ready_made().await?;
        Ok(self.store().journeys().await?)
    }

    /// Every journey with its enrolments and messages by outcome, for the list page.
    pub async fn journey_overview(
        &self,
        actor: &Actor,
    ) -> AppResult<Vec<(Journey, JourneyCounts)>> {
        let journeys = self.journeys(actor).await?;
        let mut out = Vec::with_capacity(journeys.len());
        for j in journeys {
            let counts = self.store().journey_counts(j.id).await?;
            out.push((j, counts));
        }
        Ok(out)
    }

    /// A journey by id, or by name.
    pub async fn journey(&self, actor: &Actor, id: JourneyId) -> AppResult<Journey> {
        require(actor, Permission::ReadAggregates)?;
        Ok(self.store().get_journey(id).await?)
    }

    pub async fn journey_named(&self, actor: &Actor, name: &str) -> AppResult<Journey> {
        require(actor, Permission::ReadAggregates)?;
        self.ensure_ready_made().await?;
        self.store()
            .journey_by_name(name.trim())
            .await
            .map_err(|e| match e {
                tenure_store::StoreError::NotFound { .. } => AppError::NotFound(format!(
                    "no journey is named {name:?}; `tenure journeys list` shows them"
                )),
                e => e.into(),
            })
    }

    /// Switches a journey on or off.
    pub async fn set_journey_enabled(
        &self,
        actor: &Actor,
        id: JourneyId,
        enabled: bool,
    ) -> AppResult<Journey> {
        require(actor, Permission::WriteCatalog)?;
        let mut j = self.store().get_journey(id).await?;
        if j.enabled == enabled {
            return Ok(j);
        }
        if enabled {
            self.check_definition(&j.definition).await?;
        }
        j.enabled = enabled;
        let mut uow = self.begin(actor).await?;
        let j = uow.tx.update_journey(&j, self.now()).await?;
        uow.emit(Event::SettingsChanged { name: SETTINGS });
        uow.commit().await?;
        Ok(j)
    }

    /// Changes a journey's title, description and definition (checked: steps, templates,
    /// expressions).
    pub async fn update_journey(
        &self,
        actor: &Actor,
        id: JourneyId,
        title: Option<String>,
        description: Option<String>,
        definition: Option<JourneyDefinition>,
        enabled: Option<bool>,
    ) -> AppResult<Journey> {
        require(actor, Permission::WriteCatalog)?;
        let mut j = self.store().get_journey(id).await?;
        if let Some(t) = title {
            let t = t.trim();
            if t.is_empty() || t.chars().count() > 200 {
                return Err(AppError::field("title", "must be 1 to 200 characters"));
            }
            t.clone_into(&mut j.title);
        }
        if let Some(d) = description {
            j.description = d.trim().chars().take(2000).collect();
        }
        if let Some(d) = definition {
            j.definition = d;
        }
        if let Some(e) = enabled {
            j.enabled = e;
        }
        self.check_definition(&j.definition).await?;
        let mut uow = self.begin(actor).await?;
        let j = uow.tx.update_journey(&j, self.now()).await?;
        uow.emit(Event::SettingsChanged { name: SETTINGS });
        uow.commit().await?;
        Ok(j)
    }

    /// A journey's definition checked against what the database knows: every template it
    /// sends exists for its channel, every condition parses.
    async fn check_definition(&self, d: &JourneyDefinition) -> AppResult<()> {
        let mut errors = d.check();
        if !d.entry.trim().is_empty()
            && let Err(e) = crate::segments::check_expression(&d.entry)
        {
            errors.push(tenure_domain::FieldError::new("entry", e.message));
        }
        let templates = self.store().templates().await?;
        for (i, s) in d.steps.iter().enumerate() {
            match s {
                Step::Send {
                    channel, template, ..
                } if !templates
                    .iter()
                    .any(|t| t.name == *template && t.channel == *channel) =>
                {
                    errors.push(tenure_domain::FieldError::new(
                        format!("steps[{i}].template"),
                        format!("no {channel} template is named {template:?}"),
                    ));
                }
                Step::Branch { condition, .. } => {
                    if let Err(e) = crate::segments::check_expression(condition) {
                        errors.push(tenure_domain::FieldError::new(
                            format!("steps[{i}].condition"),
                            e.message,
                        ));
                    }
                }
                _ => {}
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(AppError::Invalid(tenure_domain::Invalid(errors)))
        }
    }

    /// A journey with its enrolments, messages by outcome, and treated against control.
    pub async fn journey_report(&self, actor: &Actor, id: JourneyId) -> AppResult<JourneyReport> {
        require(actor, Permission::ReadAggregates)?;
        let journey = self.store().get_journey(id).await?;
        let counts = self.store().journey_counts(id).await?;
        let c: ConversionCounts = self
            .store()
            .journey_conversions(
                id,
                journey.definition.conversion.kind,
                journey.definition.conversion.window_days,
            )
            .await?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        let lift = Lift::new(
            n(c.treated),
            n(c.treated_converted),
            n(c.control),
            n(c.control_converted),
        );
        Ok(JourneyReport {
            journey,
            counts,
            lift,
        })
    }

    /// A customer's journeys, newest first.
    pub async fn customer_journeys(
        &self,
        actor: &Actor,
        customer: CustomerId,
    ) -> AppResult<Vec<Enrollment>> {
        require(actor, Permission::ReadCustomers)?;
        Ok(self.store().customer_enrollments(customer).await?)
    }

    // -- settings --------------------------------------------------------------------

    pub async fn journey_settings(&self, actor: &Actor) -> AppResult<JourneySettings> {
        require(actor, Permission::ReadAggregates)?;
        settings_from(self.store().setting(SETTINGS).await?)
    }

    pub async fn set_journey_settings(
        &self,
        actor: &Actor,
        s: JourneySettings,
    ) -> AppResult<JourneySettings> {
        require(actor, Permission::WriteCatalog)?;
        s.check().map_err(AppError::Invalid)?;
        let value = serde_json::to_value(&s).map_err(|e| AppError::Internal(e.to_string()))?;
        let mut uow = self.begin(actor).await?;
        uow.tx.put_setting(SETTINGS, &value).await?;
        uow.emit(Event::SettingsChanged { name: SETTINGS });
        uow.commit().await?;
        Ok(s)
    }

    // -- schedules -------------------------------------------------------------------

    /// Enrols today's entrants of every switched-on scheduled journey: birthdays in each
    /// customer's time zone (lunar for those who keep it), holidays, first-purchase
    /// anniversaries, expiring points, and the daily look at a segment. Run again the same
    /// day, it enrols nobody twice.
    pub async fn evaluate_journey_schedules(&self) -> AppResult<ScheduleRun> {
        self.ensure_ready_made().await?;
        let now = self.now();
        let journeys: Vec<Journey> = self
            .store()
            .journeys()
            .await?
            .into_iter()
            .filter(|j| j.enabled && j.definition.trigger.is_scheduled())
            .collect();
        let mut run = ScheduleRun::default();
        if journeys.is_empty() {
            return Ok(run);
        }
        let zone = {
            let actor = Actor::system();
            let mut uow = self.begin(&actor).await?;
            let r = rules_in(&mut uow.tx).await?;
            uow.tx.rollback().await?;
            r.zone
        };
        let zones = Zones::load(self, zone).await?;
        for j in journeys {
            let entrants = self.entrants(&j, &zones, now).await?;
            run.journeys += 1;
            let (e, c) = self.enroll_entrants(&j, entrants, now).await?;
            run.enrolled += e;
            run.control += c;
        }
        Ok(run)
    }

    /// Who `j`'s schedule admits today, before its entry condition and re-entry rule.
    async fn entrants(
        &self,
        j: &Journey,
        zones: &Zones,
        now: DateTime<Utc>,
    ) -> AppResult<Entrants> {
        let mut out = Vec::new();
        match &j.definition.trigger {
            Trigger::Event { .. } => {}
            Trigger::Birthday => {
                // Local dates run from yesterday to tomorrow around the world.
                let today = now.date_naive();
                let days: Vec<NaiveDate> = [today.pred_opt(), Some(today), today.succ_opt()]
                    .into_iter()
                    .flatten()
                    .collect();
                let mut mds: Vec<String> =
                    days.iter().map(|d| d.format("%m-%d").to_string()).collect();
                mds.push("02-29".into());
                for c in self.store().birthday_candidates(&mds).await? {
                    let Some(born) = c.birthday else { continue };
                    let prefs: serde_json::Value =
                        serde_json::from_str(&c.preferences).unwrap_or_default();
                    let lunar = prefs.get(tenure_domain::customer::BIRTHDAY_CALENDAR_KEY)
                        == Some(&serde_json::Value::from("lunar"));
                    let local = zones.today(c.customer.0, now);
                    if is_birthday(born, local, lunar) {
                        out.push((
                            c.customer.0,
                            format!("birthday:{}", local.format("%Y")),
                            local,
                        ));
                    }
                }
            }
            Trigger::Holiday { holidays } => {
                let wanted: HashSet<_> = holidays.iter().copied().collect();
                let is_day = |d: NaiveDate| holiday_on(d).filter(|h| wanted.contains(h));
                let today = now.date_naive();
                let any = [today.pred_opt(), Some(today), today.succ_opt()]
                    .into_iter()
                    .flatten()
                    .any(|d| is_day(d).is_some());
                if any {
                    for id in self.store().all_customer_ids().await? {
                        let local = zones.today(id, now);
                        if let Some(h) = is_day(local) {
                            out.push((id, format!("holiday:{h}:{}", local.format("%Y")), local));
                        }
                    }
                }
            }
            Trigger::Anniversary => {
                for (id, first) in self.store().first_purchases().await? {
                    let local = zones.today(id, now);
                    let tz = zones.zone(id);
                    let born = first.with_timezone(&tz).date_naive();
                    if born < local && is_birthday(born, local, false) {
                        out.push((id, format!("anniversary:{}", local.format("%Y")), local));
                    }
                }
            }
            Trigger::PointsExpiring { days } => {
                let until = now + Duration::days(i64::from(*days));
                for (id, first, _points) in self.store().expiring_points(now, until).await? {
                    let local = zones.today(id, now);
                    let occasion = format!("expiring:{}", first.format("%Y-%m-%d"));
                    out.push((id, occasion, local));
                }
            }
            Trigger::Daily => {
                let ids = if j.definition.entry.trim().is_empty() {
                    self.store().all_customer_ids().await?
                } else {
                    Vec::new()
                };
                for id in ids {
                    let local = zones.today(id, now);
                    out.push((id, format!("daily:{}", local.format("%Y-%m-%d")), local));
                }
                if !j.definition.entry.trim().is_empty() {
                    for id in crate::segments::select(self, &j.definition.entry, now).await? {
                        let local = zones.today(id, now);
                        out.push((id, format!("daily:{}", local.format("%Y-%m-%d")), local));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Enrols the entrants who meet `j`'s entry condition and re-entry rule, in batches;
    /// returns (enrolled in the treated group, held out as control).
    async fn enroll_entrants(
        &self,
        j: &Journey,
        mut entrants: Entrants,
        now: DateTime<Utc>,
    ) -> AppResult<(u64, u64)> {
        if entrants.is_empty() {
            return Ok((0, 0));
        }
        let entry = j.definition.entry.trim();
        if !entry.is_empty() && !matches!(j.definition.trigger, Trigger::Daily) {
            let admitted: HashSet<i64> = crate::segments::select(self, entry, now)
                .await?
                .into_iter()
                .collect();
            entrants.retain(|(id, _, _)| admitted.contains(id));
        }
        let (mut enrolled, mut control) = (0, 0);
        let actor = Actor::system();
        for batch in entrants.chunks(2_000) {
            let mut uow = self.begin(&actor).await?;
            let ids: Vec<i64> = batch.iter().map(|(id, _, _)| *id).collect();
            let last = if j.definition.reentry == Reentry::EachOccasion {
                HashMap::new()
            } else {
                uow.tx.last_entries(j.id, &ids).await?
            };
            let rows: Vec<NewEnrollment> = batch
                .iter()
                .filter(|(id, _, _)| may_reenter(j.definition.reentry, last.get(id).copied(), now))
                .map(|(id, occasion, on)| NewEnrollment {
                    journey: j.id,
                    customer: CustomerId(*id),
                    occasion: occasion.clone(),
                    occasion_on: Some(*on),
                    control: in_control(j.id.0, *id, j.definition.control_percent),
                    at: now,
                })
                .collect();
            if rows.is_empty() {
                uow.tx.rollback().await?;
                continue;
            }
            for (_, _, held) in uow.tx.enroll_many(&rows).await? {
                if held {
                    control += 1;
                } else {
                    enrolled += 1;
                }
            }
            uow.commit().await?;
        }
        Ok((enrolled, control))
    }

    // -- steps -----------------------------------------------------------------------

    /// Runs the due steps of up to `limit` enrolments, each in its own transaction with
    /// the enrolment locked. Returns how many enrolments moved on.
    pub async fn advance_journeys(&self, limit: u32) -> AppResult<u64> {
        let now = self.now();
        let due = self.store().due_enrollments(now, limit).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let links = crate::messages::Links::load(self).await?;
        let journeys: HashMap<JourneyId, Journey> = self
            .store()
            .journeys()
            .await?
            .into_iter()
            .map(|j| (j.id, j))
            .collect();
        let mut moved = 0;
        for id in due {
            if self.advance_one(id, &journeys, &links, now).await? {
                moved += 1;
            }
        }
        Ok(moved)
    }

    async fn advance_one(
        &self,
        id: EnrollmentId,
        journeys: &HashMap<JourneyId, Journey>,
        links: &crate::messages::Links,
        now: DateTime<Utc>,
    ) -> AppResult<bool> {
        let actor = Actor::system();
        let mut uow = self.begin(&actor).await?;
        let Some(mut e) = uow.tx.lock_due_enrollment(id, now).await? else {
            uow.tx.rollback().await?;
            return Ok(false);
        };
        let Some(j) = journeys.get(&e.journey_id) else {
            uow.tx.rollback().await?;
            return Ok(false);
        };
        let rules = rules_in(&mut uow.tx).await?;
        let customer = uow.tx.get_customer(e.customer_id).await?;
        let tz = zone_of(&customer, rules.zone);
        let steps = &j.definition.steps;
        // A journey switched off lets its customers finish what they started: a welcome
        // half-sent is still sent whole.
        let mut budget = steps.len() * 2 + 1;
        loop {
            budget = budget.saturating_sub(1);
            let i = usize::try_from(e.step).unwrap_or(usize::MAX);
            let Some(step) = steps.get(i).filter(|_| budget > 0) else {
                e.status = EnrollmentStatus::Completed;
                e.next_at = None;
                e.finished_at = Some(now);
                break;
            };
            match step {
                Step::Wait { minutes } => {
                    e.step += 1;
                    e.next_at = Some(now + Duration::minutes(i64::from(*minutes)));
                    break;
                }
                Step::WaitUntil { local_time } => {
                    e.step += 1;
                    let at = parse_local_time(local_time)
                        .map_err(|m| AppError::Internal(format!("journey {}: {m}", j.name)))?;
                    let today = now.with_timezone(&tz).date_naive();
                    let mut target = local_instant(tz, today, at);
                    if target <= now {
                        if e.occasion_on == Some(today) {
                            continue;
                        }
                        target = local_instant(tz, today.succ_opt().unwrap_or(today), at);
                    }
                    e.next_at = Some(target);
                    break;
                }
                Step::Branch {
                    condition,
                    otherwise,
                } => {
                    let holds =
                        crate::segments::matches_in(&mut uow.tx, condition, e.customer_id, now)
                            .await?;
                    e.step = if holds {
                        e.step + 1
                    } else {
                        i64::try_from(*otherwise).unwrap_or(i64::MAX) - 1
                    };
                }
                Step::Send {
                    channel,
                    template,
                    class,
                    priority,
                } => {
                    let send = crate::messages::Send {
                        channel: *channel,
                        template,
                        class: *class,
                        priority: i64::from(*priority),
                        dedup_key: format!("enrollment:{}:{}", e.id, e.step),
                        journey: Some(j),
                        enrollment: Some(&e),
                    };
                    crate::messages::decide(
                        self,
                        &mut uow.tx,
                        &rules,
                        &customer,
                        links,
                        &send,
                        now,
                    )
                    .await?;
                    e.step += 1;
                }
                Step::AddTag { tag } | Step::RemoveTag { tag } => {
                    let mut tags = uow.tx.get_customer(e.customer_id).await?.data.tags;
                    let before = tags.len();
                    if matches!(step, Step::AddTag { .. }) {
                        if !tags.contains(tag) {
                            tags.push(tag.clone());
                        }
                    } else {
                        tags.retain(|t| t != tag);
                    }
                    if tags.len() != before {
                        let patch = CustomerPatch {
                            tags: Some(tags),
                            ..CustomerPatch::default()
                        };
                        uow.tx.update_customer(e.customer_id, &patch, None).await?;
                        uow.emit(Event::CustomerUpdated {
                            customer: e.customer_id,
                        });
                    }
                    e.step += 1;
                }
                Step::GrantPoints { points, reason } => {
                    let key = format!("journey:{}:{}", e.id, e.step);
                    if crate::loyalty::journey_points_in(
                        &mut uow.tx,
                        &actor,
                        e.customer_id,
                        *points,
                        reason,
                        &key,
                        now,
                    )
                    .await?
                    {
                        uow.emit(Event::PointsChanged {
                            customer: e.customer_id,
                        });
                    }
                    e.step += 1;
                }
                Step::CreateTask { title, due_days } => {
                    let key = format!("journey:{}:{}", e.id, e.step);
                    let title = format!("{title} — {}", customer.data.name);
                    if let Some(t) = crate::service::journey_task_in(
                        &mut uow.tx,
                        &actor,
                        e.customer_id,
                        &title,
                        now + Duration::days(i64::from(*due_days)),
                        &key,
                        now,
                    )
                    .await?
                    {
                        uow.emit(Event::TaskCreated {
                            task: t,
                            customer: Some(e.customer_id),
                        });
                    }
                    e.step += 1;
                }
                Step::Exit => {
                    e.status = EnrollmentStatus::Exited;
                    e.next_at = None;
                    e.finished_at = Some(now);
                    break;
                }
            }
        }
        uow.tx.save_enrollment(&e).await?;
        uow.commit().await?;
        Ok(true)
    }

    /// Marks the customer's inbox read (they opened their member page).
    pub(crate) async fn read_inbox(&self, customer: CustomerId) -> AppResult<()> {
        let actor = Actor::system();
        let mut uow = self.begin(&actor).await?;
        uow.tx.mark_inbox_read(customer, self.now()).await?;
        uow.tx.commit().await?;
        Ok(())
    }
}

/// Every customer's time zone for a schedule run: their own where the profile names one,
/// else the business's.
struct Zones {
    business: Tz,
    own: HashMap<i64, Tz>,
}

impl Zones {
    async fn load(app: &App, business: Tz) -> AppResult<Zones> {
        let own = app
            .store()
            .customer_time_zones()
            .await?
            .into_iter()
            .filter_map(|(id, tz)| tz.parse::<Tz>().ok().map(|tz| (id, tz)))
            .collect();
        Ok(Zones { business, own })
    }

    fn zone(&self, customer: i64) -> Tz {
        self.own.get(&customer).copied().unwrap_or(self.business)
    }

    fn today(&self, customer: i64, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.zone(customer)).date_naive()
    }
}

/// Whether a channel needs consent given before a marketing message, and which consent it
/// is.
pub(crate) fn consent_channel(c: Channel) -> ConsentChannel {
    match c {
        Channel::Email => ConsentChannel::Email,
        Channel::Sms => ConsentChannel::Sms,
        Channel::Im => ConsentChannel::Im,
        Channel::App => ConsentChannel::App,
    }
}

/// Why `customer` may not be sent a `class` message on `channel`, if they may not: an
/// unsubscribed channel is never sent to again; a marketing message needs consent given
/// (the in-app inbox excepted: it is the customer's own page).
pub(crate) fn consent_refusal(
    customer: &Customer,
    channel: Channel,
    class: MessageClass,
) -> Option<SkipReason> {
    let wanted = consent_channel(channel);
    let status = customer
        .consents
        .iter()
        .find(|c| c.channel == wanted)
        .map(|c| c.status);
    match status {
        Some(ConsentStatus::Withdrawn) => Some(SkipReason::Unsubscribed),
        Some(ConsentStatus::Granted) => None,
        None if class == MessageClass::Marketing && channel != Channel::App => {
            Some(SkipReason::NoConsent)
        }
        None => None,
    }
}

/// A message written to the outbox.
pub(crate) fn outbox_row(send: &crate::messages::Send<'_>, customer: CustomerId) -> NewMessage {
    NewMessage {
        customer,
        journey: send.journey.map(|j| j.id),
        enrollment: send.enrollment.map(|e| e.id),
        dedup_key: send.dedup_key.clone(),
        channel: send.channel,
        class: send.class,
        priority: send.priority,
        template: send.template.to_owned(),
        locale: String::new(),
        address: None,
        subject: String::new(),
        body_text: String::new(),
        body_html: None,
        status: MessageStatus::Queued,
        reason: None,
        due_at: Utc::now(),
        send_by: None,
        at: Utc::now(),
    }
}
