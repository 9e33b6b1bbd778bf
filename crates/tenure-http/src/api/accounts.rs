//! `/api/v1/accounts`: organisations with a business type (end customer, distributor,
//! reseller, partner).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenure_domain::Invalid;
use tenure_domain::customer::{self as dc, Account, AccountData, AccountType};
use tenure_domain::ids::{AccountId, StaffUserId};
use tenure_domain::validation::{self, Collector};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ListResponse, PageParams, decode_id_cursor, double_option, encode_cursor, limit};
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

fn owner(c: &mut Collector, v: i64) -> Option<StaffUserId> {
    if v > 0 {
        Some(StaffUserId(v))
    } else {
        c.push("owner_id", "must be a positive id");
        None
    }
}

impl UpdateAccount {
    fn apply(self, d: &mut AccountData) -> Result<(), Invalid> {
        let mut c = Collector::new();
        if let Some(n) = c.check_opt("name", self.name, |s| dc::parse_name(&s)) {
            d.name = n;
        }
        if let Some(t) = self.account_type {
            d.account_type = t;
        }
        match self.external_id {
            Some(Some(x)) => {
                if let Some(x) = c.check("external_id", validation::external_id(&x)) {
                    d.external_id = Some(x);
                }
            }
            Some(None) => d.external_id = None,
            None => {}
        }
        match self.owner_id {
            Some(Some(o)) => d.owner_id = owner(&mut c, o),
            Some(None) => d.owner_id = None,
            None => {}
        }
        c.finish()
    }
}

#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts", params(PageParams), security(("bearer" = [])),
    responses((status = 200, body = ListResponse<AccountDto>)))]
async fn list_accounts(
    _caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Query(p): Query<PageParams>,
) -> Result<axum::Json<ListResponse<AccountDto>>, ApiError> {
    let after = decode_id_cursor(p.cursor.as_deref())?.map(AccountId);
    let page = state.store.list_accounts(after, limit(p.limit)?).await?;
    Ok(axum::Json(ListResponse {
        items: page.items.into_iter().map(AccountDto::from).collect(),
        next_cursor: page.next.map(|id| encode_cursor(&id.0.to_string())),
    }))
}

#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", request_body = CreateAccount, security(("bearer" = [])),
    responses((status = 201, body = AccountDto), (status = 409, body = crate::problem::Problem),
              (status = 422, body = crate::problem::Problem)))]
async fn create_account(
    _caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Json(body): Json<CreateAccount>,
) -> Result<impl IntoResponse, ApiError> {
    let mut c = Collector::new();
    let name = c.check("name", dc::parse_name(&body.name));
    let external_id = c.check_opt("external_id", body.external_id, |s| {
        validation::external_id(&s)
    });
    let owner_id = body.owner_id.and_then(|o| owner(&mut c, o));
    c.finish()?;
    let data = AccountData {
        external_id,
        name: name.unwrap_or_default(),
        account_type: body.account_type.unwrap_or(AccountType::EndCustomer),
        owner_id,
    };
    let account = state.store.create_account(&data).await?;
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
    _caller: Authorized<auth::ReadAggregates>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<axum::Json<AccountDto>, ApiError> {
    Ok(axum::Json(AccountDto::from(
        state.store.get_account(AccountId(id)).await?,
    )))
}

#[utoipa::path(patch, path = "/api/v1/accounts/{id}", tag = "accounts", params(("id" = i64, Path)),
    request_body = UpdateAccount, security(("bearer" = [])),
    responses((status = 200, body = AccountDto), (status = 404, body = crate::problem::Problem),
              (status = 422, body = crate::problem::Problem)))]
async fn update_account(
    _caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Id(id): Id,
    Json(body): Json<UpdateAccount>,
) -> Result<axum::Json<AccountDto>, ApiError> {
    Ok(axum::Json(AccountDto::from(
        state
            .store
            .update_account(AccountId(id), |d| body.apply(d))
            .await?,
    )))
}

#[utoipa::path(delete, path = "/api/v1/accounts/{id}", tag = "accounts", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 204), (status = 404, body = crate::problem::Problem)))]
async fn delete_account(
    _caller: Authorized<auth::WriteCatalog>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    state.store.delete_account(AccountId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
