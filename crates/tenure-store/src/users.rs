//! Staff users and API tokens. Only a SHA-256 hash of each token is stored; tokens are
//! 256-bit random values, so a fast hash is safe for them (passwords get argon2id).

use sqlx::Row;
use sqlx::any::AnyRow;
use tenure_domain::access::{Principal, Role, StaffUser};
use tenure_domain::ids::{StaffUserId, TokenId};

use crate::time::{now_micros, opt_time, time};
use crate::{Store, StoreError, StoreResult, WriteTx};

fn user_from_row(row: &AnyRow) -> StoreResult<StaffUser> {
    let role: String = row.try_get("role")?;
    Ok(StaffUser {
        id: StaffUserId(row.try_get("id")?),
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        role: role
            .parse()
            .map_err(|e: String| StoreError::corrupt("role", e))?,
        created_at: time(row, "created_at")?,
    })
}

/// The stored form of an API token.
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// An API token as listed: never the token itself, which only its holder has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: TokenId,
    pub name: String,
    pub role: Role,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn token_from_row(row: &AnyRow) -> StoreResult<TokenInfo> {
    let role: String = row.try_get("role")?;
    Ok(TokenInfo {
        id: TokenId(row.try_get("id")?),
        name: row.try_get("name")?,
        role: role
            .parse()
            .map_err(|e: String| StoreError::corrupt("role", e))?,
        created_at: time(row, "created_at")?,
        expires_at: opt_time(row, "expires_at")?,
        revoked_at: opt_time(row, "revoked_at")?,
    })
}

impl WriteTx<'_> {
    /// Creates a staff user; `password_hash` is an argon2id PHC string or `None` for a user
    /// who signs in only through tokens.
    pub async fn create_user(
        &mut self,
        email: &str,
        name: &str,
        role: Role,
        password_hash: Option<&str>,
    ) -> StoreResult<StaffUser> {
        let row = sqlx::query(
            "INSERT INTO staff_users (email, name, role, password_hash, created_at) VALUES ($1, $2, $3, $4, $5) \
             RETURNING id, email, name, role, created_at",
        )
        .bind(email.to_owned())
        .bind(name.to_owned())
        .bind(role.as_str())
        .bind(password_hash.map(str::to_owned))
        .bind(now_micros())
        .fetch_one(&mut *self.tx)
        .await?;
        user_from_row(&row)
    }

    /// Stores a new API token by its hash, valid until `expires_at` when given.
    pub async fn create_token(
        &mut self,
        name: &str,
        role: Role,
        token: &str,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> StoreResult<TokenId> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_tokens (name, role, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(name.to_owned())
        .bind(role.as_str())
        .bind(token_hash(token))
        .bind(now_micros())
        .bind(expires_at.map(|t| t.timestamp_micros()))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(TokenId(id))
    }

    /// Revokes a token; `NotFound` when there is no such token or it was revoked already.
    pub async fn revoke_token(&mut self, id: TokenId) -> StoreResult<()> {
        let n = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id.0)
        .bind(now_micros())
        .execute(&mut *self.tx)
        .await?;
        if n.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "token" });
        }
        Ok(())
    }
}

impl Store {
    pub async fn list_users(&self) -> StoreResult<Vec<StaffUser>> {
        let rows =
            sqlx::query("SELECT id, email, name, role, created_at FROM staff_users ORDER BY id")
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// The user with this email and their password hash, for signing in.
    pub async fn find_user_by_email(
        &self,
        email: &str,
    ) -> StoreResult<Option<(StaffUser, Option<String>)>> {
        let row = sqlx::query("SELECT id, email, name, role, created_at, password_hash FROM staff_users WHERE email = $1")
            .bind(email.to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| Ok((user_from_row(&r)?, r.try_get("password_hash")?)))
            .transpose()
    }

    /// Who a token belongs to; `None` when it is unknown, revoked or expired.
    pub async fn authenticate_token(&self, token: &str) -> StoreResult<Option<Principal>> {
        let row = sqlx::query(
            "SELECT id, name, role FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(token_hash(token))
        .bind(now_micros())
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            let role: String = r.try_get("role")?;
            Ok(Principal {
                token_id: Some(TokenId(r.try_get("id")?)),
                name: r.try_get("name")?,
                role: role
                    .parse()
                    .map_err(|e: String| StoreError::corrupt("role", e))?,
            })
        })
        .transpose()
    }

    /// Every token, newest first, revoked and expired ones included.
    pub async fn list_tokens(&self) -> StoreResult<Vec<TokenInfo>> {
        let rows = sqlx::query(
            "SELECT id, name, role, created_at, expires_at, revoked_at FROM api_tokens ORDER BY id DESC",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(token_from_row).collect()
    }
}
