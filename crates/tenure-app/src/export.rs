//! Exports: every record of a kind as rows of cells, read as the caller consumes them.

use std::io::Write;

use chrono::SecondsFormat;
use futures_util::{Stream, TryStreamExt};
use tenure_domain::access::Permission;
use tenure_domain::changes::Actor;
use tenure_domain::customer::Customer;
use tenure_domain::money::format_minor;
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

/// A cell as CSV text, the way the import reads it back.
pub fn cell_text(cell: Cell) -> String {
    match cell {
        Cell::Text(t) => t.unwrap_or_default(),
        Cell::Int(i) => i.map(|i| i.to_string()).unwrap_or_default(),
        Cell::Money { minor, currency } => minor
            .map(|m| format_minor(m, &currency))
            .unwrap_or_default(),
        Cell::Time(t) => chrono::DateTime::from_timestamp_micros(t)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            .unwrap_or_default(),
        Cell::List(items) => items.join(";"),
        Cell::Bool(b) => b.to_string(),
    }
}

/// A text cell as a spreadsheet may open it safely: text starting with `=`, `+`, `-` or `@`
/// (or a tab or carriage return) would be run as a formula, so it gets a leading `'`,
/// which spreadsheets read as "this is text" — and the import takes off again.
pub fn spreadsheet_safe(text: String) -> String {
    if text.starts_with(FORMULA_STARTS) {
        format!("'{text}")
    } else {
        text
    }
}

/// A cell an export guarded against formulas, as it was: the leading `'` taken off.
pub fn spreadsheet_text(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_STARTS) => rest,
        _ => cell,
    }
}

/// What a spreadsheet reads as the start of a formula.
pub const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Why writing an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("reading from the database: {0}")]
    Read(#[from] crate::AppError),
    #[error("writing the export: {0}")]
    Write(#[from] csv::Error),
}

impl App {
    /// Writes every record of `kind` as CSV (header first) to `out`; returns the number of
    /// records.
    pub async fn export_csv<W: Write>(
        &self,
        actor: &Actor,
        kind: ExportKind,
        out: W,
    ) -> Result<u64, ExportError> {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(kind.columns().iter().map(|c| c.0))?;
        let mut rows = std::pin::pin!(self.export_rows(actor, kind)?);
        let mut n = 0;
        let mut record: Vec<String> = Vec::new();
        while let Some(cells) = rows.try_next().await? {
            record.clear();
            record.extend(cells.into_iter().map(|c| match c {
                // What people typed; numbers, times and amounts are written by Tenure.
                Cell::Text(_) | Cell::List(_) => spreadsheet_safe(cell_text(c)),
                other => cell_text(other),
            }));
            w.write_record(&record)?;
            n += 1;
        }
        w.flush().map_err(csv::Error::from)?;
        Ok(n)
    }
}
