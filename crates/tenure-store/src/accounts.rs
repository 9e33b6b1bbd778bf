//! Accounts: the organisations customers belong to, with their business type.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use tenure_domain::customer::{Account, AccountData};
use tenure_domain::ids::{AccountId, StaffUserId};

use crate::Page;
use crate::decode::parsed;
use crate::sql::Select;
use crate::sql::{Table, require};
use crate::time::{now_micros, time};
use crate::{Store, StoreError, StoreResult, WriteTx};

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
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
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

impl WriteTx<'_> {
    pub async fn create_account(&mut self, data: &AccountData) -> StoreResult<Account> {
        check_owner(&mut self.tx, data).await?;
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
        .fetch_one(&mut *self.tx)
        .await?;
        account_from_row(&row)
    }

    /// Changes an account: `change` edits the current data, read under a row lock so a
    /// concurrent change is not lost.
    pub async fn update_account(
        &mut self,
        id: AccountId,
        change: impl FnOnce(&mut AccountData) -> Result<(), tenure_domain::Invalid>,
    ) -> StoreResult<Account> {
        self.lock(Table::Accounts, id.0).await?;
        let row = sqlx::query(AssertSqlSafe(format!("{ACCOUNT_SELECT} WHERE id = $1")))
            .bind(id.0)
            .fetch_optional(&mut *self.tx)
            .await?
            .ok_or(StoreError::NotFound { what: "account" })?;
        let mut data = account_from_row(&row)?.data;
        change(&mut data).map_err(StoreError::Invalid)?;
        check_owner(&mut self.tx, &data).await?;
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
        .fetch_one(&mut *self.tx)
        .await?;
        account_from_row(&row)
    }

    /// Deletes an account; its customers stay, without an account.
    pub async fn delete_account(&mut self, id: AccountId) -> StoreResult<()> {
        let n = sqlx::query("DELETE FROM accounts WHERE id = $1")
            .bind(id.0)
            .execute(&mut *self.tx)
            .await?;
        if n.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "account" });
        }
        Ok(())
    }
}

impl Store {
    pub async fn get_account(&self, id: AccountId) -> StoreResult<Account> {
        let row = sqlx::query(AssertSqlSafe(format!("{ACCOUNT_SELECT} WHERE id = $1")))
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound { what: "account" })?;
        account_from_row(&row)
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
        let (sql, args) = s.finish("ORDER BY id", limit + 1)?;
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
