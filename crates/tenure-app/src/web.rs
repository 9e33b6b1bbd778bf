//! Signing in to the web application, its sessions, and the dashboard's figures.
//!
//! A session is a 256-bit random cookie value; only its hash is stored. It ends
//! [`SESSION_LIFETIME`] after sign-in, or after [`SESSION_IDLE`] without a request. Failed
//! sign-ins are counted per email and per client address in the database, so that every
//! server refuses the next try once [`FAILURES_PER_EMAIL`] (or [`FAILURES_PER_CLIENT`])
//! failed within [`FAILURE_WINDOW`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use tenure_domain::access::{Permission, StaffUser};
use tenure_domain::changes::{Actor, ActorKind, Source};
use tenure_domain::customer::parse_email;
use tenure_domain::ids::StaffUserId;

use crate::{App, AppError, AppResult, password, require};

/// A session ends this long after sign-in whatever happens.
pub const SESSION_LIFETIME: Duration = Duration::days(7);
/// A session ends after this long without a request.
pub const SESSION_IDLE: Duration = Duration::hours(8);
/// A session's last request is written at most this often.
const TOUCH_EVERY: Duration = Duration::minutes(1);
/// Failed sign-ins counted over this window.
pub const FAILURE_WINDOW: Duration = Duration::minutes(15);
/// Failed sign-ins for one email within the window before further tries are refused.
pub const FAILURES_PER_EMAIL: u32 = 5;
/// Failed sign-ins from one client address within the window before it is refused.
pub const FAILURES_PER_CLIENT: u32 = 50;

/// A successful sign-in: the cookie value (shown once) and the session's form token.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub token: String,
    pub csrf: String,
    pub user: StaffUser,
    pub lang: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// A request's live session.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: StaffUser,
    pub csrf: String,
    pub lang: Option<String>,
    pub expires_at: DateTime<Utc>,
}

impl Session {
    /// The session's holder acting through the web application.
    pub fn actor(&self) -> Actor {
        Actor {
            kind: ActorKind::User,
            id: Some(self.user.id.0),
            name: if self.user.name.is_empty() {
                self.user.email.clone()
            } else {
                self.user.name.clone()
            },
            role: self.user.role,
            source: Source::Web,
        }
    }
}

fn random_hex() -> String {
    crate::random_hex(32)
}

/// A hash no password matches, verified when the email is unknown so that a wrong email
/// takes as long as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| password::hash(&random_hex()).unwrap_or_default())
}

fn email_key(email: &str) -> String {
    format!("email:{}", email.trim().to_lowercase())
}

fn client_key(client: &str) -> String {
    format!("client:{client}")
}

impl App {
    /// Signs a staff member in with email and password from `client` (the caller's address).
    /// Refused with [`AppError::TooManyAttempts`] while throttled, with an
    /// [`AppError::Invalid`] naming no field when the email or the password is wrong.
    pub async fn sign_in(&self, email: &str, pass: &str, client: &str) -> AppResult<SignedIn> {
        let now = Utc::now();
        let since = now - FAILURE_WINDOW;
        let store = self.store();
        let (ekey, ckey) = (email_key(email), client_key(client));
        for (key, most) in [(&ekey, FAILURES_PER_EMAIL), (&ckey, FAILURES_PER_CLIENT)] {
            let (n, first) = store.login_failures(key, since).await?;
            if n >= most {
                let until = first.unwrap_or(now) + FAILURE_WINDOW;
                let secs = (until - now).num_seconds().max(1);
                return Err(AppError::TooManyAttempts {
                    retry_after_secs: u64::try_from(secs).unwrap_or(1),
                });
            }
        }
        let found = match parse_email(email) {
            Ok(e) => store.find_user_by_email(&e).await?,
            Err(_) => None,
        };
        let (user, hash) = match found {
            Some((u, Some(h))) => (Some(u), h),
            _ => (None, decoy_hash().to_owned()),
        };
        let attempt = pass.to_owned();
        let matches = tokio::task::spawn_blocking(move || password::verify(&attempt, &hash))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let Some(user) = user.filter(|_| matches) else {
            let mut w = store.begin_write().await?;
            w.record_login_failure(&[ekey, ckey], since).await?;
            w.commit().await?;
            return Err(AppError::field(
                "",
                "the email or the password is not right",
            ));
        };
        let token = random_hex();
        let csrf = random_hex();
        let expires_at = now + SESSION_LIFETIME;
        let mut w = store.begin_write().await?;
        w.create_session(&token, user.id, &csrf, expires_at).await?;
        w.clear_login_failures(&ekey).await?;
        w.commit().await?;
        let lang = store.user_lang(user.id).await?;
        Ok(SignedIn {
            token,
            csrf,
            user,
            lang,
            expires_at,
        })
    }

    /// The live session of a cookie value; `None` when it is unknown or has ended.
    pub async fn session(&self, token: &str) -> AppResult<Option<Session>> {
        let now = Utc::now();
        let found = self
            .store()
            .session(token, now - SESSION_IDLE, now - TOUCH_EVERY)
            .await?;
        Ok(found.map(|s| Session {
            user: s.user,
            csrf: s.csrf,
            lang: s.lang,
            expires_at: s.expires_at,
        }))
    }

    /// Ends a session (signing out). Ending an unknown one is not an error.
    pub async fn sign_out(&self, token: &str) -> AppResult<()> {
        let mut w = self.store().begin_write().await?;
        w.delete_session(token).await?;
        w.commit().await?;
        Ok(())
    }

    /// Ends every session of this session's user, on every device (a lost phone, a shared
    /// computer); how many ended.
    pub async fn sign_out_everywhere(&self, token: &str) -> AppResult<u64> {
        let mut w = self.store().begin_write().await?;
        let n = w.delete_sessions_of(token).await?;
        w.commit().await?;
        Ok(n)
    }

    /// Removes ended sessions; returns how many.
    pub async fn delete_ended_sessions(&self) -> AppResult<u64> {
        Ok(self
            .store()
            .delete_ended_sessions(Utc::now() - SESSION_IDLE)
            .await?)
    }

    /// Sets the acting user's language for the web application (`None`: the browser's).
    pub async fn set_language(
        &self,
        actor: &Actor,
        user: StaffUserId,
        lang: Option<&str>,
    ) -> AppResult<()> {
        if actor.kind != ActorKind::User || actor.id != Some(user.0) {
            require(actor, Permission::ManageUsers)?;
        }
        let mut w = self.store().begin_write().await?;
        w.set_user_lang(user, lang).await?;
        w.commit().await?;
        Ok(())
    }
}

/// Upper bounds of the CLV bands of the dashboard, in the reporting currency.
pub const CLV_BANDS: [f64; 8] = [10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0];

/// How long the dashboard's figures for one range are reused.
const DASHBOARD_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// One month of revenue.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthRevenue {
    pub year: i32,
    pub month: u32,
    pub orders: u64,
    pub value_minor: i64,
}

/// The dashboard over a range of days.
#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub currency: String,
    pub customers: u64,
    pub new_customers: u64,
    pub active_customers: u64,
    /// Revenue of the range's orders in the reporting currency.
    pub revenue_minor: i64,
    pub orders: u64,
    pub revenue_by_month: Vec<MonthRevenue>,
    /// New customers of the range by acquisition channel; `None` when not recorded.
    pub acquisition: Vec<(Option<String>, u64)>,
    /// Customers with a prediction per CLV band: (lower bound, upper bound, count).
    pub clv_bands: Vec<(f64, Option<f64>, u64)>,
    pub predicted: u64,
    pub computed_at: DateTime<Utc>,
}

/// A dashboard and when it was computed.
type Cached = (Instant, std::sync::Arc<Dashboard>);

/// Dashboards recently computed, by range.
#[derive(Default)]
pub(crate) struct DashboardCache {
    entries: Mutex<HashMap<(NaiveDate, NaiveDate), Cached>>,
    /// Held while figures are computed: requests that miss the cache together wait for
    /// one computation instead of each running the same scans (and emptying the pool).
    computing: tokio::sync::Mutex<()>,
}

impl DashboardCache {
    fn fresh(&self, key: &(NaiveDate, NaiveDate)) -> Option<std::sync::Arc<Dashboard>> {
        let map = self.entries.lock().ok()?;
        let (at, d) = map.get(key)?;
        (at.elapsed() < DASHBOARD_TTL).then(|| d.clone())
    }
}

impl App {
    /// The dashboard's figures from `from` to `to` (inclusive). Figures are reused for a
    /// minute, so a busy dashboard reads the orders once a minute, not once a view.
    pub async fn dashboard(
        &self,
        actor: &Actor,
        from: NaiveDate,
        to: NaiveDate,
    ) -> AppResult<std::sync::Arc<Dashboard>> {
        require(actor, Permission::ReadAggregates)?;
        if from > to {
            return Err(AppError::parameter("from", "must not be after to"));
        }
        if (to - from).num_days() > 366 * 20 {
            return Err(AppError::parameter(
                "from",
                "the range is longer than 20 years",
            ));
        }
        let key = (from, to);
        let cache = &self.inner.dashboards;
        if let Some(d) = cache.fresh(&key) {
            return Ok(d);
        }
        let _computing = cache.computing.lock().await;
        if let Some(d) = cache.fresh(&key) {
            return Ok(d);
        }
        let day = |d: NaiveDate| {
            tenure_domain::catalog::purchase_day(d.and_time(chrono::NaiveTime::MIN).and_utc())
        };
        let f = self
            .store()
            .dashboard(day(from), day(to), &CLV_BANDS)
            .await?;
        let mut months: Vec<MonthRevenue> = Vec::new();
        let mut m = NaiveDate::from_ymd_opt(from.year(), from.month(), 1).unwrap_or(from);
        while m <= to {
            months.push(MonthRevenue {
                year: m.year(),
                month: m.month(),
                orders: 0,
                value_minor: 0,
            });
            m = m
                .checked_add_months(chrono::Months::new(1))
                .unwrap_or(NaiveDate::MAX);
        }
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN);
        let (mut revenue, mut orders) = (0_i64, 0_u64);
        for (d, n, v) in &f.revenue_by_day {
            let date = epoch + Duration::days(*d);
            revenue = revenue.saturating_add(*v);
            orders += n;
            if let Some(slot) = months
                .iter_mut()
                .find(|x| x.year == date.year() && x.month == date.month())
            {
                slot.orders += n;
                slot.value_minor = slot.value_minor.saturating_add(*v);
            }
        }
        let mut lower = 0.0;
        let mut bands = Vec::with_capacity(f.clv_bands.len());
        for (i, n) in f.clv_bands.iter().enumerate() {
            let upper = CLV_BANDS.get(i).copied();
            bands.push((lower, upper, *n));
            lower = upper.unwrap_or(lower);
        }
        let d = std::sync::Arc::new(Dashboard {
            from,
            to,
            currency: self.reporting_currency().to_owned(),
            customers: f.customers,
            new_customers: f.new_customers,
            active_customers: f.active_customers,
            revenue_minor: revenue,
            orders,
            revenue_by_month: months,
            acquisition: f.acquisition,
            clv_bands: bands,
            predicted: f.predicted,
            computed_at: Utc::now(),
        });
        if let Ok(mut map) = cache.entries.lock() {
            if map.len() > 64 {
                map.clear();
            }
            map.insert(key, (Instant::now(), d.clone()));
        }
        Ok(d)
    }
}

impl App {
    /// The latest fit of each model.
    pub async fn latest_fits(&self, actor: &Actor) -> AppResult<Vec<crate::model::StoredFit>> {
        require(actor, Permission::ReadAggregates)?;
        Ok(self.store().latest_fits().await?)
    }
}
