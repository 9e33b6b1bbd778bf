//! Staff users and API tokens: creating them, listing tokens, revoking and authenticating
//! them.

use tenure_domain::access::{Permission, Principal, Role, StaffUser};
use tenure_domain::changes::{Actor, Event};
use tenure_domain::customer::parse_email;
use tenure_domain::ids::TokenId;
use tenure_domain::validation::{Collector, text};
use tenure_store::users::TokenInfo;

use crate::{App, AppError, AppResult, password, require};

/// A new API token: 256 random bits, hex, with a prefix that says what it is.
fn new_token() -> String {
    format!("tnr_{}", crate::random_hex(32))
}

/// A token just made: its id and the token itself, which is shown this once.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: TokenId,
    pub token: String,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Longest token name accepted, in characters.
pub const TOKEN_NAME_MAX: usize = 200;
/// The longest a token may be made valid for: ten years.
pub const TOKEN_DAYS_MAX: u32 = 3650;

impl App {
    /// Creates a staff user; without a password the user works only through tokens.
    pub async fn create_user(
        &self,
        actor: &Actor,
        email: &str,
        name: &str,
        role: Role,
        password: Option<&str>,
    ) -> AppResult<StaffUser> {
        require(actor, Permission::ManageUsers)?;
        let mut c = Collector::new();
        let email = c.check("email", parse_email(email));
        let name = c.check("name", text(name, 200, false));
        if let Some(why) =
            password.and_then(|p| password::weakness(p, email.as_deref().unwrap_or_default()))
        {
            c.push("password", why);
        }
        c.finish()?;
        let hash = password
            .map(password::hash)
            .transpose()
            .map_err(AppError::Internal)?;
        let mut uow = self.begin(actor).await?;
        let user = uow
            .tx
            .create_user(
                &email.unwrap_or_default(),
                &name.unwrap_or_default(),
                role,
                hash.as_deref(),
            )
            .await?;
        uow.emit(Event::UserCreated { user: user.id });
        uow.commit().await?;
        Ok(user)
    }

    pub async fn list_users(&self, actor: &Actor) -> AppResult<Vec<StaffUser>> {
        require(actor, Permission::ManageUsers)?;
        Ok(self.store().list_users().await?)
    }

    /// Creates an API token for `role`, valid for `valid_for` when given (at most
    /// [`TOKEN_DAYS_MAX`] days). Only its hash is stored; the token is returned this once.
    pub async fn create_token(
        &self,
        actor: &Actor,
        name: &str,
        role: Role,
        valid_for: Option<chrono::Duration>,
    ) -> AppResult<NewToken> {
        require(actor, Permission::ManageUsers)?;
        let mut c = Collector::new();
        let name = c.check(
            "name",
            tenure_domain::validation::required_text(name, TOKEN_NAME_MAX),
        );
        let longest = chrono::Duration::days(i64::from(TOKEN_DAYS_MAX));
        if valid_for.is_some_and(|d| d <= chrono::Duration::zero() || d > longest) {
            c.push(
                "expires_in_days",
                format!("must be between 1 and {TOKEN_DAYS_MAX} days"),
            );
        }
        c.finish()?;
        let token = new_token();
        let expires_at = valid_for.map(|d| chrono::Utc::now() + d);
        let mut uow = self.begin(actor).await?;
        let id = uow
            .tx
            .create_token(&name.unwrap_or_default(), role, &token, expires_at)
            .await?;
        uow.emit(Event::TokenCreated { token: id });
        uow.commit().await?;
        Ok(NewToken {
            id,
            token,
            expires_at,
        })
    }

    /// Every token, newest first (never the tokens themselves).
    pub async fn list_tokens(&self, actor: &Actor) -> AppResult<Vec<TokenInfo>> {
        require(actor, Permission::ManageUsers)?;
        Ok(self.store().list_tokens().await?)
    }

    /// Revokes a token. Servers stop accepting it within their token cache time.
    pub async fn revoke_token(&self, actor: &Actor, id: TokenId) -> AppResult<()> {
        require(actor, Permission::ManageUsers)?;
        let mut uow = self.begin(actor).await?;
        uow.tx.revoke_token(id).await?;
        uow.emit(Event::TokenRevoked { token: id });
        uow.commit().await?;
        Ok(())
    }

    /// Who holds `token`; `None` when it is unknown, revoked or expired.
    pub async fn authenticate_token(&self, token: &str) -> AppResult<Option<Principal>> {
        Ok(self.store().authenticate_token(token).await?)
    }

    /// The stored form of a token, to key caches by without keeping tokens in memory.
    pub fn token_key(token: &str) -> String {
        tenure_store::users::token_hash(token)
    }
}
