//! Importing a CSV file (or vCard contacts) from any reader: every row is parsed and checked
//! under the same input rules as the API (the domain's `ProfileInput`, `OrderInput`,
//! `OrderLineInput`, `InteractionInput`, `ProductInput`), valid rows go to the store in
//! batches (one transaction each, with its change-log entry), and rejected rows are kept
//! with their line number, column and reason. Rows whose external id is already stored
//! are skipped, so running the same import twice — or again after a crash — changes
//! nothing that is already there and completes what is not.
//!
//! The command line hands this a file; the web upload page (next) hands it the upload.

use std::collections::HashMap;
use std::io::{BufRead, Read, Seek};

use chrono::{DateTime, NaiveDate, Utc};
use tenure_domain::access::Permission;
use tenure_domain::catalog::{OrderInput, OrderLineInput, ProductInput};
use tenure_domain::changes::{Actor, Source};
use tenure_domain::customer::{self as dc, CustomerData};
use tenure_domain::interaction::InteractionInput;
use tenure_domain::jobs::JobKind;
use tenure_domain::money::parse_amount;
use tenure_domain::validation::{self, Collector, InputContext};
use tenure_store::load::{BatchOutcome, InteractionRow, OrderLineRow, ProductRow, PurchaseRow};

use crate::sheet::{self, aliases};
pub use crate::sheet::{DateFormat, Encoding, Format};
use crate::{App, AppError, AppResult, require};

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

impl Kind {
    /// Every kind, in the order the import page offers them.
    pub const ALL: [Kind; 9] = [
        Kind::Customers,
        Kind::Purchases,
        Kind::Orders,
        Kind::OrderLines,
        Kind::Interactions,
        Kind::Products,
        Kind::Vcard,
        Kind::Tickets,
        Kind::SurveyResponses,
    ];

    /// The kind's name on the command line and in the web application.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Customers => "customers",
            Kind::Purchases => "purchases",
            Kind::Orders => "orders",
            Kind::Interactions => "interactions",
            Kind::OrderLines => "order-lines",
            Kind::Products => "products",
            Kind::Vcard => "vcard",
            Kind::Tickets => "tickets",
            Kind::SurveyResponses => "survey-responses",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Every column a CSV of this kind can have, the required ones first.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Kind::Customers => &[
                "external_id",
                "name",
                "kind",
                "email",
                "phone",
                "birthday",
                "locale",
                "region",
                "acquisition_source",
                "acquisition_channel",
                "tags",
            ],
            Kind::Purchases => &[
                "customer_external_id",
                "occurred_at",
                "amount",
                "order_external_id",
                "currency",
                "channel",
                "status",
            ],
            Kind::Orders => &[
                "external_id",
                "customer_external_id",
                "occurred_at",
                "total",
                "currency",
                "channel",
                "status",
            ],
            Kind::Interactions => &[
                "external_id",
                "customer_external_id",
                "occurred_at",
                "channel",
                "direction",
                "kind",
                "subject",
                "body",
                "buying_signal",
            ],
            Kind::OrderLines => &[
                "order_external_id",
                "line_no",
                "quantity",
                "unit_price",
                "product_external_id",
                "description",
                "total",
                "currency",
            ],
            Kind::Products => &["external_id", "name", "category", "price", "currency"],
            Kind::Vcard => &[],
            Kind::Tickets => &[
                "external_id",
                "customer_external_id",
                "opened_at",
                "subject",
                "category",
                "priority",
                "channel",
                "status",
                "first_response_at",
                "resolved_at",
                "description",
            ],
            Kind::SurveyResponses => &[
                "external_id",
                "customer_external_id",
                "answered_at",
                "survey",
                "score",
                "comment",
                "channel",
            ],
        }
    }

    /// The header names a spreadsheet commonly gives `column` in a file of this kind.
    pub fn aliases(self, column: &str) -> &'static [&'static str] {
        match (self, column) {
            (Kind::Customers, "external_id") | (_, "customer_external_id") => aliases::CUSTOMER_ID,
            (Kind::Orders, "external_id") | (_, "order_external_id") => aliases::ORDER_ID,
            (_, "occurred_at" | "opened_at" | "answered_at") => aliases::DATE,
            (_, "amount" | "total") => aliases::AMOUNT,
            (_, "name") => aliases::NAME,
            (_, "email") => aliases::EMAIL,
            (_, "phone") => aliases::PHONE,
            (_, "birthday") => aliases::BIRTHDAY,
            (_, "region") => aliases::REGION,
            (_, "currency") => aliases::CURRENCY,
            (_, "channel") => aliases::CHANNEL,
            (_, "status") => aliases::STATUS,
            (_, "quantity") => aliases::QUANTITY,
            (_, "unit_price") => aliases::UNIT_PRICE,
            (_, "price") => aliases::PRICE,
            (_, "product_external_id") => aliases::PRODUCT_ID,
            (_, "description") => aliases::DESCRIPTION,
            (_, "category") => aliases::CATEGORY,
            (_, "tags") => aliases::TAGS,
            _ => &[],
        }
    }

    /// The columns a CSV of this kind must have.
    pub fn required_columns(self) -> &'static [&'static str] {
        let required = match self {
            Kind::Customers | Kind::Products => 2,
            Kind::Purchases => 3,
            Kind::Orders | Kind::OrderLines => 4,
            Kind::Interactions | Kind::SurveyResponses => 5,
            Kind::Tickets => 4,
            Kind::Vcard => 0,
        };
        &self.columns()[..required]
    }

    /// Whether the rows are customers with profiles, whose duplicates must be found.
    /// (Orders, purchases and interactions create placeholders for unknown customers; a
    /// placeholder is named after its unique external id and has no email or phone, so it
    /// makes no pair.)
    fn brings_profiles(self) -> bool {
        matches!(self, Kind::Customers | Kind::Vcard)
    }

    /// The tables a file of this kind fills in bulk, and so loads as a first load when they
    /// are nearly empty: its own and, for rows that create the customers they name, the
    /// customers' with their tags and search terms.
    fn bulk_tables(self) -> &'static [&'static str] {
        const CUSTOMERS: [&str; 3] = ["customers", "customer_tags", "customer_search_terms"];
        match self {
            Kind::Customers | Kind::Vcard => &CUSTOMERS,
            Kind::Purchases | Kind::Orders => &["orders", CUSTOMERS[0], CUSTOMERS[1], CUSTOMERS[2]],
            Kind::Interactions => &["interactions", CUSTOMERS[0], CUSTOMERS[1], CUSTOMERS[2]],
            Kind::OrderLines => &["order_lines"],
            Kind::Products | Kind::Tickets | Kind::SurveyResponses => &[],
        }
    }

    /// Whether batches of this kind may be written several at once (see
    /// [`tenure_store::Store::import_writers`]): those the store loads by bulk copy, whose
    /// rows carry a key.
    fn writes_in_parallel(self) -> bool {
        matches!(
            self,
            Kind::Customers
                | Kind::Purchases
                | Kind::Orders
                | Kind::Interactions
                | Kind::OrderLines
        )
    }
}

/// One rejected field of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The line in the file (the header is line 1).
    pub line: u64,
    /// The column at fault; empty when the whole row is.
    pub column: String,
    pub reason: String,
}

/// Totals of one import.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub rows: u64,
    pub imported: u64,
    pub skipped: u64,
    pub rejected: u64,
    /// Customers (or, for order lines, products) created because rows named unknown ones.
    pub created: u64,
    /// Every rejected field, in line order.
    pub rejections: Vec<Rejection>,
}

/// The input as UTF-8 text (a byte-order mark decides over `encoding`).
fn decode<R: Read>(input: R, encoding: Encoding) -> impl Read {
    encoding_rs_io::DecodeReaderBytesBuilder::new()
        .encoding(Some(encoding.codec()))
        .bom_override(true)
        .build(input)
}

impl App {
    /// Imports `input` of `kind` written as `format` says, `batch` rows per transaction,
    /// calling `progress` with the position reached (in decoded bytes) after each batch.
    /// Input that is not text in the format's encoding is refused before anything is
    /// stored.
    pub async fn import<R: Read + Seek + Send + 'static>(
        &self,
        actor: &Actor,
        kind: Kind,
        input: R,
        format: &Format,
        batch: usize,
        mut progress: impl FnMut(u64) + Send,
    ) -> AppResult<Summary> {
        require(
            actor,
            if kind == Kind::Products {
                Permission::WriteCatalog
            } else {
                Permission::WriteCustomers
            },
        )?;
        let actor = actor.via(Source::Import);
        let batch = batch.max(1);
        let encoding = format.encoding;
        let input = tokio::task::spawn_blocking(move || {
            let mut input = input;
            sheet::check_encoding(&mut input, encoding).map(|()| input)
        })
        .await
        .map_err(|e| AppError::Internal(format!("the encoding check stopped: {e}")))??;
        if kind.brings_profiles() {
            // Imported customers are not matched one by one; a rebuild of the candidates is
            // queued first, so that one runs even if this import is interrupted, and run
            // at the end.
            let mut uow = self.begin(&actor).await?;
            crate::jobs::queue_once(
                &mut uow.tx,
                JobKind::DuplicatesRebuild,
                crate::duplicates::REBUILD_KEY,
            )
            .await?;
            uow.commit().await?;
        }
        // A load into nearly empty tables builds their indexes and the aggregates once, at
        // the end; one interrupted earlier is carried on and finished here.
        let first_load = self.store().begin_first_load(kind.bulk_tables()).await?;
        // Batches of a first load are written several at once where the database can take
        // them (each batch in its own transaction; aggregates wait for the end of the load).
        let writers = if first_load && kind.writes_in_parallel() {
            self.store().import_writers()
        } else {
            1
        };
        let mut summary = if kind == Kind::Vcard {
            self.import_vcard(&actor, input, encoding, batch).await?
        } else {
            let reading = (input, format.clone(), batch);
            self.import_csv(&actor, kind, reading, writers, &mut progress)
                .await?
        };
        self.store().finish_first_load().await?;
        summary.rejections.sort_by_key(|r| r.line);
        if summary.imported > 0 {
            self.analyze().await?;
        }
        if kind.brings_profiles() {
            crate::jobs::Worker::new(self.clone(), "import")
                .run_kind(JobKind::DuplicatesRebuild)
                .await?;
        }
        Ok(summary)
    }

    /// Reads `input` (written as `format`, `batch` rows at a time) and stores its batches,
    /// up to `writers` of them at once. Results are taken in file order, so the summary and
    /// the progress reported are those of a load done one batch after another; a batch that
    /// shares a row's key with the one before it waits for it, so of two rows with the same
    /// key the first in the file is the one kept.
    async fn import_csv<R: Read + Send + 'static>(
        &self,
        actor: &Actor,
        kind: Kind,
        (input, format, batch): (R, Format, usize),
        writers: usize,
        progress: &mut (impl FnMut(u64) + Send),
    ) -> AppResult<Summary> {
        use futures_util::StreamExt as _;

        let currency = self.reporting_currency().to_owned();
        // Reading and checking rows runs on its own thread, a batch ahead of the database
        // writes, so the two overlap.
        let (batches, mut received) = tokio::sync::mpsc::channel::<(Pending, u64)>(1);
        let parser = tokio::task::spawn_blocking(move || {
            let ctx = RowContext {
                input: InputContext::new(&currency),
                format: &format,
            };
            parse_rows(
                kind,
                decode(input, format.encoding),
                batch,
                &ctx,
                |pending, position| {
                    batches
                        .blocking_send((pending, position))
                        .map_err(|_| AppError::Internal("the import stopped".into()))
                },
            )
        });
        // Each batch is written by a task of its own, so that the work of building one
        // batch's rows runs on another thread than the other's.
        let store = |mut pending: Pending, position: u64| {
            let (app, actor) = (self.clone(), actor.clone());
            let task = AbortOnDrop(tokio::spawn(async move {
                let mut part = Summary::default();
                pending.flush(&app, &actor, &mut part).await.map(|()| part)
            }));
            async move {
                let mut task = task;
                let stored = match (&mut task.0).await {
                    Ok(stored) => stored,
                    Err(e) => Err(AppError::Internal(format!("an import batch stopped: {e}"))),
                };
                (stored, position)
            }
        };
        let mut summary = Summary::default();
        let mut writing = futures_util::stream::FuturesOrdered::new();
        let mut previous_keys = KeySet::default();
        let mut reading = true;
        let stored: AppResult<()> = loop {
            let done = if reading && writing.len() < writers {
                tokio::select! {
                    next = received.recv() => {
                        let Some((pending, position)) = next else {
                            reading = false;
                            continue;
                        };
                        if writers > 1 {
                            let keys = pending.keys();
                            if !keys.is_disjoint(&previous_keys) {
                                // Drain what is being written first.
                                let mut drained = Ok(());
                                while let Some(done) = writing.next().await {
                                    drained = settle(done, &mut summary, progress);
                                    if drained.is_err() {
                                        break;
                                    }
                                }
                                if drained.is_err() {
                                    break drained;
                                }
                            }
                            previous_keys = keys;
                        }
                        writing.push_back(store(pending, position));
                        continue;
                    }
                    Some(done) = writing.next(), if !writing.is_empty() => done,
                }
            } else {
                match writing.next().await {
                    Some(done) => done,
                    None => break Ok(()),
                }
            };
            if let Err(e) = settle(done, &mut summary, progress) {
                break Err(e);
            }
        };
        // Dropping the receiver stops the reader at its next batch when storing failed
        // (and a batch still being written is undone with its transaction).
        drop(writing);
        drop(received);
        let parsed = parser
            .await
            .map_err(|e| AppError::Internal(format!("the reader stopped: {e}")))?;
        stored?;
        let parsed = parsed?;
        summary.rows = parsed.rows;
        summary.rejected += parsed.rejected;
        summary.rejections.extend(parsed.rejections);
        Ok(summary)
    }

    /// Imports the contacts of a vCard file as customers. A card's `UID` is its external
    /// id; a card without one gets an id derived from its name, email and phone, so
    /// importing the file again adds nothing. Rejections name the line of the card's
    /// `BEGIN:VCARD`.
    async fn import_vcard<R: Read>(
        &self,
        actor: &Actor,
        input: R,
        encoding: Encoding,
        batch: usize,
    ) -> AppResult<Summary> {
        let mut text = String::new();
        decode(input, encoding)
            .read_to_string(&mut text)
            .map_err(|e| AppError::field("file", format!("could not be read: {e}")))?;
        let mut summary = Summary::default();
        let mut pending = Pending::default();
        let today = Utc::now().date_naive();
        for card in tenure_domain::vcard::parse(&text) {
            summary.rows += 1;
            let card = match card {
                Ok(c) => c,
                Err((line, reason)) => {
                    summary.rejected += 1;
                    summary.rejections.push(Rejection {
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
                    summary
                        .rejections
                        .extend(errors.into_iter().map(|(column, reason)| Rejection {
                            line: card.line,
                            column,
                            reason,
                        }));
                }
            }
            if pending.len() >= batch {
                pending.flush(self, actor, &mut summary).await?;
            }
        }
        pending.flush(self, actor, &mut summary).await?;
        Ok(summary)
    }
}

/// What reading a file found, besides the rows handed on.
#[derive(Default)]
struct Parsed {
    rows: u64,
    rejected: u64,
    rejections: Vec<Rejection>,
}

/// Reads and checks every row, handing valid rows on in batches of `batch` (with the byte
/// position reached) and keeping the rejected ones.
fn parse_rows(
    kind: Kind,
    text: impl Read,
    batch: usize,
    ctx: &RowContext<'_>,
    mut send: impl FnMut(Pending, u64) -> AppResult<()>,
) -> AppResult<Parsed> {
    let unreadable = |e: &dyn std::fmt::Display| {
        AppError::field("file", format!("the header line could not be read: {e}"))
    };
    // The header line decides the delimiter; it is read again by the CSV reader.
    let mut text = std::io::BufReader::new(CrlfToLf::new(text));
    let mut first = Vec::new();
    text.read_until(b'\n', &mut first)
        .map_err(|e| unreadable(&e))?;
    let delimiter = ctx
        .format
        .delimiter
        .unwrap_or_else(|| sheet::detect_delimiter(&String::from_utf8_lossy(&first)));
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(std::io::Cursor::new(first).chain(text));
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| unreadable(&e))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_owned())
        .collect();
    let columns = resolve_columns(kind, &headers, &ctx.format.columns)?;

    let mut summary = Parsed::default();
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
                summary.rejections.push(Rejection {
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
                .map(|v| crate::export::spreadsheet_text(v.trim()))
                .filter(|v| !v.is_empty())
        };
        let mut errors: Errors = Vec::new();
        match kind {
            Kind::Customers => {
                if let Some(c) = customer_row(&get, ctx, &mut errors) {
                    pending.customers.push(c);
                }
            }
            Kind::Orders => {
                if let Some(p) = purchase_row(&get, ctx, ORDER_COLUMNS, &mut errors) {
                    pending.purchases.push(p);
                }
            }
            Kind::Purchases => {
                if let Some(mut p) = purchase_row(&get, ctx, PURCHASE_COLUMNS, &mut errors) {
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
            Kind::Interactions => {
                if let Some(i) = interaction_row(&get, ctx, &mut errors) {
                    pending.interactions.push(i);
                }
            }
            Kind::OrderLines => {
                if let Some(l) = order_line_row(&get, ctx, &mut errors) {
                    pending.lines.push(l);
                    pending.line_numbers.push(line);
                }
            }
            Kind::Products => {
                if let Some(p) = product_row(&get, ctx, &mut errors) {
                    pending.products.push(p);
                }
            }
            Kind::Tickets => {
                if let Some(t) = ticket_row(&get, ctx, line, &mut errors) {
                    pending.tickets.push(t);
                }
            }
            Kind::SurveyResponses => {
                if let Some(r) = response_row(&get, ctx, line, &mut errors) {
                    pending.responses.push(r);
                }
            }
            Kind::Vcard => {}
        }
        if !errors.is_empty() {
            summary.rejected += 1;
            summary
                .rejections
                .extend(errors.into_iter().map(|(column, reason)| Rejection {
                    line,
                    column,
                    reason,
                }));
        }
        if pending.len() >= batch {
            // The rows of the last customer (or order) go with the next batch, so that
            // batches of a sorted file name distinct ones and can be written at once.
            let next = pending.split_off_last_group();
            send(
                std::mem::replace(&mut pending, next),
                reader.position().byte(),
            )?;
        }
    }
    send(pending, reader.position().byte())?;
    Ok(summary)
}

/// Where each of Tenure's columns is in the file: named by `--map`, by its own name, or by
/// a common alias (compared loosely: case, spaces and underscores aside). Fails naming
/// what is missing and what the file has.
fn resolve_columns(
    kind: Kind,
    headers: &[String],
    mapped: &[(String, String)],
) -> AppResult<HashMap<&'static str, usize>> {
    let keys: Vec<String> = headers.iter().map(|h| sheet::header_key(h)).collect();
    let position = |name: &str| {
        let key = sheet::header_key(name);
        keys.iter().position(|k| *k == key)
    };
    let mut columns = HashMap::new();
    for (field, header) in mapped {
        let Some(&column) = kind.columns().iter().find(|c| *c == field) else {
            return Err(AppError::field(
                "map",
                format!(
                    "{field:?} is not a column of this kind of file; the columns are: {}",
                    kind.columns().join(", ")
                ),
            ));
        };
        let Some(i) = position(header) else {
            return Err(AppError::field(
                "map",
                format!(
                    "the file has no column {header:?} (its header is: {})",
                    headers.join(",")
                ),
            ));
        };
        columns.insert(column, i);
    }
    for &column in kind.columns() {
        if columns.contains_key(column) {
            continue;
        }
        let found = position(column).or_else(|| {
            kind.aliases(column)
                .iter()
                .find_map(|alias| position(alias))
        });
        if let Some(i) = found
            && !columns.values().any(|&taken| taken == i)
        {
            columns.insert(column, i);
        }
    }
    let missing: Vec<&str> = kind
        .required_columns()
        .iter()
        .copied()
        .filter(|c| !columns.contains_key(c))
        .collect();
    if !missing.is_empty() {
        return Err(AppError::field(
            "file",
            format!(
                "lacks the column(s) {} (its header is: {}); name them with --map {}",
                missing.join(", "),
                headers.join(","),
                missing
                    .iter()
                    .map(|c| format!("{c}=HEADER"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ));
    }
    Ok(columns)
}

/// What reading a row needs: the input rules' context and how the file writes values.
struct RowContext<'a> {
    input: InputContext<'a>,
    format: &'a Format,
}

impl<'a> std::ops::Deref for RowContext<'a> {
    type Target = InputContext<'a>;
    fn deref(&self) -> &InputContext<'a> {
        &self.input
    }
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
    let mut c = Collector::new();
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

/// A task that is stopped when its handle is dropped (a batch still being written when the
/// import fails is undone with its transaction).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Takes a stored batch's part of the summary, in file order, and reports the progress.
fn settle(
    (part, position): (AppResult<Summary>, u64),
    summary: &mut Summary,
    progress: &mut (impl FnMut(u64) + Send),
) -> AppResult<()> {
    let part = part?;
    summary.imported += part.imported;
    summary.skipped += part.skipped;
    summary.created += part.created;
    summary.rejected += part.rejected;
    summary.rejections.extend(part.rejections);
    progress(position);
    Ok(())
}

/// Hashes of the keys of a batch's rows: two batches whose sets meet may name the same row.
/// (A hash collision only makes a batch wait for the one before it.)
type KeySet = std::collections::HashSet<u64>;

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
    tickets: Vec<crate::service::ImportedTicket>,
    responses: Vec<crate::service::ImportedResponse>,
}

impl Pending {
    /// The keys that name this batch's rows (see [`KeySet`]).
    fn keys(&self) -> KeySet {
        let mut keys = KeySet::with_capacity(self.len());
        let customers = self
            .customers
            .iter()
            .filter_map(|c| c.external_id.as_deref());
        keys.extend(customers.map(|k| stable_hash(&["customer", k])));
        let orders = self.purchases.iter().map(|p| p.order_external_id.as_str());
        keys.extend(orders.map(|k| stable_hash(&["order", k])));
        let interactions = self.interactions.iter().map(|i| i.external_id.as_str());
        keys.extend(interactions.map(|k| stable_hash(&["interaction", k])));
        // Two batches naming one customer might both create it.
        let named = self
            .purchases
            .iter()
            .map(|p| p.customer_external_id.as_str());
        let named = named.chain(
            self.interactions
                .iter()
                .map(|i| i.customer_external_id.as_str()),
        );
        keys.extend(named.map(|k| stable_hash(&["customer", k])));
        for l in &self.lines {
            let line_no = l.line_no.to_string();
            keys.insert(stable_hash(&["line", &l.order_external_id, &line_no]));
        }
        keys
    }

    /// Splits off the rows at the end that belong to the same customer (orders,
    /// interactions) or order (order lines) as the last row, unless every row does.
    fn split_off_last_group(&mut self) -> Pending {
        fn trailing<T, K: PartialEq>(rows: &[T], key: impl Fn(&T) -> K) -> Option<usize> {
            let last = key(rows.last()?);
            let start = rows.iter().rposition(|r| key(r) != last)? + 1;
            Some(start)
        }
        let mut next = Pending::default();
        if let Some(at) = trailing(&self.purchases, |p| p.customer_external_id.clone()) {
            next.purchases = self.purchases.split_off(at);
        }
        if let Some(at) = trailing(&self.interactions, |i| i.customer_external_id.clone()) {
            next.interactions = self.interactions.split_off(at);
        }
        if let Some(at) = trailing(&self.lines, |l| l.order_external_id.clone()) {
            next.lines = self.lines.split_off(at);
            next.line_numbers = self.line_numbers.split_off(at);
        }
        next
    }

    fn len(&self) -> usize {
        self.tickets.len()
            + self.responses.len()
            + self.customers.len()
            + self.purchases.len()
            + self.interactions.len()
            + self.lines.len()
            + self.products.len()
    }

    /// Stores the batch: one transaction (the store's loader's), with its change-log entry.
    async fn flush(&mut self, app: &App, actor: &Actor, summary: &mut Summary) -> AppResult<()> {
        let store = app.store();
        let mut outcome = BatchOutcome::default();
        if !self.customers.is_empty() {
            outcome = store.import_customers(&self.customers, actor).await?;
        }
        if !self.purchases.is_empty() {
            outcome = store.import_purchases(&self.purchases, actor).await?;
        }
        if !self.interactions.is_empty() {
            outcome = store.import_interactions(&self.interactions, actor).await?;
        }
        if !self.products.is_empty() {
            outcome = store.import_products(&self.products, actor).await?;
        }
        if !self.tickets.is_empty() || !self.responses.is_empty() {
            let done = app
                .import_service_batch(
                    actor,
                    std::mem::take(&mut self.tickets),
                    std::mem::take(&mut self.responses),
                )
                .await?;
            summary.imported += done.inserted;
            summary.skipped += done.skipped;
            summary.rejected += done.rejections.len() as u64;
            summary
                .rejections
                .extend(
                    done.rejections
                        .into_iter()
                        .map(|(line, column, reason)| Rejection {
                            line,
                            column: column.into(),
                            reason,
                        }),
                );
        }
        if !self.lines.is_empty() {
            outcome = store.import_order_lines(&self.lines, actor).await?;
            for &i in &outcome.unknown_orders {
                summary.rejections.push(Rejection {
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
        summary.created += outcome.customers_created;
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

/// (column, reason) of each field at fault in a row.
type Errors = Vec<(String, String)>;

fn check<T>(errors: &mut Errors, column: &str, r: Result<T, String>) -> Option<T> {
    r.map_err(|reason| errors.push((column.to_owned(), reason)))
        .ok()
}

/// Checks a domain input with `parse`, naming its field errors after the CSV's columns.
fn with_columns<T>(
    errors: &mut Errors,
    column: impl Fn(&str) -> String,
    parse: impl FnOnce(&mut Collector) -> Option<T>,
) -> Option<T> {
    let mut c = Collector::new();
    let parsed = parse(&mut c);
    let found = c.into_errors();
    if !found.is_empty() {
        errors.extend(found.into_iter().map(|e| (column(&e.field), e.message)));
        return None;
    }
    parsed
}

fn customer_row<'r>(
    get: &impl Fn(&str) -> Option<&'r str>,
    ctx: &RowContext<'_>,
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
    // A birthday as the spreadsheet writes it (1990/5/3, 03.05.1990), in the domain's form.
    let birthday = get("birthday").map(|b| {
        sheet::parse_date(b, ctx.format.dates.as_ref())
            .map_or_else(|_| b.to_owned(), |d| d.format("%Y-%m-%d").to_string())
    });
    let data = with_columns(errors, str::to_owned, |c| {
        Some(
            dc::ProfileInput {
                name: get("name").unwrap_or(""),
                kind,
                external_id: get("external_id"),
                email: get("email"),
                phone: get("phone"),
                birthday: birthday.as_deref(),
                locale: get("locale"),
                region: get("region"),
                acquisition_source: get("acquisition_source"),
                acquisition_channel: get("acquisition_channel"),
                tags,
            }
            .parse(c, ctx.today()),
        )
    });
    if errors.is_empty() { data } else { None }
}

/// The `occurred_at` column, which every row of history has (a date is midnight UTC).
fn required_time<'r>(
    get: &impl Fn(&str) -> Option<&'r str>,
    ctx: &RowContext<'_>,
    errors: &mut Errors,
) -> Option<DateTime<Utc>> {
    time_in(get, ctx, "occurred_at", errors).flatten()
}

/// The time in `column`: `None` when unreadable (reported), `Some(None)` when empty, and
/// reported as required by the callers that need one.
fn time_in<'r>(
    get: &impl Fn(&str) -> Option<&'r str>,
    ctx: &RowContext<'_>,
    column: &str,
    errors: &mut Errors,
) -> Option<Option<DateTime<Utc>>> {
    match get(column) {
        None if column == "occurred_at" || column == "opened_at" || column == "answered_at" => {
            check(errors, column, Err("is required".into()))
        }
        None => Some(None),
        Some(s) => check(
            errors,
            column,
            sheet::parse_time(s, ctx.format.dates.as_ref()).map(Some),
        ),
    }
}

/// A value of a text enum column, or `default` when empty.
fn enum_in<'r, T: std::str::FromStr<Err = String>>(
    get: &impl Fn(&str) -> Option<&'r str>,
    column: &str,
    default: T,
    errors: &mut Errors,
) -> Option<T> {
    match get(column) {
        None => Some(default),
        Some(v) => check(errors, column, v.parse()),
    }
}

fn ticket_row<'r>(
    get: &impl Fn(&str) -> Option<&'r str>,
    ctx: &RowContext<'_>,
    line: u64,
    errors: &mut Errors,
) -> Option<crate::service::ImportedTicket> {
    use tenure_domain::service::{TicketCategory, TicketInput, TicketPriority, TicketStatus};
    let external_id = required_id(get, "external_id", errors);
    let customer = required_id(get, "customer_external_id", errors);
    let opened_at = time_in(get, ctx, "opened_at", errors).flatten();
    let first_response_at = time_in(get, ctx, "first_response_at", errors);
    let resolved_at = time_in(get, ctx, "resolved_at", errors);
    let category = enum_in(get, "category", TicketCategory::Other, errors);
    let priority = enum_in(get, "priority", TicketPriority::Normal, errors);
    let channel = enum_in(
        get,
        "channel",
        tenure_domain::customer::Channel::Phone,
        errors,
    );
    let status = enum_in(get, "status", TicketStatus::Closed, errors);
    if !errors.is_empty() {
        return None;
    }
    let fields = with_columns(errors, str::to_owned, |c| {
        TicketInput {
            external_id: external_id.clone(),
            // The customer is resolved from customer_external_id when the batch is stored.
            customer_id: 1,
            subject: get("subject").unwrap_or("").to_owned(),
            description: get("description").unwrap_or("").to_owned(),
            category: category?,
            priority: priority?,
            channel: channel?,
            assignee_id: None,
            opened_at,
        }
        .parse(ctx)
        .map_err(|e| {
            for f in e.0 {
                c.push(&f.field, f.message);
            }
        })
        .ok()
    })?;
    Some(crate::service::ImportedTicket {
        line,
        customer_external_id: customer?,
        fields,
        history: crate::service::TicketHistory {
            status: status?,
            first_response_at: first_response_at?,
            resolved_at: resolved_at?,
        },
    })
}

fn response_row<'r>(
    get: &impl Fn(&str) -> Option<&'r str>,
    ctx: &RowContext<'_>,
    line: u64,
    errors: &mut Errors,
) -> Option<crate::service::ImportedResponse> {
    let external_id = required_id(get, "external_id", errors);
    let customer = required_id(get, "customer_external_id", errors);
    let answered_at = time_in(get, ctx, "answered_at", errors).flatten();
    if let Some(at) = answered_at
        && at > ctx.now
    {
        errors.push(("answered_at".into(), "is in the future".into()));
    }
    let survey = check(
        errors,
        "survey",
        get("survey")
            .map(str::to_owned)
            .ok_or_else(|| "is required".to_owned()),
    );
    let score = check(
        errors,
        "score",
        get("score")
            .ok_or_else(|| "is required".to_owned())
            .and_then(|v| {
                v.parse::<i64>()
                    .map_err(|_| format!("{v:?} is not a whole number"))
            }),
    );
    let channel = match get("channel") {
        None => Some(None),
        Some(v) => check(errors, "channel", v.parse().map(Some)),
    };
    if !errors.is_empty() {
        return None;
    }
    Some(crate::service::ImportedResponse {
        line,
        external_id: external_id?,
        customer_external_id: customer?,
        survey: survey?,
        answered_at: answered_at?,
        channel: channel?,
        score: score?,
        comment: get("comment").map(str::to_owned),
    })
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

/// The currency column, or the reporting currency.
fn currency<'r>(
    get: &impl Fn(&str) -> Option<&'r str>,
    ctx: &RowContext<'_>,
    errors: &mut Errors,
) -> Option<String> {
    match get("currency") {
        Some(c) => check(errors, "currency", tenure_domain::money::parse_currency(c)),
        None => Some(ctx.reporting_currency.to_owned()),
    }
}

/// A decimal amount column in minor units of `currency`, as a spreadsheet writes it.
fn amount<'r>(
    get: &impl Fn(&str) -> Option<&'r str>,
    ctx: &RowContext<'_>,
    column: &str,
    currency: Option<&str>,
    errors: &mut Errors,
) -> Option<i64> {
    let cur = currency?;
    let v = get(column)?;
    let parsed = sheet::plain_amount(v, cur, ctx.format.decimal_comma).and_then(|plain| {
        parse_amount(&plain, cur).map_err(|e| {
            if plain == v {
                e
            } else {
                format!("{v:?} (read as {plain}): {e}")
            }
        })
    });
    check(errors, column, parsed)
}

fn purchase_row<'r>(
    get: &impl Fn(&str) -> Option<&'r str>,
    ctx: &RowContext<'_>,
    columns: OrderColumns,
    errors: &mut Errors,
) -> Option<PurchaseRow> {
    let customer = required_id(get, "customer_external_id", errors);
    let occurred_at = required_time(get, ctx, errors);
    let currency = currency(get, ctx, errors);
    if get(columns.amount).is_none() {
        errors.push((columns.amount.into(), "is required".into()));
    }
    let total = amount(get, ctx, columns.amount, currency.as_deref(), errors);
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
    let fields = with_columns(
        errors,
        |f| match f {
            "total_minor" => columns.amount.to_owned(),
            "external_id" => columns.id.to_owned(),
            other => other.to_owned(),
        },
        |c| {
            OrderInput {
                external_id: order_external_id.clone(),
                occurred_at: occurred_at?,
                currency: currency.clone(),
                total_minor: total,
                channel,
                status,
                lines: Vec::new(),
            }
            .parse(c, ctx)
        },
    )?;
    Some(PurchaseRow {
        customer_external_id: customer?,
        order_external_id: fields.external_id.unwrap_or_default(),
        occurred_at: fields.occurred_at,
        total_minor: fields.total_minor,
        currency: fields.currency,
        channel: fields.channel,
        status: fields.status,
    })
}

fn interaction_row<'r>(
    get: &impl Fn(&str) -> Option<&'r str>,
    ctx: &RowContext<'_>,
    errors: &mut Errors,
) -> Option<InteractionRow> {
    let external_id = required_id(get, "external_id", errors);
    let customer = required_id(get, "customer_external_id", errors);
    let occurred_at = required_time(get, ctx, errors);
    let channel = check(errors, "channel", get("channel").unwrap_or("").parse());
    let direction = check(errors, "direction", get("direction").unwrap_or("").parse());
    let kind = get("kind").and_then(|k| check(errors, "kind", k.parse()));
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
    let fields = with_columns(errors, str::to_owned, |c| {
        InteractionInput {
            external_id: None,
            channel: channel?,
            direction: direction?,
            kind,
            subject: get("subject").unwrap_or("").to_owned(),
            body: get("body").unwrap_or("").to_owned(),
            staff_user_id: None,
            buying_signal: buying_signal?,
            occurred_at,
        }
        .parse(c, ctx)
    })?;
    Some(InteractionRow {
        external_id: external_id?,
        customer_external_id: customer?,
        // The customer is resolved from customer_external_id by the store.
        data: fields.for_customer(tenure_domain::ids::CustomerId(0)),
    })
}

fn required_int<'r>(
    get: &impl Fn(&str) -> Option<&'r str>,
    column: &str,
    errors: &mut Errors,
) -> Option<i64> {
    let r = match get(column) {
        None => Err("is required".to_owned()),
        Some(v) => v
            .parse::<i64>()
            .map_err(|_| format!("{v:?} is not a whole number")),
    };
    check(errors, column, r)
}

fn order_line_row<'r>(
    get: &impl Fn(&str) -> Option<&'r str>,
    ctx: &RowContext<'_>,
    errors: &mut Errors,
) -> Option<OrderLineRow> {
    let order = required_id(get, "order_external_id", errors);
    let line_no = required_int(get, "line_no", errors);
    if line_no.is_some_and(|n| n < 1) {
        errors.push(("line_no".into(), "must be at least 1".into()));
    }
    let quantity = required_int(get, "quantity", errors);
    let currency = currency(get, ctx, errors);
    if get("unit_price").is_none() {
        errors.push(("unit_price".into(), "is required".into()));
    }
    let unit_price = amount(get, ctx, "unit_price", currency.as_deref(), errors);
    let total = amount(get, ctx, "total", currency.as_deref(), errors);
    let product = get("product_external_id")
        .and_then(|x| check(errors, "product_external_id", validation::external_id(x)));
    if !errors.is_empty() {
        return None;
    }
    let line = with_columns(
        errors,
        |f| match f {
            "unit_price_minor" => "unit_price".to_owned(),
            "total_minor" => "total".to_owned(),
            other => other.to_owned(),
        },
        |c| {
            OrderLineInput {
                product_id: None,
                description: get("description").unwrap_or("").to_owned(),
                quantity: quantity?,
                unit_price_minor: unit_price?,
                total_minor: total,
            }
            .parse(c, "")
        },
    )?;
    Some(OrderLineRow {
        order_external_id: order?,
        line_no: line_no?,
        product_external_id: product,
        description: line.description,
        quantity: line.quantity,
        unit_price_minor: line.unit_price_minor,
        total_minor: line.total_minor,
    })
}

fn product_row<'r>(
    get: &impl Fn(&str) -> Option<&'r str>,
    ctx: &RowContext<'_>,
    errors: &mut Errors,
) -> Option<ProductRow> {
    let external_id = required_id(get, "external_id", errors);
    let category = get("category").and_then(|c| {
        check(
            errors,
            "category",
            tenure_domain::catalog::parse_category_name(c),
        )
    });
    let currency = currency(get, ctx, errors);
    let price = amount(get, ctx, "price", currency.as_deref(), errors);
    if !errors.is_empty() {
        return None;
    }
    let product = with_columns(
        errors,
        |f| match f {
            "price_minor" => "price".to_owned(),
            other => other.to_owned(),
        },
        |c| {
            ProductInput {
                external_id: external_id.clone(),
                name: get("name").unwrap_or("").to_owned(),
                price_minor: price,
                currency: currency.clone(),
                active: None,
            }
            .parse(c, ctx)
        },
    )?;
    Some(ProductRow {
        external_id: external_id?,
        name: product.name,
        category,
        price_minor: product.price_minor,
        currency: product.currency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RowContext<'static> {
        static PLAIN: std::sync::LazyLock<Format> = std::sync::LazyLock::new(Format::default);
        RowContext {
            input: InputContext {
                now: Utc::now(),
                reporting_currency: "USD",
            },
            format: &PLAIN,
        }
    }

    fn row<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    /// The batches `parse_rows` hands on for `text`, `batch` rows at a time.
    fn batches_of(kind: Kind, text: &str, batch: usize) -> Vec<Pending> {
        let mut out = Vec::new();
        parse_rows(kind, text.as_bytes(), batch, &ctx(), |p, _| {
            out.push(p);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn neighbouring_batches_of_a_sorted_file_name_distinct_rows_and_customers() {
        let mut text = String::from("customer_external_id,occurred_at,amount,order_external_id\n");
        for c in 0..40 {
            for k in 0..c % 5 + 1 {
                text.push_str(&format!("C{c},2025-03-0{},1.00,O{c}-{k}\n", k + 1));
            }
        }
        let batches = batches_of(Kind::Purchases, &text, 7);
        assert!(batches.len() > 10, "{}", batches.len());
        let rows: usize = batches.iter().map(|b| b.purchases.len()).sum();
        assert_eq!(
            rows,
            (0..40).map(|c| c % 5 + 1).sum::<usize>(),
            "every row once"
        );
        for pair in batches.windows(2) {
            let (last, first) = (pair[0].purchases.last(), pair[1].purchases.first());
            if let (Some(last), Some(first)) = (last, first) {
                assert_ne!(
                    last.customer_external_id, first.customer_external_id,
                    "a customer's rows stay in one batch"
                );
            }
            assert!(
                pair[0].keys().is_disjoint(&pair[1].keys()),
                "can be written at once"
            );
        }

        // An order id again in the next batch, or a customer named in both: they meet.
        let text = "customer_external_id,occurred_at,amount,order_external_id\n\
                    A,2025-03-01,1.00,O1\nA,2025-03-01,1.00,O2\n\
                    B,2025-03-01,1.00,O1\nB,2025-03-01,1.00,O3\n\
                    C,2025-03-01,1.00,O4\nC,2025-03-01,1.00,O5\n\
                    A,2025-03-01,1.00,O6\n";
        let batches = batches_of(Kind::Purchases, text, 2);
        assert_eq!(batches.len(), 4);
        assert!(
            !batches[0].keys().is_disjoint(&batches[1].keys()),
            "O1 twice"
        );
        assert!(batches[1].keys().is_disjoint(&batches[2].keys()));
        assert!(batches[2].keys().is_disjoint(&batches[3].keys()));
        assert!(
            !batches[0].keys().is_disjoint(&batches[3].keys()),
            "A in both"
        );

        // Order lines: an order's lines stay together, and their line numbers with them.
        let text = "order_external_id,line_no,product_external_id,description,quantity,unit_price,total\n\
                    O1,1,P1,Tea,1,1.00,1.00\nO1,2,P1,Tea,1,1.00,1.00\nO2,1,P1,Tea,1,1.00,1.00\n\
                    O2,2,P1,Tea,1,1.00,1.00\nO2,3,P1,Tea,1,1.00,1.00\nO3,1,P1,Tea,1,1.00,1.00\n";
        let batches = batches_of(Kind::OrderLines, text, 3);
        let shape: Vec<Vec<(String, u64)>> = batches
            .iter()
            .map(|b| {
                b.lines
                    .iter()
                    .zip(&b.line_numbers)
                    .map(|(l, &n)| (l.order_external_id.clone(), n))
                    .collect()
            })
            .collect();
        let o = |id: &str, n: u64| (id.to_owned(), n);
        assert_eq!(
            shape,
            [
                vec![o("O1", 2), o("O1", 3)],
                vec![o("O2", 4), o("O2", 5), o("O2", 6)],
                vec![o("O3", 7)]
            ]
        );
    }

    #[test]
    fn imported_amounts_follow_the_api_rules() {
        let mut errors = Vec::new();
        let get = row(&[
            ("customer_external_id", "C1"),
            ("occurred_at", "2024-01-05"),
            ("amount", "-3.00"),
        ]);
        assert!(purchase_row(&get, &ctx(), PURCHASE_COLUMNS, &mut errors).is_none());
        assert_eq!(errors[0].0, "amount", "{errors:?}");

        // 5e18 minor units is beyond the cap a single order may have.
        let mut errors = Vec::new();
        let get = row(&[
            ("customer_external_id", "C1"),
            ("occurred_at", "2024-01-05"),
            ("amount", "50000000000000000.00"),
        ]);
        assert!(purchase_row(&get, &ctx(), PURCHASE_COLUMNS, &mut errors).is_none());
        assert_eq!(errors[0].0, "amount", "{errors:?}");
    }

    #[test]
    fn an_overflowing_line_total_is_rejected_not_saturated() {
        let mut errors = Vec::new();
        let get = row(&[
            ("order_external_id", "O1"),
            ("line_no", "1"),
            ("quantity", "1000000"),
            ("unit_price", "999999999999.99"),
        ]);
        assert!(order_line_row(&get, &ctx(), &mut errors).is_none());
        assert_eq!(errors[0].0, "total", "{errors:?}");
    }

    #[test]
    fn a_purchase_from_the_future_is_rejected_by_the_shared_rule() {
        let mut errors = Vec::new();
        let get = row(&[
            ("customer_external_id", "C1"),
            ("occurred_at", "2999-01-01"),
            ("amount", "3.00"),
        ]);
        assert!(purchase_row(&get, &ctx(), PURCHASE_COLUMNS, &mut errors).is_none());
        assert_eq!(
            errors,
            [(
                "occurred_at".to_owned(),
                "must not be in the future".to_owned()
            )]
        );
    }
}
