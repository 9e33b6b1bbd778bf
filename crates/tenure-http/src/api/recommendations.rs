//! Recommendations: "customers who bought this also bought" per product, and a customer's
//! next best offers (built by `tenure analytics recommendations`).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use tenure_domain::ids::{CustomerId, ProductId};
use tenure_store::recommendations::Recommendation;
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

impl RecommendationParams {
    fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(10),
            Some(n @ 1..=100) => Ok(n),
            Some(_) => Err(ApiError::field("limit", "must be between 1 and 100")),
        }
    }
}

fn list(items: Vec<Recommendation>) -> axum::Json<ListResponse<RecommendationDto>> {
    axum::Json(ListResponse {
        items: items.into_iter().map(RecommendationDto::from).collect(),
        next_cursor: None,
    })
}

/// Active products most often bought by the customers who bought this one, best first.
#[utoipa::path(get, path = "/api/v1/products/{id}/also-bought", tag = "recommendations",
    params(("id" = i64, Path), RecommendationParams), security(("bearer" = [])),
    responses((status = 200, body = ListResponse<RecommendationDto>), (status = 404, body = crate::problem::Problem)))]
async fn also_bought(
    _caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Id(id): Id,
    Query(p): Query<RecommendationParams>,
) -> Result<axum::Json<ListResponse<RecommendationDto>>, ApiError> {
    let limit = p.limit()?;
    Ok(list(state.store.also_bought(ProductId(id), limit).await?))
}

/// The customer's next best offers: active products they have not bought, most like what
/// they have bought first, then the best-sellers.
#[utoipa::path(get, path = "/api/v1/customers/{id}/recommendations", tag = "recommendations",
    params(("id" = i64, Path), RecommendationParams), security(("bearer" = [])),
    responses((status = 200, body = ListResponse<RecommendationDto>), (status = 404, body = crate::problem::Problem)))]
async fn customer_recommendations(
    _caller: Authorized<auth::ReadCustomers>,
    State(state): State<AppState>,
    Id(id): Id,
    Query(p): Query<RecommendationParams>,
) -> Result<axum::Json<ListResponse<RecommendationDto>>, ApiError> {
    let limit = p.limit()?;
    Ok(list(
        state
            .store
            .recommendations_for(CustomerId(id), limit)
            .await?,
    ))
}
