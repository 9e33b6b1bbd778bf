//! Authentication by bearer token and the permission check, done by extractors before any
//! body is read: a caller without the right role learns nothing about the input.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use tenure_domain::access::{Permission, Principal};
use tenure_domain::changes::{Actor, Source};

use crate::{ApiError, AppState};

/// How long a resolved token is trusted before the database is asked again: a token
/// revoked elsewhere (another server, the command line) stops working within this time.
pub const TOKEN_TTL: Duration = Duration::from_secs(30);
/// Unknown tokens are remembered briefly too, so guessing costs no database reads.
const UNKNOWN_TTL: Duration = Duration::from_secs(5);
const CACHE_MAX: usize = 10_000;

/// Tokens recently resolved, keyed by the token's hash.
pub struct TokenCache {
    ttl: Duration,
    entries: RwLock<HashMap<String, (Option<Principal>, Instant)>>,
}

impl TokenCache {
    pub fn new(ttl: Duration) -> Self {
        TokenCache {
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    async fn resolve(&self, state: &AppState, token: &str) -> Result<Option<Principal>, ApiError> {
        let key = tenure_app::App::token_key(token);
        if let Ok(map) = self.entries.read()
            && let Some((p, at)) = map.get(&key)
        {
            let ttl = if p.is_some() {
                self.ttl
            } else {
                UNKNOWN_TTL.min(self.ttl)
            };
            if at.elapsed() < ttl {
                return Ok(p.clone());
            }
        }
        let principal = state.app.authenticate_token(token).await?;
        if let Ok(mut map) = self.entries.write() {
            if map.len() >= CACHE_MAX {
                map.clear();
            }
            map.insert(key, (principal.clone(), Instant::now()));
        }
        Ok(principal)
    }

    /// Forgets every cached token (after a revocation in this process).
    pub fn clear(&self) {
        if let Ok(mut map) = self.entries.write() {
            map.clear();
        }
    }
}

/// A permission as a type, so a handler states what it needs in its signature.
pub trait Needs: Send + Sync + 'static {
    const PERMISSION: Permission;
}

macro_rules! needs {
    ($($name:ident => $p:ident),+ $(,)?) => {$(
        pub struct $name;
        impl Needs for $name {
            const PERMISSION: Permission = Permission::$p;
        }
    )+};
}

needs! {
    ReadCustomers => ReadCustomers,
    ReadAggregates => ReadAggregates,
    WriteCustomers => WriteCustomers,
    DeleteCustomers => DeleteCustomers,
    WriteCatalog => WriteCatalog,
    ManageUsers => ManageUsers,
    ReadAudit => ReadAudit,
    Privacy => Privacy,
}

/// The caller, known to hold permission `P`, as the actor of what it asks for.
pub struct Authorized<P: Needs> {
    pub actor: Actor,
    _p: PhantomData<P>,
}

impl<P: Needs> FromRequestParts<AppState> for Authorized<P> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or(ApiError::Unauthorized(
                "send an API token as Authorization: Bearer <token>",
            ))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or(ApiError::Unauthorized(
                "the Authorization header must be Bearer <token>",
            ))?;
        let principal = state
            .tokens
            .resolve(state, token)
            .await?
            .ok_or(ApiError::Unauthorized("the token is unknown or revoked"))?;
        if !principal.role.allows(P::PERMISSION) {
            return Err(ApiError::Forbidden(format!(
                "the {} role may not do this",
                principal.role
            )));
        }
        Ok(Authorized {
            actor: Actor::from_principal(&principal, Source::Api),
            _p: PhantomData,
        })
    }
}
