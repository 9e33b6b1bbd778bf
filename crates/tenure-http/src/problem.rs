//! One error type for the API, rendered as RFC 9457 `application/problem+json` with a
//! field-level `errors` list where a field is at fault.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tenure_app::AppError;
use tenure_domain::{FieldError, Invalid};

/// Everything a handler can fail with.
#[derive(Debug)]
pub enum ApiError {
    /// The request could not be read: malformed JSON, wrong types, unknown fields.
    BadRequest {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// The request was read but its values break a rule.
    Invalid(Vec<FieldError>),
    Unauthorized(&'static str),
    Forbidden(String),
    NotFound(String),
    MethodNotAllowed,
    Conflict(String),
    PreconditionFailed(String),
    UnsupportedMediaType,
    PayloadTooLarge,
    Unavailable,
    Internal,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The fields at fault, when the problem is with the input.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
    /// The id of the request (also in the `x-request-id` header), as the server's log
    /// names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ProblemField {
    pub field: String,
    pub message: String,
}

impl ApiError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            detail: "the request has an invalid parameter".into(),
            errors: vec![FieldError::new(field, message)],
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str, String) {
        use ApiError::*;
        match self {
            BadRequest { detail, .. } => (
                StatusCode::BAD_REQUEST,
                "bad-request",
                "Bad request",
                detail.clone(),
            ),
            Invalid(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid input",
                "one or more fields are invalid".into(),
            ),
            Unauthorized(d) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Unauthorized",
                (*d).into(),
            ),
            Forbidden(d) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden", d.clone()),
            NotFound(d) => (StatusCode::NOT_FOUND, "not-found", "Not found", d.clone()),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "this resource does not support that method".into(),
            ),
            Conflict(d) => (StatusCode::CONFLICT, "conflict", "Conflict", d.clone()),
            PreconditionFailed(d) => (
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                "Precondition failed",
                d.clone(),
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "send the body as application/json".into(),
            ),
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                "the body is larger than 1 MiB".into(),
            ),
            Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                "the database cannot be reached; try again shortly".into(),
            ),
            Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "an unexpected error occurred; it has been logged".into(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, title, detail) = self.parts();
        let errors = match self {
            ApiError::BadRequest { errors, .. } | ApiError::Invalid(errors) => errors,
            _ => Vec::new(),
        };
        let body = Problem {
            kind: format!("urn:tenure:problem:{kind}"),
            title: title.into(),
            status: status.as_u16(),
            detail,
            errors: errors
                .into_iter()
                .map(|e| ProblemField {
                    field: e.field,
                    message: e.message,
                })
                .collect(),
            request_id: crate::request::current_id(),
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut res = (status, json).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(crate::openapi::PROBLEM_JSON),
        );
        match status {
            StatusCode::UNAUTHORIZED => {
                res.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        res
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::Invalid(e.0)
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Invalid(invalid) => ApiError::Invalid(invalid.0),
            AppError::BadParameter(invalid) => ApiError::BadRequest {
                detail: "the request has an invalid parameter".into(),
                errors: invalid.0,
            },
            AppError::NotFound(what) => ApiError::NotFound(what),
            AppError::Conflict(reason) => ApiError::Conflict(reason),
            AppError::PreconditionFailed { current } => ApiError::PreconditionFailed(format!(
                "the record was changed since you read it; it is now at version {current}"
            )),
            AppError::Forbidden(reason) => ApiError::Forbidden(reason),
            AppError::TooManyAttempts { .. } => ApiError::Forbidden(e.to_string()),
            AppError::Unavailable(err) => {
                tracing::warn!(error = %err, "database unavailable");
                ApiError::Unavailable
            }
            AppError::Internal(err) => {
                tracing::error!(error = %err, "internal error");
                ApiError::Internal
            }
        }
    }
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

pub fn from_panic(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::Internal.into_response()
}
