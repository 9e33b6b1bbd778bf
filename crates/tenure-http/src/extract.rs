//! Extractors that turn every malformed input into problem+json with the field at fault:
//! JSON bodies, query strings and path ids.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use tenure_domain::FieldError;

use crate::ApiError;

/// A JSON body, read strictly: wrong types and unknown fields are errors naming the field.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                let ct = ct
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                ct == "application/json"
                    || (ct.starts_with("application/") && ct.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest {
                    detail: "the request body could not be read".into(),
                    errors: Vec::new(),
                }
            }
        })?;
        parse_json(&bytes).map(Json)
    }
}

/// Parses JSON, naming the path of the field at fault. A number with no fraction
/// (`351.0`) is an integer, as JSON Schema counts it: a body that does not fit its type is
/// read once more with such numbers made integers (only then, so a valid body is parsed
/// once).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let first = match serde_path_to_error::deserialize(de) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    if matches!(
        first.inner().classify(),
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof
    ) {
        return Err(ApiError::BadRequest {
            detail: format!(
                "the body is not valid JSON: {}",
                clean_serde_message(&first.into_inner().to_string())
            ),
            errors: Vec::new(),
        });
    }
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Err(shape(first));
    };
    if !integral_numbers(&mut value) {
        return Err(shape(first));
    }
    serde_path_to_error::deserialize(value).map_err(shape)
}

/// The error of a body that is JSON but not of the expected shape.
fn shape<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> ApiError {
    let path = e.path().to_string();
    let message = clean_serde_message(&e.into_inner().to_string());
    // The path already ends with an unknown field's name.
    let field = if path == "." {
        unknown_field(&message).unwrap_or_default().to_owned()
    } else {
        path
    };
    ApiError::BadRequest {
        detail: "the body does not match the expected shape".into(),
        errors: vec![FieldError::new(field, message)],
    }
}

/// Rewrites every float without a fraction that fits an `i64` as that integer; whether
/// there was any.
fn integral_numbers(v: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f >= i64::MIN as f64
                && f < i64::MAX as f64
            {
                *v = Value::from(f as i64);
                return true;
            }
            false
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |any, i| integral_numbers(i) | any),
        Value::Object(fields) => fields
            .values_mut()
            .fold(false, |any, f| integral_numbers(f) | any),
        _ => false,
    }
}

/// serde's message without its " at line 1 column 10" suffix.
fn clean_serde_message(m: &str) -> String {
    match m.rfind(" at line ") {
        Some(i) => m[..i].to_owned(),
        None => m.to_owned(),
    }
}

/// The name in "unknown field `x`, expected ...".
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// A query string, read strictly like [`Json`].
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(q));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                let path = e.path().to_string();
                let message = e.into_inner().to_string();
                let field = unknown_field(&message).map(str::to_owned).unwrap_or(path);
                ApiError::BadRequest {
                    detail: "the query string has an invalid parameter".into(),
                    errors: vec![FieldError::new(field, message)],
                }
            })
    }
}

fn form_urlencoded_parse(q: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(q.as_bytes())
}

/// A positive integer id from the path.
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw): axum::extract::Path<String> =
            axum::extract::Path::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::field("id", "missing id in the path"))?;
        match raw.parse::<i64>() {
            Ok(n) if n > 0 => Ok(Id(n)),
            _ => Err(ApiError::field(
                "id",
                format!("{raw:?} is not an id: ids are positive integers"),
            )),
        }
    }
}
