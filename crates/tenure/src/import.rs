//! `tenure import KIND FILE`: streaming CSV import with per-row validation. Valid rows go
//! to the store in batches (one transaction each); rejected rows are listed with their line
//! number, column and reason in `FILE.errors.csv`. Rows whose external id is already stored
//! are skipped, so running the same import twice — or again after a crash — changes nothing
//! that is already there and completes what is not.

use std::collections::HashMap;
use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, Utc};
use clap::ValueEnum;
use tenure_domain::customer::{self as dc, CustomerData};
use tenure_domain::validation;
use tenure_store::Store;
use tenure_store::import::{BatchOutcome, InteractionRow, OrderLineRow, ProductRow, PurchaseRow};

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

/// The character encoding of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Encoding {
    /// UTF-8, with or without a byte-order mark.
    #[value(name = "utf-8")]
    Utf8,
    /// GB18030 (and so GBK and GB2312), as Chinese spreadsheet programs export.
    Gb18030,
}

/// Totals of one import.
#[derive(Debug, Default)]
pub struct Summary {
    pub rows: u64,
    pub imported: u64,
    pub skipped: u64,
    pub rejected: u64,
    pub customers_created: u64,
}

/// One rejected field.
struct Rejection {
    line: u64,
    column: String,
    reason: String,
}

/// Imports `file` and reports; fails (non-zero exit) when any row was rejected.
pub async fn run(
    store: &Store,
    kind: Kind,
    file: &Path,
    encoding: Encoding,
    batch: usize,
) -> Result<()> {
    let summary = import(store, kind, file, encoding, batch).await?;
    println!(
        "{}: {} rows, {} imported, {} already present, {} rejected{}",
        file.display(),
        summary.rows,
        summary.imported,
        summary.skipped,
        summary.rejected,
        if summary.customers_created > 0 {
            format!(
                ", {} {} created",
                summary.customers_created,
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
    store: &Store,
    kind: Kind,
    file: &Path,
    encoding: Encoding,
    batch: usize,
) -> Result<Summary> {
    if kind == Kind::Vcard {
        return import_vcard(store, file, encoding, batch).await;
    }
    let (size, currency) = (
        std::fs::metadata(file).map(|m| m.len()).unwrap_or(0),
        store.reporting_currency().to_owned(),
    );
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

    // Reading and checking rows runs on its own thread, a batch ahead of the database
    // writes, so the two overlap.
    let (batches, mut received) = tokio::sync::mpsc::channel::<(Pending, u64)>(1);
    let path = file.to_owned();
    let parser = tokio::task::spawn_blocking(move || {
        parse_rows(
            kind,
            &path,
            encoding,
            batch,
            &currency,
            |pending, position| {
                batches
                    .blocking_send((pending, position))
                    .map_err(|_| anyhow::anyhow!("the import stopped"))
            },
        )
    });
    let mut summary = Summary::default();
    let mut rejections: Vec<Rejection> = Vec::new();
    let mut stored: Result<()> = Ok(());
    while let Some((mut pending, position)) = received.recv().await {
        if let Err(e) = pending.flush(store, &mut summary, &mut rejections).await {
            stored = Err(e);
            break;
        }
        progress.set_position(position);
    }
    // Dropping the receiver stops the reader at its next batch when storing failed.
    drop(received);
    let parsed = parser.await.context("reading the file")?;
    stored?;
    let parsed = parsed?;
    summary.rows = parsed.rows;
    summary.rejected += parsed.rejected;
    rejections.extend(parsed.rejections);
    rejections.sort_by_key(|r| r.line);
    progress.finish_and_clear();
    if summary.imported > 0 {
        store
            .analyze()
            .await
            .context("updating planner statistics")?;
    }

    write_errors(file, &rejections)?;
    Ok(summary)
}

/// What reading a file found, besides the rows handed on.
#[derive(Default)]
struct Parsed {
    rows: u64,
    rejected: u64,
    rejections: Vec<Rejection>,
}

/// Reads and checks every row of `file`, handing valid rows on in batches of `batch`
/// (with the byte position reached) and keeping the rejected ones.
fn parse_rows(
    kind: Kind,
    file: &Path,
    encoding: Encoding,
    batch: usize,
    currency: &str,
    mut send: impl FnMut(Pending, u64) -> Result<()>,
) -> Result<Parsed> {
    let (decoder, _) = open_text(file, encoding)?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(CrlfToLf::new(decoder));
    let headers: Vec<String> = reader
        .headers()
        .context("reading the header line")?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    let columns: HashMap<&str, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.as_str(), i))
        .collect();
    let required: &[&str] = match kind {
        Kind::Customers => &["external_id", "name"],
        Kind::Purchases => &["customer_external_id", "occurred_at", "amount"],
        Kind::Orders => &[
            "external_id",
            "customer_external_id",
            "occurred_at",
            "total",
        ],
        Kind::Interactions => &[
            "external_id",
            "customer_external_id",
            "occurred_at",
            "channel",
            "direction",
        ],
        Kind::OrderLines => &["order_external_id", "line_no", "quantity", "unit_price"],
        Kind::Products => &["external_id", "name"],
        // Read by import_vcard, never as CSV.
        Kind::Vcard => &[],
    };
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|c| !columns.contains_key(c))
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} lacks the column(s) {} (its header is: {})",
            file.display(),
            missing.join(", "),
            headers.join(",")
        );
    }

    let mut summary = Parsed::default();
    let mut rejections: Vec<Rejection> = Vec::new();
    let mut pending = Pending::default();
    // Purchases without an order id get one derived from the row, numbered when the same
    // customer, time and amount repeat, so a re-run derives the same ids.
    // Keyed by a hash of (customer, time, amount): a few bytes a row however long the ids.
    let mut repeats: HashMap<u64, u32> = HashMap::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                summary.rows += 1;
                summary.rejected += 1;
                rejections.push(Rejection {
                    line,
                    column: String::new(),
                    reason: format!("unreadable row: {e}"),
                });
                continue;
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        summary.rows += 1;
        let get = |name: &str| {
            columns
                .get(name)
                .and_then(|&i| record.get(i))
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let mut errors: Vec<(String, String)> = Vec::new();
        match kind {
            Kind::Customers => {
                if let Some(c) = customer_row(&get, &mut errors) {
                    pending.customers.push(c);
                }
            }
            Kind::Orders => {
                if let Some(p) = purchase_row(&get, currency, ORDER_COLUMNS, &mut errors) {
                    pending.purchases.push(p);
                }
            }
            Kind::Interactions => {
                if let Some(i) = interaction_row(&get, &mut errors) {
                    pending.interactions.push(i);
                }
            }
            Kind::OrderLines => {
                if let Some(l) = order_line_row(&get, currency, &mut errors) {
                    pending.lines.push(l);
                    pending.line_numbers.push(line);
                }
            }
            Kind::Products => {
                if let Some(p) = product_row(&get, currency, &mut errors) {
                    pending.products.push(p);
                }
            }
            Kind::Vcard => {}
            Kind::Purchases => {
                if let Some(mut p) = purchase_row(&get, currency, PURCHASE_COLUMNS, &mut errors) {
                    if p.order_external_id.is_empty() {
                        let key = {
                            use std::hash::{Hash, Hasher};
                            let mut h = std::collections::hash_map::DefaultHasher::new();
                            (
                                &p.customer_external_id,
                                p.occurred_at.timestamp_micros(),
                                p.total_minor,
                            )
                                .hash(&mut h);
                            h.finish()
                        };
                        let n = repeats.entry(key).or_insert(0);
                        *n += 1;
                        p.order_external_id = format!(
                            "purchase:{}:{}:{}:{}",
                            p.customer_external_id,
                            p.occurred_at.format("%Y%m%dT%H%M%S"),
                            p.total_minor,
                            n
                        );
                    }
                    pending.purchases.push(p);
                }
            }
        }
        if !errors.is_empty() {
            summary.rejected += 1;
            rejections.extend(errors.into_iter().map(|(column, reason)| Rejection {
                line,
                column,
                reason,
            }));
        }
        if pending.len() >= batch {
            send(std::mem::take(&mut pending), reader.position().byte())?;
        }
    }
    send(pending, reader.position().byte())?;
    summary.rejections = rejections;
    Ok(summary)
}

/// The file, decoded to UTF-8 (a byte-order mark decides over `encoding`), and its size.
fn open_text(file: &Path, encoding: Encoding) -> Result<(impl Read, u64)> {
    let f = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    let decoder = encoding_rs_io::DecodeReaderBytesBuilder::new()
        .encoding(Some(match encoding {
            Encoding::Utf8 => encoding_rs::UTF_8,
            Encoding::Gb18030 => encoding_rs::GB18030,
        }))
        .bom_override(true)
        .build(f);
    Ok((decoder, size))
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

/// Imports the contacts of a vCard file as customers. A card's `UID` is its external id;
/// a card without one gets an id derived from its name, email and phone, so importing the
/// file again adds nothing. Rejections name the line of the card's `BEGIN:VCARD`.
async fn import_vcard(
    store: &Store,
    file: &Path,
    encoding: Encoding,
    batch: usize,
) -> Result<Summary> {
    let (mut decoder, _) = open_text(file, encoding)?;
    let mut text = String::new();
    decoder
        .read_to_string(&mut text)
        .with_context(|| format!("reading {}", file.display()))?;
    let mut summary = Summary::default();
    let mut rejections = Vec::new();
    let mut pending = Pending::default();
    let today = Utc::now().date_naive();
    for card in tenure_domain::vcard::parse(&text) {
        summary.rows += 1;
        let card = match card {
            Ok(c) => c,
            Err((line, reason)) => {
                summary.rejected += 1;
                rejections.push(Rejection {
                    line,
                    column: String::new(),
                    reason,
                });
                continue;
            }
        };
        match customer_of_card(&card, today) {
            Ok(c) => pending.customers.push(c),
            Err(errors) => {
                summary.rejected += 1;
                rejections.extend(errors.into_iter().map(|(column, reason)| Rejection {
                    line: card.line,
                    column,
                    reason,
                }));
            }
        }
        if pending.len() >= batch {
            pending.flush(store, &mut summary, &mut rejections).await?;
        }
    }
    pending.flush(store, &mut summary, &mut rejections).await?;
    if summary.imported > 0 {
        store
            .analyze()
            .await
            .context("updating planner statistics")?;
    }
    write_errors(file, &rejections)?;
    Ok(summary)
}

/// The vCard property a profile field comes from, for error reports.
fn vcard_property(field: &str) -> &str {
    match field {
        "name" => "FN",
        "email" | "contact_points" => "EMAIL",
        "phone" => "TEL",
        "birthday" => "BDAY",
        "tags" => "CATEGORIES",
        "external_id" => "UID",
        other => other,
    }
}

fn customer_of_card(
    card: &tenure_domain::vcard::Card,
    today: NaiveDate,
) -> Result<CustomerData, Errors> {
    use tenure_domain::customer::{ContactKind, ContactPoint, CustomerKind};
    let name = card
        .name
        .clone()
        .or_else(|| card.organisation.clone())
        .or_else(|| card.emails.first().cloned())
        .or_else(|| card.phones.first().cloned())
        .unwrap_or_default();
    let derived;
    let external_id = match &card.uid {
        Some(u) => u.as_str(),
        None => {
            derived = format!(
                "vcard-{:016x}",
                stable_hash(&[
                    &name,
                    card.emails.first().map_or("", String::as_str),
                    card.phones.first().map_or("", String::as_str),
                ])
            );
            derived.as_str()
        }
    };
    let mut c = validation::Collector::new();
    let mut data = dc::ProfileInput {
        name: &name,
        kind: Some(if card.is_organisation {
            CustomerKind::Organisation
        } else {
            CustomerKind::Person
        }),
        external_id: Some(external_id),
        email: card.emails.first().map(String::as_str),
        phone: card.phones.first().map(String::as_str),
        birthday: card.birthday.as_deref(),
        tags: card.categories.clone(),
        ..Default::default()
    }
    .parse(&mut c, today);
    let more = card
        .emails
        .iter()
        .skip(1)
        .map(|e| (ContactKind::Email, dc::parse_email(e)))
        .chain(
            card.phones
                .iter()
                .skip(1)
                .map(|p| (ContactKind::Phone, dc::parse_phone(p))),
        );
    for (kind, value) in more {
        if let Some(value) = c.check(vcard_property(kind.as_str()), value) {
            data.contact_points.push(ContactPoint {
                kind,
                value,
                label: None,
            });
        }
    }
    if let Some(points) = c.check(
        "contact_points",
        dc::parse_contact_points(std::mem::take(&mut data.contact_points)),
    ) {
        data.contact_points = points;
    }
    match c.finish() {
        Ok(()) => Ok(data),
        Err(invalid) => Err(invalid
            .0
            .into_iter()
            .map(|e| (vcard_property(&e.field).to_owned(), e.message))
            .collect()),
    }
}

/// FNV-1a over the parts (with a separator), stable across builds and platforms.
fn stable_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0x1f]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Valid rows waiting for the next batch.
#[derive(Default)]
struct Pending {
    customers: Vec<CustomerData>,
    purchases: Vec<PurchaseRow>,
    interactions: Vec<InteractionRow>,
    lines: Vec<OrderLineRow>,
    /// The file line of each order line, to report the ones naming unknown orders.
    line_numbers: Vec<u64>,
    products: Vec<ProductRow>,
}

impl Pending {
    fn len(&self) -> usize {
        self.customers.len()
            + self.purchases.len()
            + self.interactions.len()
            + self.lines.len()
            + self.products.len()
    }

    async fn flush(
        &mut self,
        store: &Store,
        summary: &mut Summary,
        rejections: &mut Vec<Rejection>,
    ) -> Result<()> {
        let mut outcome = BatchOutcome::default();
        if !self.customers.is_empty() {
            outcome = store
                .import_customers(&self.customers)
                .await
                .context("storing customers")?;
        }
        if !self.purchases.is_empty() {
            outcome = store
                .import_purchases(&self.purchases)
                .await
                .context("storing purchases")?;
        }
        if !self.interactions.is_empty() {
            outcome = store
                .import_interactions(&self.interactions)
                .await
                .context("storing interactions")?;
        }
        if !self.products.is_empty() {
            outcome = store
                .import_products(&self.products)
                .await
                .context("storing products")?;
        }
        if !self.lines.is_empty() {
            outcome = store
                .import_order_lines(&self.lines)
                .await
                .context("storing order lines")?;
            for &i in &outcome.unknown_orders {
                rejections.push(Rejection {
                    line: self.line_numbers[i],
                    column: "order_external_id".into(),
                    reason: format!(
                        "no order {:?} (import the orders first)",
                        self.lines[i].order_external_id
                    ),
                });
            }
        }
        summary.imported += outcome.inserted;
        summary.skipped += outcome.skipped;
        summary.customers_created += outcome.customers_created;
        summary.rejected += outcome.unknown_orders.len() as u64;
        *self = Pending::default();
        Ok(())
    }
}

/// Turns CRLF line ends into LF, so the reported line numbers count lines the way an
/// editor does (the CSV reader would otherwise number a CRLF file's rows one short).
struct CrlfToLf<R> {
    inner: R,
    /// A CR read at the end of the previous chunk, not yet known to precede an LF.
    pending_cr: bool,
}

impl<R: Read> CrlfToLf<R> {
    fn new(inner: R) -> Self {
        CrlfToLf {
            inner,
            pending_cr: false,
        }
    }
}

impl<R: Read> Read for CrlfToLf<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.len() < 2 {
            return self.inner.read(buf);
        }
        // Leave room for a held-back CR.
        let limit = buf.len() - 1;
        let start = usize::from(self.pending_cr);
        let n = self.inner.read(&mut buf[start..limit])?;
        if self.pending_cr {
            buf[0] = b'\r';
            self.pending_cr = false;
        }
        let mut len = start + n;
        if n == 0 {
            return Ok(len);
        }
        if buf[len - 1] == b'\r' {
            self.pending_cr = true;
            len -= 1;
        }
        let mut out = 0;
        for i in 0..len {
            let b = buf[i];
            if b == b'\r' && i + 1 < len && buf[i + 1] == b'\n' {
                continue;
            }
            buf[out] = b;
            out += 1;
        }
        if out == 0 && self.pending_cr {
            // Only a CR so far: read on to learn what follows it.
            return self.read(buf);
        }
        Ok(out)
    }
}

type Errors = Vec<(String, String)>;

fn check<T>(errors: &mut Errors, column: &str, r: Result<T, String>) -> Option<T> {
    r.map_err(|reason| errors.push((column.to_owned(), reason)))
        .ok()
}

fn customer_row<'r>(
    get: &impl Fn(&str) -> Option<&'r str>,
    errors: &mut Errors,
) -> Option<CustomerData> {
    if get("external_id").is_none() {
        errors.push((
            "external_id".into(),
            "is required (it makes a re-run skip this row)".into(),
        ));
    }
    let kind = get("kind").and_then(|k| check(errors, "kind", k.parse()));
    let tags = get("tags")
        .map(|t| {
            t.split(';')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mut c = validation::Collector::new();
    let data = dc::ProfileInput {
        name: get("name").unwrap_or(""),
        kind,
        external_id: get("external_id"),
        email: get("email"),
        phone: get("phone"),
        birthday: get("birthday"),
        locale: get("locale"),
        region: get("region"),
        acquisition_source: get("acquisition_source"),
        acquisition_channel: get("acquisition_channel"),
        tags,
    }
    .parse(&mut c, Utc::now().date_naive());
    if let Err(invalid) = c.finish() {
        errors.extend(invalid.0.into_iter().map(|e| (e.field, e.message)));
    }
    errors.is_empty().then_some(data)
}

/// A date (`YYYY-MM-DD`, midnight UTC) or an RFC 3339 time.
fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("{s:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 time"))
}

/// Which columns of a row hold an order's id and amount: the purchase log and the orders
/// file name them differently.
struct OrderColumns {
    id: &'static str,
    amount: &'static str,
    /// Whether the id must be given.
    id_required: bool,
}

const PURCHASE_COLUMNS: OrderColumns = OrderColumns {
    id: "order_external_id",
    amount: "amount",
    id_required: false,
};
const ORDER_COLUMNS: OrderColumns = OrderColumns {
    id: "external_id",
    amount: "total",
    id_required: true,
};

fn purchase_row<'r>(
    get: &impl Fn(&str) -> Option<&'r str>,
    reporting_currency: &str,
    columns: OrderColumns,
    errors: &mut Errors,
) -> Option<PurchaseRow> {
    let customer = required_id(get, "customer_external_id", errors);
    let occurred_at = check(
        errors,
        "occurred_at",
        get("occurred_at")
            .ok_or_else(|| "is required".to_owned())
            .and_then(parse_time),
    );
    if occurred_at.is_some_and(|t| t > Utc::now() + chrono::Duration::days(1)) {
        errors.push(("occurred_at".into(), "is in the future".into()));
    }
    let currency = match get("currency") {
        Some(c) => check(errors, "currency", tenure_domain::money::parse_currency(c)),
        None => Some(reporting_currency.to_owned()),
    };
    let amount = currency.as_deref().and_then(|cur| {
        check(
            errors,
            columns.amount,
            get(columns.amount)
                .ok_or_else(|| "is required".to_owned())
                .and_then(|a| tenure_domain::money::parse_amount(a, cur)),
        )
    });
    if amount.is_some_and(|a| a < 0) {
        errors.push((
            columns.amount.into(),
            "must not be negative (record refunds as their own orders)".into(),
        ));
    }
    let order_external_id = if columns.id_required {
        required_id(get, columns.id, errors)
    } else {
        get(columns.id).and_then(|x| check(errors, columns.id, validation::external_id(x)))
    };
    let channel = get("channel").and_then(|c| check(errors, "channel", c.parse()));
    let status = get("status").and_then(|c| check(errors, "status", c.parse()));
    if !errors.is_empty() {
        return None;
    }
    Some(PurchaseRow {
        customer_external_id: customer?,
        order_external_id: order_external_id.unwrap_or_default(),
        occurred_at: occurred_at?,
        total_minor: amount?,
        currency: currency?,
        channel: channel.unwrap_or(tenure_domain::catalog::SalesChannel::Other),
        status: status.unwrap_or(tenure_domain::catalog::OrderStatus::Completed),
    })
}

fn required_id<'r>(
    get: &impl Fn(&str) -> Option<&'r str>,
    column: &str,
    errors: &mut Errors,
) -> Option<String> {
    match get(column) {
        Some(x) => check(errors, column, validation::external_id(x)),
        None => check(errors, column, Err("is required".into())),
    }
}

fn interaction_row<'r>(
    get: &impl Fn(&str) -> Option<&'r str>,
    errors: &mut Errors,
) -> Option<InteractionRow> {
    use tenure_domain::interaction::{BODY_MAX, SUBJECT_MAX};
    let external_id = required_id(get, "external_id", errors);
    let customer = required_id(get, "customer_external_id", errors);
    let occurred_at = check(
        errors,
        "occurred_at",
        get("occurred_at")
            .ok_or_else(|| "is required".to_owned())
            .and_then(parse_time),
    );
    let channel = check(errors, "channel", get("channel").unwrap_or("").parse());
    let direction = check(errors, "direction", get("direction").unwrap_or("").parse());
    let kind = get("kind").and_then(|k| check(errors, "kind", k.parse()));
    let subject = check(
        errors,
        "subject",
        validation::text(get("subject").unwrap_or(""), SUBJECT_MAX, false),
    );
    let body = check(
        errors,
        "body",
        validation::text(get("body").unwrap_or(""), BODY_MAX, true),
    );
    let buying_signal = match get("buying_signal").map(str::to_ascii_lowercase).as_deref() {
        None | Some("false" | "0" | "no") => Some(false),
        Some("true" | "1" | "yes") => Some(true),
        Some(other) => check(
            errors,
            "buying_signal",
            Err(format!("{other:?} is not true or false")),
        ),
    };
    if !errors.is_empty() {
        return None;
    }
    Some(InteractionRow {
        external_id: external_id?,
        customer_external_id: customer?,
        data: tenure_domain::interaction::InteractionData {
            external_id: None,
            // Resolved from customer_external_id by the store.
            customer_id: tenure_domain::ids::CustomerId(0),
            channel: channel?,
            direction: direction?,
            kind: kind.unwrap_or(tenure_domain::customer::InteractionKind::Note),
            subject: subject?,
            body: body?,
            staff_user_id: None,
            buying_signal: buying_signal?,
            occurred_at: occurred_at?,
        },
    })
}

fn required_int<'r>(
    get: &impl Fn(&str) -> Option<&'r str>,
    column: &str,
    min: i64,
    errors: &mut Errors,
) -> Option<i64> {
    let r = match get(column) {
        None => Err("is required".to_owned()),
        Some(v) => v
            .parse::<i64>()
            .map_err(|_| format!("{v:?} is not a whole number"))
            .and_then(|n| {
                if n >= min {
                    Ok(n)
                } else {
                    Err(format!("must be at least {min}"))
                }
            }),
    };
    check(errors, column, r)
}

fn order_line_row<'r>(
    get: &impl Fn(&str) -> Option<&'r str>,
    reporting_currency: &str,
    errors: &mut Errors,
) -> Option<OrderLineRow> {
    use tenure_domain::money::{parse_amount, parse_currency};
    let order = required_id(get, "order_external_id", errors);
    let line_no = required_int(get, "line_no", 1, errors);
    let quantity = required_int(get, "quantity", 1, errors);
    let currency = match get("currency") {
        Some(c) => check(errors, "currency", parse_currency(c)),
        None => Some(reporting_currency.to_owned()),
    };
    let money = |column: &str, errors: &mut Errors| {
        let cur = currency.as_deref()?;
        let v = get(column)?;
        check(errors, column, parse_amount(v, cur))
    };
    let unit_price = money("unit_price", errors);
    if get("unit_price").is_none() {
        errors.push(("unit_price".into(), "is required".into()));
    }
    let total = money("total", errors);
    let product = get("product_external_id")
        .and_then(|x| check(errors, "product_external_id", validation::external_id(x)));
    let description = check(
        errors,
        "description",
        validation::text(get("description").unwrap_or(""), 500, false),
    );
    if !errors.is_empty() {
        return None;
    }
    let (quantity, unit_price) = (quantity?, unit_price?);
    Some(OrderLineRow {
        order_external_id: order?,
        line_no: line_no?,
        product_external_id: product,
        description: description?,
        quantity,
        unit_price_minor: unit_price,
        total_minor: total.unwrap_or(quantity.saturating_mul(unit_price)),
    })
}

fn product_row<'r>(
    get: &impl Fn(&str) -> Option<&'r str>,
    reporting_currency: &str,
    errors: &mut Errors,
) -> Option<ProductRow> {
    use tenure_domain::money::{parse_amount, parse_currency};
    let external_id = required_id(get, "external_id", errors);
    let name = check(
        errors,
        "name",
        validation::required_text(get("name").unwrap_or(""), 200),
    );
    let category =
        get("category").and_then(|c| check(errors, "category", validation::required_text(c, 100)));
    let currency = match get("currency") {
        Some(c) => check(errors, "currency", parse_currency(c)),
        None => Some(reporting_currency.to_owned()),
    };
    let price = match (get("price"), currency.as_deref()) {
        (Some(p), Some(cur)) => check(errors, "price", parse_amount(p, cur)).map(Some),
        _ => Some(None),
    };
    if !errors.is_empty() {
        return None;
    }
    Some(ProductRow {
        external_id: external_id?,
        name: name?,
        category,
        price_minor: price?,
        currency: currency?,
    })
}
