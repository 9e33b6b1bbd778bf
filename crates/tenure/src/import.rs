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
    /// Historical tickets: `external_id,customer_external_id,opened_at,subject[,category,priority,channel,status,first_response_at,resolved_at,description]`
    Tickets,
    /// Historical NPS and CSAT answers: `external_id,customer_external_id,answered_at,survey,score[,comment,channel]`
    SurveyResponses,
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
            Kind::Tickets => K::Tickets,
            Kind::SurveyResponses => K::SurveyResponses,
        }
    }
}

/// The character encoding of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Encoding {
    /// UTF-8, with or without a byte-order mark.
    #[default]
    #[value(name = "utf-8")]
    Utf8,
    /// GB18030 (and so GBK and GB2312), as Chinese spreadsheet programs export.
    Gb18030,
    /// Windows-1252 (and so Latin-1), as Western European spreadsheet programs export.
    #[value(name = "windows-1252", alias = "latin1")]
    Windows1252,
}

impl From<Encoding> for tenure_app::import::Encoding {
    fn from(e: Encoding) -> Self {
        match e {
            Encoding::Utf8 => tenure_app::import::Encoding::Utf8,
            Encoding::Gb18030 => tenure_app::import::Encoding::Gb18030,
            Encoding::Windows1252 => tenure_app::import::Encoding::Windows1252,
        }
    }
}

/// What `tenure import --help` says after the options.
pub const HELP: &str = "\
Columns are found by the names listed under KIND, by common Chinese and English header names
(客户编号, 日期, 金额, 订单号, 姓名, 手机, Customer ID, Date, Amount, ...), or by --map.

Dates: 2024-03-05, 2024/3/5, 2024.3.5, 2024年3月5日, 20240305 (year first);
05.03.2024 (day first); 25/03/2024 and 03/25/2024 where the day shows which is which
(otherwise give --date-format dmy or mdy); RFC 3339 times (2024-03-05T14:30:00+08:00);
any of these followed by a time of day (2024/3/5 14:30), taken as UTC; or a pattern
such as --date-format '%d-%b-%Y'.

Amounts: 1234.50, 1,234.50, 1.234,50, 1 234,50, 1'234.50, ¥1,234.50, 1234.50 元,
12,50 €, (12.50) for a negative. A lone comma followed by three digits (1,234) is a
thousands separator unless --decimal-comma is given. An ISO code beside the number
(12.50 EUR) must be the row's currency.

The delimiter (comma, semicolon or tab) is found from the header line unless --delimiter
is given. A file that is not valid text in --encoding is refused before anything is
stored, naming the line.";

/// How the file writes its table.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FormatArgs {
    /// The file's character encoding.
    #[arg(long, value_enum, default_value = "utf-8")]
    pub encoding: Encoding,
    /// Columns by their header in the file: customer_external_id=客户编号,occurred_at=日期
    #[arg(long, value_name = "FIELD=HEADER,...")]
    pub map: Option<String>,
    /// How dates are written: ymd, dmy, mdy, or a pattern such as %d.%m.%Y.
    #[arg(long, value_name = "FORMAT")]
    pub date_format: Option<String>,
    /// Amounts use a decimal comma (1.234,50).
    #[arg(long)]
    pub decimal_comma: bool,
    /// The field separator: a single character such as ';', or 'tab'.
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<String>,
}

impl FormatArgs {
    pub fn format(&self) -> Result<tenure_app::import::Format> {
        let delimiter = match self.delimiter.as_deref() {
            None => None,
            Some("tab" | "\\t" | "\t") => Some(b'\t'),
            Some(d) if d.len() == 1 && d.is_ascii() => Some(d.as_bytes()[0]),
            Some(d) => bail!("--delimiter {d:?}: give one character such as ';', or 'tab'"),
        };
        let dates = self
            .date_format
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: String| anyhow::anyhow!("--date-format: {e}"))?;
        let columns = match self.map.as_deref() {
            None => Vec::new(),
            Some(m) => tenure_app::import::Format::parse_map(m)
                .map_err(|e| anyhow::anyhow!("--map: {e}"))?,
        };
        Ok(tenure_app::import::Format {
            encoding: self.encoding.into(),
            delimiter,
            dates,
            decimal_comma: self.decimal_comma,
            columns,
        })
    }
}

/// Imports `file` and reports; fails (non-zero exit) when any row was rejected.
pub async fn run(
    app: &App,
    me: &Actor,
    kind: Kind,
    file: &Path,
    format: &FormatArgs,
    batch: usize,
) -> Result<()> {
    let summary = import(app, me, kind, file, format, batch).await?;
    let created = if summary.created > 0 {
        let what = if kind == Kind::OrderLines {
            ("product", "products")
        } else {
            ("customer", "customers")
        };
        format!(", {} created", counted(summary.created, what.0, what.1))
    } else {
        String::new()
    };
    println!(
        "{}: {}, {} imported, {} already present, {} rejected{created}",
        file.display(),
        counted(summary.rows, "row", "rows"),
        summary.imported,
        summary.skipped,
        summary.rejected,
    );
    if summary.rejected > 0 {
        bail!(
            "{} rejected; see {}",
            counted(summary.rejected, "row was", "rows were"),
            errors_path(file).display()
        );
    }
    Ok(())
}

/// `1 row`, `2 rows`.
fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
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
    format: &FormatArgs,
    batch: usize,
) -> Result<Summary> {
    let format = format.format()?;
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
        .import(me, kind.into(), input, &format, batch, move |position| {
            bar.set_position(position)
        })
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
