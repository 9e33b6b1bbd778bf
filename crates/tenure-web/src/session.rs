//! Who is asking and in which language: the session cookie, the language choice, and the
//! checks every form post passes (the session's form token and, when the browser sends
//! one, an `Origin` of this site).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use tenure_app::web::Session;
use tenure_domain::access::Permission;
use tenure_domain::changes::Actor;

use crate::WebState;
use crate::i18n::Lang;

/// The session cookie. HttpOnly, SameSite=Lax, Secure over HTTPS.
pub const SESSION_COOKIE: &str = "tenure_session";
/// The language chosen before signing in (or without an account language).
pub const LANG_COOKIE: &str = "tenure_lang";
/// The sign-in form's token, paired with a cookie because there is no session yet.
pub const LOGIN_COOKIE: &str = "tenure_login";

/// The request as the pages see it.
pub struct Ctx {
    pub state: WebState,
    pub session: Option<Session>,
    pub lang: Lang,
    /// The language was chosen by `?lang=` on this request (so it is remembered).
    pub lang_given: bool,
    /// htmx asked for a fragment.
    pub fragment: bool,
    pub path: String,
    pub query: String,
    pub secure: bool,
    pub headers: HeaderMap,
    /// The caller's address, for throttling sign-ins.
    pub client: String,
}

impl Ctx {
    /// The signed-in user acting, or a redirect to the sign-in page that comes back here.
    #[allow(clippy::result_large_err)]
    pub fn actor(&self) -> Result<Actor, Response> {
        match &self.session {
            Some(s) => Ok(s.actor()),
            None => {
                let back = if self.query.is_empty() {
                    self.path.clone()
                } else {
                    format!("{}?{}", self.path, self.query)
                };
                let to = format!("/login?next={}", form_urlencoded_byte_serialize(&back));
                if self.fragment {
                    // htmx follows a redirect inside the page; make it load the page.
                    Err(([("HX-Redirect", to)], "").into_response())
                } else {
                    Err(Redirect::to(&to).into_response())
                }
            }
        }
    }

    /// The signed-in user, who must be allowed `p`; otherwise the sign-in page or a 403
    /// page.
    #[allow(clippy::result_large_err)]
    pub fn allowed(&self, p: Permission) -> Result<Actor, Response> {
        self.permit(self.actor()?, p)
    }

    /// `actor`, when allowed `p`; otherwise the 403 page.
    #[allow(clippy::result_large_err)]
    fn permit(&self, actor: Actor, p: Permission) -> Result<Actor, Response> {
        if actor.allows(p) {
            Ok(actor)
        } else {
            Err(crate::render::error_page(
                self,
                axum::http::StatusCode::FORBIDDEN,
                &self.t("error-forbidden-detail"),
            ))
        }
    }

    /// A form post of a user who must be allowed `p` (see [`Ctx::check_form`]).
    #[allow(clippy::result_large_err)]
    pub fn form_actor(&self, form: &[(String, String)], p: Permission) -> Result<Actor, Response> {
        self.permit(self.check_form(form)?, p)
    }

    /// The page for a record that is not there.
    pub fn not_found(&self) -> Response {
        crate::render::error_page(
            self,
            axum::http::StatusCode::NOT_FOUND,
            &self.t("error-not-found-detail"),
        )
    }

    /// A message in the request's language.
    pub fn t(&self, key: &str) -> String {
        self.state.catalog.message(self.lang, key, &[])
    }

    /// A message with arguments.
    pub fn t_with(&self, key: &str, args: &[(&str, fluent_bundle::FluentValue<'_>)]) -> String {
        self.state.catalog.message(self.lang, key, args)
    }

    /// The session's form token; empty without a session.
    pub fn csrf(&self) -> &str {
        self.session.as_ref().map_or("", |s| s.csrf.as_str())
    }

    /// Checks a form post: it must carry the session's token and, when the browser says
    /// where it comes from, come from this site.
    #[allow(clippy::result_large_err)]
    pub fn check_form(&self, form: &[(String, String)]) -> Result<Actor, Response> {
        let actor = self.actor()?;
        let token = field(form, "_csrf");
        let expected = self.csrf();
        if !same_origin(&self.headers) || expected.is_empty() || !constant_eq(token, expected) {
            return Err(crate::render::error_page(
                self,
                axum::http::StatusCode::FORBIDDEN,
                &self.t("error-csrf"),
            ));
        }
        Ok(actor)
    }

    /// A cookie with the flags every cookie of the application has.
    pub fn cookie(&self, name: &'static str, value: String, max_age: Option<i64>) -> String {
        let mut c = Cookie::new(name, value);
        c.set_path("/");
        c.set_http_only(true);
        c.set_same_site(SameSite::Lax);
        c.set_secure(self.secure);
        if let Some(secs) = max_age {
            c.set_max_age(cookie::time::Duration::seconds(secs));
        }
        c.to_string()
    }
}

/// A form field's value; empty when absent.
pub fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

pub use tenure_app::constant_eq;

/// Whether the request's `Origin` (when it has one) is this site.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

pub fn form_urlencoded_byte_serialize(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|x| x.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

/// The value of cookie `name`.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

fn query_lang(query: &str) -> Option<Lang> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "lang")
        .and_then(|(_, v)| Lang::from_tag(&v))
}

impl FromRequestParts<WebState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Ctx, Response> {
        let headers = parts.headers.clone();
        let query = parts.uri.query().unwrap_or("").to_owned();
        let session = match cookie_value(&headers, SESSION_COOKIE) {
            Some(token) if !token.is_empty() => match state.app.session(&token).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the session failed");
                    return Err(crate::render::plain_error(
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "The database is not available. Try again in a moment.",
                    ));
                }
            },
            _ => None,
        };
        let given = query_lang(&query);
        let lang = given
            .or_else(|| {
                session
                    .as_ref()
                    .and_then(|s| s.lang.as_deref())
                    .and_then(Lang::from_tag)
            })
            .or_else(|| cookie_value(&headers, LANG_COOKIE).and_then(|l| Lang::from_tag(&l)))
            .unwrap_or_else(|| {
                Lang::negotiate(
                    headers
                        .get(header::ACCEPT_LANGUAGE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or(""),
                )
            });
        if let (Some(l), Some(s)) = (given, &session)
            && s.lang.as_deref() != Some(l.tag())
            && parts.method == Method::GET
        {
            let actor = s.actor();
            if let Err(e) = state
                .app
                .set_language(&actor, s.user.id, Some(l.tag()))
                .await
            {
                tracing::warn!(error = %e, "remembering the language failed");
            }
        }
        let fragment = headers.get("HX-Request").is_some_and(|v| v == "true")
            && headers.get("HX-History-Restore-Request").is_none();
        let secure = state.options.secure_cookies
            || headers
                .get("X-Forwarded-Proto")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
        let client = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
        Ok(Ctx {
            client,
            state: state.clone(),
            session,
            lang,
            lang_given: given.is_some(),
            fragment,
            path: parts.uri.path().to_owned(),
            query,
            secure,
            headers,
        })
    }
}
