//! Interactions: every contact with a customer, on any channel.

use chrono::{DateTime, Utc};

use crate::customer::{Channel, Direction, InteractionKind};
use crate::ids::{CustomerId, InteractionId, StaffUserId};
use crate::validation::{Collector, InputContext};

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

/// An interaction as given (a JSON body, a CSV row, a form), before it is checked.
#[derive(Debug, Clone)]
pub struct InteractionInput {
    pub external_id: Option<String>,
    pub channel: Channel,
    pub direction: Direction,
    /// A note when left out.
    pub kind: Option<InteractionKind>,
    pub subject: String,
    pub body: String,
    pub staff_user_id: Option<i64>,
    pub buying_signal: bool,
    /// Now when left out.
    pub occurred_at: Option<DateTime<Utc>>,
}

/// A checked interaction, not yet tied to a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InteractionFields {
    pub external_id: Option<String>,
    pub channel: Channel,
    pub direction: Direction,
    pub kind: InteractionKind,
    pub subject: String,
    pub body: String,
    pub staff_user_id: Option<StaffUserId>,
    pub buying_signal: bool,
    pub occurred_at: DateTime<Utc>,
}

impl InteractionFields {
    pub fn for_customer(self, customer_id: CustomerId) -> InteractionData {
        InteractionData {
            external_id: self.external_id,
            customer_id,
            channel: self.channel,
            direction: self.direction,
            kind: self.kind,
            subject: self.subject,
            body: self.body,
            staff_user_id: self.staff_user_id,
            buying_signal: self.buying_signal,
            occurred_at: self.occurred_at,
        }
    }
}

fn subject(s: &str) -> Result<String, String> {
    crate::validation::text(s, SUBJECT_MAX, false)
}

fn body(s: &str) -> Result<String, String> {
    crate::validation::text(s, BODY_MAX, true)
}

impl InteractionInput {
    pub fn parse(self, c: &mut Collector, ctx: &InputContext<'_>) -> Option<InteractionFields> {
        let external_id = c.check_opt("external_id", self.external_id, |x| {
            crate::validation::external_id(&x)
        });
        let staff_user_id = c.check_opt(
            "staff_user_id",
            self.staff_user_id,
            crate::validation::positive_id,
        );
        let subject = c.check("subject", subject(&self.subject));
        let body = c.check("body", body(&self.body));
        let occurred_at = self.occurred_at.unwrap_or(ctx.now);
        ctx.not_future(c, "occurred_at", occurred_at);
        if !c.is_clean() {
            return None;
        }
        Some(InteractionFields {
            external_id,
            channel: self.channel,
            direction: self.direction,
            kind: self.kind.unwrap_or(InteractionKind::Note),
            subject: subject?,
            body: body?,
            staff_user_id: staff_user_id.map(StaffUserId),
            buying_signal: self.buying_signal,
            occurred_at,
        })
    }
}

/// A change to an interaction: fields left out stay.
#[derive(Debug, Clone, Default)]
pub struct InteractionPatch {
    pub channel: Option<Channel>,
    pub direction: Option<Direction>,
    pub kind: Option<InteractionKind>,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub staff_user_id: Option<Option<i64>>,
    pub buying_signal: Option<bool>,
    pub occurred_at: Option<DateTime<Utc>>,
}

impl InteractionPatch {
    pub fn apply(
        self,
        d: &mut InteractionData,
        ctx: &InputContext<'_>,
    ) -> Result<(), crate::Invalid> {
        let mut c = Collector::new();
        if let Some(v) = self.channel {
            d.channel = v;
        }
        if let Some(v) = self.direction {
            d.direction = v;
        }
        if let Some(v) = self.kind {
            d.kind = v;
        }
        if let Some(v) = c.check_opt("subject", self.subject, |s| subject(&s)) {
            d.subject = v;
        }
        if let Some(v) = c.check_opt("body", self.body, |s| body(&s)) {
            d.body = v;
        }
        match self.staff_user_id {
            Some(Some(s)) => {
                if let Some(s) = c.check("staff_user_id", crate::validation::positive_id(s)) {
                    d.staff_user_id = Some(StaffUserId(s));
                }
            }
            Some(None) => d.staff_user_id = None,
            None => {}
        }
        if let Some(v) = self.buying_signal {
            d.buying_signal = v;
        }
        if let Some(at) = self.occurred_at {
            ctx.not_future(&mut c, "occurred_at", at);
            d.occurred_at = at;
        }
        c.finish()
    }
}
