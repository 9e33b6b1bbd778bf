//! `/api/v1/accounts`: organisations with a business type (end customer, distributor,
//! reseller, partner).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenure_domain::customer::{Account, AccountInput, AccountPatch, AccountType};
use tenure_domain::ids::AccountId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ListResponse, PageParams, double_option};
use crate::auth::{self, Authorized};
use crate::extract::{Id, Json, Query};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_accounts, create_account))
        .routes(routes!(get_account, update_account, delete_account))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountDto {
    pub id: i64,
    pub external_id: Option<String>,
    pub name: String,
    pub account_type: AccountType,
    pub owner_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Account> for AccountDto {
    fn from(a: Account) -> Self {
        AccountDto {
            id: a.id.0,
            external_id: a.data.external_id,
            name: a.data.name,
            account_type: a.data.account_type,
            owner_id: a.data.owner_id.map(|o| o.0),
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    pub name: String,
    /// Defaults to `end_customer`.
    pub account_type: Option<AccountType>,
    pub external_id: Option<String>,
    pub owner_id: Option<i64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    pub name: Option<String>,
    pub account_type: Option<AccountType>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub external_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub owner_id: Option<Option<i64>>,
}

impl From<UpdateAccount> for AccountPatch {
    fn from(u: UpdateAccount) -> Self {
        AccountPatch {
            external_id: u.external_id,
            name: u.name,
            account_type: u.account_type,
            owner_id: u.owner_id,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts", params(PageParams), security(("bearer" = [])),
    responses((status = 200, body = ListResponse<AccountDto>)))]
async fn list_accounts(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Query(p): Query<PageParams>,
) -> Result<axum::Json<ListResponse<AccountDto>>, ApiError> {
    let found = state.app.list_accounts(&caller.actor, &p.page()).await?;
    Ok(axum::Json(ListResponse::of(found, AccountDto::from)))
}

#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", request_body = CreateAccount, security(("bearer" = [])),
    responses((status = 201, body = AccountDto), (status = 409, body = crate::problem::Problem),
              (status = 422, body = crate::problem::Problem)))]
async fn create_account(
    caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Json(body): Json<CreateAccount>,
) -> Result<impl IntoResponse, ApiError> {
    let input = AccountInput {
        external_id: body.external_id,
        name: body.name,
        account_type: body.account_type,
        owner_id: body.owner_id,
    };
    let account = state.app.create_account(&caller.actor, input).await?;
    let location = format!("/api/v1/accounts/{}", account.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(AccountDto::from(account)),
    ))
}

#[utoipa::path(get, path = "/api/v1/accounts/{id}", tag = "accounts", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = AccountDto), (status = 404, body = crate::problem::Problem)))]
async fn get_account(
    caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<axum::Json<AccountDto>, ApiError> {
    Ok(axum::Json(AccountDto::from(
        state.app.get_account(&caller.actor, AccountId(id)).await?,
    )))
}

#[utoipa::path(patch, path = "/api/v1/accounts/{id}", tag = "accounts", params(("id" = i64, Path)),
    request_body = UpdateAccount, security(("bearer" = [])),
    responses((status = 200, body = AccountDto), (status = 404, body = crate::problem::Problem),
              (status = 422, body = crate::problem::Problem)))]
async fn update_account(
    caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Id(id): Id,
    Json(body): Json<UpdateAccount>,
) -> Result<axum::Json<AccountDto>, ApiError> {
    Ok(axum::Json(AccountDto::from(
        state
            .app
            .update_account(&caller.actor, AccountId(id), body.into())
            .await?,
    )))
}

#[utoipa::path(delete, path = "/api/v1/accounts/{id}", tag = "accounts", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 204), (status = 404, body = crate::problem::Problem)))]
async fn delete_account(
    caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    state
        .app
        .delete_account(&caller.actor, AccountId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
