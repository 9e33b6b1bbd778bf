//! Interactions: every contact with a customer, on any channel.

use chrono::{DateTime, Utc};

use crate::customer::{Channel, Direction, InteractionKind};
use crate::ids::{CustomerId, InteractionId, StaffUserId};

/// Longest interaction subject, in characters.
pub const SUBJECT_MAX: usize = 500;
/// Longest interaction body, in characters.
pub const BODY_MAX: usize = 20_000;

/// The writable fields of an interaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InteractionData {
    pub external_id: Option<String>,
    pub customer_id: CustomerId,
    pub channel: Channel,
    pub direction: Direction,
    pub kind: InteractionKind,
    pub subject: String,
    pub body: String,
    pub staff_user_id: Option<StaffUserId>,
    /// The customer showed intent to buy (asked for a price, a demo, a quote ...).
    pub buying_signal: bool,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction {
    pub id: InteractionId,
    pub data: InteractionData,
    pub created_at: DateTime<Utc>,
}
