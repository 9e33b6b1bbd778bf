//! Synthetic businesses: customers acquired in monthly cohorts over three years, each
//! buying by the BG/NBD process (a Poisson purchase rate drawn from a gamma distribution,
//! dropping out after any purchase with a probability drawn from a beta distribution) and
//! spending by the Gamma-Gamma process; a product catalogue with categories, customer
//! preferences and complementary products (so "bought X also bought Y" has something to
//! find); Chinese (simplified and traditional) and English names; channels, birthdays and
//! interactions. The true parameters go to `manifest.json`, so model fits can be checked
//! against the truth.
//!
//! Architecture invariant: the output is a pure function of the parameters. Customers are
//! generated in fixed-size chunks, each from its own random stream derived from the seed,
//! and written in order — the same seed gives the same bytes whatever the thread count.

mod catalog;
mod csv;
mod names;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use chrono::{Datelike, Duration, NaiveDate};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, Exp, Gamma, Poisson};
use rayon::prelude::*;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::csv::Line;
pub use crate::names::Person;

/// The BG/NBD and Gamma-Gamma parameters customers are drawn from. Time is in days;
/// spend is in major units of the currency.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TrueModel {
    /// Shape of the gamma distribution of purchase rates.
    pub r: f64,
    /// Rate (in days) of the gamma distribution of purchase rates.
    pub alpha: f64,
    /// Beta distribution of the dropout probability.
    pub a: f64,
    pub b: f64,
    /// Gamma-Gamma: shape of each transaction's value.
    pub p: f64,
    /// Gamma-Gamma: shape and rate of the customer's value-rate.
    pub q: f64,
    pub gamma: f64,
}

impl Default for TrueModel {
    fn default() -> Self {
        // About ten purchases per customer over the three years, $50 a purchase on average
        // (p·γ/(q−1) = 6·25/3).
        TrueModel {
            r: 1.1,
            alpha: 28.0,
            a: 0.9,
            b: 14.0,
            p: 6.0,
            q: 4.0,
            gamma: 25.0,
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Params {
    pub customers: u64,
    pub seed: u64,
    /// First day of acquisition; the business is observed for `days` days from it.
    pub start: NaiveDate,
    pub days: i64,
    pub currency: &'static str,
    pub model: TrueModel,
}

impl Params {
    pub fn new(customers: u64, seed: u64) -> Self {
        Params {
            customers,
            seed,
            start: NaiveDate::from_ymd_opt(2023, 1, 1).unwrap_or_default(),
            days: 3 * 365 + 1,
            currency: "USD",
            model: TrueModel::default(),
        }
    }

    fn end(&self) -> NaiveDate {
        self.start + Duration::days(self.days)
    }
}

/// How many rows of each file were written.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub customers: u64,
    pub orders: u64,
    pub order_lines: u64,
    pub interactions: u64,
    pub products: u64,
}

#[derive(Serialize)]
struct Manifest<'a> {
    generator: &'static str,
    version: &'static str,
    seed: u64,
    customers: u64,
    /// The observation window: acquisition starts on `start`; nothing happens on or after `end`.
    start: String,
    end: String,
    currency: &'a str,
    time_unit: &'static str,
    /// BG/NBD with time in days, as drawn.
    bgnbd: Bgnbd,
    /// The same in weeks (α scales with time; r, a, b do not).
    bgnbd_weeks: Bgnbd,
    gamma_gamma: GammaGamma,
    counts: Counts,
    files: [&'static str; 5],
    notes: &'static str,
}

#[derive(Serialize)]
struct Bgnbd {
    r: f64,
    alpha: f64,
    a: f64,
    b: f64,
}

#[derive(Serialize)]
struct GammaGamma {
    p: f64,
    q: f64,
    gamma: f64,
}

/// The person of customer `i` of `seed` alone (name, phone, locale, region), for quick
/// loads that need people but not their purchases.
pub fn person(seed: u64, i: u64) -> Person {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x000B_AD5E_ED0F_CAFE);
    rng.set_stream(i);
    names::person(&mut rng)
}

/// Customers per chunk: each chunk has its own random stream.
const CHUNK: u64 = 4096;
/// Chunks generated in parallel before being written in order.
const WINDOW: u64 = 32;

/// The text of one chunk's rows, per file.
#[derive(Default)]
struct ChunkOut {
    customers: Vec<u8>,
    orders: Vec<u8>,
    lines: Vec<u8>,
    interactions: Vec<u8>,
    counts: Counts,
}

/// Writes `customers.csv`, `orders.csv`, `order_lines.csv`, `interactions.csv`,
/// `products.csv` and `manifest.json` into `dir` (created if missing).
pub fn generate(params: &Params, dir: &Path) -> std::io::Result<Counts> {
    std::fs::create_dir_all(dir)?;
    let open = |name: &str| -> std::io::Result<BufWriter<File>> {
        Ok(BufWriter::with_capacity(
            1 << 20,
            File::create(dir.join(name))?,
        ))
    };
    let catalog = Catalog::new(params.seed);
    let mut products = open("products.csv")?;
    catalog.write_csv(&mut products, params.currency)?;
    products.flush()?;

    let mut customers = open("customers.csv")?;
    let mut orders = open("orders.csv")?;
    let mut lines = open("order_lines.csv")?;
    let mut interactions = open("interactions.csv")?;
    customers.write_all(
        b"external_id,kind,name,email,phone,birthday,locale,region,acquisition_source,acquisition_channel,tags,created_at\n",
    )?;
    orders.write_all(
        b"external_id,customer_external_id,occurred_at,currency,total,channel,status\n",
    )?;
    lines.write_all(
        b"order_external_id,line_no,product_external_id,description,quantity,unit_price,total\n",
    )?;
    interactions
        .write_all(b"external_id,customer_external_id,occurred_at,channel,direction,kind,subject,buying_signal\n")?;

    let ctx = Context::new(params, &catalog);
    let chunks = params.customers.div_ceil(CHUNK);
    let mut counts = Counts {
        products: catalog.len() as u64,
        ..Counts::default()
    };
    let mut first = 0;
    while first < chunks {
        let last = (first + WINDOW).min(chunks);
        let outs: Vec<ChunkOut> = (first..last)
            .into_par_iter()
            .map(|c| ctx.chunk(c))
            .collect();
        for out in outs {
            customers.write_all(&out.customers)?;
            orders.write_all(&out.orders)?;
            lines.write_all(&out.lines)?;
            interactions.write_all(&out.interactions)?;
            counts.customers += out.counts.customers;
            counts.orders += out.counts.orders;
            counts.order_lines += out.counts.order_lines;
            counts.interactions += out.counts.interactions;
        }
        first = last;
    }
    for mut w in [customers, orders, lines, interactions] {
        w.flush()?;
    }

    let m = params.model;
    let manifest = Manifest {
        generator: "tenure generate",
        version: env!("CARGO_PKG_VERSION"),
        seed: params.seed,
        customers: params.customers,
        start: params.start.to_string(),
        end: params.end().to_string(),
        currency: params.currency,
        time_unit: "days",
        bgnbd: Bgnbd {
            r: m.r,
            alpha: m.alpha,
            a: m.a,
            b: m.b,
        },
        bgnbd_weeks: Bgnbd {
            r: m.r,
            alpha: m.alpha / 7.0,
            a: m.a,
            b: m.b,
        },
        gamma_gamma: GammaGamma {
            p: m.p,
            q: m.q,
            gamma: m.gamma,
        },
        counts,
        files: [
            "customers.csv",
            "orders.csv",
            "order_lines.csv",
            "interactions.csv",
            "products.csv",
        ],
        notes: "Each customer's first order is their acquisition; repeat purchases follow BG/NBD in days \
                from it until dropout or the end of the window. Order totals follow Gamma-Gamma in major \
                units, rounded to cents, and are split across the order's lines.",
    };
    let mut f = open("manifest.json")?;
    serde_json::to_writer_pretty(&mut f, &manifest)?;
    f.write_all(b"\n")?;
    f.flush()?;
    Ok(counts)
}

/// Everything a chunk needs, shared read-only between threads.
struct Context<'a> {
    params: &'a Params,
    catalog: &'a Catalog,
    rate: Gamma<f64>,
    dropout: Beta<f64>,
    value_rate: Gamma<f64>,
    /// Cumulative weights of the acquisition months.
    cohorts: Vec<(NaiveDate, i64, f64)>,
    day_text: Vec<String>,
}

impl<'a> Context<'a> {
    fn new(params: &'a Params, catalog: &'a Catalog) -> Self {
        let m = params.model;
        // Distribution parameters are constants checked by the tests; fall back to a
        // degenerate distribution rather than panic if someone passes nonsense.
        let rate = Gamma::new(m.r, 1.0 / m.alpha).unwrap_or_else(|_| fallback_gamma());
        let dropout = Beta::new(m.a, m.b).unwrap_or_else(|_| fallback_beta());
        let value_rate = Gamma::new(m.q, 1.0 / m.gamma).unwrap_or_else(|_| fallback_gamma());
        // Monthly cohorts: steady growth with a December peak and a February dip.
        let mut cohorts = Vec::new();
        let mut total = 0.0;
        let mut month = params.start;
        while month < params.end() {
            let next = add_month(month);
            let days = (next.min(params.end()) - month).num_days();
            let growth = 1.0 + 0.02 * cohorts.len() as f64;
            let season = match month.month() {
                12 => 1.5,
                11 => 1.25,
                2 => 0.8,
                _ => 1.0,
            };
            total += growth * season * days as f64;
            cohorts.push((month, days, total));
            month = next;
        }
        for c in &mut cohorts {
            c.2 /= total;
        }
        let day_text = (0..=params.days)
            .map(|d| {
                (params.start + Duration::days(d))
                    .format("%Y-%m-%d")
                    .to_string()
            })
            .collect();
        Context {
            params,
            catalog,
            rate,
            dropout,
            value_rate,
            cohorts,
            day_text,
        }
    }

    fn chunk(&self, chunk: u64) -> ChunkOut {
        let mut rng = ChaCha8Rng::seed_from_u64(self.params.seed);
        rng.set_stream(chunk);
        let mut out = ChunkOut::default();
        let first = chunk * CHUNK;
        let last = (first + CHUNK).min(self.params.customers);
        for i in first..last {
            self.customer(&mut rng, i, &mut out);
        }
        out
    }

    /// A time `t` (days since start, fractional) as RFC 3339.
    fn time(&self, t: f64, line: &mut Line) {
        let day = (t.floor() as i64).clamp(0, self.params.days - 1);
        let secs = ((t - t.floor()) * 86_400.0) as u32 % 86_400;
        line.raw(self.day_text.get(day as usize).map_or("", String::as_str));
        line.raw_fmt_time(secs);
    }

    fn customer(&self, rng: &mut ChaCha8Rng, i: u64, out: &mut ChunkOut) {
        let p = self.params;
        let id = format!("C{i:08}");
        let person = names::person(rng);
        // Acquisition day: pick a cohort month by weight, then a day within it.
        let u: f64 = rng.random();
        let Some(&(month, days, _)) = self
            .cohorts
            .iter()
            .find(|c| c.2 >= u)
            .or(self.cohorts.last())
        else {
            return;
        };
        let t0 = (month - p.start).num_days() as f64 + rng.random::<f64>() * days as f64;

        let channel = pick(
            rng,
            &[
                ("store", 40),
                ("online", 35),
                ("app", 15),
                ("phone", 5),
                ("marketplace", 5),
            ],
        );
        let source = pick(
            rng,
            &[
                ("organic", 35),
                ("referral", 20),
                ("search", 20),
                ("social", 15),
                ("event", 10),
            ],
        );
        let mut line = Line::new(&mut out.customers);
        line.field(&id);
        line.field("person");
        line.field(&person.name);
        line.field(&format!("{}@example.com", id.to_ascii_lowercase()));
        line.field(&person.phone);
        if rng.random_bool(0.8) {
            let year = 1950 + rng.random_range(0..56);
            let ordinal = rng.random_range(1..=365);
            let b = NaiveDate::from_yo_opt(year, ordinal).unwrap_or_default();
            line.field(&b.format("%Y-%m-%d").to_string());
        } else {
            line.field("");
        }
        line.field(person.locale);
        line.field(person.region);
        line.field(source);
        line.field(channel);
        line.field(if rng.random_bool(0.05) { "vip" } else { "" });
        self.time(t0 - 0.01, &mut line);
        line.end();
        out.counts.customers += 1;

        // BG/NBD: a purchase rate and a dropout probability for life; purchases at
        // exponential intervals; after each repeat purchase the customer may leave.
        let lambda = self.rate.sample(rng).max(1e-9);
        let dropout = self.dropout.sample(rng);
        let gap = Exp::new(lambda).ok();
        // Gamma-Gamma: a value-rate for life; each purchase's value from it.
        let nu = self.value_rate.sample(rng).max(1e-9);
        let value = Gamma::new(p.model.p, 1.0 / nu).ok();
        let favourites = self.catalog.favourites(rng);
        let mut t = t0;
        let mut n = 0u32;
        loop {
            let total_cents = value
                .as_ref()
                .map_or(100, |v| ((v.sample(rng) * 100.0).round() as i64).max(1));
            n += 1;
            let order_id = format!("{id}-{n:04}");
            self.order(
                rng,
                &id,
                &order_id,
                t,
                total_cents,
                &favourites,
                channel,
                out,
            );
            let Some(gap) = gap.as_ref() else { break };
            t += gap.sample(rng);
            if t >= p.days as f64 {
                break;
            }
            // Dropout follows each repeat purchase; the first purchase (acquisition) never
            // ends the relationship by itself.
            if n > 1 && rng.random_bool(dropout) {
                break;
            }
        }

        // Interactions: a few contacts over the customer's life.
        let k = Poisson::new(1.6).map_or(0.0, |d| d.sample(rng)) as u32;
        for j in 0..k {
            let at = t0 + rng.random::<f64>() * (p.days as f64 - t0);
            let (ch, dir, kind, subject) = *names::INTERACTIONS
                .get(rng.random_range(0..names::INTERACTIONS.len()))
                .unwrap_or(&names::INTERACTIONS[0]);
            let mut line = Line::new(&mut out.interactions);
            line.field(&format!("{id}-I{j:03}"));
            line.field(&id);
            self.time(at, &mut line);
            line.field(ch);
            line.field(dir);
            line.field(kind);
            line.field(subject);
            line.field(if kind == "inquiry" && rng.random_bool(0.4) {
                "true"
            } else {
                "false"
            });
            line.end();
            out.counts.interactions += 1;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn order(
        &self,
        rng: &mut ChaCha8Rng,
        customer: &str,
        order_id: &str,
        t: f64,
        total_cents: i64,
        favourites: &[usize; 2],
        channel: &str,
        out: &mut ChunkOut,
    ) {
        let mut line = Line::new(&mut out.orders);
        line.field(order_id);
        line.field(customer);
        self.time(t, &mut line);
        line.field(self.params.currency);
        line.money(total_cents);
        line.field(if rng.random_bool(0.8) {
            channel
        } else {
            "online"
        });
        line.field("completed");
        line.end();
        out.counts.orders += 1;

        // Lines: products from the customer's favourite categories and their complements;
        // the order total is split across them.
        let mut items = self.catalog.basket(rng, favourites);
        items.truncate(total_cents.clamp(1, 5) as usize);
        let weights: Vec<f64> = items.iter().map(|_| 0.2 + rng.random::<f64>()).collect();
        let sum: f64 = weights.iter().sum();
        let mut left = total_cents;
        for (k, (product, w)) in items.iter().zip(&weights).enumerate() {
            let last = k + 1 == items.len();
            let share = if last {
                left
            } else {
                (((total_cents as f64) * w / sum).round() as i64)
                    .clamp(1, left - (items.len() - k - 1) as i64)
            };
            left -= share;
            let quantity = if share % 2 == 0 && share >= 200 && rng.random_bool(0.3) {
                2
            } else {
                1
            };
            let p = self.catalog.product(*product);
            let mut l = Line::new(&mut out.lines);
            l.field(order_id);
            l.int(k as i64 + 1);
            l.field(&p.external_id);
            l.field(&p.name);
            l.int(quantity);
            l.money(share / quantity);
            l.money(share);
            l.end();
            out.counts.order_lines += 1;
        }
    }
}

fn add_month(d: NaiveDate) -> NaiveDate {
    let (y, m) = if d.month() == 12 {
        (d.year() + 1, 1)
    } else {
        (d.year(), d.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(d)
}

fn pick<'s>(rng: &mut ChaCha8Rng, options: &[(&'s str, u32)]) -> &'s str {
    let total: u32 = options.iter().map(|o| o.1).sum();
    let mut x = rng.random_range(0..total.max(1));
    for (name, w) in options {
        if x < *w {
            return name;
        }
        x -= w;
    }
    options.first().map_or("", |o| o.0)
}

fn fallback_gamma() -> Gamma<f64> {
    match Gamma::new(1.0, 1.0) {
        Ok(g) => g,
        Err(_) => unreachable!("Gamma(1, 1) is valid"),
    }
}

fn fallback_beta() -> Beta<f64> {
    match Beta::new(1.0, 1.0) {
        Ok(b) => b,
        Err(_) => unreachable!("Beta(1, 1) is valid"),
    }
}
