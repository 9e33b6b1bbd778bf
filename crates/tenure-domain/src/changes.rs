//! Who changes what: the acting user or token, the interface a change came through, the
//! domain events a write emits, and the change-log entry each event leaves.
//!
//! Every use case runs as an [`Actor`]; every write it makes emits [`Event`]s, which the
//! application layer hands to its registered handlers inside the same transaction. The
//! change log is one such handler: one [`Change`] per event.

use crate::access::{Permission, Principal, Role};
use crate::ids::{
    AccountId, CampaignId, CategoryId, CustomerId, InteractionId, InvitationId, JobId, MergeId,
    OrderId, ProductId, ResponseId, RewardId, SegmentId, StaffUserId, SurveyId, TaskId, TicketId,
    TokenId, WebhookId,
};
use crate::text_enum;

text_enum! {
    schema = ActorKind;
    /// What kind of party acts.
    pub enum ActorKind {
        /// An API token.
        Token => "token",
        /// A staff member signed in.
        User => "user",
        /// Someone at the command line of the server.
        Cli => "cli",
        /// Tenure itself: scheduled jobs.
        System => "system",
    }
}

text_enum! {
    schema = ChangeSource;
    /// The interface a change came through.
    pub enum Source {
        Api => "api",
        Web => "web",
        Cli => "cli",
        Import => "import",
        Job => "job",
    }
}

/// Who acts, through which interface, with which role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    /// The token's or user's id, when there is one.
    pub id: Option<i64>,
    pub name: String,
    pub role: Role,
    pub source: Source,
}

impl Actor {
    /// The holder of an API token, or a signed-in user, calling through `source`.
    pub fn from_principal(p: &Principal, source: Source) -> Actor {
        match p.token_id {
            Some(t) => Actor {
                kind: ActorKind::Token,
                id: Some(t.0),
                name: p.name.clone(),
                role: p.role,
                source,
            },
            None => Actor {
                kind: ActorKind::User,
                id: None,
                name: p.name.clone(),
                role: p.role,
                source,
            },
        }
    }

    /// The operator at the command line: the server's own administrator.
    pub fn cli(name: impl Into<String>) -> Actor {
        Actor {
            kind: ActorKind::Cli,
            id: None,
            name: name.into(),
            role: Role::Admin,
            source: Source::Cli,
        }
    }

    /// Tenure's own scheduled work.
    pub fn system() -> Actor {
        Actor {
            kind: ActorKind::System,
            id: None,
            name: "worker".into(),
            role: Role::Admin,
            source: Source::Job,
        }
    }

    /// The same actor, calling through another interface (an import run from the CLI).
    pub fn via(&self, source: Source) -> Actor {
        Actor {
            source,
            ..self.clone()
        }
    }

    pub fn allows(&self, p: Permission) -> bool {
        self.role.allows(p)
    }

    /// How records shown to people name the actor: a token's or user's name, `cli:alice`
    /// at the command line, `system:worker` for scheduled work.
    pub fn display_name(&self) -> String {
        match self.kind {
            ActorKind::Token | ActorKind::User => self.name.clone(),
            ActorKind::Cli | ActorKind::System => format!("{}:{}", self.kind, self.name),
        }
    }

    /// An unambiguous reference to the actor for logs: `token:3`, `cli:alice`, `system:worker`.
    pub fn label(&self) -> String {
        match self.id {
            Some(id) => format!("{}:{id}", self.kind),
            None => format!("{}:{}", self.kind, self.name),
        }
    }
}

text_enum! {
    schema = ChangeEntity;
    /// What a change-log entry is about.
    pub enum Entity {
        Customer => "customer",
        Order => "order",
        Interaction => "interaction",
        Account => "account",
        Product => "product",
        Category => "category",
        Merge => "merge",
        User => "user",
        Token => "token",
        Predictions => "predictions",
        Recommendations => "recommendations",
        Aggregates => "aggregates",
        Duplicates => "duplicates",
        Job => "job",
        Segment => "segment",
        Settings => "settings",
        Lifecycle => "lifecycle",
        Analytics => "analytics",
        Loyalty => "loyalty",
        Reward => "reward",
        Coupon => "coupon",
        Ticket => "ticket",
        Task => "task",
        Survey => "survey",
        Webhook => "webhook",
    }
}

text_enum! {
    schema = ChangeOperation;
    /// What happened to it.
    pub enum Operation {
        Create => "create",
        Update => "update",
        Delete => "delete",
        Merge => "merge",
        Undo => "undo",
        Import => "import",
        Revoke => "revoke",
        Rebuild => "rebuild",
        /// A customer's personal data was erased on request.
        Erase => "erase",
        /// Everything held about a customer was handed out.
        Export => "export",
    }
}

/// Something a write did, as the rest of the application hears of it. Handlers registered
/// with the application layer (the change log now; points, stages, audit, messages and
/// webhooks next) run for each, inside the write's transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    CustomerCreated {
        customer: CustomerId,
    },
    CustomerUpdated {
        customer: CustomerId,
    },
    CustomerDeleted {
        customer: CustomerId,
    },
    /// The customer's personal data was erased on request; the record and its history stay.
    CustomerErased {
        customer: CustomerId,
    },
    /// Everything held about the customer was handed out on request.
    CustomerExported {
        customer: CustomerId,
    },
    OrderRecorded {
        order: OrderId,
        customer: CustomerId,
    },
    /// `previous_customer` differs from `customer` when the order moved.
    OrderUpdated {
        order: OrderId,
        customer: CustomerId,
        previous_customer: CustomerId,
    },
    OrderDeleted {
        order: OrderId,
        customer: CustomerId,
    },
    InteractionRecorded {
        interaction: InteractionId,
        customer: CustomerId,
    },
    InteractionUpdated {
        interaction: InteractionId,
        customer: CustomerId,
    },
    InteractionDeleted {
        interaction: InteractionId,
        customer: CustomerId,
    },
    CustomersMerged {
        merge: MergeId,
        survivor: CustomerId,
        merged: CustomerId,
    },
    /// `restored` is the id the merged customer came back with.
    MergeUndone {
        merge: MergeId,
        survivor: CustomerId,
        restored: CustomerId,
    },
    AccountCreated {
        account: AccountId,
    },
    AccountUpdated {
        account: AccountId,
    },
    AccountDeleted {
        account: AccountId,
    },
    ProductCreated {
        product: ProductId,
    },
    ProductUpdated {
        product: ProductId,
    },
    CategoryCreated {
        category: CategoryId,
    },
    UserCreated {
        user: StaffUserId,
    },
    TokenCreated {
        token: TokenId,
    },
    TokenRevoked {
        token: TokenId,
    },
    /// The models scored every customer again.
    PredictionsReplaced {
        customers: u64,
    },
    RecommendationsReplaced {
        products: u64,
    },
    AggregatesRebuilt {
        customers: u64,
    },
    DuplicatesRebuilt {
        pairs: u64,
    },
    /// A job was queued by hand.
    JobQueued {
        job: JobId,
    },
    /// Many customers were loaded at once (synthetic data, a bulk load).
    CustomersLoaded {
        customers: u64,
    },
    /// A customer moved to another life-cycle stage.
    StageChanged {
        customer: CustomerId,
    },
    /// Staff changed a customer's manual stage, loss reason or qualification.
    LifecycleEdited {
        customer: CustomerId,
    },
    SegmentCreated {
        segment: SegmentId,
    },
    SegmentUpdated {
        segment: SegmentId,
    },
    SegmentDeleted {
        segment: SegmentId,
    },
    /// A business setting (`name`) was changed.
    SettingsChanged {
        name: &'static str,
    },
    /// The analytics refresh placed, scored and grouped every customer again.
    AnalyticsRefreshed {
        customers: u64,
    },
    /// Points were earned, spent, adjusted or taken back (one event per use case, however
    /// many ledger entries it wrote).
    PointsChanged {
        customer: CustomerId,
    },
    /// A member moved to another tier.
    TierChanged {
        customer: CustomerId,
    },
    /// A customer was linked to the member who referred them.
    ReferralLinked {
        customer: CustomerId,
    },
    RewardCreated {
        reward: RewardId,
    },
    RewardUpdated {
        reward: RewardId,
    },
    CampaignCreated {
        campaign: CampaignId,
    },
    /// A coupon code was used.
    CouponUsed {
        customer: CustomerId,
        campaign: CampaignId,
    },
    /// A scheduled loyalty run (expiry, tiers) changed this many members.
    LoyaltyRun {
        members: u64,
    },
    TicketCreated {
        ticket: TicketId,
        customer: CustomerId,
    },
    /// A ticket's fields, status or messages changed.
    TicketUpdated {
        ticket: TicketId,
        customer: CustomerId,
    },
    TaskCreated {
        task: TaskId,
        customer: Option<CustomerId>,
    },
    TaskUpdated {
        task: TaskId,
        customer: Option<CustomerId>,
    },
    SurveyCreated {
        survey: SurveyId,
    },
    SurveyUpdated {
        survey: SurveyId,
    },
    /// A customer was invited to answer a survey.
    SurveyInvited {
        invitation: InvitationId,
        survey: SurveyId,
        customer: CustomerId,
    },
    /// A survey answer was recorded (by the customer or by staff).
    SurveyAnswered {
        response: ResponseId,
        survey: SurveyId,
        customer: CustomerId,
    },
    WebhookCreated {
        webhook: WebhookId,
    },
    WebhookUpdated {
        webhook: WebhookId,
    },
    WebhookDeleted {
        webhook: WebhookId,
    },
    /// The SLA scan marked this many breaches and queued this many reminders.
    SlaScanned {
        breaches: u64,
        reminders: u64,
    },
}

/// What the change log records of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub entity: Entity,
    pub entity_id: Option<i64>,
    pub operation: Operation,
    /// The customer the change concerns, when it concerns one.
    pub customer_id: Option<CustomerId>,
    /// A small JSON object with counts, for changes to many rows at once.
    pub detail: Option<String>,
}

impl Event {
    /// The customers whose data this event changed (the duplicate candidates and, next,
    /// stages and segments follow them).
    pub fn customers(&self) -> Vec<CustomerId> {
        use Event::*;
        match self {
            CustomerCreated { customer }
            | CustomerUpdated { customer }
            | CustomerDeleted { customer }
            | OrderRecorded { customer, .. }
            | OrderDeleted { customer, .. }
            | InteractionRecorded { customer, .. }
            | InteractionUpdated { customer, .. }
            | InteractionDeleted { customer, .. }
            | StageChanged { customer }
            | LifecycleEdited { customer }
            | PointsChanged { customer }
            | TierChanged { customer }
            | ReferralLinked { customer }
            | CouponUsed { customer, .. }
            | SurveyAnswered { customer, .. } => vec![*customer],
            OrderUpdated {
                customer,
                previous_customer,
                ..
            } if customer != previous_customer => vec![*previous_customer, *customer],
            OrderUpdated { customer, .. } => vec![*customer],
            CustomersMerged {
                survivor, merged, ..
            } => vec![*survivor, *merged],
            MergeUndone {
                survivor, restored, ..
            } => vec![*survivor, *restored],
            _ => Vec::new(),
        }
    }

    pub fn change(&self) -> Change {
        use Event::*;
        let change = |entity, id: Option<i64>, operation, customer: Option<CustomerId>| Change {
            entity,
            entity_id: id,
            operation,
            customer_id: customer,
            detail: None,
        };
        let counted = |entity, operation, key: &str, n: u64| Change {
            entity,
            entity_id: None,
            operation,
            customer_id: None,
            detail: Some(format!("{{\"{key}\":{n}}}")),
        };
        match *self {
            CustomerCreated { customer } => change(
                Entity::Customer,
                Some(customer.0),
                Operation::Create,
                Some(customer),
            ),
            CustomerUpdated { customer } => change(
                Entity::Customer,
                Some(customer.0),
                Operation::Update,
                Some(customer),
            ),
            CustomerDeleted { customer } => change(
                Entity::Customer,
                Some(customer.0),
                Operation::Delete,
                Some(customer),
            ),
            WebhookCreated { webhook } => {
                change(Entity::Webhook, Some(webhook.0), Operation::Create, None)
            }
            WebhookUpdated { webhook } => {
                change(Entity::Webhook, Some(webhook.0), Operation::Update, None)
            }
            WebhookDeleted { webhook } => {
                change(Entity::Webhook, Some(webhook.0), Operation::Delete, None)
            }
            CustomerErased { customer } => change(
                Entity::Customer,
                Some(customer.0),
                Operation::Erase,
                Some(customer),
            ),
            CustomerExported { customer } => change(
                Entity::Customer,
                Some(customer.0),
                Operation::Export,
                Some(customer),
            ),
            OrderRecorded { order, customer } => change(
                Entity::Order,
                Some(order.0),
                Operation::Create,
                Some(customer),
            ),
            OrderUpdated {
                order, customer, ..
            } => change(
                Entity::Order,
                Some(order.0),
                Operation::Update,
                Some(customer),
            ),
            OrderDeleted { order, customer } => change(
                Entity::Order,
                Some(order.0),
                Operation::Delete,
                Some(customer),
            ),
            InteractionRecorded {
                interaction,
                customer,
            } => change(
                Entity::Interaction,
                Some(interaction.0),
                Operation::Create,
                Some(customer),
            ),
            InteractionUpdated {
                interaction,
                customer,
            } => change(
                Entity::Interaction,
                Some(interaction.0),
                Operation::Update,
                Some(customer),
            ),
            InteractionDeleted {
                interaction,
                customer,
            } => change(
                Entity::Interaction,
                Some(interaction.0),
                Operation::Delete,
                Some(customer),
            ),
            CustomersMerged {
                merge, survivor, ..
            } => change(
                Entity::Merge,
                Some(merge.0),
                Operation::Merge,
                Some(survivor),
            ),
            MergeUndone {
                merge, survivor, ..
            } => change(
                Entity::Merge,
                Some(merge.0),
                Operation::Undo,
                Some(survivor),
            ),
            AccountCreated { account } => {
                change(Entity::Account, Some(account.0), Operation::Create, None)
            }
            AccountUpdated { account } => {
                change(Entity::Account, Some(account.0), Operation::Update, None)
            }
            AccountDeleted { account } => {
                change(Entity::Account, Some(account.0), Operation::Delete, None)
            }
            ProductCreated { product } => {
                change(Entity::Product, Some(product.0), Operation::Create, None)
            }
            ProductUpdated { product } => {
                change(Entity::Product, Some(product.0), Operation::Update, None)
            }
            CategoryCreated { category } => {
                change(Entity::Category, Some(category.0), Operation::Create, None)
            }
            UserCreated { user } => change(Entity::User, Some(user.0), Operation::Create, None),
            TokenCreated { token } => change(Entity::Token, Some(token.0), Operation::Create, None),
            TokenRevoked { token } => change(Entity::Token, Some(token.0), Operation::Revoke, None),
            PredictionsReplaced { customers } => counted(
                Entity::Predictions,
                Operation::Rebuild,
                "customers",
                customers,
            ),
            RecommendationsReplaced { products } => counted(
                Entity::Recommendations,
                Operation::Rebuild,
                "products",
                products,
            ),
            AggregatesRebuilt { customers } => counted(
                Entity::Aggregates,
                Operation::Rebuild,
                "customers",
                customers,
            ),
            DuplicatesRebuilt { pairs } => {
                counted(Entity::Duplicates, Operation::Rebuild, "pairs", pairs)
            }
            JobQueued { job } => change(Entity::Job, Some(job.0), Operation::Create, None),
            CustomersLoaded { customers } => {
                counted(Entity::Customer, Operation::Import, "inserted", customers)
            }
            StageChanged { customer } => change(
                Entity::Lifecycle,
                Some(customer.0),
                Operation::Update,
                Some(customer),
            ),
            LifecycleEdited { customer } => change(
                Entity::Lifecycle,
                Some(customer.0),
                Operation::Update,
                Some(customer),
            ),
            SegmentCreated { segment } => {
                change(Entity::Segment, Some(segment.0), Operation::Create, None)
            }
            SegmentUpdated { segment } => {
                change(Entity::Segment, Some(segment.0), Operation::Update, None)
            }
            SegmentDeleted { segment } => {
                change(Entity::Segment, Some(segment.0), Operation::Delete, None)
            }
            SettingsChanged { name } => Change {
                entity: Entity::Settings,
                entity_id: None,
                operation: Operation::Update,
                customer_id: None,
                detail: Some(serde_json::json!({ "name": name }).to_string()),
            },
            AnalyticsRefreshed { customers } => counted(
                Entity::Analytics,
                Operation::Rebuild,
                "customers",
                customers,
            ),
            PointsChanged { customer } | ReferralLinked { customer } => change(
                Entity::Loyalty,
                Some(customer.0),
                Operation::Update,
                Some(customer),
            ),
            TierChanged { customer } => change(
                Entity::Loyalty,
                Some(customer.0),
                Operation::Update,
                Some(customer),
            ),
            RewardCreated { reward } => {
                change(Entity::Reward, Some(reward.0), Operation::Create, None)
            }
            RewardUpdated { reward } => {
                change(Entity::Reward, Some(reward.0), Operation::Update, None)
            }
            CampaignCreated { campaign } => {
                change(Entity::Coupon, Some(campaign.0), Operation::Create, None)
            }
            CouponUsed { customer, campaign } => change(
                Entity::Coupon,
                Some(campaign.0),
                Operation::Update,
                Some(customer),
            ),
            LoyaltyRun { members } => {
                counted(Entity::Loyalty, Operation::Rebuild, "members", members)
            }
            TicketCreated { ticket, customer } => change(
                Entity::Ticket,
                Some(ticket.0),
                Operation::Create,
                Some(customer),
            ),
            TicketUpdated { ticket, customer } => change(
                Entity::Ticket,
                Some(ticket.0),
                Operation::Update,
                Some(customer),
            ),
            TaskCreated { task, customer } => {
                change(Entity::Task, Some(task.0), Operation::Create, customer)
            }
            TaskUpdated { task, customer } => {
                change(Entity::Task, Some(task.0), Operation::Update, customer)
            }
            SurveyCreated { survey } => {
                change(Entity::Survey, Some(survey.0), Operation::Create, None)
            }
            SurveyUpdated { survey } => {
                change(Entity::Survey, Some(survey.0), Operation::Update, None)
            }
            SurveyInvited {
                survey, customer, ..
            } => change(
                Entity::Survey,
                Some(survey.0),
                Operation::Create,
                Some(customer),
            ),
            SurveyAnswered {
                response, customer, ..
            } => Change {
                entity: Entity::Survey,
                entity_id: Some(response.0),
                operation: Operation::Import,
                customer_id: Some(customer),
                detail: Some("{\"answered\":1}".into()),
            },
            SlaScanned {
                breaches,
                reminders,
            } => Change {
                entity: Entity::Ticket,
                entity_id: None,
                operation: Operation::Rebuild,
                customer_id: None,
                detail: Some(format!(
                    "{{\"breaches\":{breaches},\"reminders\":{reminders}}}"
                )),
            },
        }
    }
}

/// The change-log entry of an import batch: one per batch, written by the loader in the
/// batch's own transaction (see the store's `load` module).
pub fn import_change(entity: Entity, inserted: u64, skipped: u64, created: u64) -> Change {
    Change {
        entity,
        entity_id: None,
        operation: Operation::Import,
        customer_id: None,
        detail: Some(format!(
            "{{\"inserted\":{inserted},\"skipped\":{skipped},\"created\":{created}}}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_customer_event_names_its_customer() {
        let e = Event::OrderUpdated {
            order: OrderId(3),
            customer: CustomerId(2),
            previous_customer: CustomerId(1),
        };
        assert_eq!(e.customers(), [CustomerId(1), CustomerId(2)]);
        let c = e.change();
        assert_eq!((c.entity, c.operation), (Entity::Order, Operation::Update));
        assert_eq!(c.customer_id, Some(CustomerId(2)));
    }

    #[test]
    fn actors_are_labelled_for_records() {
        let p = Principal {
            token_id: Some(TokenId(3)),
            name: "shop".into(),
            role: Role::Agent,
        };
        assert_eq!(Actor::from_principal(&p, Source::Api).label(), "token:3");
        assert_eq!(Actor::cli("ann").label(), "cli:ann");
        assert!(Actor::system().allows(Permission::ManageUsers));
    }
}
