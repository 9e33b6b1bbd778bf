//! One cursor codec for every list: a position in a list is written as a small JSON array
//! tagged with the list it belongs to, then base64url-encoded, so cursors are opaque to
//! clients and a cursor of one list is refused by another.

use base64::Engine;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A position in some list, as its cursor holds it.
pub trait CursorKey: Sized {
    /// Names the list; a cursor with another tag is refused.
    const TAG: &'static str;
    /// The position's parts, in the order `decode` reads them.
    type Parts: Serialize + DeserializeOwned;

    fn to_parts(&self) -> Self::Parts;
    /// `None` when the parts do not describe a position (a negative id, ...).
    fn from_parts(parts: Self::Parts) -> Option<Self>;
}

/// The cursor of `key`.
pub fn encode<K: CursorKey>(key: &K) -> String {
    let json = serde_json::to_string(&(K::TAG, key.to_parts())).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// The position a cursor holds; an error message a client can act on when it is not a
/// cursor of this list.
pub fn decode<K: CursorKey>(cursor: &str) -> Result<K, String> {
    let bad = || "not a cursor returned by this list".to_owned();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| bad())?;
    let (tag, parts): (String, K::Parts) = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if tag != K::TAG {
        return Err(bad());
    }
    K::from_parts(parts).ok_or_else(bad)
}

/// Lists in id order: the last id of a page.
macro_rules! id_cursor {
    ($($ty:ty => $tag:literal),+ $(,)?) => {$(
        impl CursorKey for $ty {
            const TAG: &'static str = $tag;
            type Parts = i64;
            fn to_parts(&self) -> i64 {
                self.0
            }
            fn from_parts(id: i64) -> Option<Self> {
                (id > 0).then_some(Self(id))
            }
        }
    )+};
}

use crate::ids::{
    AccountId, CouponId, CustomerId, EntryId, InteractionId, JobId, MergeId, MessageId, OrderId,
    ProductId, TokenId,
};

id_cursor! {
    CustomerId => "customers",
    AccountId => "accounts",
    ProductId => "products",
    OrderId => "orders",
    InteractionId => "interactions",
    TokenId => "tokens",
    MergeId => "merges",
    JobId => "jobs",
    EntryId => "ledger",
    CouponId => "coupons",
    MessageId => "messages",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_belong_to_their_list() {
        let c = encode(&CustomerId(42));
        assert_eq!(decode::<CustomerId>(&c), Ok(CustomerId(42)));
        assert!(
            decode::<OrderId>(&c).is_err(),
            "a customer cursor is not an order cursor"
        );
        assert!(decode::<CustomerId>("garbage!").is_err());
        assert!(decode::<CustomerId>(&encode(&OrderId(-1))).is_err());
        assert!(decode::<CustomerId>("").is_err());
    }
}
