//! The customer timeline: what kinds of event it shows and how its cursor orders them.

use crate::text_enum;

text_enum! {
    /// The kind of an entry on a customer's timeline.
    pub enum TimelineKind {
        Order => "order",
        Interaction => "interaction",
        Prediction => "prediction",
        /// A move between life-cycle stages.
        Stage => "stage",
        /// An entry of the loyalty ledger.
        Loyalty => "loyalty",
        /// A change of loyalty tier.
        Tier => "tier",
        /// A service ticket opened.
        Ticket => "ticket",
        /// A follow-up task.
        Task => "task",
        /// A survey answer.
        Survey => "survey",
        /// A message of a journey, with its status.
        Message => "message",
    }
}

/// A position in a timeline read newest first: entries strictly older than this one come
/// next. Ties on time are broken by kind, then id, so paging never skips or repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimelinePosition {
    pub at_micros: i64,
    pub kind: TimelineKind,
    pub id: i64,
}

impl crate::cursor::CursorKey for TimelinePosition {
    const TAG: &'static str = "timeline";
    type Parts = (i64, TimelineKind, i64);

    fn to_parts(&self) -> Self::Parts {
        (self.at_micros, self.kind, self.id)
    }

    fn from_parts((at_micros, kind, id): Self::Parts) -> Option<Self> {
        Some(Self {
            at_micros,
            kind,
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cursor::{decode, encode};

    #[test]
    fn positions_round_trip_and_reject_garbage() {
        let p = TimelinePosition {
            at_micros: -5,
            kind: TimelineKind::Interaction,
            id: 42,
        };
        assert_eq!(decode::<TimelinePosition>(&encode(&p)), Ok(p));
        assert!(decode::<TimelinePosition>("x.order.1").is_err());
        assert!(decode::<TimelinePosition>("").is_err());
    }
}
