//! The handlers every application runs for the events of its writes.

use std::sync::Arc;

use tenure_domain::changes::Event;

use crate::unit::{Context, Handler, HandlerFuture, Handlers};

/// The default handlers, in the order they run: the change log, the duplicate
/// candidates, loyalty points, the life-cycle stage, then segment membership (which reads
/// the stage, the points and the tier), then the journeys the events start (whose entry
/// conditions read all of it), then the webhooks telling other systems.
pub fn defaults(clock: &crate::Clock) -> Handlers {
    vec![
        Arc::new(ChangeLog),
        Arc::new(DuplicateCandidates),
        Arc::new(crate::loyalty::Loyalty {
            clock: clock.clone(),
        }),
        Arc::new(crate::service::FollowUps {
            clock: clock.clone(),
        }),
        Arc::new(crate::lifecycle::Stages {
            clock: clock.clone(),
        }),
        Arc::new(crate::segments::Membership {
            clock: clock.clone(),
        }),
        Arc::new(crate::journeys::Journeys {
            clock: clock.clone(),
        }),
        Arc::new(crate::webhooks::Webhooks {
            clock: clock.clone(),
        }),
    ]
}

/// Appends one change-log entry per event: who, when, through what, which record, what
/// operation.
pub struct ChangeLog;

impl Handler for ChangeLog {
    fn name(&self) -> &'static str {
        "change log"
    }

    fn handle<'a>(&'a self, ctx: &'a mut Context<'_, '_>, event: &'a Event) -> HandlerFuture<'a> {
        Box::pin(async move {
            // A stage move is an effect of the write that caused it, which has its own
            // entry; the move itself is recorded with its reason in the stage history.
            if matches!(event, Event::StageChanged { .. }) {
                return Ok(());
            }
            ctx.tx.append_change(ctx.actor, &event.change()).await?;
            Ok(())
        })
    }
}

/// Keeps the stored duplicate candidates current: once per unit of work, recomputes the
/// pairs of every customer whose match keys changed (see [`crate::duplicates::maintain`]).
pub struct DuplicateCandidates;

impl Handler for DuplicateCandidates {
    fn name(&self) -> &'static str {
        "duplicate candidates"
    }

    fn handle<'a>(&'a self, _ctx: &'a mut Context<'_, '_>, _event: &'a Event) -> HandlerFuture<'a> {
        Box::pin(async { Ok(()) })
    }

    fn settle<'a>(&'a self, ctx: &'a mut Context<'_, '_>) -> HandlerFuture<'a> {
        Box::pin(async move {
            let changes = ctx.tx.take_key_changes();
            if !changes.is_empty() {
                crate::duplicates::maintain(ctx.tx, changes).await?;
            }
            Ok(())
        })
    }
}
