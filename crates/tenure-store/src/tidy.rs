//! Repository rules as plain tests: the two migration folders describe the same schema,
//! every `CHECK (… IN …)` list is the enum it stores, and the registry of customer-owned
//! tables knows every table that holds customer rows.

use std::collections::{BTreeMap, BTreeSet};

use tenure_domain::access::Role;
use tenure_domain::catalog::{OrderStatus, SalesChannel};
use tenure_domain::changes::{ActorKind, Entity, Operation, Source};
use tenure_domain::customer::{
    AccountType, Channel, ConsentChannel, ConsentStatus, CustomerKind, Direction, InteractionKind,
};
use tenure_domain::jobs::{JobKind, JobStatus, RunOutcome};
use tenure_domain::lifecycle::{LossReason, LossReasonSource, Stage, TransitionReason};
use tenure_domain::loyalty::{BonusEvent, Bucket, DiscountKind, EntryKind, TierReason};
use tenure_domain::service::{
    MessageKind, TaskSource, TaskStatus, TicketCategory, TicketPriority, TicketStatus,
};
use tenure_domain::survey::{NpsGroup, SurveyKind};

/// A schema as the migrations build it: table → columns in order, and the `IN` lists of
/// the `CHECK` constraints by (table, column).
#[derive(Default, Debug)]
struct Schema {
    tables: BTreeMap<String, Vec<String>>,
    checks: BTreeMap<(String, String), Vec<String>>,
}

fn statements(sql: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ");
    without_comments
        .split(';')
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .collect()
}

/// Splits at commas outside parentheses.
fn top_level(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0);
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_owned());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

/// The quoted values of `CHECK (column IN ('a','b'))` in a column definition.
fn check_values(def: &str) -> Option<Vec<String>> {
    let at = def.find("CHECK (")?;
    let inner = &def[at + 7..];
    let open = inner.find(" IN (")?;
    let list = &inner[open + 5..inner.find(')')?];
    if !list.contains('\'') {
        return None;
    }
    Some(
        list.split(',')
            .map(|v| v.trim().trim_matches('\'').to_owned())
            .collect(),
    )
}

impl Schema {
    fn apply(&mut self, sql: &str) {
        for st in statements(sql) {
            let words: Vec<&str> = st.split(' ').collect();
            match words.as_slice() {
                ["CREATE", "TABLE", name, ..] => {
                    let name = name.trim_end_matches('(').to_owned();
                    let body = &st[st.find('(').unwrap() + 1..st.rfind(')').unwrap()];
                    let mut columns = Vec::new();
                    for def in top_level(body) {
                        let first = def.split(' ').next().unwrap_or("");
                        if ["PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "CONSTRAINT"].contains(&first)
                        {
                            continue;
                        }
                        if let Some(values) = check_values(&def) {
                            self.checks.insert((name.clone(), first.to_owned()), values);
                        }
                        columns.push(first.to_owned());
                    }
                    self.tables.insert(name, columns);
                }
                ["DROP", "TABLE", name, ..] => {
                    self.tables.remove(*name);
                    self.checks.retain(|(t, _), _| t != name);
                }
                ["ALTER", "TABLE", from, "RENAME", "TO", to] => {
                    if let Some(cols) = self.tables.remove(*from) {
                        self.tables.insert((*to).to_owned(), cols);
                    }
                    let moved: Vec<_> = self
                        .checks
                        .keys()
                        .filter(|(t, _)| t == from)
                        .cloned()
                        .collect();
                    for key in moved {
                        if let Some(v) = self.checks.remove(&key) {
                            self.checks.insert(((*to).to_owned(), key.1), v);
                        }
                    }
                }
                [
                    "ALTER",
                    "TABLE",
                    table,
                    "ADD",
                    "CONSTRAINT",
                    _,
                    "CHECK",
                    column,
                    ..,
                ] => {
                    if let Some(values) = check_values(&st) {
                        let column = column.trim_start_matches('(');
                        self.checks
                            .insert(((*table).to_owned(), column.to_owned()), values);
                    }
                }
                ["ALTER", "TABLE", table, "ADD", "COLUMN", column, ..] => {
                    if let Some(values) = check_values(&st) {
                        self.checks
                            .insert(((*table).to_owned(), (*column).to_owned()), values);
                    }
                    self.tables
                        .entry((*table).to_owned())
                        .or_default()
                        .push((*column).to_owned());
                }
                _ => {}
            }
        }
    }

    fn of(folder: &str) -> Schema {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(folder);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "sql"))
            .collect();
        files.sort();
        let mut schema = Schema::default();
        for f in files {
            schema.apply(&std::fs::read_to_string(f).unwrap());
        }
        schema
    }
}

/// Tables only one database needs, and why.
const SQLITE_ONLY: &[(&str, &str)] = &[(
    "id_floors",
    "the highest id deleted per table; PostgreSQL's identity sequences never reuse an id",
)];

#[test]
fn both_databases_have_the_same_tables_and_columns() {
    let (mut sqlite, postgres) = (Schema::of("sqlite"), Schema::of("postgres"));
    assert!(sqlite.tables.len() > 10, "the parser found the tables");
    for (table, _why) in SQLITE_ONLY {
        assert!(sqlite.tables.remove(*table).is_some(), "{table} exists");
    }
    let names = |s: &Schema| s.tables.keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(names(&sqlite), names(&postgres));
    for (table, columns) in &sqlite.tables {
        let mut a = columns.clone();
        let mut b = postgres.tables[table].clone();
        a.sort();
        b.sort();
        assert_eq!(a, b, "columns of {table}");
    }
    assert_eq!(
        sqlite.checks, postgres.checks,
        "the CHECK lists of the two folders"
    );
}

fn spellings<T: std::fmt::Display>(all: &[T]) -> Vec<String> {
    all.iter().map(ToString::to_string).collect()
}

#[test]
fn every_check_list_is_its_enum() {
    let expected: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::from([
        (("staff_users", "role"), spellings(Role::ALL)),
        (("api_tokens", "role"), spellings(Role::ALL)),
        (("accounts", "account_type"), spellings(AccountType::ALL)),
        (("customers", "kind"), spellings(CustomerKind::ALL)),
        (
            ("consent_events", "channel"),
            spellings(ConsentChannel::ALL),
        ),
        (("consent_events", "status"), spellings(ConsentStatus::ALL)),
        (("orders", "channel"), spellings(SalesChannel::ALL)),
        (("orders", "status"), spellings(OrderStatus::ALL)),
        (("interactions", "channel"), spellings(Channel::ALL)),
        (("interactions", "direction"), spellings(Direction::ALL)),
        (("interactions", "kind"), spellings(InteractionKind::ALL)),
        (("change_log", "actor_kind"), spellings(ActorKind::ALL)),
        (("change_log", "source"), spellings(Source::ALL)),
        (("change_log", "entity"), spellings(Entity::ALL)),
        (("change_log", "operation"), spellings(Operation::ALL)),
        (("jobs", "kind"), spellings(JobKind::ALL)),
        (("jobs", "status"), spellings(JobStatus::ALL)),
        (("job_runs", "outcome"), spellings(RunOutcome::ALL)),
        (("customer_lifecycle", "stage"), spellings(Stage::ALL)),
        (
            ("customer_lifecycle", "computed_stage"),
            spellings(Stage::ALL),
        ),
        (
            ("customer_lifecycle", "override_stage"),
            spellings(Stage::ALL),
        ),
        (
            ("customer_lifecycle", "loss_reason"),
            spellings(LossReason::ALL),
        ),
        (
            ("customer_lifecycle", "loss_reason_source"),
            spellings(LossReasonSource::ALL),
        ),
        (("stage_transitions", "from_stage"), spellings(Stage::ALL)),
        (("stage_transitions", "to_stage"), spellings(Stage::ALL)),
        (
            ("stage_transitions", "reason"),
            spellings(TransitionReason::ALL),
        ),
        (
            ("stage_transitions", "loss_reason"),
            spellings(LossReason::ALL),
        ),
        (
            ("customer_rfm", "segment"),
            tenure_analytics::rfm::RfmSegment::ALL
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
        ),
        (
            ("segment_history", "change"),
            vec!["entered".to_owned(), "left".to_owned()],
        ),
        (("loyalty_entries", "kind"), spellings(EntryKind::ALL)),
        (("loyalty_entries", "bucket"), spellings(Bucket::ALL)),
        (("loyalty_entries", "bonus"), spellings(BonusEvent::ALL)),
        (
            ("loyalty_tier_changes", "reason"),
            spellings(TierReason::ALL),
        ),
        (
            ("coupon_campaigns", "discount_kind"),
            spellings(DiscountKind::ALL),
        ),
        (("tickets", "category"), spellings(TicketCategory::ALL)),
        (("tickets", "priority"), spellings(TicketPriority::ALL)),
        (("tickets", "channel"), spellings(Channel::ALL)),
        (("tickets", "status"), spellings(TicketStatus::ALL)),
        (("ticket_messages", "kind"), spellings(MessageKind::ALL)),
        (
            ("ticket_events", "from_status"),
            spellings(TicketStatus::ALL),
        ),
        (("ticket_events", "to_status"), spellings(TicketStatus::ALL)),
        (("tasks", "status"), spellings(TaskStatus::ALL)),
        (("tasks", "source"), spellings(TaskSource::ALL)),
        (("surveys", "kind"), spellings(SurveyKind::ALL)),
        (("survey_responses", "kind"), spellings(SurveyKind::ALL)),
        (("survey_responses", "channel"), spellings(Channel::ALL)),
        (("survey_responses", "nps_group"), spellings(NpsGroup::ALL)),
        (("customer_feedback", "nps_group"), spellings(NpsGroup::ALL)),
        (
            ("customer_feedback", "last_category"),
            spellings(TicketCategory::ALL),
        ),
        (
            ("journey_enrollments", "status"),
            spellings(tenure_domain::journey::EnrollmentStatus::ALL),
        ),
        (
            ("message_templates", "channel"),
            spellings(tenure_domain::journey::Channel::ALL),
        ),
        (
            ("messages", "channel"),
            spellings(tenure_domain::journey::Channel::ALL),
        ),
        (
            ("messages", "class"),
            spellings(tenure_domain::journey::MessageClass::ALL),
        ),
        (
            ("messages", "status"),
            spellings(tenure_domain::journey::MessageStatus::ALL),
        ),
        (
            ("messages", "reason"),
            spellings(tenure_domain::journey::SkipReason::ALL),
        ),
        (
            ("webhook_deliveries", "status"),
            spellings(tenure_domain::webhook::DeliveryStatus::ALL),
        ),
    ]);
    for folder in ["sqlite", "postgres"] {
        let schema = Schema::of(folder);
        for ((table, column), values) in &schema.checks {
            let want = expected
                .get(&(table.as_str(), column.as_str()))
                .unwrap_or_else(|| {
                    panic!("{folder}: {table}.{column} has a CHECK list no enum is mapped to here")
                });
            assert_eq!(values, want, "{folder}: {table}.{column}");
        }
        assert_eq!(
            schema.checks.len(),
            expected.len(),
            "{folder}: every enum is checked"
        );
    }
}

#[test]
fn the_registry_knows_every_table_with_customer_rows() {
    let schema = Schema::of("sqlite");
    let registered: BTreeSet<&str> = crate::registry::CUSTOMER_TABLES
        .iter()
        .map(|t| t.name)
        .collect();
    for (table, columns) in &schema.tables {
        if columns.iter().any(|c| c == "customer_id") {
            assert!(
                registered.contains(table.as_str()),
                "{table} has a customer_id column but is not in registry::CUSTOMER_TABLES"
            );
        }
    }
    for t in crate::registry::CUSTOMER_TABLES {
        let columns = &schema.tables[t.name];
        for c in t.columns.iter().chain(t.personal) {
            assert!(
                columns.iter().any(|x| x == c),
                "{}.{c} does not exist",
                t.name
            );
        }
    }
}

/// The `[dependencies]` section of a crate's manifest.
fn dependencies(krate: &str) -> String {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("Cargo.toml");
    let text = std::fs::read_to_string(manifest).unwrap();
    let start = text.find("[dependencies]").unwrap();
    let rest = &text[start + "[dependencies]".len()..];
    rest[..rest.find("\n[").unwrap_or(rest.len())].to_owned()
}

#[test]
fn interfaces_reach_the_store_only_through_the_application_layer() {
    for krate in ["tenure-http", "tenure-web", "tenure"] {
        let deps = dependencies(krate);
        assert!(
            deps.contains("tenure-app"),
            "{krate} uses the application layer"
        );
        assert!(
            !deps.contains("tenure-store"),
            "{krate} must not depend on the store: interfaces call tenure-app"
        );
    }
}
