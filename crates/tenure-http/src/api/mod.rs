//! The JSON API under `/api/v1`, one module per resource.

mod accounts;
mod customers;
mod duplicates;
mod interactions;
mod jobs;
mod journeys;
mod lifecycle;
pub(crate) mod loyalty;
mod orders;
mod privacy;
mod products;
mod recommendations;
mod segments;
pub(crate) mod service;
mod users;
mod webhooks;

use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(customers::routes())
        .merge(duplicates::routes())
        .merge(accounts::routes())
        .merge(products::routes())
        .merge(recommendations::routes())
        .merge(orders::routes())
        .merge(interactions::routes())
        .merge(users::routes())
        .merge(jobs::routes())
        .merge(journeys::routes())
        .merge(lifecycle::routes())
        .merge(segments::routes())
        .merge(loyalty::routes())
        .merge(service::routes())
        .merge(privacy::routes())
        .merge(webhooks::routes())
}

/// A page of results and the cursor of the next one (`null` on the last page).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ListResponse<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// `?limit=&cursor=` of every list.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    /// The page asked for, as the application takes it.
    pub fn page(&self) -> tenure_app::PageRequest {
        tenure_app::PageRequest {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }
}

/// A page request from the `limit` and `cursor` of any list's parameters.
pub fn page(limit: Option<u32>, cursor: &Option<String>) -> tenure_app::PageRequest {
    tenure_app::PageRequest {
        limit,
        cursor: cursor.clone(),
    }
}

impl<T> ListResponse<T> {
    /// A listed page, each item rendered by `f`.
    pub fn of<U>(listed: tenure_app::Listed<U>, f: impl FnMut(U) -> T) -> Self {
        ListResponse {
            items: listed.items.into_iter().map(f).collect(),
            next_cursor: listed.next_cursor,
        }
    }

    /// A whole list in one page.
    pub fn all(items: Vec<T>) -> Self {
        ListResponse {
            items,
            next_cursor: None,
        }
    }
}

/// For PATCH bodies: tells a field set to `null` (clear it) from a field left out.
pub fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
