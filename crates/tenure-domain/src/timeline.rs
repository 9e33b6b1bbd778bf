//! The customer timeline: what kinds of event it shows and how its cursor orders them.

use crate::text_enum;

text_enum! {
    /// The kind of an entry on a customer's timeline.
    pub enum TimelineKind {
        Order => "order",
        Interaction => "interaction",
        Prediction => "prediction",
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

impl TimelinePosition {
    /// An opaque text form for a cursor.
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.at_micros, self.kind.as_str(), self.id)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let mut it = s.splitn(3, '.');
        let at_micros = it.next()?.parse().ok()?;
        let kind = it.next()?.parse().ok()?;
        let id = it.next()?.parse().ok()?;
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

    #[test]
    fn positions_round_trip_and_reject_garbage() {
        let p = TimelinePosition {
            at_micros: -5,
            kind: TimelineKind::Interaction,
            id: 42,
        };
        assert_eq!(TimelinePosition::decode(&p.encode()), Some(p));
        assert_eq!(TimelinePosition::decode("x.order.1"), None);
        assert_eq!(TimelinePosition::decode("1.nope.1"), None);
        assert_eq!(TimelinePosition::decode(""), None);
    }
}
