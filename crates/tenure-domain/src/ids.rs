//! One newtype per identifier, so a customer id can never be passed where an order id is
//! expected.

macro_rules! id_type {
    ($($(#[$meta:meta])* $name:ident),+ $(,)?) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    )+};
}

id_type!(
    /// A customer: a person or an organisation.
    CustomerId,
    /// An endpoint outgoing webhooks go to.
    WebhookId,
    /// One delivery of an event to a webhook endpoint.
    DeliveryId,
    /// An account grouping customers (a company, a distributor, ...).
    AccountId,
    /// A product of the catalogue.
    ProductId,
    /// A product category.
    CategoryId,
    /// An order (a purchase).
    OrderId,
    /// An interaction on any channel.
    InteractionId,
    /// A staff member.
    StaffUserId,
    /// An API token.
    TokenId,
    /// A recorded merge of two customers.
    MergeId,
    /// A job of the durable queue.
    JobId,
    /// A customer segment.
    SegmentId,
    /// An entry of the loyalty ledger.
    EntryId,
    /// A reward of the loyalty catalogue.
    RewardId,
    /// A coupon campaign.
    CampaignId,
    /// A coupon code of a campaign.
    CouponId,
    /// A service ticket (complaint, question, request).
    TicketId,
    /// A message or internal note on a ticket.
    TicketMessageId,
    /// A follow-up task.
    TaskId,
    /// A survey (CSAT, NPS, SERVQUAL or custom).
    SurveyId,
    /// An invitation to answer a survey (its single-use link).
    InvitationId,
    /// A recorded survey answer.
    ResponseId,
    /// A journey (welcome, birthday, win-back, ...).
    JourneyId,
    /// A customer's way through a journey for one occasion.
    EnrollmentId,
    /// A message of the outbox.
    MessageId,
    /// A message template in one channel and language.
    TemplateId,
);
