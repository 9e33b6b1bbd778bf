//! Import and export from the browser. An upload is stored in a temporary file and
//! imported in the background by the same code as `tenure import`, with the same options
//! (encoding, dates, decimal comma); its page shows the progress and then the rejected
//! rows by line, also as a CSV download. Exports stream the same CSV as `tenure export`.

use std::io::Write;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::{Multipart, Path};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tenure_app::import::{DateFormat, Encoding, Format, Kind};
use tenure_app::model::ExportKind;
use tenure_domain::access::Permission;

use super::customers::see_other;
use crate::imports::{Outcome, Run};
use crate::render::{app_error, error_page, page};
use crate::session::{Ctx, constant_eq, same_origin};

/// Rows per transaction of a browser import (as the command line's default).
const BATCH: usize = 5000;
/// Largest upload taken, in bytes.
pub const UPLOAD_MAX: usize = 512 * 1024 * 1024;
/// Rejected rows shown on the page; all of them are in the download.
const SHOWN_REJECTIONS: usize = 200;

const ENCODINGS: [(&str, Encoding); 3] = [
    ("utf-8", Encoding::Utf8),
    ("gb18030", Encoding::Gb18030),
    ("windows-1252", Encoding::Windows1252),
];

fn form_values(ctx: &Ctx, error: Option<String>) -> minijinja::Value {
    let runs: Vec<(String, String, String, String)> = ctx
        .session
        .as_ref()
        .map(|s| ctx.state.imports.of(s.user.id))
        .unwrap_or_default()
        .iter()
        .take(10)
        .map(|r| {
            let state = match r.outcome() {
                Outcome::Running => "running",
                Outcome::Done(_) => "done",
                Outcome::Failed(_) => "failed",
            };
            (
                r.id.clone(),
                r.file_name.clone(),
                r.kind.clone(),
                state.to_owned(),
            )
        })
        .collect();
    minijinja::context! {
        kinds => Kind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>(),
        encodings => ENCODINGS.iter().map(|e| e.0).collect::<Vec<_>>(),
        error, runs,
    }
}

pub async fn import_form(ctx: Ctx) -> Response {
    step!(ctx.allowed(Permission::WriteCustomers));
    page(
        &ctx,
        StatusCode::OK,
        "import.html",
        None,
        form_values(&ctx, None),
    )
}

fn random_id() -> String {
    tenure_app::random_hex(12)
}

pub async fn upload(ctx: Ctx, mut multipart: Multipart) -> Response {
    let actor = step!(ctx.allowed(Permission::WriteCustomers));
    let Some(session) = ctx.session.clone() else {
        return see_other("/login");
    };
    let mut csrf = String::new();
    let mut kind = None;
    let mut format = Format::default();
    let mut file: Option<(String, tempfile::NamedTempFile, u64)> = None;
    let mut error: Option<String> = None;
    loop {
        let next = multipart.next_field().await;
        let mut part = match next {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => {
                error =
                    Some(ctx.t_with("import-upload-failed", &[("reason", e.to_string().into())]));
                break;
            }
        };
        let name = part.name().unwrap_or("").to_owned();
        if name == "file" {
            let file_name = part.file_name().unwrap_or("upload.csv").to_owned();
            let mut tmp = match tempfile::NamedTempFile::new() {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "no temporary file for an upload");
                    return error_page(
                        &ctx,
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &ctx.t("error-internal-detail"),
                    );
                }
            };
            let mut size = 0u64;
            loop {
                match part.chunk().await {
                    Ok(Some(bytes)) => {
                        size += bytes.len() as u64;
                        if size as usize > UPLOAD_MAX || tmp.write_all(&bytes).is_err() {
                            error = Some(ctx.t("import-too-large"));
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        error = Some(
                            ctx.t_with("import-upload-failed", &[("reason", e.to_string().into())]),
                        );
                        break;
                    }
                }
            }
            file = Some((file_name, tmp, size));
            continue;
        }
        let value = part.text().await.unwrap_or_default();
        match name.as_str() {
            "_csrf" => csrf = value,
            "kind" => kind = Kind::from_name(value.trim()),
            "encoding" => {
                if let Some((_, e)) = ENCODINGS.iter().find(|(n, _)| *n == value.trim()) {
                    format.encoding = *e;
                }
            }
            "dates" if !value.trim().is_empty() => match value.parse::<DateFormat>() {
                Ok(d) => format.dates = Some(d),
                Err(e) => error = Some(e),
            },
            "decimal_comma" => format.decimal_comma = value == "on",
            _ => {}
        }
    }
    if !same_origin(&ctx.headers) || !constant_eq(&csrf, &session.csrf) {
        return error_page(&ctx, StatusCode::FORBIDDEN, &ctx.t("error-csrf"));
    }
    let Some(kind) = kind else {
        return page(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            "import.html",
            None,
            form_values(&ctx, Some(ctx.t("import-choose-kind"))),
        );
    };
    if let Some(e) = error {
        return page(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            "import.html",
            None,
            form_values(&ctx, Some(e)),
        );
    }
    let Some((file_name, tmp, size)) = file.filter(|f| f.2 > 0) else {
        return page(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            "import.html",
            None,
            form_values(&ctx, Some(ctx.t("import-choose-file"))),
        );
    };
    let run = ctx.state.imports.start(Run {
        id: random_id(),
        user: session.user.id,
        kind: kind.name().to_owned(),
        file_name,
        encoding: format.encoding.name().to_owned(),
        total_bytes: size,
        done_bytes: Default::default(),
        started: std::time::Instant::now(),
        outcome: std::sync::Mutex::new(Outcome::Running),
    });
    let app = ctx.state.app.clone();
    let tracked = run.clone();
    tokio::spawn(async move {
        let reader = match tmp.reopen() {
            Ok(f) => std::io::BufReader::new(f),
            Err(e) => {
                tracked.finish(Outcome::Failed(e.to_string()));
                return;
            }
        };
        let progress = tracked.clone();
        let result = app
            .import(&actor, kind, reader, &format, BATCH, move |done| {
                progress.done_bytes.store(done, Ordering::Relaxed);
            })
            .await;
        drop(tmp);
        tracked.finish(match result {
            Ok(summary) => Outcome::Done(summary),
            Err(e) => Outcome::Failed(e.to_string()),
        });
    });
    see_other(&format!("/import/{}", run.id))
}

/// The user's own import `id`.
#[allow(clippy::result_large_err)]
fn run_of(ctx: &Ctx, id: &str) -> Result<std::sync::Arc<Run>, Response> {
    ctx.session
        .as_ref()
        .and_then(|s| ctx.state.imports.get(id, s.user.id))
        .ok_or_else(|| ctx.not_found())
}

pub async fn import_status(ctx: Ctx, Path(id): Path<String>) -> Response {
    step!(ctx.allowed(Permission::WriteCustomers));
    let run = step!(run_of(&ctx, &id));
    let (state, summary, failure) = match run.outcome() {
        Outcome::Running => ("running", None, None),
        Outcome::Done(s) => ("done", Some(s), None),
        Outcome::Failed(e) => ("failed", None, Some(e)),
    };
    let rejections: Vec<(u64, String, String)> = summary
        .as_ref()
        .map(|s| {
            s.rejections
                .iter()
                .take(SHOWN_REJECTIONS)
                .map(|r| (r.line, r.column.clone(), r.reason.clone()))
                .collect()
        })
        .unwrap_or_default();
    let totals = summary
        .as_ref()
        .map(|s| (s.rows, s.imported, s.skipped, s.rejected, s.created));
    page(
        &ctx,
        StatusCode::OK,
        "import_status.html",
        Some("status"),
        minijinja::context! {
            id => run.id.clone(), file_name => run.file_name.clone(), kind => run.kind.clone(),
            encoding => run.encoding.clone(), state, failure, totals, rejections,
            more_rejections => summary.as_ref().is_some_and(|s| s.rejections.len() > SHOWN_REJECTIONS),
            share => run.share(), percent => (run.share() * 100.0).round() as i64,
        },
    )
}

pub async fn rejected_csv(ctx: Ctx, Path(id): Path<String>) -> Response {
    step!(ctx.allowed(Permission::WriteCustomers));
    let run = step!(run_of(&ctx, &id));
    let Outcome::Done(summary) = run.outcome() else {
        return ctx.not_found();
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(["line", "column", "reason"]);
    for r in &summary.rejections {
        let _ = w.write_record([r.line.to_string(), r.column.clone(), r.reason.clone()]);
    }
    let body = w.into_inner().unwrap_or_default();
    let name = format!("{}.errors.csv", run.file_name.trim_end_matches(".csv"));
    attachment(body.into(), "text/csv; charset=utf-8", &name)
}

pub(crate) fn attachment(body: Body, kind: &'static str, file_name: &str) -> Response {
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    // ASCII fallback plus the UTF-8 name.
    let ascii: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = crate::session::form_urlencoded_byte_serialize(file_name).replace('+', "%20");
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

const EXPORTS: [(&str, ExportKind); 6] = [
    ("customers", ExportKind::Customers),
    ("purchases", ExportKind::Purchases),
    ("orders", ExportKind::Orders),
    ("order-lines", ExportKind::OrderLines),
    ("interactions", ExportKind::Interactions),
    ("products", ExportKind::Products),
];

pub async fn export_page(ctx: Ctx) -> Response {
    step!(ctx.allowed(Permission::ReadCustomers));
    page(
        &ctx,
        StatusCode::OK,
        "export.html",
        None,
        minijinja::context! { kinds => EXPORTS.iter().map(|e| e.0).collect::<Vec<_>>() },
    )
}

pub async fn download(ctx: Ctx, Path(name): Path<String>) -> Response {
    let actor = step!(ctx.allowed(Permission::ReadCustomers));
    let Some((kind_name, kind)) = EXPORTS
        .iter()
        .find(|(n, _)| name.strip_suffix(".csv").unwrap_or(&name) == *n)
    else {
        return ctx.not_found();
    };
    // Written to a temporary file first, so a failure is an error page, not a cut file.
    let tmp = match tempfile::tempfile() {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "no temporary file for an export");
            return error_page(
                &ctx,
                StatusCode::INTERNAL_SERVER_ERROR,
                &ctx.t("error-internal-detail"),
            );
        }
    };
    let mut out = std::io::BufWriter::new(tmp);
    if let Err(e) = ctx.state.app.export_csv(&actor, *kind, &mut out).await {
        return match e {
            tenure_app::export::ExportError::Read(e) => app_error(&ctx, e),
            tenure_app::export::ExportError::Write(e) => {
                tracing::error!(error = %e, "writing an export failed");
                error_page(
                    &ctx,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &ctx.t("error-internal-detail"),
                )
            }
        };
    }
    let file = match out
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|mut f| {
            use std::io::Seek;
            f.rewind().map(|()| f)
        }) {
        Ok(f) => tokio::fs::File::from_std(f),
        Err(e) => {
            tracing::error!(error = %e, "reading an export back failed");
            return error_page(
                &ctx,
                StatusCode::INTERNAL_SERVER_ERROR,
                &ctx.t("error-internal-detail"),
            );
        }
    };
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    attachment(body, "text/csv; charset=utf-8", &format!("{kind_name}.csv"))
}
