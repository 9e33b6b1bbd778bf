//! Messages: templates (checked when saved, rendered when a step decides a message), the
//! ready-made journeys and their templates, the send decision with its rules, delivery from
//! the outbox (SMTP, the signed HTTP gateway, the in-app inbox), and the one-click
//! unsubscribe.
//!
//! Delivery is at least once and deduplicated where the receiver can: each message keeps
//! one `Message-ID` and one `Idempotency-Key` across retries. A message is marked as being
//! sent before it goes and as sent right after the server accepts it, so a worker killed
//! while it waits for a server leaves the message to be sent again once its lease runs out;
//! only a kill between the server's acceptance and that mark (a few microseconds) can send
//! one twice, with the same `Message-ID`.

use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;
use tenure_domain::access::Permission;
use tenure_domain::changes::{Actor, Event};
use tenure_domain::customer::{ConsentChange, ConsentStatus, ContactKind, Customer, CustomerPatch};
use tenure_domain::ids::{CustomerId, TemplateId};
use tenure_domain::journey::{
    Channel, Conversion, ConversionKind, EventKind, Holiday, JourneyDefinition, MessageClass,
    MessageStatus, Reentry, SkipReason, Step, Trigger,
};
use tenure_domain::lifecycle::Stage;
use tenure_store::WriteTx;
use tenure_store::journeys::{Delivery, Enrollment, Journey, Message, MessageFilter, Template};

use crate::journeys::{Rules, consent_refusal, outbox_row, zone_of};
use crate::{App, AppError, AppResult, Listed, PageRequest, listed, require};

/// The languages templates are written in.
pub const LOCALES: [&str; 3] = ["en", "zh-CN", "zh-TW"];

/// The template language for a customer's locale: zh-TW for Traditional Chinese (Taiwan,
/// Hong Kong, Macau, `zh-Hant`), zh-CN for other Chinese, English otherwise.
pub fn message_locale(locale: Option<&str>) -> &'static str {
    let l = locale.unwrap_or("en").to_ascii_lowercase();
    if !l.starts_with("zh") {
        "en"
    } else if l.contains("hant") || l.ends_with("-tw") || l.ends_with("-hk") || l.ends_with("-mo") {
        "zh-TW"
    } else {
        "zh-CN"
    }
}

// -- templates -------------------------------------------------------------------------

/// Renders one template text with `ctx`; an unknown variable is an error, not a blank.
/// The work a template may do in one rendering (minijinja's instructions): far more than a
/// message needs, little enough that a loop of loops is refused when it is saved instead of
/// stalling the worker that sends it.
const TEMPLATE_FUEL: u64 = 100_000;

fn render_text(source: &str, ctx: &serde_json::Value) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.render_str(source, minijinja::Value::from(minijinja::value::Serde(ctx)))
        .map_err(|e| match e.line() {
            _ if e.kind() == minijinja::ErrorKind::OutOfFuel => {
                "the template does too much work to render (a loop inside a loop over many \
                 items?); a message needs far less"
                    .to_owned()
            }
            Some(line) => format!(
                "line {line}: {}",
                e.detail().unwrap_or(&e.kind().to_string())
            ),
            None => e
                .detail()
                .map_or_else(|| e.kind().to_string(), str::to_owned),
        })
}

/// What every template may use, filled with an example customer: the check renders a
/// template with it, so a misspelt field is refused when the template is saved.
pub fn sample_context() -> serde_json::Value {
    serde_json::json!({
        "customer": {
            "name": "Li Minglang", "first_name": "Minglang", "email": "li@example.com",
            "phone": "+86 138 0013 8000", "locale": "zh-CN", "birthday": "1990-01-27",
            "tier": "Gold", "points": 1250, "expiring_points": 300, "expiring_on": "2027-01-31",
        },
        "business": { "name": "Tenure" },
        "links": {
            "member": "https://example.com/m/token",
            "unsubscribe": "https://example.com/u/token",
            "survey": "https://example.com/s/token",
            "profile": "https://example.com/m/token",
        },
        "offers": [{ "name": "Oolong tea, 250 g", "price": "18.00" }],
        "occasion": { "holiday": "Mid-Autumn Festival", "date": "2026-09-25", "year": 2026 },
    })
}

/// Checks a template: its subject (email) and body render with the sample customer, and
/// the body is not empty.
pub fn check_template(
    channel: Channel,
    subject: &str,
    body: &str,
) -> Vec<tenure_domain::FieldError> {
    let mut errors = Vec::new();
    let ctx = sample_context();
    if channel == Channel::Email {
        if subject.trim().is_empty() {
            errors.push(tenure_domain::FieldError::new(
                "subject",
                "an email needs a subject",
            ));
        } else if let Err(m) = render_text(subject, &ctx) {
            errors.push(tenure_domain::FieldError::new("subject", m));
        }
    }
    if body.trim().is_empty() {
        errors.push(tenure_domain::FieldError::new("body", "must not be empty"));
    } else if body.len() > 20_000 {
        errors.push(tenure_domain::FieldError::new(
            "body",
            "must be at most 20000 bytes",
        ));
    } else if let Err(m) = render_text(body, &ctx) {
        errors.push(tenure_domain::FieldError::new("body", m));
    }
    errors
}

/// Text as HTML: escaped, paragraphs at blank lines, line breaks kept, addresses linked.
fn html_of(text: &str, unsubscribe: &str, footer: &str) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let link = |s: &str| {
        s.split(' ')
            .map(|w| {
                if w.starts_with("http://") || w.starts_with("https://") {
                    format!("<a href=\"{0}\">{0}</a>", esc(w))
                } else {
                    esc(w)
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut html = String::from(
        "<!doctype html><html><body style=\"font-family: sans-serif; line-height: 1.5; max-width: 36em\">",
    );
    for para in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        html.push_str("<p>");
        html.push_str(&para.lines().map(link).collect::<Vec<_>>().join("<br>"));
        html.push_str("</p>");
    }
    html.push_str(&format!(
        "<p style=\"color: #666; font-size: small\"><a href=\"{}\">{}</a></p></body></html>",
        esc(unsubscribe),
        esc(footer)
    ));
    html
}

/// The footer line of an email, per language.
fn unsubscribe_words(locale: &str) -> &'static str {
    match locale {
        "zh-CN" => "不想再收到这类邮件？一键退订",
        "zh-TW" => "不想再收到這類郵件？一鍵退訂",
        _ => "Unsubscribe from these emails with one click",
    }
}

fn holiday_name(h: Holiday, locale: &str) -> &'static str {
    use Holiday::*;
    match (h, locale) {
        (NewYear, "zh-CN" | "zh-TW") => "元旦",
        (NewYear, _) => "New Year",
        (Valentines, "zh-CN" | "zh-TW") => "情人节",
        (Valentines, _) => "Valentine's Day",
        (Christmas, "zh-CN") => "圣诞节",
        (Christmas, "zh-TW") => "聖誕節",
        (Christmas, _) => "Christmas",
        (SpringFestival, "zh-CN") => "春节",
        (SpringFestival, "zh-TW") => "春節",
        (SpringFestival, _) => "Spring Festival",
        (Lantern, "zh-CN") => "元宵节",
        (Lantern, "zh-TW") => "元宵節",
        (Lantern, _) => "Lantern Festival",
        (DragonBoat, "zh-CN") => "端午节",
        (DragonBoat, "zh-TW") => "端午節",
        (DragonBoat, _) => "Dragon Boat Festival",
        (MidAutumn, "zh-CN") => "中秋节",
        (MidAutumn, "zh-TW") => "中秋節",
        (MidAutumn, _) => "Mid-Autumn Festival",
    }
}

/// The secrets and base address links in messages are made with, read before a step's
/// transaction takes the writer.
#[derive(Debug, Clone)]
pub(crate) struct Links {
    member: Vec<u8>,
    base: String,
}

impl Links {
    pub(crate) async fn load(app: &App) -> AppResult<Links> {
        Ok(Links {
            member: app.link_secret().await?,
            base: app.options().base_url.clone(),
        })
    }

    /// The member page of `customer`, valid for 30 days from `now`.
    fn member(&self, customer: CustomerId, now: DateTime<Utc>) -> AppResult<String> {
        let expires = now + Duration::days(30);
        let message = format!("{}.{}", customer.0, expires.timestamp());
        let sig = App::sign(&self.member, &message)?;
        Ok(format!("{}/m/{message}.{sig}", self.base))
    }

    /// The one-click unsubscribe link of `customer` on `channel`.
    pub(crate) fn unsubscribe(&self, customer: CustomerId, channel: Channel) -> AppResult<String> {
        Ok(format!(
            "{}/u/{}",
            self.base,
            self.unsubscribe_token(customer, channel)?
        ))
    }

    fn unsubscribe_token(&self, customer: CustomerId, channel: Channel) -> AppResult<String> {
        let message = format!("{}.{}", customer.0, channel);
        let sig = App::sign(&self.member, &format!("unsubscribe:{message}"))?;
        Ok(format!("{message}.{sig}"))
    }

    /// The customer and channel of an unsubscribe token; a forged one is not found.
    fn read_unsubscribe(&self, token: &str) -> AppResult<(CustomerId, Channel)> {
        let not_found = || AppError::NotFound("this unsubscribe link is not valid".into());
        let mut parts = token.splitn(3, '.');
        let (Some(id), Some(channel), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(not_found());
        };
        let customer = CustomerId(id.parse().map_err(|_| not_found())?);
        let channel: Channel = channel.parse().map_err(|_| not_found())?;
        let want = self.unsubscribe_token(customer, channel)?;
        if !crate::constant_eq(&want, token) {
            return Err(not_found());
        }
        Ok((customer, channel))
    }
}

/// A send step's message, before the rules.
pub(crate) struct Send<'a> {
    pub channel: Channel,
    pub template: &'a str,
    pub class: MessageClass,
    pub priority: i64,
    pub dedup_key: String,
    pub journey: Option<&'a Journey>,
    pub enrollment: Option<&'a Enrollment>,
}

/// The address of `customer` on `channel`: the email or phone, or the first IM handle.
fn address_of(c: &Customer, channel: Channel) -> Option<String> {
    let point = |kinds: &[ContactKind]| {
        c.data
            .contact_points
            .iter()
            .find(|p| kinds.contains(&p.kind))
            .map(|p| p.value.clone())
    };
    match channel {
        Channel::Email => c
            .data
            .email
            .clone()
            .or_else(|| point(&[ContactKind::Email])),
        Channel::Sms => c
            .data
            .phone
            .clone()
            .or_else(|| point(&[ContactKind::Phone])),
        Channel::Im => point(&[
            ContactKind::Wechat,
            ContactKind::Line,
            ContactKind::Whatsapp,
        ]),
        Channel::App => Some(format!("customer:{}", c.id)),
    }
}

impl App {
    /// What a template sees of `customer`.
    async fn template_context(
        &self,
        tx: &mut WriteTx<'_>,
        c: &Customer,
        links: &Links,
        enrollment: Option<&Enrollment>,
        locale: &str,
        now: DateTime<Utc>,
    ) -> AppResult<serde_json::Value> {
        let account = self.store().loyalty_account(c.id).await?;
        let (mut expiring, mut expiring_on) = (0_i64, None::<DateTime<Utc>>);
        if account.is_some() {
            for lot in self.store().loyalty_lots(c.id).await? {
                if let Some(e) = lot.expires_at
                    && lot.remaining > 0
                    && e > now
                    && e <= now + Duration::days(30)
                {
                    expiring += lot.remaining;
                    expiring_on = Some(expiring_on.map_or(e, |x: DateTime<Utc>| x.min(e)));
                }
            }
        }
        let offers: Vec<serde_json::Value> = self
            .next_best_offers(&Actor::system(), c.id, Some(3))
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.product.data.name,
                    "price": r.product.data.price_minor.map(|p| format!("{:.2}", p as f64 / 100.0)),
                })
            })
            .collect();
        let mut survey = serde_json::Value::Null;
        let mut occasion = serde_json::json!({ "holiday": null, "date": null, "year": null });
        if let Some(e) = enrollment {
            if let Some(id) = e
                .occasion
                .strip_prefix("invitation:")
                .and_then(|s| s.parse().ok())
            {
                let secret = self.survey_secret(tx).await?;
                let token = Self::token_for(&secret, tenure_domain::ids::InvitationId(id))?;
                survey = self.link(&token).into();
            }
            if let Some(on) = e.occasion_on {
                occasion["date"] = on.format("%Y-%m-%d").to_string().into();
                occasion["year"] = chrono::Datelike::year(&on).into();
                if let Some(h) = tenure_domain::journey::holiday_on(on) {
                    occasion["holiday"] = holiday_name(h, locale).into();
                }
            }
        }
        let first_name = c
            .data
            .name
            .split_whitespace()
            .next()
            .unwrap_or(&c.data.name)
            .to_owned();
        let member = links.member(c.id, now)?;
        Ok(serde_json::json!({
            "customer": {
                "name": c.data.name,
                "first_name": first_name,
                "email": c.data.email,
                "phone": c.data.phone,
                "locale": c.data.locale,
                "birthday": c.data.birthday.map(|b| b.format("%Y-%m-%d").to_string()),
                "tier": account.as_ref().map(|a| a.tier.clone()),
                "points": account.as_ref().map(|a| a.balance),
                "expiring_points": expiring,
                "expiring_on": expiring_on.map(|e| e.format("%Y-%m-%d").to_string()),
            },
            "business": { "name": rules_name(tx).await? },
            "links": {
                "member": member,
                "profile": member,
                "unsubscribe": links.unsubscribe(c.id, Channel::Email)?,
                "survey": survey,
            },
            "offers": offers,
            "occasion": occasion,
        }))
    }
}

async fn rules_name(tx: &mut WriteTx<'_>) -> AppResult<String> {
    Ok(crate::journeys::rules_in(tx).await?.settings.business_name)
}

/// Decides a send step's message: renders it in the customer's language and writes it to
/// the outbox — queued, or skipped with the reason (no address, no consent, unsubscribed,
/// capped, no channel configured). Runs in the step's transaction.
pub(crate) async fn decide(
    app: &App,
    tx: &mut WriteTx<'_>,
    rules: &Rules,
    customer: &Customer,
    links: &Links,
    send: &Send<'_>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let mut row = outbox_row(send, customer.id);
    row.at = now;
    row.due_at = now;
    let locale = message_locale(customer.data.locale.as_deref());
    let templates = tx.templates_named(send.template, send.channel).await?;
    let template = templates
        .iter()
        .find(|t| t.locale == locale)
        .or_else(|| templates.iter().find(|t| t.locale == "en"))
        .or_else(|| templates.first());
    let Some(template) = template else {
        return Err(AppError::Internal(format!(
            "no {} template is named {:?}",
            send.channel, send.template
        )));
    };
    row.locale = template.locale.clone();
    let ctx = app
        .template_context(tx, customer, links, send.enrollment, &template.locale, now)
        .await?;
    let skip = |row: &mut tenure_store::journeys::NewMessage, reason: SkipReason| {
        row.status = MessageStatus::Skipped;
        row.reason = Some(reason);
    };
    match (
        render_text(&template.subject, &ctx),
        render_text(&template.body, &ctx),
    ) {
        (Ok(subject), Ok(body)) => {
            row.subject = subject.trim().to_owned();
            let unsubscribe = links.unsubscribe(customer.id, send.channel)?;
            if send.channel == Channel::Email {
                let footer = unsubscribe_words(&template.locale);
                row.body_html = Some(html_of(&body, &unsubscribe, footer));
                row.body_text = format!("{}\n\n-- \n{footer}: {unsubscribe}\n", body.trim_end());
            } else {
                row.body_text = body.trim().to_owned();
            }
        }
        (Err(m), _) | (_, Err(m)) => {
            skip(&mut row, SkipReason::Failed);
            row.body_text = format!("the template could not be rendered: {m}");
        }
    }
    row.address = address_of(customer, send.channel);
    let configured = match send.channel {
        Channel::Email => app.options().channels.smtp_url.is_some(),
        Channel::Sms | Channel::Im => app.options().channels.gateway_url.is_some(),
        Channel::App => true,
    };
    if row.status == MessageStatus::Queued {
        if row.address.is_none() {
            skip(&mut row, SkipReason::InvalidAddress);
        } else if let Some(r) = consent_refusal(customer, send.channel, send.class) {
            skip(&mut row, r);
        } else if !configured {
            skip(&mut row, SkipReason::NoChannel);
        }
    }
    if row.status == MessageStatus::Queued && send.class == MessageClass::Marketing {
        let tz = zone_of(customer, rules.zone);
        row.due_at = rules.quiet.release(tz, now);
        let cap = rules.settings.cap;
        let since = now - Duration::days(i64::from(cap.days));
        let used = tx.cap_usage(customer.id, send.channel, since).await?;
        if used.len() >= cap.max as usize {
            // The cap is full: this message takes the place of a queued one of lower
            // priority, or yields.
            let weakest = used
                .iter()
                .filter(|u| u.status == MessageStatus::Queued && u.priority < send.priority)
                .min_by_key(|u| (u.priority, std::cmp::Reverse(u.id)));
            let replaced = match weakest {
                Some(w) => {
                    tx.skip_queued_message(
                        w.id,
                        SkipReason::Capped,
                        "yielded to a message of higher priority",
                        now,
                    )
                    .await?
                }
                None => false,
            };
            if !replaced {
                skip(&mut row, SkipReason::Capped);
            }
        }
    }
    if let Some(j) = send.journey
        && j.definition.late_window_hours > 0
    {
        row.send_by = Some(row.due_at + Duration::hours(i64::from(j.definition.late_window_hours)));
    }
    tx.insert_message(&row).await?;
    Ok(())
}

// -- delivery -------------------------------------------------------------------------

/// How a server reaches customers: `TENURE_SMTP_URL`, `TENURE_SMTP_FROM`,
/// `TENURE_SMS_WEBHOOK_URL` and `TENURE_SMS_WEBHOOK_SECRET`.
#[derive(Debug, Clone)]
pub struct Channels {
    pub smtp_url: Option<String>,
    pub smtp_from: String,
    pub gateway_url: Option<String>,
    /// The key gateway calls are signed with; a per-database secret when not given.
    pub gateway_secret: Option<String>,
    /// How long a worker holds a claimed message before another may take it over.
    pub lease: Duration,
    /// How many messages a worker claims at a time.
    pub batch: u32,
}

impl Channels {
    pub fn from_env() -> Channels {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Channels {
            smtp_url: var("TENURE_SMTP_URL"),
            smtp_from: var("TENURE_SMTP_FROM")
                .unwrap_or_else(|| "Tenure <noreply@localhost>".into()),
            gateway_url: var("TENURE_SMS_WEBHOOK_URL"),
            gateway_secret: var("TENURE_SMS_WEBHOOK_SECRET"),
            lease: Duration::seconds(
                var("TENURE_OUTBOX_LEASE_SECONDS")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(60),
            ),
            batch: var("TENURE_OUTBOX_BATCH")
                .and_then(|s| s.parse::<u32>().ok())
                .map_or(50, |b| b.clamp(1, 1000)),
        }
    }
}

/// How many messages of a batch a worker sends at once (and SMTP connections it keeps).
const SENDS_AT_ONCE: usize = 8;

/// How many attempts a message gets before it fails for good.
const MAX_ATTEMPTS: i64 = 5;

/// What one delivery round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryReport {
    pub claimed: u64,
    pub sent: u64,
    pub retried: u64,
    pub failed: u64,
    pub skipped: u64,
}

type Mailer = lettre::AsyncSmtpTransport<lettre::Tokio1Executor>;

/// The SMTP transport, made once per application.
#[derive(Default)]
pub(crate) struct Transports {
    mailer: tokio::sync::OnceCell<Result<Mailer, String>>,
    http: std::sync::OnceLock<reqwest::Client>,
}

#[derive(Clone)]
struct ListUnsubscribe(String);

impl lettre::message::header::Header for ListUnsubscribe {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + std::marker::Send + Sync>> {
        Ok(ListUnsubscribe(s.to_owned()))
    }
    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), self.0.clone())
    }
}

#[derive(Clone)]
struct ListUnsubscribePost;

impl lettre::message::header::Header for ListUnsubscribePost {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + std::marker::Send + Sync>> {
        Ok(ListUnsubscribePost)
    }
    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".into())
    }
}

/// How a send attempt failed.
enum SendError {
    /// Try again later.
    Transient(String),
    /// The address or the message was refused for good.
    Permanent(SkipReason, String),
}

impl App {
    /// Claims a batch of due messages and delivers each, recording how it ended.
    pub async fn deliver_messages(&self, worker: &str) -> AppResult<DeliveryReport> {
        let now = self.now();
        let channels = &self.options().channels;
        let batch = self
            .store()
            .claim_messages(worker, now, now + channels.lease, channels.batch)
            .await?;
        let mut report = DeliveryReport {
            claimed: batch.len() as u64,
            ..DeliveryReport::default()
        };
        if batch.is_empty() {
            return Ok(report);
        }
        // The link secrets once a batch, not once a message.
        let links = Links::load(self).await?;
        // Several messages at once: a send waits mostly on the other side (the SMTP
        // server's replies, the gateway's answer), so the batch overlaps them.
        let mut ends = futures_util::stream::iter(batch)
            .map(|m| {
                let links = &links;
                async move {
                    let end = self.deliver(&m, links).await;
                    let mine = self
                        .store()
                        .finish_message(m.id, worker, &end, self.now())
                        .await?;
                    if !mine {
                        tracing::warn!(message = m.id.0, "another worker took this message over");
                    }
                    Ok::<_, AppError>(end)
                }
            })
            .buffer_unordered(SENDS_AT_ONCE);
        while let Some(end) = ends.next().await {
            match end? {
                Delivery::Sent { .. } => report.sent += 1,
                Delivery::Retry { .. } => report.retried += 1,
                Delivery::Failed { .. } => report.failed += 1,
                Delivery::Skipped { .. } => report.skipped += 1,
            }
        }
        Ok(report)
    }

    /// Sends one claimed message.
    async fn deliver(&self, m: &Message, links: &Links) -> Delivery {
        let now = self.now();
        if m.send_by.is_some_and(|by| now > by) {
            return Delivery::Skipped {
                reason: SkipReason::Missed,
                detail: Some(format!(
                    "its time was {}; the send window closed before a worker could send it",
                    m.due_at.format("%Y-%m-%d %H:%M UTC")
                )),
            };
        }
        // Consent may have been withdrawn since the message was decided.
        match self.store().get_customer(m.customer_id).await {
            Ok(c) => {
                if consent_refusal(&c, m.channel, m.class) == Some(SkipReason::Unsubscribed) {
                    return Delivery::Skipped {
                        reason: SkipReason::Unsubscribed,
                        detail: Some("unsubscribed after the message was decided".into()),
                    };
                }
            }
            Err(tenure_store::StoreError::NotFound { .. }) => {
                return Delivery::Skipped {
                    reason: SkipReason::InvalidAddress,
                    detail: Some("the customer was deleted".into()),
                };
            }
            Err(e) => {
                return Delivery::Retry {
                    at: now + tenure_domain::jobs::backoff(1),
                    detail: e.to_string(),
                };
            }
        }
        let result = match m.channel {
            Channel::App => Ok(None),
            Channel::Email => self.send_email(m, links).await.map(Some),
            Channel::Sms | Channel::Im => self.send_gateway(m).await.map(Some),
        };
        match result {
            Ok(detail) => Delivery::Sent { detail },
            Err(SendError::Permanent(reason, detail)) => Delivery::Failed { reason, detail },
            Err(SendError::Transient(detail)) if m.attempts < MAX_ATTEMPTS => Delivery::Retry {
                at: now + tenure_domain::jobs::backoff(u32::try_from(m.attempts).unwrap_or(1)),
                detail,
            },
            Err(SendError::Transient(detail)) => Delivery::Failed {
                reason: SkipReason::Failed,
                detail: format!("gave up after {} attempts: {detail}", m.attempts),
            },
        }
    }

    async fn mailer(&self) -> Result<&Mailer, SendError> {
        let channels = &self.options().channels;
        let made = self
            .transports()
            .mailer
            .get_or_init(|| async {
                let url = channels
                    .smtp_url
                    .clone()
                    .ok_or_else(|| "TENURE_SMTP_URL is not set".to_owned())?;
                Mailer::from_url(&url)
                    .map(|b| {
                        b.pool_config(
                            lettre::transport::smtp::PoolConfig::new()
                                .max_size(SENDS_AT_ONCE as u32),
                        )
                        .build()
                    })
                    .map_err(|e| format!("TENURE_SMTP_URL is not usable: {e}"))
            })
            .await;
        made.as_ref()
            .map_err(|e| SendError::Permanent(SkipReason::NoChannel, e.clone()))
    }

    async fn send_email(&self, m: &Message, links: &Links) -> Result<String, SendError> {
        use lettre::AsyncTransport;
        use lettre::message::{Mailbox, MultiPart};
        let channels = &self.options().channels;
        let from: Mailbox = channels.smtp_from.parse().map_err(|e| {
            SendError::Permanent(SkipReason::NoChannel, format!("TENURE_SMTP_FROM: {e}"))
        })?;
        let to: Mailbox = m
            .address
            .as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(|e| SendError::Permanent(SkipReason::InvalidAddress, format!("{e}")))?;
        let domain = from.email.domain().to_owned();
        let unsubscribe = links
            .unsubscribe(m.customer_id, Channel::Email)
            .map_err(|e| SendError::Transient(e.to_string()))?;
        let email = lettre::Message::builder()
            .from(from)
            .to(to)
            .subject(m.subject.clone())
            .message_id(Some(format!("<message-{}@{domain}>", m.id)))
            .header(ListUnsubscribe(format!("<{unsubscribe}>")))
            .header(ListUnsubscribePost)
            .multipart(MultiPart::alternative_plain_html(
                m.body_text.clone(),
                m.body_html.clone().unwrap_or_else(|| m.body_text.clone()),
            ))
            .map_err(|e| SendError::Permanent(SkipReason::Failed, e.to_string()))?;
        let mailer = self.mailer().await?;
        match mailer.send(email).await {
            Ok(r) => Ok(format!("accepted: {}", r.code())),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(
                SkipReason::InvalidAddress,
                format!("the mail server refused it: {e}"),
            )),
            Err(e) => Err(SendError::Transient(format!("the mail server: {e}"))),
        }
    }

    /// The client of outgoing HTTP calls (the SMS gateway, webhooks), made once.
    pub(crate) fn http_client(&self) -> &reqwest::Client {
        self.transports().http.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap_or_default()
        })
    }

    /// The key gateway calls are signed with.
    pub(crate) async fn gateway_secret(&self) -> AppResult<Vec<u8>> {
        match &self.options().channels.gateway_secret {
            Some(s) => Ok(s.clone().into_bytes()),
            None => self.secret("gateway_signing_secret").await,
        }
    }

    /// Posts an SMS or IM message to the gateway: a JSON body signed with HMAC-SHA256 over
    /// `{timestamp}.{body}` (`X-Tenure-Timestamp`, `X-Tenure-Signature: sha256=…`), with the
    /// message's `Idempotency-Key` so a retry is recognised.
    async fn send_gateway(&self, m: &Message) -> Result<String, SendError> {
        let channels = &self.options().channels;
        let Some(url) = channels.gateway_url.clone() else {
            return Err(SendError::Permanent(
                SkipReason::NoChannel,
                "TENURE_SMS_WEBHOOK_URL is not set".into(),
            ));
        };
        let body = serde_json::json!({
            "id": m.id.0,
            "channel": m.channel,
            "to": m.address,
            "text": m.body_text,
            "customer_id": m.customer_id.0,
            "locale": m.locale,
        })
        .to_string();
        let secret = self
            .gateway_secret()
            .await
            .map_err(|e| SendError::Transient(e.to_string()))?;
        let ts = Utc::now().timestamp();
        let signature = format!(
            "sha256={}",
            tenure_domain::webhook::signature(&secret, ts, &body)
        );
        let response = self
            .http_client()
            .post(&url)
            .header("content-type", "application/json")
            .header("x-tenure-timestamp", ts.to_string())
            .header("x-tenure-signature", &signature)
            .header("idempotency-key", format!("message-{}", m.id))
            .body(body)
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("the gateway: {e}")))?;
        let status = response.status();
        if status.is_success() {
            Ok(format!("accepted: {status}"))
        } else if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
            let text = response.text().await.unwrap_or_default();
            Err(SendError::Permanent(
                SkipReason::InvalidAddress,
                format!(
                    "the gateway refused it ({status}): {}",
                    text.chars().take(200).collect::<String>()
                ),
            ))
        } else {
            Err(SendError::Transient(format!(
                "the gateway answered {status}"
            )))
        }
    }

    // -- messages, inbox, unsubscribe ------------------------------------------------------

    /// Messages, newest first.
    pub async fn messages(
        &self,
        actor: &Actor,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> AppResult<Listed<Message>> {
        require(actor, Permission::ReadCustomers)?;
        let (limit, before) = (page.limit()?, page.after()?);
        let filter = MessageFilter {
            owner: self.owner_scope(actor).await?,
            ..filter.clone()
        };
        Ok(listed(
            self.store().list_messages(&filter, before, limit).await?,
            |m| m,
        ))
    }

    pub async fn message(
        &self,
        actor: &Actor,
        id: tenure_domain::ids::MessageId,
    ) -> AppResult<Message> {
        require(actor, Permission::ReadCustomers)?;
        Ok(self.store().get_message(id).await?)
    }

    /// The in-app inbox of a customer: the messages sent to it, newest first.
    pub async fn inbox(&self, customer: CustomerId) -> AppResult<Vec<Message>> {
        let filter = MessageFilter {
            customer: Some(customer),
            channel: Some(Channel::App),
            status: Some(MessageStatus::Sent),
            ..MessageFilter::default()
        };
        let page = self.store().list_messages(&filter, None, 50).await?;
        if page.items.iter().any(|m| m.read_at.is_none()) {
            self.read_inbox(customer).await?;
        }
        Ok(page.items)
    }

    /// Who an unsubscribe link is for: (the customer's name, the channel).
    pub async fn unsubscribe_target(&self, token: &str) -> AppResult<(String, Channel, bool)> {
        let links = Links::load(self).await?;
        let (customer, channel) = links.read_unsubscribe(token)?;
        let c = self.store().get_customer(customer).await?;
        let done = consent_refusal(&c, channel, MessageClass::Transactional)
            == Some(SkipReason::Unsubscribed);
        Ok((c.data.name, channel, done))
    }

    /// Unsubscribes the customer of a link from its channel: the consent is withdrawn, with
    /// the time and the link as its source. Repeating it changes nothing.
    pub async fn unsubscribe(&self, token: &str) -> AppResult<(String, Channel)> {
        let links = Links::load(self).await?;
        let (customer, channel) = links.read_unsubscribe(token)?;
        let actor = Actor::system();
        let mut uow = self.begin(&actor).await?;
        let c = uow.tx.get_customer(customer).await?;
        if consent_refusal(&c, channel, MessageClass::Transactional)
            != Some(SkipReason::Unsubscribed)
        {
            let patch = CustomerPatch {
                consents: vec![ConsentChange {
                    channel: crate::journeys::consent_channel(channel),
                    status: ConsentStatus::Withdrawn,
                    source: "unsubscribe link".into(),
                    at: self.now(),
                }],
                ..CustomerPatch::default()
            };
            uow.tx.update_customer(customer, &patch, None).await?;
            uow.emit(Event::CustomerUpdated { customer });
        }
        uow.commit().await?;
        Ok((c.data.name, channel))
    }

    // -- templates -------------------------------------------------------------------------

    pub async fn templates(&self, actor: &Actor) -> AppResult<Vec<Template>> {
        require(actor, Permission::ReadAggregates)?;
        self.ensure_ready_made().await?;
        Ok(self.store().templates().await?)
    }

    pub async fn template(&self, actor: &Actor, id: TemplateId) -> AppResult<Template> {
        require(actor, Permission::ReadAggregates)?;
        Ok(self.store().get_template(id).await?)
    }

    /// Saves a template after checking it renders: an error is reported now, never when a
    /// message is due.
    pub async fn save_template(
        &self,
        actor: &Actor,
        name: &str,
        channel: Channel,
        locale: &str,
        subject: &str,
        body: &str,
    ) -> AppResult<Template> {
        require(actor, Permission::WriteCatalog)?;
        let mut errors = check_template(channel, subject, body);
        let name = name.trim();
        if name.is_empty()
            || name.len() > 100
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            errors.push(tenure_domain::FieldError::new(
                "name",
                "1–100 letters, digits, '.', '_' or '-'",
            ));
        }
        if !LOCALES.contains(&locale) {
            errors.push(tenure_domain::FieldError::new(
                "locale",
                format!("must be one of {}", LOCALES.join(", ")),
            ));
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(tenure_domain::Invalid(errors)));
        }
        let mut uow = self.begin(actor).await?;
        let t = uow
            .tx
            .upsert_template(name, channel, locale, subject.trim(), body, self.now())
            .await?;
        uow.emit(Event::SettingsChanged { name: "templates" });
        uow.commit().await?;
        Ok(t)
    }

    /// A template rendered for a real customer, as they would receive it; `subject` and
    /// `body`, when given, preview an edit before it is saved.
    pub async fn preview_template(
        &self,
        actor: &Actor,
        id: TemplateId,
        customer: CustomerId,
        subject: Option<&str>,
        body: Option<&str>,
    ) -> AppResult<(String, String)> {
        require(actor, Permission::ReadCustomers)?;
        let t = self.store().get_template(id).await?;
        let (subject, body) = (subject.unwrap_or(&t.subject), body.unwrap_or(&t.body));
        let errors = check_template(t.channel, subject, body);
        if !errors.is_empty() {
            return Err(AppError::Invalid(tenure_domain::Invalid(errors)));
        }
        let c = self.store().get_customer(customer).await?;
        let links = Links::load(self).await?;
        let actor = Actor::system();
        let mut uow = self.begin(&actor).await?;
        let ctx = self
            .template_context(&mut uow.tx, &c, &links, None, &t.locale, self.now())
            .await?;
        uow.tx.rollback().await?;
        let s = render_text(subject, &ctx).map_err(|m| AppError::field("subject", m))?;
        let b = render_text(body, &ctx).map_err(|m| AppError::field("body", m))?;
        Ok((s, b))
    }

    /// Stores the ready-made journeys (switched off) and their templates, once.
    pub(crate) async fn ensure_ready_made(&self) -> AppResult<()> {
        if self.store().setting(READY_MADE).await?.is_some() {
            return Ok(());
        }
        let actor = Actor::system();
        let mut uow = self.begin(&actor).await?;
        let now = self.now();
        for (name, channel, locale, subject, body) in ready_made_templates() {
            uow.tx
                .seed_template(name, channel, locale, subject, body, now)
                .await?;
        }
        for r in ready_made() {
            uow.tx
                .insert_journey(r.name, r.title, r.description, &r.definition, false, now)
                .await?;
        }
        uow.tx
            .put_setting(READY_MADE, &serde_json::json!({ "version": 1 }))
            .await?;
        uow.commit().await?;
        Ok(())
    }
}

const READY_MADE: &str = "journeys_ready_made";

/// A ready-made journey.
pub struct ReadyMade {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub definition: JourneyDefinition,
}

fn send(channel: Channel, template: &str, class: MessageClass, priority: u8) -> Step {
    Step::Send {
        channel,
        template: template.into(),
        class,
        priority,
    }
}

/// The journeys a business switches on rather than builds.
pub fn ready_made() -> &'static [ReadyMade] {
    static READY: std::sync::LazyLock<Vec<ReadyMade>> = std::sync::LazyLock::new(build_ready_made);
    &READY
}

fn build_ready_made() -> Vec<ReadyMade> {
    use Channel::{App as InApp, Email};
    use MessageClass::{Marketing, Transactional};
    let conversion = |kind, window_days| Conversion { kind, window_days };
    vec![
        ReadyMade {
            name: "welcome",
            title: "Welcome after the first purchase",
            description: "Thank the new buyer at once, ask two days later for the birthday we lack, and a week on reassure them in their inbox.",
            definition: JourneyDefinition {
                trigger: Trigger::Event {
                    event: EventKind::FirstPurchase,
                    stage: None,
                },
                entry: String::new(),
                steps: vec![
                    send(Email, "welcome.thanks", Transactional, 8),
                    Step::Wait {
                        minutes: 2 * 24 * 60,
                    },
                    Step::Branch {
                        condition: "not has(birthday)".into(),
                        otherwise: 5,
                    },
                    send(Email, "welcome.profile", Marketing, 5),
                    Step::Wait {
                        minutes: 5 * 24 * 60,
                    },
                    send(InApp, "welcome.reassure", Marketing, 4),
                ],
                reentry: Reentry::Never,
                control_percent: 0,
                conversion: conversion(ConversionKind::Purchase, 60),
                late_window_hours: 48,
            },
        },
        ReadyMade {
            name: "birthday",
            title: "Birthday greeting",
            description: "At 09:00 on the customer's birthday in their time zone (on the lunar calendar for those who keep it), a greeting with the birthday points.",
            definition: JourneyDefinition {
                trigger: Trigger::Birthday,
                entry: String::new(),
                steps: vec![
                    Step::WaitUntil {
                        local_time: "09:00".into(),
                    },
                    send(Email, "birthday.greeting", Marketing, 7),
                    send(InApp, "birthday.greeting", Marketing, 7),
                ],
                reentry: Reentry::EachOccasion,
                control_percent: 10,
                conversion: conversion(ConversionKind::Purchase, 30),
                late_window_hours: 12,
            },
        },
        ReadyMade {
            name: "holidays",
            title: "Holiday greetings",
            description: "New Year, Spring Festival, Lantern, Dragon Boat, Mid-Autumn and Christmas, at 10:00 local time.",
            definition: JourneyDefinition {
                trigger: Trigger::Holiday {
                    holidays: vec![
                        Holiday::NewYear,
                        Holiday::SpringFestival,
                        Holiday::Lantern,
                        Holiday::DragonBoat,
                        Holiday::MidAutumn,
                        Holiday::Christmas,
                    ],
                },
                entry: "orders >= 1".into(),
                steps: vec![
                    Step::WaitUntil {
                        local_time: "10:00".into(),
                    },
                    send(Email, "holiday.greeting", Marketing, 3),
                ],
                reentry: Reentry::EachOccasion,
                control_percent: 10,
                conversion: conversion(ConversionKind::Return, 14),
                late_window_hours: 12,
            },
        },
        ReadyMade {
            name: "post_ticket_survey",
            title: "Survey after a resolved ticket",
            description: "Sends the CSAT link a resolved ticket creates.",
            definition: JourneyDefinition {
                trigger: Trigger::Event {
                    event: EventKind::SurveyInvited,
                    stage: None,
                },
                entry: String::new(),
                steps: vec![send(Email, "survey.invitation", Transactional, 9)],
                reentry: Reentry::EachOccasion,
                control_percent: 0,
                conversion: conversion(ConversionKind::Return, 30),
                late_window_hours: 72,
            },
        },
        ReadyMade {
            name: "tier_upgrade",
            title: "Tier upgrade congratulation",
            description: "Congratulates a member who moved up a tier, by email and in their inbox.",
            definition: JourneyDefinition {
                trigger: Trigger::Event {
                    event: EventKind::TierUpgraded,
                    stage: None,
                },
                entry: String::new(),
                steps: vec![
                    send(Email, "tier.upgrade", Marketing, 6),
                    send(InApp, "tier.upgrade", Marketing, 6),
                ],
                reentry: Reentry::EachOccasion,
                control_percent: 0,
                conversion: conversion(ConversionKind::Purchase, 30),
                late_window_hours: 48,
            },
        },
        ReadyMade {
            name: "points_expiring",
            title: "Points about to expire",
            description: "Reminds a member two weeks before points expire, with what they can redeem.",
            definition: JourneyDefinition {
                trigger: Trigger::PointsExpiring { days: 14 },
                entry: String::new(),
                steps: vec![
                    Step::WaitUntil {
                        local_time: "10:00".into(),
                    },
                    send(Email, "points.expiring", Marketing, 6),
                ],
                reentry: Reentry::EachOccasion,
                control_percent: 10,
                conversion: conversion(ConversionKind::Redemption, 30),
                late_window_hours: 24,
            },
        },
        ReadyMade {
            name: "re_engagement",
            title: "Re-engage customers at risk",
            description: "Customers the life cycle puts at risk get an offer picked for them; 10% are held out to measure it.",
            definition: JourneyDefinition {
                trigger: Trigger::Daily,
                entry: format!("stage = \"{}\"", Stage::AtRisk),
                steps: vec![
                    Step::WaitUntil {
                        local_time: "10:00".into(),
                    },
                    send(Email, "reengage.offer", Marketing, 4),
                    Step::AddTag {
                        tag: "re-engaged".into(),
                    },
                ],
                reentry: Reentry::AfterDays(60),
                control_percent: 10,
                conversion: conversion(ConversionKind::Purchase, 30),
                late_window_hours: 24,
            },
        },
        ReadyMade {
            name: "win_back",
            title: "Win back churned customers worth it",
            description: "Churned customers with a predicted value of 50 or more, or who spent 200 or more: an offer, then a call from their owner if they have not come back in a week; 20% held out.",
            definition: JourneyDefinition {
                trigger: Trigger::Daily,
                entry: format!(
                    "stage = \"{}\" and (clv >= 50 or spend >= 200)",
                    Stage::Churned
                ),
                steps: vec![
                    Step::WaitUntil {
                        local_time: "10:00".into(),
                    },
                    send(Email, "winback.offer", Marketing, 4),
                    Step::Wait {
                        minutes: 7 * 24 * 60,
                    },
                    Step::Branch {
                        condition: "recency_days > 7".into(),
                        otherwise: 6,
                    },
                    Step::CreateTask {
                        title: "Call to win back".into(),
                        due_days: 3,
                    },
                ],
                reentry: Reentry::AfterDays(180),
                control_percent: 20,
                conversion: conversion(ConversionKind::Purchase, 60),
                late_window_hours: 24,
            },
        },
    ]
}

/// The ready-made templates: (name, channel, locale, subject, body).
pub fn ready_made_templates() -> Vec<(
    &'static str,
    Channel,
    &'static str,
    &'static str,
    &'static str,
)> {
    use Channel::{App as InApp, Email};
    vec![
        (
            "welcome.thanks",
            Email,
            "en",
            "Thank you for your first order, {{ customer.first_name }}",
            "Dear {{ customer.name }},\n\nThank you for your first order with {{ business.name }}. We are glad to have you.\n\nIf anything is not as it should be, simply reply to this email and we will put it right.\n{% if customer.points is not none %}\nYou already have {{ customer.points }} points: {{ links.member }}\n{% endif %}\nWarm regards,\n{{ business.name }}",
        ),
        (
            "welcome.thanks",
            Email,
            "zh-CN",
            "{{ customer.name }}，感谢您的首次惠顾",
            "亲爱的{{ customer.name }}：\n\n感谢您在{{ business.name }}的第一笔订单，很高兴认识您。\n\n如有任何不满意，直接回复本邮件，我们马上处理。\n{% if customer.points is not none %}\n您已有 {{ customer.points }} 积分：{{ links.member }}\n{% endif %}\n{{ business.name }} 敬上",
        ),
        (
            "welcome.thanks",
            Email,
            "zh-TW",
            "{{ customer.name }}，感謝您的首次惠顧",
            "親愛的{{ customer.name }}：\n\n感謝您在{{ business.name }}的第一筆訂單，很高興認識您。\n\n如有任何不滿意，直接回覆本郵件，我們馬上處理。\n{% if customer.points is not none %}\n您已有 {{ customer.points }} 點數：{{ links.member }}\n{% endif %}\n{{ business.name }} 敬上",
        ),
        (
            "welcome.profile",
            Email,
            "en",
            "When is your birthday, {{ customer.first_name }}?",
            "Dear {{ customer.name }},\n\nTell us your birthday and we will celebrate it with you every year: {{ links.profile }}\n\n{{ business.name }}",
        ),
        (
            "welcome.profile",
            Email,
            "zh-CN",
            "{{ customer.name }}，您的生日是哪天？",
            "亲爱的{{ customer.name }}：\n\n告诉我们您的生日，每年我们都为您庆祝：{{ links.profile }}\n\n{{ business.name }}",
        ),
        (
            "welcome.profile",
            Email,
            "zh-TW",
            "{{ customer.name }}，您的生日是哪天？",
            "親愛的{{ customer.name }}：\n\n告訴我們您的生日，每年我們都為您慶祝：{{ links.profile }}\n\n{{ business.name }}",
        ),
        (
            "welcome.reassure",
            InApp,
            "en",
            "",
            "How is your purchase working out? If you need anything, we are one message away.",
        ),
        (
            "welcome.reassure",
            InApp,
            "zh-CN",
            "",
            "您的商品用得还好吗？有任何需要，随时联系我们。",
        ),
        (
            "welcome.reassure",
            InApp,
            "zh-TW",
            "",
            "您的商品用得還好嗎？有任何需要，隨時聯繫我們。",
        ),
        (
            "birthday.greeting",
            Email,
            "en",
            "Happy birthday, {{ customer.first_name }}!",
            "Dear {{ customer.name }},\n\nEveryone at {{ business.name }} wishes you a happy birthday.\n{% if customer.points is not none %}\nA birthday gift of points is in your account, which now holds {{ customer.points }}: {{ links.member }}\n{% endif %}\nWith our best wishes,\n{{ business.name }}",
        ),
        (
            "birthday.greeting",
            Email,
            "zh-CN",
            "{{ customer.name }}，生日快乐！",
            "亲爱的{{ customer.name }}：\n\n{{ business.name }}全体同仁祝您生日快乐！\n{% if customer.points is not none %}\n生日积分已存入您的账户，现有 {{ customer.points }} 积分：{{ links.member }}\n{% endif %}\n{{ business.name }} 敬上",
        ),
        (
            "birthday.greeting",
            Email,
            "zh-TW",
            "{{ customer.name }}，生日快樂！",
            "親愛的{{ customer.name }}：\n\n{{ business.name }}全體同仁祝您生日快樂！\n{% if customer.points is not none %}\n生日點數已存入您的帳戶，現有 {{ customer.points }} 點：{{ links.member }}\n{% endif %}\n{{ business.name }} 敬上",
        ),
        (
            "birthday.greeting",
            InApp,
            "en",
            "",
            "Happy birthday, {{ customer.first_name }}! A birthday gift is waiting for you.",
        ),
        (
            "birthday.greeting",
            InApp,
            "zh-CN",
            "",
            "{{ customer.name }}，生日快乐！生日礼物已为您准备好。",
        ),
        (
            "birthday.greeting",
            InApp,
            "zh-TW",
            "",
            "{{ customer.name }}，生日快樂！生日禮物已為您準備好。",
        ),
        (
            "holiday.greeting",
            Email,
            "en",
            "Happy {{ occasion.holiday }} from {{ business.name }}",
            "Dear {{ customer.name }},\n\nWishing you and your family a happy {{ occasion.holiday }}.\n\n{{ business.name }}",
        ),
        (
            "holiday.greeting",
            Email,
            "zh-CN",
            "{{ business.name }}祝您{{ occasion.holiday }}快乐",
            "亲爱的{{ customer.name }}：\n\n祝您和家人{{ occasion.holiday }}快乐，阖家幸福！\n\n{{ business.name }}",
        ),
        (
            "holiday.greeting",
            Email,
            "zh-TW",
            "{{ business.name }}祝您{{ occasion.holiday }}快樂",
            "親愛的{{ customer.name }}：\n\n祝您和家人{{ occasion.holiday }}快樂，闔家幸福！\n\n{{ business.name }}",
        ),
        (
            "survey.invitation",
            Email,
            "en",
            "How did we do, {{ customer.first_name }}?",
            "Dear {{ customer.name }},\n\nWe have resolved your request. How satisfied are you with the help you got? One click is enough: {{ links.survey }}\n\nThank you,\n{{ business.name }}",
        ),
        (
            "survey.invitation",
            Email,
            "zh-CN",
            "{{ customer.name }}，您对我们的服务满意吗？",
            "亲爱的{{ customer.name }}：\n\n您的问题已经处理完毕。您对这次服务满意吗？点一下即可评分：{{ links.survey }}\n\n谢谢！\n{{ business.name }}",
        ),
        (
            "survey.invitation",
            Email,
            "zh-TW",
            "{{ customer.name }}，您對我們的服務滿意嗎？",
            "親愛的{{ customer.name }}：\n\n您的問題已經處理完畢。您對這次服務滿意嗎？點一下即可評分：{{ links.survey }}\n\n謝謝！\n{{ business.name }}",
        ),
        (
            "tier.upgrade",
            Email,
            "en",
            "Welcome to {{ customer.tier }}, {{ customer.first_name }}",
            "Dear {{ customer.name }},\n\nCongratulations: you are now a {{ customer.tier }} member of {{ business.name }}. See what it brings you: {{ links.member }}\n\n{{ business.name }}",
        ),
        (
            "tier.upgrade",
            Email,
            "zh-CN",
            "恭喜您升级为{{ customer.tier }}会员",
            "亲爱的{{ customer.name }}：\n\n恭喜您成为{{ business.name }}的{{ customer.tier }}会员！查看您的新权益：{{ links.member }}\n\n{{ business.name }}",
        ),
        (
            "tier.upgrade",
            Email,
            "zh-TW",
            "恭喜您升級為{{ customer.tier }}會員",
            "親愛的{{ customer.name }}：\n\n恭喜您成為{{ business.name }}的{{ customer.tier }}會員！查看您的新權益：{{ links.member }}\n\n{{ business.name }}",
        ),
        (
            "tier.upgrade",
            InApp,
            "en",
            "",
            "Congratulations: you are now a {{ customer.tier }} member.",
        ),
        (
            "tier.upgrade",
            InApp,
            "zh-CN",
            "",
            "恭喜您升级为{{ customer.tier }}会员！",
        ),
        (
            "tier.upgrade",
            InApp,
            "zh-TW",
            "",
            "恭喜您升級為{{ customer.tier }}會員！",
        ),
        (
            "points.expiring",
            Email,
            "en",
            "{{ customer.expiring_points }} points expire on {{ customer.expiring_on }}",
            "Dear {{ customer.name }},\n\n{{ customer.expiring_points }} of your {{ customer.points }} points expire on {{ customer.expiring_on }}. Redeem them before they go: {{ links.member }}\n\n{{ business.name }}",
        ),
        (
            "points.expiring",
            Email,
            "zh-CN",
            "您有 {{ customer.expiring_points }} 积分将于 {{ customer.expiring_on }} 到期",
            "亲爱的{{ customer.name }}：\n\n您的 {{ customer.points }} 积分中有 {{ customer.expiring_points }} 积分将于 {{ customer.expiring_on }} 到期，请尽快兑换：{{ links.member }}\n\n{{ business.name }}",
        ),
        (
            "points.expiring",
            Email,
            "zh-TW",
            "您有 {{ customer.expiring_points }} 點數將於 {{ customer.expiring_on }} 到期",
            "親愛的{{ customer.name }}：\n\n您的 {{ customer.points }} 點數中有 {{ customer.expiring_points }} 點將於 {{ customer.expiring_on }} 到期，請盡快兌換：{{ links.member }}\n\n{{ business.name }}",
        ),
        (
            "reengage.offer",
            Email,
            "en",
            "We miss you, {{ customer.first_name }}",
            "Dear {{ customer.name }},\n\nIt has been a while. We picked these for you:\n{% for o in offers %}- {{ o.name }}\n{% endfor %}\nWe would be glad to see you again.\n\n{{ business.name }}",
        ),
        (
            "reengage.offer",
            Email,
            "zh-CN",
            "{{ customer.name }}，好久不见",
            "亲爱的{{ customer.name }}：\n\n好久不见，我们为您挑选了：\n{% for o in offers %}- {{ o.name }}\n{% endfor %}\n期待再次见到您。\n\n{{ business.name }}",
        ),
        (
            "reengage.offer",
            Email,
            "zh-TW",
            "{{ customer.name }}，好久不見",
            "親愛的{{ customer.name }}：\n\n好久不見，我們為您挑選了：\n{% for o in offers %}- {{ o.name }}\n{% endfor %}\n期待再次見到您。\n\n{{ business.name }}",
        ),
        (
            "winback.offer",
            Email,
            "en",
            "Come back to {{ business.name }}, {{ customer.first_name }}",
            "Dear {{ customer.name }},\n\nWe would like to win you back. Here is what we think you will like:\n{% for o in offers %}- {{ o.name }}\n{% endfor %}\nIf something went wrong last time, reply and tell us.\n\n{{ business.name }}",
        ),
        (
            "winback.offer",
            Email,
            "zh-CN",
            "{{ customer.name }}，欢迎回到{{ business.name }}",
            "亲爱的{{ customer.name }}：\n\n我们很想念您，为您推荐：\n{% for o in offers %}- {{ o.name }}\n{% endfor %}\n如果上次有不满意的地方，请回复告诉我们。\n\n{{ business.name }}",
        ),
        (
            "winback.offer",
            Email,
            "zh-TW",
            "{{ customer.name }}，歡迎回到{{ business.name }}",
            "親愛的{{ customer.name }}：\n\n我們很想念您，為您推薦：\n{% for o in offers %}- {{ o.name }}\n{% endfor %}\n如果上次有不滿意的地方，請回覆告訴我們。\n\n{{ business.name }}",
        ),
    ]
}

impl App {
    /// The one-click unsubscribe link of `customer` on `channel`, as messages carry it.
    pub async fn unsubscribe_link(
        &self,
        customer: CustomerId,
        channel: Channel,
    ) -> AppResult<String> {
        Links::load(self).await?.unsubscribe(customer, channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ready_made_template_renders_and_every_journey_checks() {
        for (name, channel, locale, subject, body) in ready_made_templates() {
            let errors = check_template(channel, subject, body);
            assert!(errors.is_empty(), "{name} {channel} {locale}: {errors:?}");
        }
        let templates = ready_made_templates();
        for r in ready_made() {
            assert!(
                r.definition.check().is_empty(),
                "{}: {:?}",
                r.name,
                r.definition.check()
            );
            for (_, t) in r.definition.templates() {
                for locale in LOCALES {
                    assert!(
                        templates
                            .iter()
                            .any(|(n, _, l, _, _)| *n == t && *l == locale),
                        "{}: {t} in {locale}",
                        r.name
                    );
                }
            }
        }
    }

    #[test]
    fn a_misspelt_field_is_refused_when_saved() {
        let errors = check_template(Channel::Email, "Hi", "Dear {{ customer.nmae }}");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "body");
        assert!(
            errors[0].message.contains("line 1"),
            "{}",
            errors[0].message
        );
        let errors = check_template(Channel::Email, "Hi {{", "ok");
        assert_eq!(errors[0].field, "subject");
    }

    #[test]
    fn locales_map_to_the_template_languages() {
        assert_eq!(message_locale(Some("zh-Hant-TW")), "zh-TW");
        assert_eq!(message_locale(Some("zh-HK")), "zh-TW");
        assert_eq!(message_locale(Some("zh-CN")), "zh-CN");
        assert_eq!(message_locale(Some("zh")), "zh-CN");
        assert_eq!(message_locale(Some("de")), "en");
        assert_eq!(message_locale(None), "en");
    }
}
