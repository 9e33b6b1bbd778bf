//! Exports: every record of a kind as rows of cells, read as the caller consumes them.

use futures_util::Stream;
use tenure_domain::access::Permission;
use tenure_domain::changes::Actor;
use tenure_domain::customer::Customer;
use tenure_store::export::{Cell, ExportKind};

use crate::{App, AppResult, require};

impl App {
    /// The rows of an export of `kind`, in the columns its import takes.
    pub fn export_rows(
        &self,
        actor: &Actor,
        kind: ExportKind,
    ) -> AppResult<impl Stream<Item = AppResult<Vec<Cell>>> + '_> {
        require(actor, Permission::ReadCustomers)?;
        use futures_util::StreamExt;
        Ok(self.store().export(kind).map(|r| r.map_err(Into::into)))
    }

    /// Every customer in id order, for a contacts export.
    pub fn export_customers(
        &self,
        actor: &Actor,
    ) -> AppResult<impl Stream<Item = AppResult<Customer>> + '_> {
        require(actor, Permission::ReadCustomers)?;
        use futures_util::StreamExt;
        Ok(self
            .store()
            .stream_customers()
            .map(|r| r.map_err(Into::into)))
    }
}
