//! Tenure's HTTP layer: the JSON API under `/api/v1`, its access control, problem+json
//! errors, the OpenAPI document and browsable API page, health and metrics endpoints.
//!
//! API boundary: handlers parse the request into domain inputs, call the application layer
//! (`tenure-app`), and render DTOs. They hold no SQL and no business rule, and never reach
//! the store; DTOs live here, never in the domain or store.

pub mod api;
pub mod auth;
mod extract;
mod health;
mod idempotency;
mod metrics;
mod openapi;
mod problem;
mod request;

use std::sync::Arc;

use axum::Router;
use tenure_app::App;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use problem::ApiError;

/// Shared state of every request.
#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub web: tenure_web::WebState,
    pub tokens: Arc<auth::TokenCache>,
    pub metrics: Arc<metrics::Metrics>,
    /// When set, `/metrics` answers only `Authorization: Bearer <this>`.
    pub metrics_token: Option<Arc<str>>,
}

impl AppState {
    pub fn new(app: App) -> Self {
        Self::with_token_ttl(app, auth::TOKEN_TTL)
    }

    /// With resolved tokens trusted for `ttl` (a revoked token is refused within it).
    pub fn with_token_ttl(app: App, ttl: std::time::Duration) -> Self {
        Self::with_options(app, ttl, tenure_web::WebOptions::default())
    }

    /// With the web application's options too.
    pub fn with_options(app: App, ttl: std::time::Duration, web: tenure_web::WebOptions) -> Self {
        Self {
            web: tenure_web::WebState::new(app.clone(), web),
            app,
            tokens: Arc::new(auth::TokenCache::new(ttl)),
            metrics: Arc::new(metrics::Metrics::new()),
            metrics_token: None,
        }
    }

    /// `/metrics` behind `token` (`TENURE_METRICS_TOKEN`); open when `None` or empty.
    pub fn with_metrics_token(mut self, token: Option<String>) -> Self {
        self.metrics_token = token
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .map(Arc::from);
        self
    }
}

/// The OpenAPI document of the API, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, doc) = api_router().split_for_parts();
    openapi::complete(doc)
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi()).merge(api::routes())
}

/// An unknown address: a page for a browser (outside /api), problem+json otherwise.
async fn fallback(
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let wants_page = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_page && !uri.path().starts_with("/api") {
        tenure_web::not_found_page()
    } else {
        problem::not_found().await.into_response()
    }
}

/// The whole application: API, documentation, health and metrics, with the layers that
/// turn every failure into problem+json.
pub fn router(state: AppState) -> Router {
    let (api, doc) = api_router().split_for_parts();
    let api = api.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        idempotency::guard,
    ));
    Router::new()
        .merge(api)
        // The browsable API page, its assets vendored into the binary so it works offline;
        // it never sends the document to an outside validator.
        .merge(
            utoipa_swagger_ui::SwaggerUi::new("/api/docs")
                .url("/api/openapi.json", openapi::complete(doc))
                .config(utoipa_swagger_ui::Config::default().validator_url("none")),
        )
        .merge(health::routes())
        // The web application: every address outside /api and the health endpoints.
        .merge(tenure_web::router(state.web.clone()))
        .fallback(fallback)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            problem::from_panic,
        ))
        // Outermost, so even a panic's answer carries the request id and is logged.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            request::observe,
        ))
        .with_state(state)
}
