//! Signing in and out.

use axum::Form;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use tenure_app::AppError;

use crate::render::page;
use crate::session::{
    Ctx, LOGIN_COOKIE, SESSION_COOKIE, constant_eq, cookie_value, field, same_origin,
};

/// Where to go after signing in: a path of this site, never another site.
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

fn login_token() -> String {
    tenure_app::random_hex(16)
}

fn render_form(
    ctx: &Ctx,
    status: StatusCode,
    email: &str,
    next: &str,
    error: Option<String>,
) -> Response {
    let token = login_token();
    let mut res = page(
        ctx,
        status,
        "login.html",
        None,
        minijinja::context! { email, next, error, login_csrf => token.clone() },
    );
    if let Ok(v) = HeaderValue::from_str(&ctx.cookie(LOGIN_COOKIE, token, Some(3600))) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

pub async fn form(ctx: Ctx) -> Response {
    let pairs = super::query_pairs(&ctx.query);
    let next = super::param(&pairs, "next").unwrap_or("/").to_owned();
    if ctx.session.is_some() {
        return Redirect::to(safe_next(&next)).into_response();
    }
    render_form(&ctx, StatusCode::OK, "", &next, None)
}

pub async fn sign_in(ctx: Ctx, Form(form): Form<Vec<(String, String)>>) -> Response {
    let (email, password, next) = (
        field(&form, "email"),
        field(&form, "password"),
        field(&form, "next"),
    );
    let expected = cookie_value(&ctx.headers, LOGIN_COOKIE).unwrap_or_default();
    if !same_origin(&ctx.headers)
        || expected.is_empty()
        || !constant_eq(field(&form, "_csrf"), &expected)
    {
        return render_form(
            &ctx,
            StatusCode::FORBIDDEN,
            email,
            next,
            Some(ctx.t("login-expired")),
        );
    }
    match ctx.state.app.sign_in(email, password, &ctx.client).await {
        Ok(signed) => {
            let max_age = (signed.expires_at - chrono::Utc::now()).num_seconds();
            let mut res = Redirect::to(safe_next(next)).into_response();
            *res.status_mut() = StatusCode::SEE_OTHER;
            for c in [
                ctx.cookie(SESSION_COOKIE, signed.token, Some(max_age)),
                ctx.cookie(LOGIN_COOKIE, String::new(), Some(0)),
            ] {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    res.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            res
        }
        Err(AppError::TooManyAttempts { retry_after_secs }) => {
            let minutes = retry_after_secs.div_ceil(60) as i64;
            let msg = ctx.t_with("login-throttled", &[("minutes", minutes.into())]);
            let mut res = render_form(&ctx, StatusCode::TOO_MANY_REQUESTS, email, next, Some(msg));
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            res
        }
        Err(AppError::Invalid(_)) => render_form(
            &ctx,
            StatusCode::UNAUTHORIZED,
            email,
            next,
            Some(ctx.t("login-wrong")),
        ),
        Err(e) => crate::render::app_error(&ctx, e),
    }
}

pub async fn sign_out(ctx: Ctx, Form(form): Form<Vec<(String, String)>>) -> Response {
    if ctx.session.is_none() {
        return Redirect::to("/login").into_response();
    }
    if let Err(res) = ctx.check_form(&form) {
        return res;
    }
    if let Some(token) = cookie_value(&ctx.headers, SESSION_COOKIE) {
        let ended = if field(&form, "everywhere") == "1" {
            ctx.state.app.sign_out_everywhere(&token).await.map(|_| ())
        } else {
            ctx.state.app.sign_out(&token).await
        };
        if let Err(e) = ended {
            return crate::render::app_error(&ctx, e);
        }
    }
    let mut res = Redirect::to("/login").into_response();
    *res.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(&ctx.cookie(SESSION_COOKIE, String::new(), Some(0))) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}
