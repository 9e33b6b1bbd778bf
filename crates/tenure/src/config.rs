//! Typed configuration: defaults that work with no setup, overridden by `TENURE_`-prefixed
//! environment variables (and `DATABASE_URL`), overridden by flags.

use std::time::Duration;

use clap::Args;
use tenure_app::StoreOptions;

/// Where the data lives.
#[derive(Args, Clone)]
pub struct DbArgs {
    /// sqlite://FILE or postgres://USER@HOST/DB. The default is a SQLite file in the
    /// working directory, created on first use.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://tenure.db?mode=rwc",
        hide_env_values = true
    )]
    pub database_url: String,
    /// Most database connections the server opens (default: four per CPU core; more
    /// only adds contention on a small machine).
    #[arg(long, env = "TENURE_DB_MAX_CONNECTIONS", default_value_t = default_pool_size())]
    pub db_max_connections: u32,
    /// The currency per-customer spend is summed in (ISO 4217).
    #[arg(long, env = "TENURE_CURRENCY", default_value = "USD")]
    pub currency: String,
    /// A PostgreSQL streaming replica of the database: list pages, segment counts and
    /// reports read from it; writes, and pages of a record just written, stay on the
    /// primary.
    #[arg(long, env = "TENURE_READ_DATABASE_URL", hide_env_values = true)]
    pub read_database_url: Option<String>,
}

fn default_pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    u32::try_from(cores * 4).unwrap_or(32).clamp(4, 32)
}

impl DbArgs {
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            url: self.database_url.clone(),
            max_connections: self.db_max_connections.max(1),
            acquire_timeout: Duration::from_secs(3),
            reporting_currency: self.currency.trim().to_ascii_uppercase(),
            read_url: self
                .read_database_url
                .clone()
                .filter(|u| !u.trim().is_empty()),
        }
    }
}

/// Logs to stderr as `directives` say (`RUST_LOG`, when set, instead);
/// `TENURE_LOG_FORMAT=json` gives one JSON object a line.
pub fn init_logging(directives: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(directives));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("TENURE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
