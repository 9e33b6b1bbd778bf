//! `tenure import KIND FILE`: the file goes through the application's import (every row
//! checked under the API's input rules, batches of one transaction each); this shows a
//! progress bar on a terminal and writes the rejected rows, with their line number, column
//! and reason, to `FILE.errors.csv`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use tenure_app::App;
use tenure_app::import::{Rejection, Summary};
use tenure_domain::changes::Actor;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// `external_id,name[,kind,email,phone,birthday,locale,region,acquisition_source,acquisition_channel,tags]`
    Customers,
    /// The plain purchase log: `customer_external_id,occurred_at,amount[,order_external_id,currency,channel]`
    Purchases,
    /// Orders: `external_id,customer_external_id,occurred_at,total[,currency,channel,status]`
    Orders,
    /// Interactions: `external_id,customer_external_id,occurred_at,channel,direction[,kind,subject,body,buying_signal]`
    Interactions,
    /// Lines of orders imported before: `order_external_id,line_no,quantity,unit_price[,product_external_id,description,total,currency]`
    OrderLines,
    /// The catalogue: `external_id,name[,category,price,currency]`
    Products,
    /// Contacts from a vCard file (2.1, 3.0 or 4.0), as customers.
    Vcard,
}

impl From<Kind> for tenure_app::import::Kind {
    fn from(k: Kind) -> Self {
        use tenure_app::import::Kind as K;
        match k {
            Kind::Customers => K::Customers,
            Kind::Purchases => K::Purchases,
            Kind::Orders => K::Orders,
            Kind::Interactions => K::Interactions,
            Kind::OrderLines => K::OrderLines,
            Kind::Products => K::Products,
            Kind::Vcard => K::Vcard,
        }
    }
}

/// The character encoding of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Encoding {
    /// UTF-8, with or without a byte-order mark.
    #[value(name = "utf-8")]
    Utf8,
    /// GB18030 (and so GBK and GB2312), as Chinese spreadsheet programs export.
    Gb18030,
}

impl From<Encoding> for tenure_app::import::Encoding {
    fn from(e: Encoding) -> Self {
        match e {
            Encoding::Utf8 => tenure_app::import::Encoding::Utf8,
            Encoding::Gb18030 => tenure_app::import::Encoding::Gb18030,
        }
    }
}

/// Imports `file` and reports; fails (non-zero exit) when any row was rejected.
pub async fn run(
    app: &App,
    me: &Actor,
    kind: Kind,
    file: &Path,
    encoding: Encoding,
    batch: usize,
) -> Result<()> {
    let summary = import(app, me, kind, file, encoding, batch).await?;
    println!(
        "{}: {} rows, {} imported, {} already present, {} rejected{}",
        file.display(),
        summary.rows,
        summary.imported,
        summary.skipped,
        summary.rejected,
        if summary.created > 0 {
            format!(
                ", {} {} created",
                summary.created,
                if kind == Kind::OrderLines {
                    "products"
                } else {
                    "customers"
                }
            )
        } else {
            String::new()
        }
    );
    if summary.rejected > 0 {
        bail!(
            "{} rows were rejected; see {}",
            summary.rejected,
            errors_path(file).display()
        );
    }
    Ok(())
}

pub fn errors_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".errors.csv");
    PathBuf::from(name)
}

pub async fn import(
    app: &App,
    me: &Actor,
    kind: Kind,
    file: &Path,
    encoding: Encoding,
    batch: usize,
) -> Result<Summary> {
    let input = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let size = input.metadata().map(|m| m.len()).unwrap_or(0);
    let progress = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(size);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {per_sec} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let bar = progress.clone();
    let summary = app
        .import(
            me,
            kind.into(),
            input,
            encoding.into(),
            batch,
            move |position| bar.set_position(position),
        )
        .await
        .with_context(|| format!("importing {}", file.display()))?;
    progress.finish_and_clear();
    write_errors(file, &summary.rejections)?;
    Ok(summary)
}

/// Writes `FILE.errors.csv`, or removes a stale one when nothing was rejected.
fn write_errors(file: &Path, rejections: &[Rejection]) -> Result<()> {
    let errors_file = errors_path(file);
    if rejections.is_empty() {
        if errors_file.exists() {
            std::fs::remove_file(&errors_file)
                .with_context(|| format!("removing the stale {}", errors_file.display()))?;
        }
    } else {
        let mut w = csv::Writer::from_path(&errors_file)
            .with_context(|| format!("writing {}", errors_file.display()))?;
        w.write_record(["line", "column", "reason"])?;
        for r in rejections {
            w.write_record([r.line.to_string(), r.column.clone(), r.reason.clone()])?;
        }
        w.flush()?;
    }
    Ok(())
}
