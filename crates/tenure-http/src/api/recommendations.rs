//! Recommendations: "customers who bought this also bought" per product, and a customer's
//! next best offers (built by `tenure analytics recommendations`).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use tenure_app::model::Recommendation;
use tenure_domain::ids::{CustomerId, ProductId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ListResponse;
use super::products::ProductDto;
use crate::auth::{self, Authorized};
use crate::extract::{Id, Query};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(also_bought))
        .routes(routes!(customer_recommendations))
}

/// A recommended product.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RecommendationDto {
    pub product: ProductDto,
    /// Similarity (the cosine of the two products' buyer sets; summed over the products a
    /// customer owns for next best offers). 0 for a best-seller that fills the list.
    pub score: f64,
    /// Customers who bought it together with the product (for next best offers: with the
    /// owned product that brought it most often).
    pub customers: i64,
}

impl From<Recommendation> for RecommendationDto {
    fn from(r: Recommendation) -> Self {
        RecommendationDto {
            product: ProductDto::from(r.product),
            score: r.score,
            customers: r.customers,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecommendationParams {
    /// How many, 1–100 (default 10).
    pub limit: Option<u32>,
}

fn list(items: Vec<Recommendation>) -> axum::Json<ListResponse<RecommendationDto>> {
    axum::Json(ListResponse::all(
        items.into_iter().map(RecommendationDto::from).collect(),
    ))
}

/// Active products most often bought by the customers who bought this one, best first.
#[utoipa::path(get, path = "/api/v1/products/{id}/also-bought", tag = "recommendations",
    params(("id" = i64, Path), RecommendationParams), security(("bearer" = [])),
    responses((status = 200, body = ListResponse<RecommendationDto>), (status = 404, body = crate::problem::Problem)))]
async fn also_bought(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Id(id): Id,
    Query(p): Query<RecommendationParams>,
) -> Result<axum::Json<ListResponse<RecommendationDto>>, ApiError> {
    Ok(list(
        state
            .app
            .also_bought(&caller.actor, ProductId(id), p.limit)
            .await?,
    ))
}

/// The customer's next best offers: active products they have not bought, most like what
/// they have bought first, then the best-sellers.
#[utoipa::path(get, path = "/api/v1/customers/{id}/recommendations", tag = "recommendations",
    params(("id" = i64, Path), RecommendationParams), security(("bearer" = [])),
    responses((status = 200, body = ListResponse<RecommendationDto>), (status = 404, body = crate::problem::Problem)))]
async fn customer_recommendations(
    caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
    Query(p): Query<RecommendationParams>,
) -> Result<axum::Json<ListResponse<RecommendationDto>>, ApiError> {
    Ok(list(
        state
            .app
            .next_best_offers(&caller.actor, CustomerId(id), p.limit)
            .await?,
    ))
}
