//! `/api/v1/users`: staff users (admins only).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenure_domain::access::{Role, StaffUser};
use tenure_domain::validation::{self, Collector};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ListResponse;
use crate::auth::{self, Authorized};
use crate::extract::Json;
use crate::{ApiError, AppState, password};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_users, create_user))
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
    _caller: Authorized<auth::ManageUsers>,
    State(state): State<AppState>,
) -> Result<axum::Json<ListResponse<UserDto>>, ApiError> {
    let items = state
        .store
        .list_users()
        .await?
        .into_iter()
        .map(UserDto::from)
        .collect();
    Ok(axum::Json(ListResponse {
        items,
        next_cursor: None,
    }))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser, security(("bearer" = [])),
    responses((status = 201, body = UserDto), (status = 409, body = crate::problem::Problem),
              (status = 422, body = crate::problem::Problem)))]
async fn create_user(
    _caller: Authorized<auth::ManageUsers>,
    State(state): State<AppState>,
    Json(body): Json<CreateUser>,
) -> Result<impl IntoResponse, ApiError> {
    let mut c = Collector::new();
    let email = c.check("email", tenure_domain::customer::parse_email(&body.email));
    let name = c.check("name", validation::text(&body.name, 200, false));
    let hash = match body.password {
        Some(p) if p.chars().count() < password::MIN_LEN => {
            c.push(
                "password",
                format!("must be at least {} characters", password::MIN_LEN),
            );
            None
        }
        Some(p) => Some(password::hash(&p).map_err(|_| ApiError::Internal)?),
        None => None,
    };
    c.finish()?;
    let user = state
        .store
        .create_user(
            &email.unwrap_or_default(),
            &name.unwrap_or_default(),
            body.role,
            hash.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(UserDto::from(user))))
}
