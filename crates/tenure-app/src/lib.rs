//! Tenure's application layer: every use case — create a customer, record an order, import a
//! batch, merge two customers, refresh the models, run a job — is one function here that
//! takes the acting user or token ([`Actor`]) and typed inputs, checks what the actor may
//! do, applies the domain's input rules, and writes through the store in one transaction
//! (a [`unit::UnitOfWork`]). Each write emits domain events; the handlers registered with
//! the application (the change log and the duplicate candidates now; points, stages, audit,
//! messages and webhooks next) run for them inside that same transaction.
//!
//! API boundary: the HTTP API, the command line and the job worker call only this crate.
//! Architecture invariant: interfaces never call the store — they do not depend on it; the
//! store's data types they need are re-exported from [`model`].

pub mod analytics;
mod catalog;
mod customers;
pub mod duplicates;
mod error;
pub mod export;
pub mod handlers;
pub mod import;
pub mod jobs;
pub mod journeys;
pub mod lifecycle;
pub mod loyalty;
pub mod messages;
pub mod model;
mod orders;
pub mod password;
pub mod privacy;
pub mod retention;
pub mod segments;
pub mod service;
mod sheet;
pub mod unit;
mod users;
pub mod web;
pub mod webhooks;

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `n` random bytes as hex: tokens, secrets, form keys.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::fill(&mut bytes[..]);
    hex(&bytes)
}

use std::sync::Arc;

use tenure_domain::access::Permission;
use tenure_domain::changes::Actor;
use tenure_domain::validation::InputContext;
use tenure_store::Store;

pub use error::{AppError, AppResult};
pub use tenure_store::backup::restore as restore_backup;
pub use tenure_store::{StoreOptions, redact_url};
pub use users::{TOKEN_DAYS_MAX, TOKEN_NAME_MAX};

/// Settings of the application beyond the store's.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// Recurring jobs the workers queue (see [`jobs::default_schedules`]).
    pub schedules: Vec<tenure_domain::jobs::Schedule>,
    /// How long a worker may hold a job before another may take it over.
    pub job_lease: chrono::Duration,
    /// What time it is for the life cycle (tests hold it still and move it on).
    pub clock: Clock,
    /// Where the web application is reached from outside (`TENURE_BASE_URL`), for links
    /// handed to customers; empty: links are relative.
    pub base_url: String,
    /// How messages reach customers (SMTP, the SMS/IM gateway) and how workers claim them.
    pub channels: messages::Channels,
}

/// The time the life cycle sees: the system's, or one a test sets and moves.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    fixed: Option<Arc<std::sync::Mutex<chrono::DateTime<chrono::Utc>>>>,
}

impl Clock {
    /// A clock standing at `t` until moved.
    pub fn fixed(t: chrono::DateTime<chrono::Utc>) -> Clock {
        Clock {
            fixed: Some(Arc::new(std::sync::Mutex::new(t))),
        }
    }

    /// Moves a fixed clock to `t` (a system clock ignores it).
    pub fn set(&self, t: chrono::DateTime<chrono::Utc>) {
        if let Some(m) = &self.fixed
            && let Ok(mut g) = m.lock()
        {
            *g = t;
        }
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        match &self.fixed {
            Some(m) => m.lock().map_or_else(|_| chrono::Utc::now(), |g| *g),
            None => chrono::Utc::now(),
        }
    }
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            schedules: jobs::default_schedules(),
            job_lease: chrono::Duration::minutes(30),
            clock: Clock::default(),
            base_url: std::env::var("TENURE_BASE_URL")
                .unwrap_or_default()
                .trim_end_matches('/')
                .to_owned(),
            channels: messages::Channels::from_env(),
        }
    }
}

/// The application: the store, the registered event handlers and the options. Cheap to
/// clone; every interface holds one.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    handlers: unit::Handlers,
    options: AppOptions,
    dashboards: web::DashboardCache,
    transports: messages::Transports,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("store", &self.inner.store)
            .finish_non_exhaustive()
    }
}

/// Builds an [`App`] with more handlers than the default ones (tests register one that
/// fails, to see a write roll back).
pub struct AppBuilder {
    store: Store,
    handlers: unit::Handlers,
    options: AppOptions,
}

impl AppBuilder {
    pub fn handler(mut self, h: Arc<dyn unit::Handler>) -> Self {
        self.handlers.push(h);
        self
    }

    pub fn options(mut self, options: AppOptions) -> Self {
        self.options = options;
        self
    }

    pub fn build(self) -> App {
        let mut handlers = handlers::defaults(&self.options.clock);
        handlers.extend(self.handlers);
        App {
            inner: Arc::new(Inner {
                store: self.store,
                handlers,
                options: self.options,
                dashboards: web::DashboardCache::default(),
                transports: messages::Transports::default(),
            }),
        }
    }
}

impl App {
    /// Opens the database and applies its migrations.
    pub async fn open(options: &StoreOptions) -> AppResult<App> {
        let store = Store::connect(options).await?;
        store.migrate().await?;
        Ok(App::new(store))
    }

    /// The application over `store`, with the default handlers.
    pub fn new(store: Store) -> App {
        App::builder(store).build()
    }

    pub fn builder(store: Store) -> AppBuilder {
        AppBuilder {
            store,
            handlers: Vec::new(),
            options: AppOptions::default(),
        }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn options(&self) -> &AppOptions {
        &self.inner.options
    }

    pub(crate) fn transports(&self) -> &messages::Transports {
        &self.inner.transports
    }

    /// The time now, as the life cycle sees it.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.options.clock.now()
    }

    /// The reporting currency: the default for amounts given without one.
    pub fn reporting_currency(&self) -> &str {
        self.store().reporting_currency()
    }

    /// The input rules' context for input arriving now.
    pub(crate) fn input_context(&self) -> InputContext<'_> {
        InputContext {
            now: self.now(),
            ..InputContext::new(self.reporting_currency())
        }
    }

    /// A secret made once per database under `name` (in the settings), so every server signs
    /// alike; once it exists it is read without taking the writer.
    pub(crate) async fn secret(&self, name: &str) -> AppResult<Vec<u8>> {
        if let Some(serde_json::Value::String(s)) = self.store().setting(name).await? {
            return Ok(s.into_bytes());
        }
        let actor = tenure_domain::changes::Actor::system();
        let mut uow = self.begin(&actor).await?;
        let stored = uow
            .tx
            .setting_once(name, &random_hex(32), self.now())
            .await?;
        uow.tx.commit().await?;
        Ok(stored.into_bytes())
    }

    /// Begins a unit of work for `actor`: one transaction, with the registered handlers.
    pub async fn begin<'a>(&'a self, actor: &'a Actor) -> AppResult<unit::UnitOfWork<'a>> {
        let tx = self.store().begin_write().await?;
        Ok(unit::UnitOfWork::new(tx, actor, &self.inner.handlers))
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> AppResult<()> {
        Ok(self.store().ping().await?)
    }

    /// Which database this application runs on: `sqlite` or `postgres`.
    pub fn database_kind(&self) -> &'static str {
        match self.store().backend() {
            tenure_store::Backend::Sqlite => "sqlite",
            tenure_store::Backend::Postgres => "postgres",
        }
    }

    /// Closes every connection; used at shutdown.
    pub async fn close(&self) {
        self.store().close().await;
    }

    /// Refreshes the planner's statistics after many rows were loaded.
    pub async fn analyze(&self) -> AppResult<()> {
        Ok(self.store().analyze().await?)
    }
}

/// Refuses with 403 unless `actor` may do `p`.
pub(crate) fn require(actor: &Actor, p: Permission) -> AppResult<()> {
    if actor.allows(p) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "the {} role may not do this",
            actor.role
        )))
    }
}

/// A page of a list: its items and the cursor of the next page (`None` on the last).
#[derive(Debug, Clone)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Items per page when a client does not say, and the most it may ask for.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

/// A page request: how many items, and the cursor a previous page returned.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl PageRequest {
    pub fn first(limit: u32) -> Self {
        PageRequest {
            limit: Some(limit),
            cursor: None,
        }
    }

    /// The limit asked for, checked: 1–500, 50 when not given.
    pub(crate) fn limit(&self) -> AppResult<u32> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(AppError::parameter(
                "limit",
                format!("must be between 1 and {MAX_LIMIT} (got {n})"),
            )),
        }
    }

    /// The position the cursor holds.
    pub(crate) fn after<K: tenure_domain::cursor::CursorKey>(&self) -> AppResult<Option<K>> {
        self.cursor
            .as_deref()
            .map(|c| {
                tenure_domain::cursor::decode::<K>(c).map_err(|e| AppError::parameter("cursor", e))
            })
            .transpose()
    }
}

/// A store page as a listed page, its position encoded as the cursor.
pub(crate) fn listed<T, U, K: tenure_domain::cursor::CursorKey>(
    page: tenure_store::Page<T, K>,
    f: impl FnMut(T) -> U,
) -> Listed<U> {
    Listed {
        items: page.items.into_iter().map(f).collect(),
        next_cursor: page.next.as_ref().map(tenure_domain::cursor::encode),
    }
}

/// Compares secrets (tokens, signatures) in a time independent of where they differ.
pub fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
