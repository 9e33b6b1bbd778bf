//! `tenure`: the command-line tool and server of Tenure, a retention-first CRM.

mod analytics;
mod config;
mod duplicates;
mod export;
mod import;
mod seed;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use tenure_domain::access::Role;
use tenure_store::Store;

use crate::config::DbArgs;

#[derive(Parser)]
#[command(name = "tenure", version, about = "Tenure, a retention-first CRM")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run migrations and serve the web UI and the API.
    Serve {
        #[command(flatten)]
        db: DbArgs,
        /// Address to listen on.
        #[arg(long, env = "TENURE_ADDR", default_value = "127.0.0.1:8080")]
        addr: String,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Manage staff users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Per-customer aggregates (first and last purchase, orders, spend, last contact).
    Aggregates {
        #[command(subcommand)]
        command: AggregatesCommand,
    },
    /// Import a file: customers, the plain purchase log (`purchases`), orders, order lines,
    /// interactions, products (CSV), or contacts (`vcard`). Rejected rows go to FILE.errors.csv.
    Import {
        #[command(flatten)]
        db: DbArgs,
        kind: import::Kind,
        file: std::path::PathBuf,
        /// The file's character encoding.
        #[arg(long, value_enum, default_value = "utf-8")]
        encoding: import::Encoding,
        /// Rows per transaction.
        #[arg(long, default_value_t = 5000)]
        batch: usize,
    },
    /// Export every record of a kind as CSV with the columns its import takes, or
    /// customers as vCard contacts; to standard output without `--out`.
    Export {
        #[command(flatten)]
        db: DbArgs,
        kind: export::Kind,
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Customer-base models: CLV, P(alive) and churn risk.
    Analytics {
        #[command(subcommand)]
        command: analytics::Command,
    },
    /// Find, merge and unmerge duplicate customers.
    Duplicates {
        #[command(subcommand)]
        command: duplicates::Command,
    },
    /// Load a small generated business into the current database, to look around.
    Demo {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long, default_value_t = 2_000)]
        customers: u64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Write a synthetic business (customers, orders, order lines, interactions, products)
    /// as CSV files with a manifest of the true model parameters. Same seed, same bytes.
    Generate {
        #[arg(long, default_value_t = 10_000)]
        customers: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value = "tenure-data")]
        out: std::path::PathBuf,
    },
    /// Load N synthetic customers quickly (for benchmarks and trying things out).
    #[command(hide = true)]
    SeedCustomers {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long, default_value_t = 1000)]
        count: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a staff user; prompts for the password when not given.
    Create {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        email: String,
        /// admin, manager, agent, analyst or read_only.
        #[arg(long)]
        role: String,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long)]
        password: Option<String>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API token and print it once, alone on the last line.
    Create {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        name: String,
        /// admin, manager, agent, analyst or read_only.
        #[arg(long)]
        role: String,
    },
}

#[derive(Subcommand)]
enum AggregatesCommand {
    /// Recompute every customer's aggregates from raw orders and interactions.
    Rebuild {
        #[command(flatten)]
        db: DbArgs,
    },
}

fn parse_role(s: &str) -> Result<Role> {
    s.replace('-', "_")
        .parse::<Role>()
        .map_err(anyhow::Error::msg)
        .context("--role")
}

pub(crate) async fn open(db: &DbArgs) -> Result<Store> {
    let store = Store::connect(&db.store_options())
        .await
        .with_context(|| format!("opening {}", tenure_store::redact_url(&db.database_url)))?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    config::init_logging();
    match cli.command {
        Command::Serve { db, addr } => serve(db, addr).await,
        Command::Migrate { db } => {
            open(&db).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Create {
                    db,
                    email,
                    role,
                    name,
                    password,
                },
        } => {
            let role = parse_role(&role)?;
            let email = tenure_domain::customer::parse_email(&email)
                .map_err(anyhow::Error::msg)
                .context("--email")?;
            let password = match password {
                Some(p) => p,
                None => rpassword::prompt_password("Password: ").context("reading the password")?,
            };
            if password.chars().count() < tenure_http::password::MIN_LEN {
                bail!(
                    "the password must be at least {} characters",
                    tenure_http::password::MIN_LEN
                );
            }
            let hash = tenure_http::password::hash(&password).map_err(anyhow::Error::msg)?;
            let store = open(&db).await?;
            let user = store
                .create_user(&email, &name, role, Some(&hash))
                .await
                .context("creating the user")?;
            println!(
                "created user {} <{}> with role {}",
                user.id, user.email, user.role
            );
            Ok(())
        }
        Command::Token {
            command: TokenCommand::Create { db, name, role },
        } => {
            let role = parse_role(&role)?;
            let store = open(&db).await?;
            let token = new_token();
            let id = store
                .create_token(&name, role, &token)
                .await
                .context("storing the token")?;
            println!("created token {id} {name:?} with role {role}; it is shown only once:");
            println!("{token}");
            Ok(())
        }
        Command::Aggregates {
            command: AggregatesCommand::Rebuild { db },
        } => {
            let store = open(&db).await?;
            let started = std::time::Instant::now();
            let n = store
                .rebuild_customer_stats()
                .await
                .context("rebuilding aggregates")?;
            println!(
                "rebuilt aggregates of {n} customers in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Import {
            db,
            kind,
            file,
            encoding,
            batch,
        } => {
            let store = open(&db).await?;
            import::run(&store, kind, &file, encoding, batch.max(1)).await
        }
        Command::Export { db, kind, out } => {
            let store = open(&db).await?;
            export::run(&store, kind, out.as_deref()).await
        }
        Command::Duplicates { command } => duplicates::run(command).await,
        Command::Analytics { command } => analytics::run(command).await,
        Command::Demo {
            db,
            customers,
            seed,
        } => demo(&db, customers, seed).await,
        Command::Generate {
            customers,
            seed,
            out,
        } => {
            let started = std::time::Instant::now();
            let counts =
                tenure_generate::generate(&tenure_generate::Params::new(customers, seed), &out)
                    .with_context(|| format!("writing into {}", out.display()))?;
            println!(
                "wrote {} customers, {} orders, {} order lines, {} interactions, {} products to {} in {:.1} s",
                counts.customers,
                counts.orders,
                counts.order_lines,
                counts.interactions,
                counts.products,
                out.display(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::SeedCustomers { db, count, seed } => {
            let store = open(&db).await?;
            seed::customers(&store, count, seed).await
        }
    }
}

/// Generates a small business and imports its customers, orders and interactions.
async fn demo(db: &DbArgs, customers: u64, seed: u64) -> Result<()> {
    let started = std::time::Instant::now();
    let store = open(db).await?;
    let dir = std::env::temp_dir().join(format!("tenure-demo-{}", std::process::id()));
    let counts = tenure_generate::generate(&tenure_generate::Params::new(customers, seed), &dir)
        .with_context(|| format!("writing the demo data into {}", dir.display()))?;
    let mut result = Ok(());
    for (kind, file) in [
        (import::Kind::Customers, "customers.csv"),
        (import::Kind::Products, "products.csv"),
        (import::Kind::Orders, "orders.csv"),
        (import::Kind::OrderLines, "order_lines.csv"),
        (import::Kind::Interactions, "interactions.csv"),
    ] {
        let summary =
            import::import(&store, kind, &dir.join(file), import::Encoding::Utf8, 5_000).await;
        match summary {
            Ok(s) if s.rejected == 0 => {}
            Ok(s) => {
                result = Err(anyhow::anyhow!(
                    "{} demo rows of {file} were rejected",
                    s.rejected
                ));
                break;
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    println!(
        "demo business loaded in {:.1} s: {} customers, {} products, {} orders with {} lines, {} interactions (seed {seed})",
        started.elapsed().as_secs_f64(),
        counts.customers,
        counts.products,
        counts.orders,
        counts.order_lines,
        counts.interactions
    );
    println!("next: `tenure token create --name me --role admin`, then `tenure serve`");
    Ok(())
}

/// A new API token: 256 random bits, URL-safe.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("tnr_{hex}")
}

async fn serve(db: DbArgs, addr: String) -> Result<()> {
    let store = open(&db).await?;
    let app = tenure_http::router(tenure_http::AppState::new(store.clone()));
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    tracing::info!(%local, database = %tenure_store::redact_url(&db.database_url), "serving");
    println!("Tenure is listening on http://{local} (API docs at http://{local}/api/docs)");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving")?;
    store.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
