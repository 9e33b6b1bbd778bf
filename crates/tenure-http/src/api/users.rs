//! `/api/v1/users` and `/api/v1/tokens`: staff users and API tokens (admins only).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenure_app::model::TokenInfo;
use tenure_domain::access::{Role, StaffUser};
use tenure_domain::ids::TokenId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ListResponse;
use crate::auth::{self, Authorized};
use crate::extract::{Id, Json};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UserDto {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl From<StaffUser> for UserDto {
    fn from(u: StaffUser) -> Self {
        UserDto {
            id: u.id.0,
            email: u.email,
            name: u.name,
            role: u.role,
            created_at: u.created_at,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub email: String,
    #[serde(default)]
    pub name: String,
    pub role: Role,
    /// At least 10 characters; leave out for a user who works only through API tokens.
    pub password: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = ListResponse<UserDto>), (status = 403, body = crate::problem::Problem)))]
async fn list_users(
    caller: Authorized<auth::ManageUsers>,
    State(state): State<AppState>,
) -> Result<axum::Json<ListResponse<UserDto>>, ApiError> {
    let users = state.app.list_users(&caller.actor).await?;
    Ok(axum::Json(ListResponse::all(
        users.into_iter().map(UserDto::from).collect(),
    )))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser, security(("bearer" = [])),
    responses((status = 201, body = UserDto), (status = 409, body = crate::problem::Problem),
              (status = 422, body = crate::problem::Problem)))]
async fn create_user(
    caller: Authorized<auth::ManageUsers>,
    State(state): State<AppState>,
    Json(body): Json<CreateUser>,
) -> Result<impl IntoResponse, ApiError> {
    let user = state
        .app
        .create_user(
            &caller.actor,
            &body.email,
            &body.name,
            body.role,
            body.password.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(UserDto::from(user))))
}

/// An API token as listed: never the token itself.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenDto {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    /// When it stops working by itself; `null` for a token without expiry.
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<TokenInfo> for TokenDto {
    fn from(t: TokenInfo) -> Self {
        TokenDto {
            id: t.id.0,
            name: t.name,
            role: t.role,
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// The body of `POST /api/v1/tokens`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    pub role: Role,
    /// Days until it expires; without, it works until revoked.
    pub expires_in_days: Option<u32>,
}

/// A token just created: `token` is shown this once; only its hash is stored.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NewTokenDto {
    pub id: i64,
    pub token: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Every API token, newest first, revoked and expired ones included.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = ListResponse<TokenDto>), (status = 403, body = crate::problem::Problem)))]
async fn list_tokens(
    caller: Authorized<auth::ManageUsers>,
    State(state): State<AppState>,
) -> Result<axum::Json<ListResponse<TokenDto>>, ApiError> {
    let tokens = state.app.list_tokens(&caller.actor).await?;
    Ok(axum::Json(ListResponse::all(
        tokens.into_iter().map(TokenDto::from).collect(),
    )))
}

impl CreateToken {
    fn valid_for(&self) -> Option<chrono::Duration> {
        self.expires_in_days
            .map(|d| chrono::Duration::days(i64::from(d)))
    }
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "users", request_body = CreateToken, security(("bearer" = [])),
    responses((status = 201, body = NewTokenDto), (status = 422, body = crate::problem::Problem)))]
async fn create_token(
    caller: Authorized<auth::ManageUsers>,
    State(state): State<AppState>,
    Json(body): Json<CreateToken>,
) -> Result<impl IntoResponse, ApiError> {
    let made = state
        .app
        .create_token(&caller.actor, &body.name, body.role, body.valid_for())
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(NewTokenDto {
            id: made.id.0,
            token: made.token,
            expires_at: made.expires_at,
        }),
    ))
}

/// Revoke a token. This server refuses it at once; others within their token cache time
/// (30 seconds).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "users", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::problem::Problem)))]
async fn revoke_token(
    caller: Authorized<auth::ManageUsers>,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    state.app.revoke_token(&caller.actor, TokenId(id)).await?;
    state.tokens.clear();
    Ok(StatusCode::NO_CONTENT)
}
