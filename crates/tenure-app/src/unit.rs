//! The unit of work: one transaction per use case, into which its writes emit domain
//! events. At commit, every registered handler runs for every event — inside the same
//! transaction, so an effect (a change-log entry now; points earned, a stage moved, an
//! audit entry, a queued message next) commits with the write or not at all. A handler may
//! emit events of its own; they are handled in turn. A handler's error rolls the whole
//! write back.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tenure_domain::changes::{Actor, Event};
use tenure_store::WriteTx;

use crate::AppResult;

/// A boxed future borrowing for `'a`, the return type of a handler.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = AppResult<()>> + Send + 'a>>;

/// What a handler works with: the write's transaction, who acts, and the events it emits.
pub struct Context<'t, 's> {
    pub tx: &'t mut WriteTx<'s>,
    pub actor: &'t Actor,
    emitted: Vec<Event>,
}

impl Context<'_, '_> {
    /// Emits a further event, handled after the current ones.
    pub fn emit(&mut self, e: Event) {
        self.emitted.push(e);
    }
}

/// An effect of writes: runs for each event of a unit of work, in its transaction.
pub trait Handler: Send + Sync {
    /// For logs and errors.
    fn name(&self) -> &'static str;

    /// Handles one event.
    fn handle<'a>(&'a self, ctx: &'a mut Context<'_, '_>, event: &'a Event) -> HandlerFuture<'a>;

    /// Runs once all events of the unit are handled, for work done per transaction rather
    /// than per event (the duplicate candidates of every customer the unit touched). It may
    /// emit events, which are then handled and settled again.
    fn settle<'a>(&'a self, _ctx: &'a mut Context<'_, '_>) -> HandlerFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

pub type Handlers = Vec<Arc<dyn Handler>>;

/// One use case's transaction and the events its writes emitted.
pub struct UnitOfWork<'a> {
    pub tx: WriteTx<'a>,
    actor: &'a Actor,
    events: Vec<Event>,
    handlers: &'a Handlers,
}

/// Handlers emitting events that make handlers emit events could go on for ever; no real
/// cascade is this deep.
const MAX_ROUNDS: usize = 16;

impl<'a> UnitOfWork<'a> {
    pub(crate) fn new(tx: WriteTx<'a>, actor: &'a Actor, handlers: &'a Handlers) -> Self {
        UnitOfWork {
            tx,
            actor,
            events: Vec::new(),
            handlers,
        }
    }

    pub fn actor(&self) -> &Actor {
        self.actor
    }

    /// Records that a write happened; its handlers run at [`UnitOfWork::commit`].
    pub fn emit(&mut self, e: Event) {
        self.events.push(e);
    }

    /// Runs the handlers for every event (and the events they emit), then commits. On any
    /// error nothing is committed.
    pub async fn commit(mut self) -> AppResult<Vec<Event>> {
        let mut handled = 0;
        for _round in 0..MAX_ROUNDS {
            while handled < self.events.len() {
                let event = self.events[handled].clone();
                handled += 1;
                for h in self.handlers {
                    let mut ctx = Context {
                        tx: &mut self.tx,
                        actor: self.actor,
                        emitted: Vec::new(),
                    };
                    h.handle(&mut ctx, &event).await?;
                    let more = ctx.emitted;
                    self.events.extend(more);
                }
            }
            for h in self.handlers {
                let mut ctx = Context {
                    tx: &mut self.tx,
                    actor: self.actor,
                    emitted: Vec::new(),
                };
                h.settle(&mut ctx).await?;
                let more = ctx.emitted;
                self.events.extend(more);
            }
            if handled == self.events.len() {
                self.tx.commit().await?;
                return Ok(self.events);
            }
        }
        Err(crate::AppError::Internal(
            "event handlers kept emitting events; the write was rolled back".into(),
        ))
    }
}
