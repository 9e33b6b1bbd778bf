//! `tenure export KIND [--out FILE]`: every record of a kind as CSV with the columns its
//! import takes (or customers as vCard contacts), streamed from the database. A file is
//! written under a temporary name and renamed when complete, so an interrupted export
//! never leaves a truncated file behind.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::ValueEnum;
use futures_util::TryStreamExt;
use tenure_app::App;
use tenure_app::model::ExportKind;
use tenure_domain::changes::Actor;

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Customers,
    /// Completed orders as the plain purchase log.
    Purchases,
    Orders,
    OrderLines,
    Interactions,
    Products,
    /// Customers as vCard 4.0 contacts.
    Vcard,
}

pub async fn run(app: &App, me: &Actor, kind: Kind, out: Option<&Path>) -> Result<()> {
    match out {
        None => {
            let stdout = std::io::stdout();
            match write(app, me, kind, std::io::BufWriter::new(stdout.lock())).await {
                Ok(n) => eprintln!("exported {n} rows"),
                // The reader stopped early (`| head`): not an error of the export.
                Err(e) if is_broken_pipe(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Some(path) => {
            let partial = partial_path(path);
            let file = std::fs::File::create(&partial)
                .with_context(|| format!("creating {}", partial.display()))?;
            let written = write(app, me, kind, std::io::BufWriter::new(file)).await;
            let n = match written {
                Ok(n) => n,
                Err(e) => {
                    let _ = std::fs::remove_file(&partial);
                    return Err(e);
                }
            };
            std::fs::rename(&partial, path)
                .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
            println!("exported {n} rows to {}", path.display());
        }
    }
    Ok(())
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<csv::Error>().is_some_and(|e| {
                matches!(e.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe)
            })
    })
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Writes the export; returns the number of records.
pub async fn write<W: Write>(app: &App, me: &Actor, kind: Kind, out: W) -> Result<u64> {
    let kind = match kind {
        Kind::Vcard => return write_vcards(app, me, out).await,
        Kind::Customers => ExportKind::Customers,
        Kind::Purchases => ExportKind::Purchases,
        Kind::Orders => ExportKind::Orders,
        Kind::OrderLines => ExportKind::OrderLines,
        Kind::Interactions => ExportKind::Interactions,
        Kind::Products => ExportKind::Products,
    };
    app.export_csv(me, kind, out).await.map_err(|e| match e {
        tenure_app::export::ExportError::Write(w) => {
            anyhow::Error::new(w).context("writing the export")
        }
        read => anyhow::Error::new(read),
    })
}

async fn write_vcards<W: Write>(app: &App, me: &Actor, mut out: W) -> Result<u64> {
    let mut rows = std::pin::pin!(app.export_customers(me)?);
    let mut n = 0;
    let mut card = String::new();
    while let Some(c) = rows.try_next().await.context("reading from the database")? {
        card.clear();
        let uid = c
            .data
            .external_id
            .clone()
            .unwrap_or_else(|| format!("tenure-{}", c.id));
        tenure_domain::vcard::write(&mut card, &uid, &c.data);
        out.write_all(card.as_bytes())
            .context("writing the export")?;
        n += 1;
    }
    out.flush().context("writing the export")?;
    Ok(n)
}
