//! Tenure's web application: server-rendered pages (minijinja templates built into the
//! binary) for managers and agents, in English, simplified and traditional Chinese.
//!
//! API boundary: pages read the request, call the application layer (`tenure-app`) and
//! render a template. They hold no SQL and no business rule; forms are parsed into the same
//! domain inputs as the JSON API, so a field error reads the same in both.
//!
//! Every control is a plain link or form first. With htmx (vendored, `assets/`), some
//! requests ask for a fragment instead of the whole page (`HX-Request`); responses say
//! `Vary: HX-Request` so that no cache hands one out for the other.

mod assets;
pub mod charts;
pub mod i18n;
mod imports;
mod pages;
mod render;
mod session;

use std::sync::Arc;

use axum::Router;
use tenure_app::App;

pub use render::not_found_page;

/// How the web application is set up.
#[derive(Debug, Clone, Default)]
pub struct WebOptions {
    /// Mark cookies `Secure` (the application is reached over HTTPS). Requests that
    /// arrive with `X-Forwarded-Proto: https` get secure cookies whatever this says.
    pub secure_cookies: bool,
}

/// What every page handler shares.
pub struct Web {
    pub(crate) app: App,
    pub(crate) catalog: Arc<i18n::Catalog>,
    /// The templates; an error only if a built-in template does not parse (ruled out by
    /// the tests), and then every page says so.
    pub(crate) templates: Result<minijinja::Environment<'static>, String>,
    pub(crate) options: WebOptions,
    pub(crate) imports: imports::Imports,
}

/// The shared state, cheap to clone.
#[derive(Clone)]
pub struct WebState(pub(crate) Arc<Web>);

impl std::ops::Deref for WebState {
    type Target = Web;
    fn deref(&self) -> &Web {
        &self.0
    }
}

impl WebState {
    /// The web application over `app`.
    pub fn new(app: App, options: WebOptions) -> WebState {
        let catalog = Arc::new(i18n::Catalog::load().unwrap_or_else(|e| {
            tracing::error!(error = %e, "the message files do not parse");
            i18n::Catalog::empty()
        }));
        let templates = render::environment(catalog.clone());
        if let Err(e) = &templates {
            tracing::error!(error = %e, "the page templates do not parse");
        }
        WebState(Arc::new(Web {
            app,
            catalog,
            templates,
            options,
            imports: imports::Imports::default(),
        }))
    }
}

/// The pages, to be merged beside the API.
pub fn router<S: Clone + Send + Sync + 'static>(state: WebState) -> Router<S> {
    pages::routes()
        // Pages and assets go out gzipped to browsers that take it (downloads too).
        .layer(tower_http::compression::CompressionLayer::new().gzip(true))
        .with_state(state)
}
