//! `tenure`: the command-line tool and server of Tenure, a retention-first CRM.
//!
//! Every command parses its arguments, calls the application layer (`tenure-app`) as the
//! operator at the command line, and prints or writes what it returns.

mod analytics;
mod config;
mod duplicates;
mod export;
mod import;
mod journeys;
mod loyalty;
mod reports;
mod seed;
mod service;
mod summary_file;

use std::io::BufRead;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tenure_app::App;
use tenure_app::jobs::Worker;
use tenure_domain::access::Role;
use tenure_domain::changes::Actor;
use tenure_domain::ids::TokenId;
use tenure_domain::jobs::{JobKind, JobStatus};

use crate::config::DbArgs;

#[derive(Parser)]
#[command(name = "tenure", version, about = "Tenure, a retention-first CRM")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations, then serve the JSON API with its documentation, health and metrics,
    /// and run the job worker.
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
    /// Write a consistent copy of the whole database to FILE while the server keeps serving
    /// (SQLite: an online snapshot; PostgreSQL: `pg_dump --format=custom`).
    Backup {
        #[command(flatten)]
        db: DbArgs,
        /// Where the backup goes; an existing file is never overwritten.
        file: std::path::PathBuf,
    },
    /// Restore a backup into an empty database (a new SQLite file, or a PostgreSQL database
    /// without tables), then apply migrations.
    Restore {
        #[command(flatten)]
        db: DbArgs,
        /// A file `tenure backup` wrote.
        file: std::path::PathBuf,
    },
    /// Run scheduled and queued jobs (the model refresh, duplicate rebuilds, ...).
    Worker {
        #[command(flatten)]
        db: DbArgs,
        /// Exit once nothing is due instead of waiting for more.
        #[arg(long)]
        until_idle: bool,
    },
    /// Look at the job queue, or queue a job by hand.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
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
    #[command(after_help = import::HELP)]
    Import {
        #[command(flatten)]
        db: DbArgs,
        kind: import::Kind,
        file: std::path::PathBuf,
        #[command(flatten)]
        format: import::FormatArgs,
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
    /// Customer-base models: CLV, P(alive) and churn risk; retention; recommendations.
    Analytics {
        #[command(subcommand)]
        command: analytics::Command,
    },
    /// The loyalty program's runs, report and checks.
    Loyalty {
        #[command(subcommand)]
        command: loyalty::Command,
    },
    /// Journeys: list them, switch them on and off, evaluate today's schedules.
    Journeys {
        #[command(subcommand)]
        command: journeys::Command,
    },
    /// Service: the SLA scan and the service report.
    Service {
        #[command(subcommand)]
        command: service::Command,
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
enum JobsCommand {
    /// Jobs, newest first, with their state.
    List {
        #[command(flatten)]
        db: DbArgs,
        /// Only jobs in this state: queued, running, done or failed.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Queue a job to run as soon as a worker is free: model_refresh, duplicates_rebuild or
    /// recommendations_build.
    Queue {
        #[command(flatten)]
        db: DbArgs,
        kind: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a staff user; prompts for the password unless it is given or read from
    /// standard input.
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
        /// The password (it stays in the shell's history; prefer the prompt or
        /// --password-stdin).
        #[arg(long, conflicts_with = "password_stdin")]
        password: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
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
        /// Days until it expires; without, it works until revoked.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Every token with its role, expiry and whether it was revoked (never the tokens).
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke a token: servers refuse it within their token cache time (30 seconds).
    Revoke {
        #[command(flatten)]
        db: DbArgs,
        id: i64,
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

/// The operator at this command line, the actor of everything a command does.
pub(crate) fn operator() -> Actor {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    Actor::cli(user)
}

pub(crate) async fn open(db: &DbArgs) -> Result<App> {
    App::open(&db.store_options())
        .await
        .with_context(|| format!("opening {}", tenure_app::redact_url(&db.database_url)))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The server and the worker log what they do, and a statement slower than a second
    // (sqlx's warning); a command prints its result and logs only what goes wrong — its
    // statements read or write whole tables, and take seconds by nature.
    config::init_logging(match cli.command {
        Command::Serve { .. } | Command::Worker { .. } => "info,sqlx=warn",
        _ => "warn,sqlx::query=error",
    });
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // One line with its causes, whatever RUST_BACKTRACE says: a user error is not a
            // crash, and a crash has its panic message and backtrace already.
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let me = operator();
    match cli.command {
        Command::Serve { db, addr } => serve(db, addr).await,
        Command::Migrate { db } => {
            open(&db).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Backup { db, file } => {
            let app = open(&db).await?;
            app.backup(&operator(), &file)
                .await
                .with_context(|| format!("backing up to {}", file.display()))?;
            let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            println!("backed up to {} ({size} bytes)", file.display());
            Ok(())
        }
        Command::Restore { db, file } => {
            tenure_app::restore_backup(&file, &db.database_url)
                .await
                .with_context(|| format!("restoring {}", file.display()))?;
            open(&db).await?;
            println!(
                "restored {} into {}; migrations applied",
                file.display(),
                tenure_app::redact_url(&db.database_url)
            );
            Ok(())
        }
        Command::Worker { db, until_idle } => {
            let app = open(&db).await?;
            let worker = Worker::new(app, "worker");
            if until_idle {
                let r = worker.run_until_idle().await.context("running jobs")?;
                println!(
                    "ran {} jobs, moved {} journey steps, sent {} messages ({} failed); nothing more is due",
                    r.jobs, r.steps, r.sent, r.failed
                );
            } else {
                eprintln!("worker {} waiting for jobs (Ctrl-C to stop)", worker.id());
                worker.run(shutdown_signal()).await;
            }
            Ok(())
        }
        Command::Jobs { command } => jobs(command, &me).await,
        Command::User {
            command:
                UserCommand::Create {
                    db,
                    email,
                    role,
                    name,
                    password,
                    password_stdin,
                },
        } => {
            let role = parse_role(&role)?;
            let password = match (password, password_stdin) {
                (Some(p), _) => p,
                (None, true) => {
                    let mut line = String::new();
                    std::io::stdin()
                        .lock()
                        .read_line(&mut line)
                        .context("reading the password from standard input")?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
                (None, false) => {
                    rpassword::prompt_password("Password: ").context("reading the password")?
                }
            };
            let app = open(&db).await?;
            let user = app
                .create_user(&me, &email, &name, role, Some(&password))
                .await
                .context("creating the user")?;
            println!(
                "created user {} <{}> with role {}",
                user.id, user.email, user.role
            );
            Ok(())
        }
        Command::Token { command } => token(command, &me).await,
        Command::Aggregates {
            command: AggregatesCommand::Rebuild { db },
        } => {
            let app = open(&db).await?;
            let started = std::time::Instant::now();
            let n = app
                .rebuild_aggregates(&me)
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
            format,
            batch,
        } => {
            let app = open(&db).await?;
            import::run(&app, &me, kind, &file, &format, batch).await
        }
        Command::Export { db, kind, out } => {
            let app = open(&db).await?;
            export::run(&app, &me, kind, out.as_deref()).await
        }
        Command::Duplicates { command } => duplicates::run(command, &me).await,
        Command::Loyalty { command } => loyalty::run(command, &me).await,
        Command::Service { command } => service::run(command, &me).await,
        Command::Journeys { command } => journeys::run(command, &me).await,
        Command::Analytics { command } => analytics::run(command, &me).await,
        Command::Demo {
            db,
            customers,
            seed,
        } => demo(&db, &me, customers, seed).await,
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
            let app = open(&db).await?;
            seed::customers(&app, &me, count, seed).await
        }
    }
}

async fn token(command: TokenCommand, me: &Actor) -> Result<()> {
    match command {
        TokenCommand::Create {
            db,
            name,
            role,
            expires_in_days,
        } => {
            let role = parse_role(&role)?;
            let app = open(&db).await?;
            let made = app
                .create_token(me, &name, role, expires_in_days.map(days))
                .await
                .context("storing the token")?;
            let until = made
                .expires_at
                .map(|t| format!(", valid until {}", t.format("%Y-%m-%d %H:%M UTC")))
                .unwrap_or_default();
            println!(
                "created token {} {name:?} with role {role}{until}; it is shown only once:",
                made.id
            );
            println!("{}", made.token);
        }
        TokenCommand::List { db } => {
            let app = open(&db).await?;
            let tokens = app.list_tokens(me).await.context("listing tokens")?;
            println!(
                "{:>5}  {:<24}  {:<9}  {:<16}  state",
                "id", "name", "role", "created"
            );
            let now = chrono::Utc::now();
            for t in tokens {
                let state = match (t.revoked_at, t.expires_at) {
                    (Some(r), _) => format!("revoked {}", r.format("%Y-%m-%d %H:%M")),
                    (None, Some(e)) if e <= now => {
                        format!("expired {}", e.format("%Y-%m-%d %H:%M"))
                    }
                    (None, Some(e)) => format!("valid until {}", e.format("%Y-%m-%d %H:%M")),
                    (None, None) => "valid".to_owned(),
                };
                println!(
                    "{:>5}  {:<24}  {:<9}  {:<16}  {state}",
                    t.id,
                    duplicates::clip(&t.name, 24),
                    t.role,
                    t.created_at.format("%Y-%m-%d %H:%M")
                );
            }
        }
        TokenCommand::Revoke { db, id } => {
            let app = open(&db).await?;
            app.revoke_token(me, TokenId(id))
                .await
                .with_context(|| format!("revoking token {id}"))?;
            println!(
                "revoked token {id}; running servers refuse it within {} seconds",
                tenure_http::auth::TOKEN_TTL.as_secs()
            );
        }
    }
    Ok(())
}

async fn jobs(command: JobsCommand, me: &Actor) -> Result<()> {
    match command {
        JobsCommand::List { db, status, limit } => {
            let status = status
                .map(|s| s.parse::<JobStatus>().map_err(anyhow::Error::msg))
                .transpose()
                .context("--status")?;
            let app = open(&db).await?;
            let page = app
                .list_jobs(
                    me,
                    status,
                    &tenure_app::PageRequest::first(limit.clamp(1, 500)),
                )
                .await
                .context("listing jobs")?;
            println!(
                "{:>5}  {:<22}  {:<8}  {:<16}  {:>8}  last error",
                "id", "kind", "status", "due", "attempts"
            );
            for j in page.items {
                println!(
                    "{:>5}  {:<22}  {:<8}  {:<16}  {:>8}  {}",
                    j.id,
                    j.kind,
                    j.status,
                    j.run_at.format("%Y-%m-%d %H:%M"),
                    j.attempts,
                    j.last_error.unwrap_or_default()
                );
            }
        }
        JobsCommand::Queue { db, kind } => {
            let kind: JobKind = kind.parse().map_err(anyhow::Error::msg).context("KIND")?;
            let app = open(&db).await?;
            match app.queue_job(me, kind).await.context("queuing the job")? {
                Some(id) => println!("queued job {id} ({kind}); a worker runs it"),
                None => println!("a {kind} job is pending already"),
            }
        }
    }
    Ok(())
}

/// Generates a small business and imports its customers, orders and interactions.
async fn demo(db: &DbArgs, me: &Actor, customers: u64, seed: u64) -> Result<()> {
    let started = std::time::Instant::now();
    let app = open(db).await?;
    let dir = std::env::temp_dir().join(format!("tenure-demo-{}", std::process::id()));
    // The history ends yesterday, so the business looks alive today.
    let mut params = tenure_generate::Params::new(customers, seed);
    params.start = chrono::Utc::now().date_naive() - chrono::Duration::days(params.days + 1);
    let counts = tenure_generate::generate(&params, &dir)
        .with_context(|| format!("writing the demo data into {}", dir.display()))?;
    let mut result = Ok(());
    for (kind, file) in [
        (import::Kind::Customers, "customers.csv"),
        (import::Kind::Products, "products.csv"),
        (import::Kind::Orders, "orders.csv"),
        (import::Kind::OrderLines, "order_lines.csv"),
        (import::Kind::Interactions, "interactions.csv"),
    ] {
        let summary = import::import(
            &app,
            me,
            kind,
            &dir.join(file),
            &import::FormatArgs::default(),
            5_000,
        )
        .await;
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
    // The models run on the demo at once, so predictions and the at-risk list are there.
    if let Some(report) = app
        .refresh_models(me, &tenure_app::analytics::ClvOptions::default())
        .await
        .context("fitting the models on the demo")?
    {
        let t = report.totals();
        println!(
            "models fitted: {} customers scored, {} at risk, mean chance of still buying {:.0} %",
            t.customers,
            t.at_risk,
            100.0 * t.mean_p_alive
        );
    }
    demo_loyalty(&app, me)
        .await
        .context("starting the demo's loyalty program")?;
    println!(
        "next: `tenure token create --name me --role admin`, then `tenure serve` (or `tenure analytics clv` for the full model report)"
    );
    Ok(())
}

/// The demo business runs a loyalty program that started a year ago: its orders since then
/// earn, members move into tiers, and a small catalogue of rewards is on offer.
async fn demo_loyalty(app: &tenure_app::App, me: &tenure_domain::changes::Actor) -> Result<()> {
    use tenure_domain::loyalty::{LoyaltyProgram, RewardData};
    let program = LoyaltyProgram {
        enabled: true,
        starts_at: Some(chrono::Utc::now() - chrono::Duration::days(365)),
        ..LoyaltyProgram::default()
    };
    app.set_loyalty_program(me, program).await?;
    for (name, cost, stock) in [
        ("Free coffee", 150, None),
        ("Cake of the day", 300, None),
        ("Tote bag", 800, Some(50)),
        ("Coffee beans, 250 g", 1_200, Some(30)),
    ] {
        app.create_reward(
            me,
            RewardData {
                name: name.into(),
                description: String::new(),
                points_cost: cost,
                stock,
                valid_from: None,
                valid_until: None,
                active: true,
            },
        )
        .await?;
    }
    let credited = app.earn_missing(me).await?;
    let tiers = app.evaluate_tiers(me).await?;
    println!(
        "loyalty program on: {credited} orders of the last year earned points, {} members moved up a tier",
        tiers.upgraded
    );
    Ok(())
}

async fn serve(db: DbArgs, addr: String) -> Result<()> {
    let app = open(&db).await?;
    // Cookies are marked Secure when the application is reached over HTTPS.
    let secure_cookies = std::env::var("TENURE_BASE_URL").is_ok_and(|u| u.starts_with("https://"));
    let router = tenure_http::router(
        tenure_http::AppState::with_options(
            app.clone(),
            tenure_http::auth::TOKEN_TTL,
            tenure_web::WebOptions { secure_cookies },
        )
        .with_metrics_token(std::env::var("TENURE_METRICS_TOKEN").ok()),
    );
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    tracing::info!(%local, database = %tenure_app::redact_url(&db.database_url), "serving");
    println!(
        "Tenure is listening on http://{local} (sign in at http://{local}/login, API docs at http://{local}/api/docs)"
    );
    // The server runs a job worker too; it stops with the server.
    let (stop_worker, worker_stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = Worker::new(app.clone(), "serve");
    let worker = tokio::spawn(async move {
        worker
            .run(async {
                let _ = worker_stopped.await;
            })
            .await;
    });
    let served = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("serving");
    let _ = stop_worker.send(());
    let _ = worker.await;
    app.close().await;
    served
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

/// A number of days as a duration.
fn days(n: u32) -> chrono::Duration {
    chrono::Duration::days(i64::from(n))
}
