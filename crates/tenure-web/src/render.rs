//! Templates and responses: the minijinja environment (templates built into the binary,
//! HTML escaped by default), the translation function and formatting filters every
//! template has, and the headers every page carries.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use fluent_bundle::FluentValue;
use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error, ErrorKind, State};
use serde::Serialize;
use tenure_domain::access::Permission;

use crate::i18n::{Catalog, Lang};
use crate::session::Ctx;

/// The templates, by name, built into the binary.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("macros.html", include_str!("../templates/macros.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("error.html", include_str!("../templates/error.html")),
    (
        "dashboard.html",
        include_str!("../templates/dashboard.html"),
    ),
    (
        "customers.html",
        include_str!("../templates/customers.html"),
    ),
    ("customer.html", include_str!("../templates/customer.html")),
    ("loyalty.html", include_str!("../templates/loyalty.html")),
    ("member.html", include_str!("../templates/member.html")),
    (
        "unsubscribe.html",
        include_str!("../templates/unsubscribe.html"),
    ),
    ("tickets.html", include_str!("../templates/tickets.html")),
    ("ticket.html", include_str!("../templates/ticket.html")),
    ("tasks.html", include_str!("../templates/tasks.html")),
    ("surveys.html", include_str!("../templates/surveys.html")),
    ("survey.html", include_str!("../templates/survey.html")),
    ("answer.html", include_str!("../templates/answer.html")),
    ("service.html", include_str!("../templates/service.html")),
    ("journeys.html", include_str!("../templates/journeys.html")),
    ("journey.html", include_str!("../templates/journey.html")),
    (
        "templates.html",
        include_str!("../templates/templates.html"),
    ),
    ("template.html", include_str!("../templates/template.html")),
    (
        "customer_form.html",
        include_str!("../templates/customer_form.html"),
    ),
    (
        "customer_delete.html",
        include_str!("../templates/customer_delete.html"),
    ),
    (
        "customer_erase.html",
        include_str!("../templates/customer_erase.html"),
    ),
    ("audit.html", include_str!("../templates/audit.html")),
    ("webhooks.html", include_str!("../templates/webhooks.html")),
    (
        "duplicates.html",
        include_str!("../templates/duplicates.html"),
    ),
    ("import.html", include_str!("../templates/import.html")),
    (
        "import_status.html",
        include_str!("../templates/import_status.html"),
    ),
    ("export.html", include_str!("../templates/export.html")),
    (
        "analytics.html",
        include_str!("../templates/analytics.html"),
    ),
    (
        "retention.html",
        include_str!("../templates/retention.html"),
    ),
    ("segments.html", include_str!("../templates/segments.html")),
    (
        "segment_form.html",
        include_str!("../templates/segment_form.html"),
    ),
    ("profit.html", include_str!("../templates/profit.html")),
];

fn lang_of(state: &State) -> Lang {
    state
        .lookup("lang")
        .and_then(|v| v.as_str().and_then(Lang::from_tag))
        .unwrap_or(Lang::En)
}

fn fluent_value(v: &Value) -> FluentValue<'static> {
    if let Some(n) = v.as_i64() {
        FluentValue::from(n)
    } else if let Ok(f) = f64::try_from(v.clone()) {
        FluentValue::from(f)
    } else {
        FluentValue::from(v.to_string())
    }
}

/// The environment with every template, `t()` and the formatting filters.
pub fn environment(catalog: Arc<Catalog>) -> Result<Environment<'static>, String> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .map_err(|e| format!("template {name}: {e}"))?;
    }
    env.add_function(
        "t",
        move |state: &State, key: &str, kwargs: Kwargs| -> Result<String, Error> {
            let mut args: Vec<(String, FluentValue<'static>)> = Vec::new();
            for k in kwargs.args() {
                let v: Value = kwargs.get(k)?;
                args.push((k.to_owned(), fluent_value(&v)));
            }
            let refs: Vec<(&str, FluentValue<'_>)> =
                args.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            kwargs.assert_all_used()?;
            Ok(catalog.message(lang_of(state), key, &refs))
        },
    );
    // `map[key]`, or none when the map has no such key (the templates are strict about
    // undefined values; a form's errors and answers name only some of its fields).
    env.add_function("pick", |map: Value, key: &str| -> Value {
        map.get_item(&Value::from(key))
            .ok()
            .filter(|v| !v.is_undefined())
            .unwrap_or(Value::from(()))
    });
    env.add_filter("num", |state: &State, v: Value| -> String {
        match v.as_i64() {
            Some(n) => lang_of(state).number(n),
            None => f64::try_from(v)
                .map(|f| lang_of(state).decimal(f, 0))
                .unwrap_or_default(),
        }
    });
    env.add_filter(
        "dec",
        |state: &State, v: f64, places: Option<usize>| -> String {
            lang_of(state).decimal(v, places.unwrap_or(2))
        },
    );
    env.add_filter("pct", |state: &State, v: f64| -> String {
        lang_of(state).percent(v)
    });
    env.add_filter(
        "money_minor",
        |state: &State, v: i64, currency: &str| -> String {
            lang_of(state).money_minor(v, currency)
        },
    );
    env.add_filter("money", |state: &State, v: f64, currency: &str| -> String {
        let places = tenure_domain::money::minor_exponent(currency) as usize;
        lang_of(state).money(v, currency, places)
    });
    env.add_filter("date", |state: &State, v: &str| -> Result<String, Error> {
        let day = v.get(..10).unwrap_or(v);
        let d = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|e| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("{v:?} is not a date: {e}"),
            )
        })?;
        Ok(lang_of(state).date(d))
    });
    env.add_filter("datetime", |state: &State, v: &str| -> String {
        // At the offset the value was written with: UTC for most pages, the business's
        // time zone on the service pages.
        match chrono::DateTime::parse_from_rfc3339(v) {
            Ok(t) => {
                format!(
                    "{} {}",
                    lang_of(state).date(t.date_naive()),
                    t.format("%H:%M")
                )
            }
            Err(_) => v.to_owned(),
        }
    });
    Ok(env)
}

/// Any serialisable value as a template value.
pub fn ser<T: Serialize>(v: &T) -> Value {
    Value::from(minijinja::value::Serde(v))
}

/// A navigation entry.
#[derive(Serialize)]
struct Nav {
    href: &'static str,
    key: &'static str,
    current: bool,
}

/// What every page's template sees besides its own values.
#[derive(Serialize)]
struct Base<'a> {
    lang: &'static str,
    langs: Vec<(&'static str, &'static str, String)>,
    user: Option<UserView>,
    csrf: &'a str,
    nav: Vec<Nav>,
    path: &'a str,
    fragment: bool,
}

#[derive(Serialize)]
struct UserView {
    name: String,
    email: String,
    role: String,
}

fn base(ctx: &Ctx) -> Base<'_> {
    let role = ctx.session.as_ref().map(|s| s.user.role);
    let may = |p: Permission| role.is_some_and(|r| r.allows(p));
    let mut nav = Vec::new();
    let mut add = |href: &'static str, key: &'static str, allowed: bool| {
        if allowed {
            let current = if href == "/" {
                ctx.path == "/"
            } else {
                ctx.path.starts_with(href)
            };
            nav.push(Nav { href, key, current });
        }
    };
    add("/", "nav-dashboard", may(Permission::ReadAggregates));
    add(
        "/customers",
        "nav-customers",
        may(Permission::ReadCustomers),
    );
    add(
        "/duplicates",
        "nav-duplicates",
        may(Permission::DeleteCustomers),
    );
    add("/import", "nav-import", may(Permission::WriteCustomers));
    add("/export", "nav-export", may(Permission::ReadCustomers));
    add(
        "/retention",
        "nav-retention",
        may(Permission::ReadAggregates),
    );
    add("/segments", "nav-segments", may(Permission::ReadAggregates));
    add("/profit", "nav-profit", may(Permission::ReadAggregates));
    add("/loyalty", "nav-loyalty", may(Permission::ReadAggregates));
    add("/tickets", "nav-tickets", may(Permission::ReadCustomers));
    add("/tasks", "nav-tasks", may(Permission::ReadCustomers));
    add("/surveys", "nav-surveys", may(Permission::ReadAggregates));
    add("/journeys", "nav-journeys", may(Permission::ReadAggregates));
    add("/service", "nav-service", may(Permission::ReadAggregates));
    add("/audit", "nav-audit", may(Permission::ReadAudit));
    add("/webhooks", "nav-webhooks", may(Permission::ManageUsers));
    add(
        "/analytics",
        "nav-analytics",
        may(Permission::ReadAggregates),
    );
    // The language links keep the page and its query, changing only `lang`.
    let others: Vec<(String, String)> =
        serde_urlencoded::from_str::<Vec<(String, String)>>(&ctx.query)
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k != "lang")
            .collect();
    let langs = Lang::ALL
        .iter()
        .map(|l| {
            let mut q = others.clone();
            q.push(("lang".into(), l.tag().into()));
            let href = format!(
                "{}?{}",
                ctx.path,
                serde_urlencoded::to_string(&q).unwrap_or_default()
            );
            (l.tag(), l.own_name(), href)
        })
        .collect();
    Base {
        lang: ctx.lang.tag(),
        langs,
        user: ctx.session.as_ref().map(|s| UserView {
            name: if s.user.name.is_empty() {
                s.user.email.clone()
            } else {
                s.user.name.clone()
            },
            email: s.user.email.clone(),
            role: s.user.role.to_string(),
        }),
        csrf: ctx.csrf(),
        nav,
        path: &ctx.path,
        fragment: ctx.fragment,
    }
}

/// Headers of every page: which request headers choose the answer, no caching of
/// personal data, and a content policy that admits only this site's scripts and styles.
pub fn page_headers(res: &mut Response) {
    let h = res.headers_mut();
    h.insert(
        header::VARY,
        HeaderValue::from_static("HX-Request, Cookie, Accept-Language"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// Renders `template` with `values` (and the base values); with a fragment request and a
/// `block`, only that block.
pub fn page<T: Serialize>(
    ctx: &Ctx,
    status: StatusCode,
    template: &str,
    block: Option<&str>,
    values: T,
) -> Response {
    let Ok(templates) = &ctx.state.templates else {
        return plain_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The page templates do not parse. The error is in the server's log.",
        );
    };
    let rendered = templates.get_template(template).and_then(|t| {
        let context = minijinja::context! { ..ser(&values), ..ser(&base(ctx)) };
        match block.filter(|_| ctx.fragment) {
            Some(b) => t
                .render_captured(context)?
                .with_state_mut(|state| state.render_block(b)),
            None => t.render(context),
        }
    });
    match rendered {
        Ok(html) => {
            let mut res = (status, Html(html)).into_response();
            page_headers(&mut res);
            // A language chosen by link is remembered (for the account in the session
            // too, see the context).
            if ctx.lang_given
                && let Ok(v) = HeaderValue::from_str(&ctx.cookie(
                    crate::session::LANG_COOKIE,
                    ctx.lang.tag().to_owned(),
                    Some(365 * 24 * 3600),
                ))
            {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
            res
        }
        Err(e) => {
            tracing::error!(template, error = %format!("{e:#}"), "a page failed to render");
            plain_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "This page could not be shown. The error is in the server's log.",
            )
        }
    }
}

/// An error page in the request's language, inside the application's frame.
pub fn error_page(ctx: &Ctx, status: StatusCode, detail: &str) -> Response {
    let title_key = match status {
        StatusCode::FORBIDDEN => "error-forbidden",
        StatusCode::NOT_FOUND => "error-not-found",
        StatusCode::TOO_MANY_REQUESTS => "error-too-many",
        StatusCode::SERVICE_UNAVAILABLE => "error-unavailable",
        StatusCode::CONFLICT => "error-conflict",
        _ => "error-internal",
    };
    page(
        ctx,
        status,
        "error.html",
        None,
        minijinja::context! { status => status.as_u16(), title_key, detail },
    )
}

/// A page for when even the frame cannot be rendered (no database, a template failure).
pub fn plain_error(status: StatusCode, message: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Tenure</title>\
         <link rel=\"stylesheet\" href=\"/assets/app.css\"></head><body><main class=\"narrow\">\
         <h1>{}</h1><p>{}</p><p><a href=\"/\">Tenure</a></p></main></body></html>",
        status.as_u16(),
        minijinja::HtmlEscape(message)
    );
    let mut res = (status, Html(html)).into_response();
    page_headers(&mut res);
    res
}

/// The page for an address that names nothing (outside the API).
pub fn not_found_page() -> Response {
    plain_error(
        StatusCode::NOT_FOUND,
        "There is nothing at this address. / 此地址没有内容。/ 此位址沒有內容。",
    )
}

/// The answer to an application error on a page: the error page with its message (field
/// errors are shown on their forms by the pages themselves).
pub fn app_error(ctx: &Ctx, e: tenure_app::AppError) -> Response {
    use tenure_app::AppError as E;
    let (status, detail) = match &e {
        E::NotFound(_) => (StatusCode::NOT_FOUND, ctx.t("error-not-found-detail")),
        E::Forbidden(_) => (StatusCode::FORBIDDEN, ctx.t("error-forbidden-detail")),
        E::Conflict(m) => (StatusCode::CONFLICT, m.clone()),
        E::Invalid(_) | E::BadParameter(_) => (StatusCode::BAD_REQUEST, e.to_string()),
        E::PreconditionFailed { .. } => (StatusCode::CONFLICT, ctx.t("error-changed")),
        E::TooManyAttempts { .. } => (StatusCode::TOO_MANY_REQUESTS, e.to_string()),
        E::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            ctx.t("error-unavailable-detail"),
        ),
        E::Internal(m) => {
            tracing::error!(error = %m, "internal error on a page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                ctx.t("error-internal-detail"),
            )
        }
    };
    error_page(ctx, status, &detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys of every translation call (`t`, `t_with`) in `src`.
    fn keys_used(src: &str) -> Vec<String> {
        let mut out = Vec::new();
        for call in ["t(\"", "t_with(\""] {
            let mut rest = src;
            while let Some(at) = rest.find(call) {
                let before = rest[..at].chars().next_back();
                let after = &rest[at + call.len()..];
                if !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                    && let Some((key, _)) = after.split_once('"')
                {
                    out.push(key.to_owned());
                }
                rest = after;
            }
        }
        out
    }

    /// Every message a template or page names exists in the English bundle (which the
    /// i18n test compares with the others); keys built from a prefix are checked with
    /// every value they take.
    #[test]
    fn every_message_a_template_uses_exists() {
        let catalog = Catalog::load().unwrap_or_else(|e| panic!("{e}"));
        let mut used = 0;
        let sources = TEMPLATES.iter().map(|(n, s)| (*n, *s)).chain([
            ("pages/mod.rs", include_str!("pages/mod.rs")),
            ("pages/auth.rs", include_str!("pages/auth.rs")),
            ("pages/customers.rs", include_str!("pages/customers.rs")),
            ("pages/dashboard.rs", include_str!("pages/dashboard.rs")),
            ("pages/duplicates.rs", include_str!("pages/duplicates.rs")),
            ("pages/exchange.rs", include_str!("pages/exchange.rs")),
            ("pages/analytics.rs", include_str!("pages/analytics.rs")),
            ("pages/service.rs", include_str!("pages/service.rs")),
            ("pages/loyalty.rs", include_str!("pages/loyalty.rs")),
            ("pages/lifecycle.rs", include_str!("pages/lifecycle.rs")),
            ("pages/audit.rs", include_str!("pages/audit.rs")),
            ("pages/webhooks.rs", include_str!("pages/webhooks.rs")),
            ("session.rs", include_str!("session.rs")),
            ("render.rs", include_str!("render.rs")),
        ]);
        for (name, source) in sources {
            for key in keys_used(source) {
                // Prefixes completed in the template (`"role-" ~ user.role`).
                if key.ends_with('-') || key.is_empty() {
                    continue;
                }
                used += 1;
                assert!(
                    catalog.has(Lang::En, &key),
                    "{name} uses unknown message {key}"
                );
            }
        }
        assert!(used > 100, "templates use {used} messages");
        let built = [
            (
                "role-",
                vec!["admin", "manager", "agent", "analyst", "read_only"],
            ),
            ("kind-", vec!["person", "organisation"]),
            (
                "timeline-",
                tenure_domain::timeline::TimelineKind::ALL
                    .iter()
                    .map(|k| k.as_str())
                    .collect(),
            ),
            (
                "ticket-status-",
                tenure_domain::service::TicketStatus::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect(),
            ),
            (
                "ticket-category-",
                tenure_domain::service::TicketCategory::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect(),
            ),
            (
                "ticket-priority-",
                tenure_domain::service::TicketPriority::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect(),
            ),
            (
                "message-",
                tenure_domain::service::MessageKind::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect(),
            ),
            (
                "task-status-",
                tenure_domain::service::TaskStatus::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect(),
            ),
            (
                "task-source-",
                tenure_domain::service::TaskSource::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect(),
            ),
            (
                "survey-kind-",
                tenure_domain::survey::SurveyKind::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect(),
            ),
            (
                "dimension-",
                tenure_domain::survey::Dimension::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect(),
            ),
            (
                "nps-group-",
                tenure_domain::survey::NpsGroup::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect(),
            ),
            (
                "sla-",
                vec!["met", "breached", "paused", "warn", "running", "none"],
            ),
            ("import-state-", vec!["running", "done", "failed"]),
            ("job-", vec!["queued", "running", "done", "failed"]),
            ("model-", vec!["bgnbd", "pareto_nbd", "gamma_gamma"]),
            (
                "customer-",
                vec![
                    "name",
                    "external-id",
                    "region",
                    "acquisition-source",
                    "acquisition-channel",
                ],
            ),
            (
                "error-",
                vec![
                    "forbidden",
                    "not-found",
                    "too-many",
                    "unavailable",
                    "conflict",
                    "internal",
                ],
            ),
            (
                "dashboard-",
                vec!["last-30", "last-90", "last-365", "last-3y"],
            ),
            (
                "skip-",
                tenure_domain::journey::SkipReason::ALL
                    .iter()
                    .map(|c| c.as_str())
                    .collect(),
            ),
            (
                "outbox-status-",
                tenure_domain::journey::MessageStatus::ALL
                    .iter()
                    .map(|c| c.as_str())
                    .collect(),
            ),
            (
                "outbox-class-",
                tenure_domain::journey::MessageClass::ALL
                    .iter()
                    .map(|c| c.as_str())
                    .collect(),
            ),
            (
                "enrollment-",
                tenure_domain::journey::EnrollmentStatus::ALL
                    .iter()
                    .map(|c| c.as_str())
                    .collect(),
            ),
            (
                "journey-event-",
                tenure_domain::journey::EventKind::ALL
                    .iter()
                    .map(|c| c.as_str())
                    .collect(),
            ),
            (
                "holiday-",
                tenure_domain::journey::Holiday::ALL
                    .iter()
                    .map(|c| c.as_str())
                    .collect(),
            ),
            (
                "journey-conversion-",
                tenure_domain::journey::ConversionKind::ALL
                    .iter()
                    .map(|c| c.as_str())
                    .collect(),
            ),
            ("journey-verdict-", vec!["better", "worse", "unclear"]),
            (
                "audit-entity-",
                tenure_domain::changes::Entity::ALL
                    .iter()
                    .map(|c| c.as_str())
                    .collect(),
            ),
            (
                "delivery-",
                tenure_domain::webhook::DeliveryStatus::ALL
                    .iter()
                    .map(|c| c.as_str())
                    .collect(),
            ),
            (
                "audit-op-",
                tenure_domain::changes::Operation::ALL
                    .iter()
                    .map(|c| c.as_str())
                    .collect(),
            ),
            (
                "audit-source-",
                tenure_domain::changes::Source::ALL
                    .iter()
                    .map(|c| c.as_str())
                    .collect(),
            ),
            (
                "channel-",
                tenure_domain::journey::Channel::ALL
                    .iter()
                    .map(|c| c.as_str())
                    .collect(),
            ),
        ];
        for (prefix, values) in built {
            for v in values {
                assert!(
                    catalog.has(Lang::En, &format!("{prefix}{v}")),
                    "{prefix}{v}"
                );
            }
        }
        for r in tenure_app::messages::ready_made() {
            for key in [
                format!("ready-{}", r.name),
                format!("ready-{}-about", r.name),
            ] {
                assert!(catalog.has(Lang::En, &key), "{key}");
            }
        }
        for k in tenure_app::import::Kind::ALL {
            assert!(
                catalog.has(Lang::En, &format!("import-kind-{}", k.name())),
                "{}",
                k.name()
            );
        }
    }

    #[test]
    fn every_template_parses() {
        let catalog = Arc::new(Catalog::load().unwrap_or_else(|e| panic!("{e}")));
        if let Err(e) = environment(catalog) {
            panic!("{e}");
        }
    }
}
