//! Accounts: the organisations customers belong to, with their business type.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use tenure_domain::customer::{Account, AccountData};
use tenure_domain::ids::{AccountId, StaffUserId};

use crate::Page;
use crate::decode::parsed;
use crate::sql::Select;
use crate::sql::{Table, require};
use crate::time::{from_micros, now_micros};
use crate::{Store, StoreError, StoreResult};

const ACCOUNT_SELECT: &str =
    "SELECT id, external_id, name, account_type, owner_id, created_at, updated_at FROM accounts";

fn account_from_row(row: &AnyRow) -> StoreResult<Account> {
    Ok(Account {
        id: AccountId(row.try_get("id")?),
        data: AccountData {
            external_id: row.try_get("external_id")?,
            name: row.try_get("name")?,
            account_type: parsed(row, "account_type")?,
            owner_id: row.try_get::<Option<i64>, _>("owner_id")?.map(StaffUserId),
        },
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
    })
}

async fn check_owner(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    data: &AccountData,
) -> StoreResult<()> {
    if let Some(o) = data.owner_id {
        require(tx, Table::StaffUsers, o.0, "owner_id").await?;
    }
    Ok(())
}

impl Store {
    pub async fn create_account(&self, data: &AccountData) -> StoreResult<Account> {
        let mut w = self.begin_write().await?;
        check_owner(&mut w.tx, data).await?;
        let row = sqlx::query(
            "INSERT INTO accounts (external_id, name, account_type, owner_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) \
             RETURNING id, external_id, name, account_type, owner_id, created_at, updated_at",
        )
        .bind(data.external_id.clone())
        .bind(data.name.clone())
        .bind(data.account_type.as_str())
        .bind(data.owner_id.map(|o| o.0))
        .bind(now_micros())
        .fetch_one(&mut *w.tx)
        .await?;
        let account = account_from_row(&row)?;
        w.commit().await?;
        Ok(account)
    }

    pub async fn get_account(&self, id: AccountId) -> StoreResult<Account> {
        let row = sqlx::query(AssertSqlSafe(format!("{ACCOUNT_SELECT} WHERE id = $1")))
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound { what: "account" })?;
        account_from_row(&row)
    }

    /// Changes an account: `change` edits the current data inside the transaction.
    pub async fn update_account(
        &self,
        id: AccountId,
        change: impl FnOnce(&mut AccountData) -> Result<(), tenure_domain::Invalid>,
    ) -> StoreResult<Account> {
        let mut w = self.begin_write().await?;
        let row = sqlx::query(AssertSqlSafe(format!("{ACCOUNT_SELECT} WHERE id = $1")))
            .bind(id.0)
            .fetch_optional(&mut *w.tx)
            .await?
            .ok_or(StoreError::NotFound { what: "account" })?;
        let mut data = account_from_row(&row)?.data;
        change(&mut data).map_err(StoreError::Invalid)?;
        check_owner(&mut w.tx, &data).await?;
        let row = sqlx::query(
            "UPDATE accounts SET external_id = $2, name = $3, account_type = $4, owner_id = $5, updated_at = $6 \
             WHERE id = $1 RETURNING id, external_id, name, account_type, owner_id, created_at, updated_at",
        )
        .bind(id.0)
        .bind(data.external_id.clone())
        .bind(data.name.clone())
        .bind(data.account_type.as_str())
        .bind(data.owner_id.map(|o| o.0))
        .bind(now_micros())
        .fetch_one(&mut *w.tx)
        .await?;
        let account = account_from_row(&row)?;
        w.commit().await?;
        Ok(account)
    }

    /// Deletes an account; its customers stay, without an account.
    pub async fn delete_account(&self, id: AccountId) -> StoreResult<()> {
        let mut w = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM accounts WHERE id = $1")
            .bind(id.0)
            .execute(&mut *w.tx)
            .await?;
        if n.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "account" });
        }
        w.commit().await
    }

    pub async fn list_accounts(
        &self,
        after: Option<AccountId>,
        limit: u32,
    ) -> StoreResult<Page<Account, AccountId>> {
        let mut s = Select::new(ACCOUNT_SELECT);
        if let Some(a) = after {
            s.filter("id > {}", a.0)?;
        }
        let limit = i64::from(limit.clamp(1, 1000));
        let (sql, args) = s.finish("ORDER BY id LIMIT {}", limit + 1)?;
        let rows = sqlx::query_with(AssertSqlSafe(sql), args)
            .fetch_all(self.pool())
            .await?;
        let items = rows
            .iter()
            .map(account_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::cut(items, limit, |a| a.id))
    }
}
