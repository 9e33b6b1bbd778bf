//! `/api/v1/products` and `/api/v1/product-categories`: the catalogue.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenure_domain::Invalid;
use tenure_domain::catalog::{Category, Product, ProductData};
use tenure_domain::ids::{CategoryId, ProductId};
use tenure_domain::validation::{self, Collector};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ListResponse, PageParams, decode_id_cursor, double_option, encode_cursor, limit};
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

fn positive(c: &mut Collector, field: &str, v: i64) -> Option<i64> {
    if v > 0 {
        Some(v)
    } else {
        c.push(field, "must be a positive id");
        None
    }
}

fn price(c: &mut Collector, v: i64) -> Option<i64> {
    if (0..=100_000_000_000_000).contains(&v) {
        Some(v)
    } else {
        c.push("price_minor", "must be between 0 and 10^14");
        None
    }
}

impl UpdateProduct {
    fn apply(self, d: &mut ProductData) -> Result<(), Invalid> {
        let mut c = Collector::new();
        if let Some(n) = c.check_opt("name", self.name, |s| validation::required_text(&s, 200)) {
            d.name = n;
        }
        match self.category_id {
            Some(Some(v)) => d.category_id = positive(&mut c, "category_id", v).map(CategoryId),
            Some(None) => d.category_id = None,
            None => {}
        }
        match self.price_minor {
            Some(Some(v)) => d.price_minor = price(&mut c, v),
            Some(None) => d.price_minor = None,
            None => {}
        }
        if let Some(cur) = c.check_opt("currency", self.currency, |s| {
            tenure_domain::money::parse_currency(&s)
        }) {
            d.currency = cur;
        }
        if let Some(a) = self.active {
            d.active = a;
        }
        c.finish()
    }
}

#[utoipa::path(get, path = "/api/v1/products", tag = "products", params(PageParams), security(("bearer" = [])),
    responses((status = 200, body = ListResponse<ProductDto>)))]
async fn list_products(
    _caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Query(p): Query<PageParams>,
) -> Result<axum::Json<ListResponse<ProductDto>>, ApiError> {
    let after = decode_id_cursor(p.cursor.as_deref())?.map(ProductId);
    let page = state.store.list_products(after, limit(p.limit)?).await?;
    Ok(axum::Json(ListResponse {
        items: page.items.into_iter().map(ProductDto::from).collect(),
        next_cursor: page.next.map(|id| encode_cursor(&id.0.to_string())),
    }))
}

#[utoipa::path(post, path = "/api/v1/products", tag = "products", request_body = CreateProduct, security(("bearer" = [])),
    responses((status = 201, body = ProductDto), (status = 409, body = crate::problem::Problem),
              (status = 422, body = crate::problem::Problem)))]
async fn create_product(
    _caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Json(body): Json<CreateProduct>,
) -> Result<impl IntoResponse, ApiError> {
    let mut c = Collector::new();
    let name = c.check("name", validation::required_text(&body.name, 200));
    let external_id = c.check_opt("external_id", body.external_id, |s| {
        validation::external_id(&s)
    });
    let category_id = body
        .category_id
        .and_then(|v| positive(&mut c, "category_id", v))
        .map(CategoryId);
    let price_minor = body.price_minor.and_then(|v| price(&mut c, v));
    let currency = match body.currency {
        Some(cur) => c.check("currency", tenure_domain::money::parse_currency(&cur)),
        None => Some(state.store.reporting_currency().to_owned()),
    };
    c.finish()?;
    let data = ProductData {
        external_id,
        name: name.unwrap_or_default(),
        category_id,
        price_minor,
        currency: currency.unwrap_or_default(),
        active: body.active.unwrap_or(true),
    };
    let product = state.store.create_product(&data).await?;
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
    _caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<axum::Json<ProductDto>, ApiError> {
    Ok(axum::Json(ProductDto::from(
        state.store.get_product(ProductId(id)).await?,
    )))
}

#[utoipa::path(patch, path = "/api/v1/products/{id}", tag = "products", params(("id" = i64, Path)),
    request_body = UpdateProduct, security(("bearer" = [])),
    responses((status = 200, body = ProductDto), (status = 404, body = crate::problem::Problem),
              (status = 422, body = crate::problem::Problem)))]
async fn update_product(
    _caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Id(id): Id,
    Json(body): Json<UpdateProduct>,
) -> Result<axum::Json<ProductDto>, ApiError> {
    Ok(axum::Json(ProductDto::from(
        state
            .store
            .update_product(ProductId(id), |d| body.apply(d))
            .await?,
    )))
}

#[utoipa::path(get, path = "/api/v1/product-categories", tag = "products", security(("bearer" = [])),
    responses((status = 200, body = ListResponse<CategoryDto>)))]
async fn list_categories(
    _caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
) -> Result<axum::Json<ListResponse<CategoryDto>>, ApiError> {
    let items = state
        .store
        .list_categories()
        .await?
        .into_iter()
        .map(CategoryDto::from)
        .collect();
    Ok(axum::Json(ListResponse {
        items,
        next_cursor: None,
    }))
}

#[utoipa::path(post, path = "/api/v1/product-categories", tag = "products", request_body = CreateCategory,
    security(("bearer" = [])),
    responses((status = 201, body = CategoryDto), (status = 409, body = crate::problem::Problem),
              (status = 422, body = crate::problem::Problem)))]
async fn create_category(
    _caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Json(body): Json<CreateCategory>,
) -> Result<impl IntoResponse, ApiError> {
    let mut c = Collector::new();
    let name = c.check("name", validation::required_text(&body.name, 100));
    let parent = body
        .parent_id
        .and_then(|v| positive(&mut c, "parent_id", v))
        .map(CategoryId);
    c.finish()?;
    let cat = state
        .store
        .create_category(&name.unwrap_or_default(), parent)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(CategoryDto::from(cat))))
}
