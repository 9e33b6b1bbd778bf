//! Trust: the audit log (who changed what, when, through which interface, with the values
//! before and after) and privacy requests (everything held about one customer, and its
//! erasure).

use serde::Serialize;
use tenure_domain::access::Permission;
use tenure_domain::changes::{Actor, Event};
use tenure_domain::ids::CustomerId;
use tenure_store::changes::{ChangeFilter, ChangeRecord};

use crate::{App, AppResult, Listed, PageRequest, require};

/// Where a page of the audit log ends: the last entry's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditCursor(pub i64);

impl tenure_domain::cursor::CursorKey for AuditCursor {
    const TAG: &'static str = "audit";
    type Parts = (i64,);
    fn to_parts(&self) -> Self::Parts {
        (self.0,)
    }
    fn from_parts((id,): Self::Parts) -> Option<Self> {
        (id > 0).then_some(AuditCursor(id))
    }
}

/// Everything held about one customer, as a privacy request hands it out.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerExport {
    pub customer_id: CustomerId,
    pub exported_at: chrono::DateTime<chrono::Utc>,
    /// Every table holding rows of the customer, with those rows (tables without any are
    /// left out).
    pub tables: Vec<ExportedTable>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportedTable {
    pub table: &'static str,
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
}

impl App {
    /// The audit log, newest first: filtered by customer, by who acted, by time.
    pub async fn audit_log(
        &self,
        actor: &Actor,
        filter: &ChangeFilter,
        page: &PageRequest,
    ) -> AppResult<Listed<ChangeRecord>> {
        require(actor, Permission::ReadAudit)?;
        let limit = page.limit()?;
        let after = page.after::<AuditCursor>()?.map(|c| c.0);
        let filter = ChangeFilter {
            newest_first: true,
            ..filter.clone()
        };
        let p = self.store().changes(&filter, after, limit).await?;
        Ok(Listed {
            next_cursor: p
                .next
                .map(|id| tenure_domain::cursor::encode(&AuditCursor(id))),
            items: p.items,
        })
    }

    /// Everything held about a customer, from every table of the registry. The hand-out is
    /// itself recorded in the audit log.
    pub async fn export_customer(
        &self,
        actor: &Actor,
        id: CustomerId,
    ) -> AppResult<CustomerExport> {
        require(actor, Permission::Privacy)?;
        let data = self.store().customer_data(id).await?;
        let mut uow = self.begin(actor).await?;
        uow.emit(Event::CustomerExported { customer: id });
        uow.commit().await?;
        Ok(CustomerExport {
            customer_id: id,
            exported_at: self.now(),
            tables: data
                .into_iter()
                .filter(|(_, rows)| !rows.is_empty())
                .map(|(table, rows)| ExportedTable { table, rows })
                .collect(),
        })
    }

    /// Erases a customer's personal data everywhere it is held; their orders, points,
    /// tickets and scores stay (anonymous), so every total is what it was.
    pub async fn erase_customer(&self, actor: &Actor, id: CustomerId) -> AppResult<()> {
        require(actor, Permission::Privacy)?;
        let mut uow = self.begin(actor).await?;
        uow.tx.erase_customer(id).await?;
        uow.emit(Event::CustomerErased { customer: id });
        uow.commit().await?;
        Ok(())
    }
}

impl App {
    /// Writes a consistent copy of the whole database to `file` (which must not exist),
    /// while the application keeps serving.
    pub async fn backup(&self, actor: &Actor, file: &std::path::Path) -> AppResult<()> {
        require(actor, Permission::ManageUsers)?;
        Ok(self.store().backup(file).await?)
    }
}

/// How long personal data of inactive customers is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PrivacySettings {
    /// Customers with no purchase, contact or change for this many days are anonymised
    /// (erased) by the daily retention job; `None` keeps them for ever.
    pub retention_days: Option<u32>,
    /// Agents see and change only the customers they own (`owner_id`); managers and
    /// admins see everyone. Agents' API tokens, which stand for no one, are refused
    /// customer records while this holds.
    #[serde(default)]
    pub agents_own_customers: bool,
}

const PRIVACY: &str = "privacy";

/// The shortest retention period accepted: a slip of the keyboard must not erase the
/// customers of the last month.
pub const RETENTION_MIN_DAYS: u32 = 30;

impl App {
    pub async fn privacy_settings(&self, actor: &Actor) -> AppResult<PrivacySettings> {
        require(actor, Permission::Privacy)?;
        self.stored_privacy_settings().await
    }

    async fn stored_privacy_settings(&self) -> AppResult<PrivacySettings> {
        Ok(match self.store().setting(PRIVACY).await? {
            Some(v) => serde_json::from_value(v)
                .map_err(|e| crate::AppError::Internal(format!("the privacy settings: {e}")))?,
            None => PrivacySettings::default(),
        })
    }

    /// The staff member whose customers alone `actor` may see, when the business limits
    /// agents to their own customers and `actor` is an agent.
    pub(crate) async fn owner_scope(
        &self,
        actor: &Actor,
    ) -> AppResult<Option<tenure_domain::ids::StaffUserId>> {
        if actor.role != tenure_domain::access::Role::Agent
            || !self.stored_privacy_settings().await?.agents_own_customers
        {
            return Ok(None);
        }
        match crate::service::staff_of(actor) {
            Some(me) => Ok(Some(me)),
            None => Err(crate::AppError::Forbidden(
                "agents see only their own customers here, and an agent's token stands for no \
                 one; use a manager's token"
                    .into(),
            )),
        }
    }

    /// For a list of one kind of record across customers: an agent limited to their own
    /// customers names one of them.
    pub(crate) async fn check_list_owner(
        &self,
        actor: &Actor,
        customer: Option<CustomerId>,
    ) -> AppResult<()> {
        if self.owner_scope(actor).await?.is_none() {
            return Ok(());
        }
        match customer {
            Some(c) => self.check_owner(actor, c).await,
            None => Err(crate::AppError::Forbidden(
                "agents see the records of their own customers: name one with customer_id".into(),
            )),
        }
    }

    /// `NotFound` when the business limits agents to their own customers and `customer` is
    /// not `actor`'s.
    pub(crate) async fn check_owner(&self, actor: &Actor, customer: CustomerId) -> AppResult<()> {
        if let Some(me) = self.owner_scope(actor).await? {
            let c = self.store().get_customer(customer).await?;
            if c.data.owner_id != Some(me) {
                return Err(crate::AppError::NotFound("customer not found".into()));
            }
        }
        Ok(())
    }

    pub async fn set_privacy_settings(
        &self,
        actor: &Actor,
        settings: PrivacySettings,
    ) -> AppResult<PrivacySettings> {
        require(actor, Permission::Privacy)?;
        if let Some(d) = settings.retention_days
            && !(RETENTION_MIN_DAYS..=36_500).contains(&d)
        {
            return Err(crate::AppError::field(
                "retention_days",
                format!("must be between {RETENTION_MIN_DAYS} and 36500 days, or left out"),
            ));
        }
        let value = serde_json::to_value(&settings)
            .map_err(|e| crate::AppError::Internal(e.to_string()))?;
        let mut uow = self.begin(actor).await?;
        uow.tx.put_setting(PRIVACY, &value).await?;
        uow.emit(Event::SettingsChanged { name: PRIVACY });
        uow.commit().await?;
        Ok(settings)
    }

    /// Anonymises every customer inactive beyond the retention period, each in its own
    /// transaction (an interrupted run goes on where it stopped); how many. Nothing when no
    /// period is set.
    pub async fn apply_retention(&self, actor: &Actor) -> AppResult<u64> {
        require(actor, Permission::Privacy)?;
        let Some(days) = self.privacy_settings(actor).await?.retention_days else {
            return Ok(0);
        };
        let before = self.now() - chrono::Duration::days(i64::from(days));
        let mut erased = 0;
        loop {
            let batch = self.store().inactive_customers(before, 200).await?;
            if batch.is_empty() {
                return Ok(erased);
            }
            for id in batch {
                self.erase_customer(actor, id).await?;
                erased += 1;
            }
        }
    }
}
