//! The store's data types the interfaces show, re-exported so that interfaces depend on the
//! application layer alone.

pub use tenure_store::Page;
pub use tenure_store::changes::{ChangeFilter, ChangeRecord};
pub use tenure_store::customers::CustomerFilter;
pub use tenure_store::duplicates::{Candidate, CandidateSide, Merge, Moved};
pub use tenure_store::export::{Cell, ExportKind};
pub use tenure_store::jobs::{Job, JobRun};
pub use tenure_store::journeys::{
    Enrollment, Journey, JourneyCounts, Message, MessageFilter, Template,
};
pub use tenure_store::lifecycle::{LifecycleRecord, Transition};
pub use tenure_store::load::BatchOutcome;
pub use tenure_store::loyalty::{
    Campaign, Coupon, LedgerEntry, LotRow, LoyaltyAccount, Reward, TierChange,
};
pub use tenure_store::recommendations::Recommendation;
pub use tenure_store::segments::{MembershipChange, SegmentRow};
pub use tenure_store::service::{
    AgentRow, BreachRow, CustomerBrief, Feedback, Invitation, OverdueRow, Response, ServqualReport,
    Survey, Task, TaskFilter, Ticket, TicketEvent, TicketFilter, TicketMessage,
};
pub use tenure_store::timeline::TimelineEntry;
pub use tenure_store::users::TokenInfo;
pub use tenure_store::web::StoredFit;

pub use crate::users::NewToken;
pub use tenure_store::webhooks::{Delivery as WebhookDelivery, Endpoint as WebhookEndpoint};
