//! `/api/v1/products` and `/api/v1/product-categories`: the catalogue.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenure_domain::catalog::{Category, Product, ProductInput, ProductPatch};
use tenure_domain::ids::ProductId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ListResponse, PageParams, double_option};
use crate::auth::{self, Authorized};
use crate::extract::{Id, Json, Query};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_products, create_product))
        .routes(routes!(get_product, update_product))
        .routes(routes!(list_categories, create_category))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ProductDto {
    pub id: i64,
    pub external_id: Option<String>,
    pub name: String,
    pub category_id: Option<i64>,
    pub price_minor: Option<i64>,
    pub currency: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Product> for ProductDto {
    fn from(p: Product) -> Self {
        ProductDto {
            id: p.id.0,
            external_id: p.data.external_id,
            name: p.data.name,
            category_id: p.data.category_id.map(|c| c.0),
            price_minor: p.data.price_minor,
            currency: p.data.currency,
            active: p.data.active,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CategoryDto {
    pub id: i64,
    pub name: String,
    pub parent_id: Option<i64>,
}

impl From<Category> for CategoryDto {
    fn from(c: Category) -> Self {
        CategoryDto {
            id: c.id.0,
            name: c.name,
            parent_id: c.parent_id.map(|p| p.0),
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProduct {
    pub name: String,
    pub external_id: Option<String>,
    pub category_id: Option<i64>,
    pub price_minor: Option<i64>,
    /// ISO 4217; defaults to the reporting currency.
    pub currency: Option<String>,
    pub active: Option<bool>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProduct {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub category_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub price_minor: Option<Option<i64>>,
    pub currency: Option<String>,
    pub active: Option<bool>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCategory {
    pub name: String,
    pub parent_id: Option<i64>,
}

impl From<UpdateProduct> for ProductPatch {
    fn from(u: UpdateProduct) -> Self {
        ProductPatch {
            name: u.name,
            category_id: u.category_id,
            price_minor: u.price_minor,
            currency: u.currency,
            active: u.active,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/products", tag = "products", params(PageParams), security(("bearer" = [])),
    responses((status = 200, body = ListResponse<ProductDto>)))]
async fn list_products(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Query(p): Query<PageParams>,
) -> Result<axum::Json<ListResponse<ProductDto>>, ApiError> {
    let found = state.app.list_products(&caller.actor, &p.page()).await?;
    Ok(axum::Json(ListResponse::of(found, ProductDto::from)))
}

#[utoipa::path(post, path = "/api/v1/products", tag = "products", request_body = CreateProduct, security(("bearer" = [])),
    responses((status = 201, body = ProductDto), (status = 409, body = crate::problem::Problem),
              (status = 422, body = crate::problem::Problem)))]
async fn create_product(
    caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Json(body): Json<CreateProduct>,
) -> Result<impl IntoResponse, ApiError> {
    let input = ProductInput {
        external_id: body.external_id,
        name: body.name,
        price_minor: body.price_minor,
        currency: body.currency,
        active: body.active,
    };
    let product = state
        .app
        .create_product(&caller.actor, input, body.category_id)
        .await?;
    let location = format!("/api/v1/products/{}", product.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(ProductDto::from(product)),
    ))
}

#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "products", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = ProductDto), (status = 404, body = crate::problem::Problem)))]
async fn get_product(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<axum::Json<ProductDto>, ApiError> {
    Ok(axum::Json(ProductDto::from(
        state.app.get_product(&caller.actor, ProductId(id)).await?,
    )))
}

#[utoipa::path(patch, path = "/api/v1/products/{id}", tag = "products", params(("id" = i64, Path)),
    request_body = UpdateProduct, security(("bearer" = [])),
    responses((status = 200, body = ProductDto), (status = 404, body = crate::problem::Problem),
              (status = 422, body = crate::problem::Problem)))]
async fn update_product(
    caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Id(id): Id,
    Json(body): Json<UpdateProduct>,
) -> Result<axum::Json<ProductDto>, ApiError> {
    Ok(axum::Json(ProductDto::from(
        state
            .app
            .update_product(&caller.actor, ProductId(id), body.into())
            .await?,
    )))
}

#[utoipa::path(get, path = "/api/v1/product-categories", tag = "products", security(("bearer" = [])),
    responses((status = 200, body = ListResponse<CategoryDto>)))]
async fn list_categories(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
) -> Result<axum::Json<ListResponse<CategoryDto>>, ApiError> {
    let items = state.app.list_categories(&caller.actor).await?;
    Ok(axum::Json(ListResponse::all(
        items.into_iter().map(CategoryDto::from).collect(),
    )))
}

#[utoipa::path(post, path = "/api/v1/product-categories", tag = "products", request_body = CreateCategory,
    security(("bearer" = [])),
    responses((status = 201, body = CategoryDto), (status = 409, body = crate::problem::Problem),
              (status = 422, body = crate::problem::Problem)))]
async fn create_category(
    caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Json(body): Json<CreateCategory>,
) -> Result<impl IntoResponse, ApiError> {
    let cat = state
        .app
        .create_category(&caller.actor, &body.name, body.parent_id)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(CategoryDto::from(cat))))
}
