//! Reviewing likely duplicates: merge a pair into the customer kept, and undo a merge.

use axum::Form;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use tenure_app::PageRequest;
use tenure_domain::access::Permission;
use tenure_domain::customer::display_name;
use tenure_domain::ids::{CustomerId, MergeId};

use super::customers::see_other;
use super::{param, query_pairs};
use crate::render::{app_error, error_page, page, ser};
use crate::session::{Ctx, field};

#[derive(Serialize)]
struct Side {
    id: i64,
    name: String,
    email: Option<String>,
    phone: Option<String>,
    external_id: Option<String>,
}

fn side(s: &tenure_app::model::CandidateSide) -> Side {
    Side {
        id: s.id.0,
        name: display_name(&s.name),
        email: s.email.clone(),
        phone: s.phone.clone(),
        external_id: s.external_id.clone(),
    }
}

pub async fn list(ctx: Ctx) -> Response {
    let actor = step!(ctx.allowed(Permission::DeleteCustomers));
    let pairs = query_pairs(&ctx.query);
    let request = PageRequest {
        limit: Some(20),
        cursor: param(&pairs, "cursor").map(str::to_owned),
    };
    let found = match ctx
        .state
        .app
        .duplicate_candidates(&actor, None, None, &request)
        .await
    {
        Ok(l) => l,
        Err(e) => return app_error(&ctx, e),
    };
    let candidates: Vec<(Side, Side, f64, Vec<String>)> = found
        .items
        .iter()
        .map(|c| {
            (
                side(&c.a),
                side(&c.b),
                c.pair.score_milli as f64 / 1000.0,
                c.pair.reasons.iter().map(|r| r.to_string()).collect(),
            )
        })
        .collect();
    let merges = match ctx
        .state
        .app
        .list_merges(&actor, None, &PageRequest::first(10))
        .await
    {
        Ok(l) => l
            .items
            .into_iter()
            .map(|m| {
                (
                    m.id.0,
                    m.survivor_id.0,
                    m.merged_id.0,
                    display_name(&m.merged_profile.data.name),
                    m.merged_at.to_rfc3339(),
                    m.undone_at.map(|t| t.to_rfc3339()),
                )
            })
            .collect::<Vec<_>>(),
        Err(e) => return app_error(&ctx, e),
    };
    let next_href = found.next_cursor.map(|c| {
        format!(
            "/duplicates?cursor={}",
            crate::session::form_urlencoded_byte_serialize(&c)
        )
    });
    let notice = match param(&pairs, "notice") {
        Some("merged") => Some(ctx.t("duplicates-merged")),
        Some("undone") => Some(ctx.t("duplicates-undone")),
        _ => None,
    };
    page(
        &ctx,
        StatusCode::OK,
        "duplicates.html",
        None,
        minijinja::context! { candidates => ser(&candidates), merges, next_href, notice,
        undo => param(&pairs, "merge").and_then(|m| m.parse::<i64>().ok()) },
    )
}

fn id_field(form: &[(String, String)], name: &str) -> Option<i64> {
    field(form, name).parse::<i64>().ok().filter(|i| *i > 0)
}

pub async fn merge(ctx: Ctx, Form(form): Form<Vec<(String, String)>>) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::DeleteCustomers));
    let (Some(keep), Some(other)) = (id_field(&form, "keep"), id_field(&form, "merge")) else {
        return error_page(&ctx, StatusCode::BAD_REQUEST, &ctx.t("duplicates-choose"));
    };
    match ctx
        .state
        .app
        .merge_customers(&actor, CustomerId(keep), CustomerId(other))
        .await
    {
        Ok(m) => see_other(&format!("/duplicates?notice=merged&merge={}", m.id.0)),
        Err(e) => app_error(&ctx, e),
    }
}

pub async fn undo(
    ctx: Ctx,
    Path(raw): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let actor = step!(ctx.form_actor(&form, Permission::DeleteCustomers));
    let Some(id) = super::path_id(&raw) else {
        return ctx.not_found();
    };
    match ctx.state.app.undo_merge(&actor, MergeId(id)).await {
        Ok(_) => see_other("/duplicates?notice=undone"),
        Err(e) => app_error(&ctx, e),
    }
}
