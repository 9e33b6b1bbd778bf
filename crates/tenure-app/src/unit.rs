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
                if let Some(key) = take_request_key() {
                    let now = chrono::Utc::now();
                    if !self
                        .tx
                        .reserve_request_key(&key.scope, &key.key, &key.fingerprint, now)
                        .await?
                    {
                        return Err(crate::AppError::Conflict(
                            "a request with this Idempotency-Key was carried out already \
                             or is being carried out"
                                .into(),
                        ));
                    }
                }
                self.tx.commit().await?;
                return Ok(self.events);
            }
        }
        Err(crate::AppError::Internal(
            "event handlers kept emitting events; the write was rolled back".into(),
        ))
    }
}

/// The `Idempotency-Key` of the request being served, with a digest of what it asked.
/// The first unit of work the request commits records the key in its own transaction, so
/// a retry of a request whose write committed never writes again, even when the answer to
/// the first was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    /// Whose key it is (the caller's credential), so clients never collide.
    pub scope: String,
    pub key: String,
    pub fingerprint: String,
}

tokio::task_local! {
    static REQUEST_KEY: std::sync::Mutex<KeyState>;
}

#[derive(Debug)]
enum KeyState {
    Waiting(RequestKey),
    Recorded,
    Unused,
}

/// Runs `f` (serving one request) with its idempotency key; returns what `f` returned and
/// whether a write of it recorded the key.
pub async fn with_request_key<F: Future>(key: RequestKey, f: F) -> (F::Output, bool) {
    REQUEST_KEY
        .scope(std::sync::Mutex::new(KeyState::Waiting(key)), async move {
            let out = f.await;
            let recorded = REQUEST_KEY.with(|k| {
                matches!(
                    *k.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
                    KeyState::Recorded
                )
            });
            (out, recorded)
        })
        .await
}

/// The request's key, the first time a unit of work asks for it.
fn take_request_key() -> Option<RequestKey> {
    REQUEST_KEY
        .try_with(|k| {
            let mut state = k.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match std::mem::replace(&mut *state, KeyState::Unused) {
                KeyState::Waiting(key) => {
                    *state = KeyState::Recorded;
                    Some(key)
                }
                other => {
                    *state = other;
                    None
                }
            }
        })
        .ok()
        .flatten()
}

impl crate::App {
    /// What is stored of the request with `key` in `scope`, when it was seen before.
    pub async fn request_key(
        &self,
        scope: &str,
        key: &str,
    ) -> AppResult<Option<tenure_store::changes::StoredRequest>> {
        Ok(self.store().request_key(scope, key).await?)
    }

    /// Stores the answer to a request whose write recorded its key.
    pub async fn answer_request_key(&self, scope: &str, key: &str, answer: &str) -> AppResult<()> {
        Ok(self.store().answer_request_key(scope, key, answer).await?)
    }

    /// Forgets the keys of requests older than `before`.
    pub async fn forget_request_keys(
        &self,
        before: chrono::DateTime<chrono::Utc>,
    ) -> AppResult<u64> {
        Ok(self.store().forget_request_keys(before).await?)
    }
}
