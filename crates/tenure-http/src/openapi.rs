//! The OpenAPI document: generated from the handlers, then completed with what every
//! operation shares — the problem+json answers the layers give (bad request, unauthorized,
//! forbidden, unsupported media type, unavailable, ...) and the bounds the domain enforces
//! (page sizes, ids, text lengths, amounts) — so the document describes the wire exactly.

use serde_json::{Value, json};
use tenure_domain::{catalog, customer, interaction, money};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The media type of every error body (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(OpenApi)]
#[openapi(
    info(title = "Tenure API", description = "A retention-first CRM. Every /api/v1 route needs `Authorization: Bearer <token>`; errors are RFC 9457 problem+json with a `request_id` that matches the server's log."),
    modifiers(&BearerAuth),
    tags(
        (name = "customers", description = "Customers, their search and timeline"),
        (name = "accounts", description = "Accounts: end customers, distributors, resellers, partners"),
        (name = "products", description = "The product catalogue"),
        (name = "recommendations", description = "Bought together, and next best offers"),
        (name = "orders", description = "Orders with line items"),
        (name = "interactions", description = "Contacts with customers on every channel"),
        (name = "users", description = "Staff users and API tokens"),
        (name = "jobs", description = "Scheduled and queued work"),
        (name = "analytics", description = "Life-cycle stages, RFM, cohorts, retention, concentration, win-back and the profit simulator"),
        (name = "segments", description = "Segments in the filter language, their members and history"),
        (name = "loyalty", description = "The loyalty program: points ledger, tiers, rewards, coupons, referrals, member links"),
        (name = "service", description = "Tickets with SLA clocks in business hours, follow-up tasks, surveys (CSAT, NPS, SERVQUAL, custom) and the service reports"),
        (name = "webhooks", description = "Outgoing webhooks: signed calls to other systems on customer, stage, ticket and loyalty events, with their delivery log"),
        (name = "audit", description = "The audit log of every change, and privacy requests: a customer's data handed out or erased"),
        (name = "journeys", description = "Journeys (welcome, birthdays, holidays, win-back, ...), their reports against a control group, and the messages of the outbox"),
    )
)]
pub(crate) struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// A status, what it means, and which operations can answer it.
type SharedAnswer = (&'static str, &'static str, fn(&Operation) -> bool);

/// The answers every operation can give besides its own, by status, with when each applies.
const SHARED_ANSWERS: &[SharedAnswer] = &[
    (
        "400",
        "The request could not be read: malformed JSON, a wrong type, an unknown field or an invalid parameter",
        |_| true,
    ),
    (
        "401",
        "No token, or an unknown, revoked or expired one",
        |op| op.secured,
    ),
    ("403", "The token's role may not do this", |op| op.secured),
    ("404", "No record has that id", |op| op.has_path_id),
    (
        "409",
        "The change conflicts with another record (a unique field, a merged or referenced record)",
        |op| op.method == "patch" || op.method == "post",
    ),
    ("413", "The body is larger than 1 MiB", |op| op.has_body),
    ("415", "The body is not sent as application/json", |op| {
        op.has_body
    }),
    (
        "422",
        "The body was read but a value breaks a rule; `errors` names each field (or the Idempotency-Key was used for another request)",
        |op| op.has_body || op.method == "post",
    ),
    (
        "503",
        "The database cannot be reached; retry after the Retry-After seconds",
        |_| true,
    ),
];

/// What decides which shared answers an operation documents.
struct Operation<'a> {
    method: &'a str,
    secured: bool,
    has_body: bool,
    has_path_id: bool,
}

/// Completes the generated document so it matches what the server sends.
pub(crate) fn complete(doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let mut v = serde_json::to_value(&doc).unwrap_or_default();
    complete_value(&mut v);
    serde_json::from_value(v).unwrap_or(doc)
}

fn complete_value(doc: &mut Value) {
    let problem = json!({ "$ref": "#/components/schemas/Problem" });
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                let shape = Operation {
                    method,
                    secured: op.get("security").is_some(),
                    has_body: op.get("requestBody").is_some(),
                    has_path_id: path.contains("{id}"),
                };
                if method == "post" && shape.secured {
                    idempotency_parameter(op);
                }
                bound_parameters(op);
                let responses = op
                    .as_object_mut()
                    .map(|o| o.entry("responses").or_insert_with(|| json!({})));
                let Some(responses) = responses.and_then(Value::as_object_mut) else {
                    continue;
                };
                for answer in responses.values_mut() {
                    problem_media_type(answer);
                }
                for (status, description, applies) in SHARED_ANSWERS {
                    if applies(&shape) && !responses.contains_key(*status) {
                        responses.insert(
                            (*status).to_owned(),
                            json!({
                                "description": description,
                                "content": { PROBLEM_JSON: { "schema": problem } },
                            }),
                        );
                    }
                }
            }
        }
    }
    if let Some(schemas) = doc.pointer_mut("/components/schemas") {
        bound_schemas(schemas);
    }
}

/// Every POST takes an `Idempotency-Key` (a route that requires one documents it itself).
fn idempotency_parameter(op: &mut Value) {
    let Some(o) = op.as_object_mut() else {
        return;
    };
    let params = o.entry("parameters").or_insert_with(|| json!([]));
    let Some(params) = params.as_array_mut() else {
        return;
    };
    let named = |p: &Value| {
        p.get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| n.eq_ignore_ascii_case("idempotency-key"))
    };
    if params.iter().any(named) {
        return;
    }
    params.push(json!({
        "name": "Idempotency-Key",
        "in": "header",
        "required": false,
        "description": "Unique per request (1–200 printable characters). A retry with the same key gets the first answer and changes nothing; the same key with another request is refused (422); a retry of a request that wrote but whose answer was lost is refused (409).",
        "schema": { "type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$" }
    }));
}

/// An answer whose body is a `Problem` is sent as problem+json, not plain JSON.
fn problem_media_type(answer: &mut Value) {
    let Some(content) = answer.get_mut("content").and_then(Value::as_object_mut) else {
        return;
    };
    let is_problem = content
        .get("application/json")
        .and_then(|m| m.pointer("/schema/$ref"))
        .and_then(Value::as_str)
        .is_some_and(|r| r.ends_with("/Problem"));
    if is_problem && let Some(media) = content.remove("application/json") {
        content.insert(PROBLEM_JSON.to_owned(), media);
    }
}

/// Path ids are positive; page sizes are 1 to the most a page holds.
fn bound_parameters(op: &mut Value) {
    let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
        return;
    };
    for p in params {
        let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
        let place = p.get("in").and_then(Value::as_str).unwrap_or_default();
        let bounds = match (place, name) {
            ("path", "id") => json!({ "minimum": 1 }),
            ("query", "limit") => json!({ "minimum": 1, "maximum": tenure_app::MAX_LIMIT }),
            ("query", n) if n == "id" || n.ends_with("_id") => json!({ "minimum": 1 }),
            _ => continue,
        };
        if let Some(schema) = p.get_mut("schema") {
            merge_into_type(schema, &bounds);
        }
    }
}

/// The lengths, counts and ranges the domain's input rules enforce, by schema and field.
fn bound_schemas(schemas: &mut Value) {
    let name = json!({ "minLength": 1, "maxLength": customer::NAME_MAX });
    let product_name = json!({ "minLength": 1, "maxLength": catalog::PRODUCT_NAME_MAX });
    let category_name = json!({ "minLength": 1, "maxLength": catalog::CATEGORY_NAME_MAX });
    let description = json!({ "maxLength": catalog::DESCRIPTION_MAX });
    let amount = json!({ "minimum": 0, "maximum": money::AMOUNT_MAX });
    // A line may be a discount.
    let line_amount = json!({ "minimum": -money::AMOUNT_MAX, "maximum": money::AMOUNT_MAX });
    let quantity = json!({ "minimum": 1, "maximum": money::QUANTITY_MAX });
    let lines = json!({ "maxItems": catalog::LINES_MAX });
    let subject = json!({ "maxLength": interaction::SUBJECT_MAX });
    let body = json!({ "maxLength": interaction::BODY_MAX });
    let id = json!({ "minimum": 1 });
    let date = json!({ "format": "date" });
    let email = json!({ "format": "email" });
    let token_name = json!({ "minLength": 1, "maxLength": tenure_app::TOKEN_NAME_MAX });
    let token_days = json!({ "minimum": 1, "maximum": tenure_app::TOKEN_DAYS_MAX });
    let table: &[(&str, &str, &Value)] = &[
        ("CreateCustomer", "name", &name),
        ("UpdateCustomer", "name", &name),
        ("CreateCustomer", "birthday", &date),
        ("UpdateCustomer", "birthday", &date),
        ("CreateCustomer", "email", &email),
        ("UpdateCustomer", "email", &email),
        ("CreateAccount", "name", &name),
        ("UpdateAccount", "name", &name),
        ("CreateProduct", "name", &product_name),
        ("UpdateProduct", "name", &product_name),
        ("CreateProduct", "price_minor", &amount),
        ("UpdateProduct", "price_minor", &amount),
        ("CreateCategory", "name", &category_name),
        ("OrderLineDto", "description", &description),
        ("OrderLineDto", "quantity", &quantity),
        ("OrderLineDto", "unit_price_minor", &line_amount),
        ("OrderLineDto", "total_minor", &line_amount),
        ("CreateOrder", "total_minor", &amount),
        ("UpdateOrder", "total_minor", &amount),
        ("CreateOrder", "lines", &lines),
        ("UpdateOrder", "lines", &lines),
        ("CreateInteraction", "subject", &subject),
        ("UpdateInteraction", "subject", &subject),
        ("CreateInteraction", "body", &body),
        ("UpdateInteraction", "body", &body),
        ("CreateToken", "name", &token_name),
        ("CreateToken", "expires_in_days", &token_days),
    ];
    for (schema, field, bounds) in table {
        if let Some(prop) = schemas.pointer_mut(&format!("/{schema}/properties/{field}")) {
            merge_into_type(prop, bounds);
        }
    }
    // Every id a body refers to is positive.
    if let Some(all) = schemas.as_object_mut() {
        for (schema, s) in all.iter_mut() {
            if !schema.starts_with("Create") && !schema.starts_with("Update") {
                continue;
            }
            let Some(props) = s.get_mut("properties").and_then(Value::as_object_mut) else {
                continue;
            };
            for (field, prop) in props.iter_mut() {
                if field.ends_with("_id") && field != "external_id" {
                    merge_into_type(prop, &id);
                }
            }
        }
    }
}

/// Adds `bounds` to a schema, or to the non-null branch of a nullable one.
fn merge_into_type(schema: &mut Value, bounds: &Value) {
    let target = match schema.get_mut("oneOf").and_then(Value::as_array_mut) {
        Some(branches) => branches
            .iter_mut()
            .find(|b| b.get("type").and_then(Value::as_str) != Some("null")),
        None => Some(schema),
    };
    if let (Some(Value::Object(target)), Value::Object(bounds)) = (target, bounds) {
        for (k, v) in bounds {
            target.insert(k.clone(), v.clone());
        }
    }
}
