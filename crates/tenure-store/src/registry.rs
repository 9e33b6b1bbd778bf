//! The registry of customer-owned tables: every table that holds rows of a customer, the
//! column(s) naming the customer, what a merge and a delete do with its rows, and which of
//! its columns hold personal data. Deleting a customer, merging two and (next) erasing one
//! walk this list, so a new table that holds customer data is added here once and every
//! one of them handles it. A test checks that every table with a customer column of the
//! schema is listed.

/// What a table's rows are to the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// The customer row itself (`customers.id`).
    Root,
    /// The customer's own history: moved row by row to the survivor in a merge (and back in
    /// an undo), deleted with the customer.
    Owned,
    /// Rows that follow a parent row (`parent`, joined on `key`) in a merge: order lines go
    /// with their order.
    Child {
        parent: &'static str,
        key: &'static str,
    },
    /// Derived from the customer's profile or history (search terms, aggregates, model
    /// output): recomputed after a merge, deleted with the customer.
    Derived,
    /// Records about the customer (merge records, aliases): deleted with the customer,
    /// since they hold their profile or point at their id; a merge keeps them (they are
    /// what an undo needs, and aliases move to the survivor).
    Record,
    /// The change log: kept when the customer goes, so the history of what was done stays;
    /// the personal values it holds (the fields a change set) are cleared.
    Log,
}

/// One table holding customer rows.
#[derive(Debug, Clone, Copy)]
pub struct CustomerTable {
    pub name: &'static str,
    /// The columns naming the customer; a row belongs to the customer when any of them does.
    pub columns: &'static [&'static str],
    pub ownership: Ownership,
    /// Columns with personal data, for erasure and for the no-trace check.
    pub personal: &'static [&'static str],
}

/// Every table with customer rows, parents before children.
pub const CUSTOMER_TABLES: &[CustomerTable] = &[
    CustomerTable {
        name: "customers",
        columns: &["id"],
        ownership: Ownership::Root,
        personal: &[
            "external_id",
            "name",
            "email",
            "phone",
            "birthday",
            "region",
            "tags",
            "contact_points",
            "preferences",
            "custom_fields",
            "consents",
        ],
    },
    CustomerTable {
        name: "orders",
        columns: &["customer_id"],
        ownership: Ownership::Owned,
        personal: &[],
    },
    CustomerTable {
        name: "order_lines",
        columns: &["customer_id"],
        ownership: Ownership::Child {
            parent: "orders",
            key: "order_id",
        },
        personal: &["description"],
    },
    CustomerTable {
        name: "interactions",
        columns: &["customer_id"],
        ownership: Ownership::Owned,
        personal: &["subject", "body"],
    },
    CustomerTable {
        name: "consent_events",
        columns: &["customer_id"],
        ownership: Ownership::Owned,
        personal: &["source"],
    },
    CustomerTable {
        name: "customer_tags",
        columns: &["customer_id"],
        ownership: Ownership::Derived,
        personal: &["tag"],
    },
    CustomerTable {
        name: "customer_search_terms",
        columns: &["customer_id"],
        ownership: Ownership::Derived,
        personal: &["term"],
    },
    CustomerTable {
        name: "first_load_terms",
        columns: &["customer_id"],
        ownership: Ownership::Derived,
        personal: &["term"],
    },
    CustomerTable {
        name: "customer_stats",
        columns: &["customer_id"],
        ownership: Ownership::Derived,
        personal: &[],
    },
    CustomerTable {
        name: "customer_predictions",
        columns: &["customer_id"],
        ownership: Ownership::Derived,
        personal: &[],
    },
    CustomerTable {
        name: "customer_lifecycle",
        columns: &["customer_id"],
        ownership: Ownership::Derived,
        personal: &["override_note"],
    },
    CustomerTable {
        name: "stage_transitions",
        columns: &["customer_id"],
        ownership: Ownership::Owned,
        personal: &["detail"],
    },
    CustomerTable {
        name: "loyalty_entries",
        columns: &["customer_id"],
        ownership: Ownership::Owned,
        personal: &["reason"],
    },
    CustomerTable {
        name: "loyalty_lots",
        columns: &["customer_id"],
        ownership: Ownership::Owned,
        personal: &[],
    },
    CustomerTable {
        name: "loyalty_tier_changes",
        columns: &["customer_id"],
        ownership: Ownership::Owned,
        personal: &[],
    },
    CustomerTable {
        name: "coupon_uses",
        columns: &["customer_id"],
        ownership: Ownership::Owned,
        personal: &[],
    },
    CustomerTable {
        name: "tickets",
        columns: &["customer_id"],
        ownership: Ownership::Owned,
        personal: &["subject"],
    },
    CustomerTable {
        name: "ticket_messages",
        columns: &["customer_id"],
        ownership: Ownership::Owned,
        personal: &["body", "attachments"],
    },
    CustomerTable {
        name: "ticket_events",
        columns: &["customer_id"],
        ownership: Ownership::Owned,
        personal: &[],
    },
    CustomerTable {
        name: "tasks",
        columns: &["customer_id"],
        ownership: Ownership::Owned,
        personal: &["title", "note"],
    },
    CustomerTable {
        name: "survey_invitations",
        columns: &["customer_id"],
        ownership: Ownership::Owned,
        personal: &[],
    },
    CustomerTable {
        name: "survey_responses",
        columns: &["customer_id"],
        ownership: Ownership::Owned,
        personal: &["comment"],
    },
    CustomerTable {
        name: "survey_answers",
        columns: &["customer_id"],
        ownership: Ownership::Child {
            parent: "survey_responses",
            key: "response_id",
        },
        personal: &["text"],
    },
    CustomerTable {
        name: "messages",
        columns: &["customer_id"],
        ownership: Ownership::Owned,
        personal: &["address", "subject", "body_text", "body_html"],
    },
    // Who went through which journey for which occasion: kept by each customer in a merge
    // (one occasion enrols once, so two customers' rows cannot be joined).
    CustomerTable {
        name: "journey_enrollments",
        columns: &["customer_id"],
        ownership: Ownership::Record,
        personal: &[],
    },
    // Recomputed from the moved tickets and answers after a merge (the service handler).
    CustomerTable {
        name: "customer_feedback",
        columns: &["customer_id"],
        ownership: Ownership::Derived,
        personal: &[],
    },
    // Balances are recomputed from the moved ledger after a merge (the application's
    // loyalty handler); the referral code and tier stay with each account.
    CustomerTable {
        name: "loyalty_accounts",
        columns: &["customer_id"],
        ownership: Ownership::Derived,
        personal: &["referral_code"],
    },
    CustomerTable {
        name: "customer_rfm",
        columns: &["customer_id"],
        ownership: Ownership::Derived,
        personal: &[],
    },
    CustomerTable {
        name: "segment_members",
        columns: &["customer_id"],
        ownership: Ownership::Derived,
        personal: &[],
    },
    CustomerTable {
        name: "segment_history",
        columns: &["customer_id"],
        ownership: Ownership::Derived,
        personal: &[],
    },
    CustomerTable {
        name: "customer_merges",
        columns: &["survivor_id", "merged_id"],
        ownership: Ownership::Record,
        personal: &[
            "merged_external_id",
            "survivor_before",
            "survivor_after",
            "merged_profile",
        ],
    },
    CustomerTable {
        name: "customer_aliases",
        columns: &["customer_id"],
        ownership: Ownership::Record,
        personal: &["external_id"],
    },
    CustomerTable {
        name: "duplicate_pairs",
        columns: &["a_id", "b_id"],
        ownership: Ownership::Derived,
        personal: &[],
    },
    // What the audit log last saw of each record, to compare the next change with.
    CustomerTable {
        name: "audit_snapshots",
        columns: &["customer_id"],
        ownership: Ownership::Derived,
        personal: &["state"],
    },
    CustomerTable {
        name: "change_log",
        columns: &["customer_id"],
        ownership: Ownership::Log,
        personal: &["fields"],
    },
];

impl CustomerTable {
    /// The statement deleting this table's rows of customer `$1`; `None` for the customer
    /// row itself and for the change log, and for records when `keep_records` (a merge).
    /// Built from the registry's constant names only.
    pub(crate) fn delete_sql(&self, keep_records: bool) -> Option<String> {
        match self.ownership {
            Ownership::Root | Ownership::Log => None,
            Ownership::Record if keep_records => None,
            _ => {
                let condition: Vec<String> =
                    self.columns.iter().map(|c| format!("{c} = $1")).collect();
                Some(format!(
                    "DELETE FROM {} WHERE {}",
                    self.name,
                    condition.join(" OR ")
                ))
            }
        }
    }
}

/// The tables whose rows move to the survivor in a merge, one by one.
pub fn owned_tables() -> impl Iterator<Item = &'static CustomerTable> {
    CUSTOMER_TABLES
        .iter()
        .filter(|t| t.ownership == Ownership::Owned)
}

/// The tables whose rows follow a moved parent.
pub fn child_tables() -> impl Iterator<Item = &'static CustomerTable> {
    CUSTOMER_TABLES
        .iter()
        .filter(|t| matches!(t.ownership, Ownership::Child { .. }))
}
