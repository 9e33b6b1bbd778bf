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
mod metrics;
mod problem;

use std::sync::Arc;

use axum::Router;
use tenure_app::App;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

pub use problem::ApiError;

/// Shared state of every request.
#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub tokens: Arc<auth::TokenCache>,
    pub metrics: Arc<metrics::Metrics>,
}

impl AppState {
    pub fn new(app: App) -> Self {
        Self::with_token_ttl(app, auth::TOKEN_TTL)
    }

    /// With resolved tokens trusted for `ttl` (a revoked token is refused within it).
    pub fn with_token_ttl(app: App, ttl: std::time::Duration) -> Self {
        Self {
            app,
            tokens: Arc::new(auth::TokenCache::new(ttl)),
            metrics: Arc::new(metrics::Metrics::new()),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Tenure API", description = "A retention-first CRM. Every /api/v1 route needs `Authorization: Bearer <token>`; errors are RFC 9457 problem+json."),
    modifiers(&BearerAuth),
    tags(
        (name = "customers", description = "Customers, their search and timeline"),
        (name = "accounts", description = "Accounts: end customers, distributors, resellers, partners"),
        (name = "products", description = "The product catalogue"),
        (name = "recommendations", description = "Bought together, and next best offers"),
        (name = "orders", description = "Orders with line items"),
        (name = "interactions", description = "Contacts with customers on every channel"),
        (name = "users", description = "Staff users and API tokens"),
        (name = "jobs", description = "Scheduled and queued work"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document of the API, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, doc) = api_router().split_for_parts();
    doc
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(api::routes())
}

/// The whole application: API, documentation, health and metrics, with the layers that
/// turn every failure into problem+json.
pub fn router(state: AppState) -> Router {
    let (api, doc) = api_router().split_for_parts();
    Router::new()
        .merge(api)
        // The browsable API page, its assets vendored into the binary so it works offline.
        .merge(utoipa_swagger_ui::SwaggerUi::new("/api/docs").url("/api/openapi.json", doc))
        .merge(health::routes())
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            problem::from_panic,
        ))
        .with_state(state)
}
