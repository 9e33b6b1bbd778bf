//! Journeys and messages with real parts: a real SMTP server (aiosmtpd) receives the
//! welcome email after a first purchase, with its plain-text part and a one-click
//! unsubscribe that works; a controlled clock walks a year of birthdays (Gregorian and
//! lunar, in the customers' own time zones) and holidays (Gregorian and lunar), with quiet
//! hours deferring a message and a missed send skipped after downtime.

use std::io::Read;
use std::process::{Child, Command, Stdio};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{Value, json};
use tenure_app::jobs::Worker;
use tenure_app::messages::Channels;
use tenure_app::{App, AppOptions, Clock};
use tenure_domain::customer::ConsentStatus;
use tenure_domain::ids::CustomerId;
use tenure_domain::journey::{
    Channel, JourneyDefinition, MessageClass, MessageStatus, Reentry, SkipReason, Step, Trigger,
};
use tenure_store::journeys::MessageFilter;
use tenure_testkit::{TestApp, TestDb, operator, skip, spawn_app_with};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A real SMTP server on a free port, printing every message it receives to a file.
pub(crate) struct Smtp {
    child: Child,
    pub(crate) port: u16,
    out: tempfile::NamedTempFile,
}

impl Smtp {
    pub(crate) fn start() -> Option<Smtp> {
        let ok = Command::new("/usr/bin/python3")
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            skip("the SMTP server (Debian's python3-aiosmtpd) is not installed");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new("/usr/bin/python3")
            .args([
                "-u",
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::from(out.reopen().unwrap()))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Smtp { child, port, out });
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the SMTP server did not start");
    }

    pub(crate) fn received(&self) -> String {
        let mut s = String::new();
        std::fs::File::open(self.out.path())
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    /// How many messages `received` holds, and how many distinct `Message-ID`s among them.
    pub(crate) fn message_ids(received: &str) -> (usize, usize) {
        let mut ids: Vec<&str> = received
            .lines()
            .filter_map(|l| l.strip_prefix("Message-ID: "))
            .collect();
        let all = ids.len();
        ids.sort_unstable();
        ids.dedup();
        (all, ids.len())
    }

    /// Waits until the server has printed `needle`.
    async fn wait_for(&self, needle: &str) -> String {
        for _ in 0..100 {
            let r = self.received();
            if r.contains(needle) {
                return r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "the SMTP server never received {needle:?}:\n{}",
            self.received()
        );
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn app_with(db: TestDb, clock: &Clock, smtp: Option<u16>) -> TestApp {
    let clock = clock.clone();
    spawn_app_with(
        db,
        move |s| {
            App::builder(s)
                .options(AppOptions {
                    clock,
                    base_url: "https://shop.example.com".into(),
                    channels: Channels {
                        smtp_url: smtp.map(|p| format!("smtp://127.0.0.1:{p}")),
                        smtp_from: "Tea House <hello@tea.example.com>".into(),
                        gateway_url: None,
                        gateway_secret: None,
                        lease: Duration::seconds(60),
                        batch: 50,
                    },
                    ..AppOptions::default()
                })
                .build()
        },
        tenure_http::auth::TOKEN_TTL,
    )
    .await
}

async fn customer(app: &TestApp, body: Value) -> i64 {
    let (status, c) = app.post_json("/api/v1/customers", body).await;
    assert_eq!(status, 201, "{c}");
    c["id"].as_i64().unwrap()
}

async fn enable(app: &TestApp, name: &str) {
    let j = app.app.journey_named(&operator(), name).await.unwrap();
    app.app
        .set_journey_enabled(&operator(), j.id, true)
        .await
        .unwrap();
}

/// Turns the ready-made journey `name` into a daily one for whoever meets `entry`, with one
/// send step, and switches it on.
async fn daily_send(
    app: &TestApp,
    name: &str,
    entry: &str,
    channel: Channel,
    template: &str,
    class: MessageClass,
    priority: u8,
) {
    let j = app.app.journey_named(&operator(), name).await.unwrap();
    let def = JourneyDefinition {
        trigger: Trigger::Daily,
        entry: entry.into(),
        steps: vec![Step::Send {
            channel,
            template: template.into(),
            class,
            priority,
        }],
        reentry: Reentry::Never,
        control_percent: 0,
        ..j.definition.clone()
    };
    app.app
        .update_journey(&operator(), j.id, None, None, Some(def), Some(true))
        .await
        .unwrap();
}

async fn messages_of(app: &TestApp, customer: i64) -> Vec<tenure_store::journeys::Message> {
    let filter = MessageFilter {
        customer: Some(CustomerId(customer)),
        ..MessageFilter::default()
    };
    app.store
        .list_messages(&filter, None, 100)
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn the_welcome_email_reaches_a_real_smtp_server_and_its_unsubscribe_link_works() {
    let Some(smtp) = Smtp::start() else { return };
    for db in TestDb::all().await {
        // 03:00 UTC: quiet hours in the business's zone (UTC), but a thank-you for an
        // order is transactional and goes at once.
        let clock = Clock::fixed(at("2026-12-03T03:00:00Z"));
        let app = app_with(db, &clock, Some(smtp.port)).await;
        enable(&app, "welcome").await;
        let email = format!("mei.{}@example.com", rand_suffix());
        let id = customer(
            &app,
            json!({
                "name": "Wang Mei", "email": email, "locale": "zh-CN",
                "consents": [{"channel": "email", "status": "granted", "source": "checkout form"}],
            }),
        )
        .await;
        let (status, o) = app
            .post_json(
                "/api/v1/orders",
                json!({"customer_id": id, "occurred_at": "2026-12-03T02:30:00Z", "total_minor": 8_800}),
            )
            .await;
        assert_eq!(status, 201, "{o}");
        let worker = Worker::new(app.app.clone(), "test");
        let (moved, delivered) = worker.run_messages().await.unwrap();
        assert_eq!((moved, delivered.sent), (1, 1), "{delivered:?}");

        let got = smtp.wait_for(&email).await;
        let mail: &str = got
            .split("---------- MESSAGE FOLLOWS ----------")
            .find(|m| m.contains(&email))
            .unwrap();
        assert!(
            mail.contains("List-Unsubscribe: <https://shop.example.com/u/"),
            "{mail}"
        );
        assert!(
            mail.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
            "{mail}"
        );
        assert!(mail.contains("Content-Type: text/plain"), "{mail}");
        assert!(mail.contains("Content-Type: text/html"), "{mail}");
        assert!(mail.contains("Message-ID: <message-"), "{mail}");
        let stored = messages_of(&app, id).await;
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].status, MessageStatus::Sent);
        assert_eq!(stored[0].locale, "zh-CN");
        assert!(
            stored[0].subject.contains("感谢您的首次惠顾"),
            "{}",
            stored[0].subject
        );
        assert!(
            stored[0]
                .body_text
                .contains("一键退订: https://shop.example.com/u/")
        );

        // The link in the header unsubscribes (the page's one-click POST calls this).
        let line = mail
            .lines()
            .find(|l| l.starts_with("List-Unsubscribe: <"))
            .unwrap();
        let token = line
            .trim_start_matches("List-Unsubscribe: <https://shop.example.com/u/")
            .trim_end_matches('>');
        let (name, channel) = app.app.unsubscribe(token).await.unwrap();
        assert_eq!((name.as_str(), channel), ("Wang Mei", Channel::Email));
        assert!(app.app.unsubscribe("1.email.forged").await.is_err());
        let c = app.store.get_customer(CustomerId(id)).await.unwrap();
        let consent = c
            .consents
            .iter()
            .find(|c| c.channel == tenure_domain::customer::ConsentChannel::Email)
            .unwrap();
        assert_eq!(consent.status, ConsentStatus::Withdrawn);
        assert_eq!(consent.source, "unsubscribe link");

        // Two days on, the journey asks for the missing birthday: not on a channel the
        // customer left.
        clock.set(at("2026-12-05T10:00:00Z"));
        worker.run_messages().await.unwrap();
        let stored = messages_of(&app, id).await;
        assert_eq!(stored.len(), 2, "{stored:?}");
        assert_eq!(stored[0].template, "welcome.profile");
        assert_eq!(
            (stored[0].status, stored[0].reason),
            (MessageStatus::Skipped, Some(SkipReason::Unsubscribed))
        );
        // A second order is no first purchase: no second welcome.
        let (status, _) = app
            .post_json(
                "/api/v1/orders",
                json!({"customer_id": id, "occurred_at": "2026-12-05T09:00:00Z", "total_minor": 1_200}),
            )
            .await;
        assert_eq!(status, 201);
        let report = app
            .app
            .journey_report(
                &operator(),
                app.app
                    .journey_named(&operator(), "welcome")
                    .await
                    .unwrap()
                    .id,
            )
            .await
            .unwrap();
        assert_eq!(report.counts.entered, 1);
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

fn dates(
    enrolments: &[tenure_store::journeys::Enrollment],
    prefix: &str,
) -> Vec<(String, NaiveDate)> {
    let mut v: Vec<_> = enrolments
        .iter()
        .filter(|e| e.occasion.starts_with(prefix))
        .map(|e| (e.occasion.clone(), e.occasion_on.unwrap()))
        .collect();
    v.sort_by_key(|(_, d)| *d);
    v
}

#[tokio::test]
async fn a_year_of_birthdays_and_holidays_in_each_customers_time_zone() {
    for db in TestDb::all().await {
        let clock = Clock::fixed(at("2026-01-01T03:00:00Z"));
        let app = app_with(db, &clock, None).await;
        enable(&app, "birthday").await;
        enable(&app, "holidays").await;
        // Greet everyone on holidays, buyers or not.
        let h = app
            .app
            .journey_named(&operator(), "holidays")
            .await
            .unwrap();
        let mut def = h.definition.clone();
        def.entry = String::new();
        def.control_percent = 0;
        app.app
            .update_journey(&operator(), h.id, None, None, Some(def), None)
            .await
            .unwrap();
        let b = app
            .app
            .journey_named(&operator(), "birthday")
            .await
            .unwrap();
        let mut def = b.definition.clone();
        def.control_percent = 0;
        app.app
            .update_journey(&operator(), b.id, None, None, Some(def), None)
            .await
            .unwrap();

        let shanghai = customer(
            &app,
            json!({"name": "Li Na", "birthday": "1990-06-15", "locale": "zh-CN",
                   "preferences": {"time_zone": "Asia/Shanghai"}}),
        )
        .await;
        // Born on Spring Festival 1990; keeps the lunar birthday: Spring Festival 2026.
        let lunar = customer(
            &app,
            json!({"name": "Chen Wei", "birthday": "1990-01-27", "locale": "zh-TW",
                   "preferences": {"time_zone": "Asia/Taipei", "birthday_calendar": "lunar"}}),
        )
        .await;
        let new_york = customer(
            &app,
            json!({"name": "Ann Lee", "birthday": "1985-03-01",
                   "preferences": {"time_zone": "America/New_York"}}),
        )
        .await;
        // An invalid time zone is refused when the profile is written.
        let (status, p) = app
            .post_json(
                "/api/v1/customers",
                json!({"name": "Bad Zone", "preferences": {"time_zone": "Mars/Olympus"}}),
            )
            .await;
        assert_eq!(status, 422, "{p}");
        assert!(p.to_string().contains("time_zone"), "{p}");

        // Twice a day for a year (03:00 and 15:00 UTC), evaluations and steps; run twice
        // at some moments, as two workers or a retried job would.
        let mut t = at("2026-01-01T03:00:00Z");
        while t < at("2027-01-01T00:00:00Z") {
            clock.set(t);
            app.app.evaluate_journey_schedules().await.unwrap();
            if t.format("%d").to_string() == "15" {
                app.app.evaluate_journey_schedules().await.unwrap();
            }
            app.app.advance_journeys(100).await.unwrap();
            t += Duration::hours(12);
        }
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let of = |id: i64| {
            let app = app.app.clone();
            async move {
                app.customer_journeys(&operator(), CustomerId(id))
                    .await
                    .unwrap()
            }
        };
        let (sh, lu, ny) = (of(shanghai).await, of(lunar).await, of(new_york).await);
        assert_eq!(
            dates(&sh, "birthday"),
            vec![("birthday:2026".into(), d("2026-06-15"))]
        );
        assert_eq!(
            dates(&lu, "birthday"),
            vec![("birthday:2026".into(), d("2026-02-17"))]
        );
        assert_eq!(
            dates(&ny, "birthday"),
            vec![("birthday:2026".into(), d("2026-03-01"))]
        );
        let holidays = vec![
            ("holiday:new_year:2026".to_owned(), d("2026-01-01")),
            ("holiday:spring_festival:2026".to_owned(), d("2026-02-17")),
            ("holiday:lantern:2026".to_owned(), d("2026-03-03")),
            ("holiday:dragon_boat:2026".to_owned(), d("2026-06-19")),
            ("holiday:mid_autumn:2026".to_owned(), d("2026-09-25")),
            ("holiday:christmas:2026".to_owned(), d("2026-12-25")),
        ];
        for (who, e) in [("Shanghai", &sh), ("Taipei", &lu), ("New York", &ny)] {
            assert_eq!(dates(e, "holiday"), holidays, "{who}");
        }

        // The birthday greeting went to the inbox at the day's first look; no worker
        // delivered it, and a day later it is past its 12-hour window: skipped as missed,
        // never sent a day late.
        let inbox = messages_of(&app, shanghai).await;
        let greeting = inbox
            .iter()
            .find(|m| m.template == "birthday.greeting" && m.channel == Channel::App)
            .unwrap();
        assert_eq!(greeting.status, MessageStatus::Queued);
        assert_eq!(greeting.locale, "zh-CN");
        assert!(
            greeting.body_text.contains("生日快乐"),
            "{}",
            greeting.body_text
        );
        // The email has no server on this application: not sent, and why.
        let email = inbox
            .iter()
            .find(|m| m.template == "birthday.greeting" && m.channel == Channel::Email)
            .unwrap();
        assert_eq!(email.reason, Some(SkipReason::InvalidAddress));
        app.app.deliver_messages("test").await.unwrap();
        let after = app.store.get_message(greeting.id).await.unwrap();
        assert_eq!(
            (after.status, after.reason),
            (MessageStatus::Skipped, Some(SkipReason::Missed))
        );
    }
}

#[tokio::test]
async fn quiet_hours_defer_a_marketing_message_to_the_customers_morning() {
    for db in TestDb::all().await {
        // 03:00 UTC is 22:00 the evening before in New York.
        let clock = Clock::fixed(at("2026-12-03T03:00:00Z"));
        let app = app_with(db, &clock, None).await;
        let id = customer(
            &app,
            json!({"name": "Ann Lee", "tags": ["tea-club"],
                   "preferences": {"time_zone": "America/New_York"}}),
        )
        .await;
        daily_send(
            &app,
            "re_engagement",
            "tag = \"tea-club\"",
            Channel::App,
            "welcome.reassure",
            MessageClass::Marketing,
            5,
        )
        .await;
        app.app.evaluate_journey_schedules().await.unwrap();
        app.app.advance_journeys(10).await.unwrap();
        let m = messages_of(&app, id).await;
        assert_eq!(m.len(), 1);
        // Deferred to 09:00 in New York (14:00 UTC), not dropped.
        assert_eq!(
            (m[0].status, m[0].due_at),
            (MessageStatus::Queued, at("2026-12-03T14:00:00Z"))
        );
        assert_eq!(app.app.deliver_messages("test").await.unwrap().claimed, 0);
        clock.set(at("2026-12-03T14:00:00Z"));
        assert_eq!(app.app.deliver_messages("test").await.unwrap().sent, 1);
        let inbox = app.app.inbox(CustomerId(id)).await.unwrap();
        assert_eq!(inbox.len(), 1);
        // Entered once: the next day's look enrols nobody again.
        clock.set(at("2026-12-04T15:00:00Z"));
        let r = app.app.evaluate_journey_schedules().await.unwrap();
        assert_eq!(r.enrolled, 0);
    }
}

#[tokio::test]
async fn the_unsubscribe_page_asks_and_a_one_click_post_unsubscribes() {
    let db = TestDb::sqlite();
    let clock = Clock::fixed(at("2026-12-03T10:00:00Z"));
    let app = app_with(db, &clock, None).await;
    let id = customer(
        &app,
        json!({"name": "Zhang Wei", "email": "wei@example.com", "locale": "zh-CN",
               "consents": [{"channel": "email", "status": "granted", "source": "shop"}]}),
    )
    .await;
    let link = app
        .app
        .unsubscribe_link(CustomerId(id), Channel::Email)
        .await
        .unwrap();
    let path = link.trim_start_matches("https://shop.example.com");
    let page = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Zhang Wei") && html.contains("<form"),
        "{html}"
    );
    // What a mail program sends for List-Unsubscribe-Post, from its own servers.
    let done = app
        .client
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let c = app.store.get_customer(CustomerId(id)).await.unwrap();
    assert!(
        c.consents
            .iter()
            .any(|c| c.status == ConsentStatus::Withdrawn)
    );
    let forged = app
        .client
        .get(app.url("/u/1.email.AAAA"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 404);
}

/// What the local gateway received: headers and body of each call.
type Calls = std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>;

/// A local SMS gateway: answers the first call 503 (down for a moment), the rest 200.
async fn gateway() -> (u16, Calls) {
    let calls: Calls = Calls::default();
    let seen = calls.clone();
    let router = axum::Router::new().route(
        "/sms",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let mut c = seen.lock().unwrap();
                c.push((headers, body));
                if c.len() == 1 {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (port, calls)
}

#[tokio::test]
async fn an_sms_goes_through_the_signed_gateway_and_is_retried_once_it_is_back() {
    use hmac::{KeyInit, Mac};
    let (port, calls) = gateway().await;
    for db in TestDb::all().await {
        calls.lock().unwrap().clear();
        let clock = Clock::fixed(at("2026-12-03T10:00:00Z"));
        let clock2 = clock.clone();
        let app = spawn_app_with(
            db,
            move |s| {
                App::builder(s)
                    .options(AppOptions {
                        clock: clock2,
                        channels: Channels {
                            smtp_url: None,
                            smtp_from: "Tea House <hello@tea.example.com>".into(),
                            gateway_url: Some(format!("http://127.0.0.1:{port}/sms")),
                            gateway_secret: Some("gateway-test-secret".into()),
                            lease: Duration::seconds(60),
                            batch: 50,
                        },
                        ..AppOptions::default()
                    })
                    .build()
            },
            tenure_http::auth::TOKEN_TTL,
        )
        .await;
        // A template error is reported when the template is saved.
        let bad = app
            .app
            .save_template(
                &operator(),
                "test.sms",
                Channel::Sms,
                "en",
                "",
                "Hi {{ customer.nmae }}",
            )
            .await;
        assert!(
            matches!(bad, Err(tenure_app::AppError::Invalid(_))),
            "{bad:?}"
        );
        app.app
            .save_template(
                &operator(),
                "test.sms",
                Channel::Sms,
                "en",
                "",
                "Hi {{ customer.first_name }}, your table is ready.",
            )
            .await
            .unwrap();
        let id = customer(
            &app,
            json!({"name": "Wei Zhang", "phone": "+86 138 0013 8000",
                   "consents": [{"channel": "sms", "status": "granted", "source": "counter"}]}),
        )
        .await;
        daily_send(
            &app,
            "re_engagement",
            "has(phone)",
            Channel::Sms,
            "test.sms",
            MessageClass::Transactional,
            5,
        )
        .await;
        app.app.evaluate_journey_schedules().await.unwrap();
        app.app.advance_journeys(10).await.unwrap();
        let first = app.app.deliver_messages("test").await.unwrap();
        assert_eq!(first.retried, 1, "{first:?}");
        // Not before its backoff; then through.
        assert_eq!(app.app.deliver_messages("test").await.unwrap().claimed, 0);
        clock.set(at("2026-12-03T10:01:00Z"));
        let second = app.app.deliver_messages("test").await.unwrap();
        assert_eq!(second.sent, 1, "{second:?}");
        let m = messages_of(&app, id).await;
        assert_eq!((m[0].status, m[0].attempts), (MessageStatus::Sent, 2));

        let calls = calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 2);
        let keys: Vec<_> = calls
            .iter()
            .map(|(h, _)| h["idempotency-key"].to_str().unwrap().to_owned())
            .collect();
        assert_eq!(keys[0], keys[1], "a retry carries the same key");
        for (h, body) in &calls {
            let ts = h["x-tenure-timestamp"].to_str().unwrap();
            let sig = h["x-tenure-signature"].to_str().unwrap();
            let mut mac =
                hmac::Hmac::<sha2::Sha256>::new_from_slice(b"gateway-test-secret").unwrap();
            mac.update(format!("{ts}.{body}").as_bytes());
            let want: String = mac
                .finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(sig, format!("sha256={want}"));
            let v: Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["to"], "+86 138 0013 8000");
            assert_eq!(v["text"], "Hi Wei, your table is ready.");
            assert_eq!(v["channel"], "sms");
        }
    }
}

/// An SMTP server that prints each recipient as it is given and each accepted message's
/// `Message-ID`, and hangs the first time it is given `stall@example.com`: that recipient,
/// and every other given to it in the next two seconds, waits for an hour — a server that
/// stops answering while a worker waits on it.
const STALLING_SMTP: &str = r#"
import asyncio, sys, time
from email import message_from_bytes
from aiosmtpd.controller import Controller
stalled = None
class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        global stalled
        print("RCPT", address, flush=True)
        if address == "stall@example.com" and stalled is None:
            stalled = time.monotonic()
            await asyncio.sleep(3600)
        elif stalled is not None and time.monotonic() - stalled < 2.0:
            await asyncio.sleep(3600)
        envelope.rcpt_tos.append(address)
        return "250 OK"
    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.content)
        print("DATA", msg["Message-ID"], envelope.rcpt_tos[0], flush=True)
        return "250 Message accepted for delivery"
c = Controller(Handler(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
while True:
    time.sleep(3600)
"#;

#[tokio::test]
async fn a_worker_killed_mid_batch_and_restarted_sends_every_message_once() {
    let Some(plain) = Smtp::start() else { return };
    drop(plain);
    for db in TestDb::all().await {
        let script = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(script.path(), STALLING_SMTP).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = tempfile::NamedTempFile::new().unwrap();
        let mut server = Command::new("/usr/bin/python3")
            .arg(script.path())
            .arg(port.to_string())
            .stdout(Stdio::from(out.reopen().unwrap()))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let read = || std::fs::read_to_string(out.path()).unwrap_or_default();
        let mut up = false;
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                up = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(up, "the stalling SMTP server did not start");

        let url = db.url.clone();
        let app = app_with(db, &Clock::default(), Some(port)).await;
        let mut emails = Vec::new();
        for i in 0..12 {
            let email = if i == 5 {
                "stall@example.com".to_owned()
            } else {
                format!("guest{i}@example.com")
            };
            customer(
                &app,
                json!({"name": format!("Guest {i}"), "email": email,
                       "consents": [{"channel": "email", "status": "granted", "source": "counter"}]}),
            )
            .await;
            emails.push(email);
        }
        daily_send(
            &app,
            "re_engagement",
            "has(email)",
            Channel::Email,
            "welcome.thanks",
            MessageClass::Transactional,
            5,
        )
        .await;
        app.app.evaluate_journey_schedules().await.unwrap();
        assert_eq!(app.app.advance_journeys(100).await.unwrap(), 12);

        let worker = |until_idle: bool| {
            let mut c = Command::new(env!("CARGO_BIN_EXE_tenure"));
            c.arg("worker");
            if until_idle {
                c.arg("--until-idle");
            }
            c.env("DATABASE_URL", &url)
                .env("TENURE_SMTP_URL", format!("smtp://127.0.0.1:{port}"))
                .env("TENURE_SMTP_FROM", "Tea House <hello@tea.example.com>")
                .env("TENURE_OUTBOX_LEASE_SECONDS", "2")
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            c
        };
        let mut first = worker(false).spawn().unwrap();
        let mut stalled = false;
        for _ in 0..600 {
            if read().contains("RCPT stall@example.com") {
                stalled = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(
            stalled,
            "the worker never reached the stalling recipient:\n{}",
            read()
        );
        // Once the sends already past the server have been recorded (nothing new for half
        // a second), kill -9 while the worker waits on the server, mid-batch.
        // On a busy machine the other sends of the batch may still be on their way: wait
        // for the first to arrive, then for quiet.
        let mut seen = read().matches("DATA ").count();
        for _ in 0..60 {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            let now = read().matches("DATA ").count();
            if now == seen && now > 0 {
                break;
            }
            seen = now;
        }
        first.kill().unwrap();
        let _ = first.wait();
        let before = read().matches("DATA ").count();
        assert!((1..12).contains(&before), "{}", read());
        assert!(
            !read()
                .lines()
                .any(|l| l.starts_with("DATA ") && l.ends_with(" stall@example.com")),
            "the stalled message was not sent before the kill"
        );

        // Once the dead worker's lease runs out, a new one sends the rest.
        tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
        let status = worker(true).status().unwrap();
        assert!(status.success());
        let got = read();
        let mut ids: Vec<&str> = got
            .lines()
            .filter_map(|l| l.strip_prefix("DATA "))
            .map(|l| l.split(' ').next().unwrap_or(""))
            .collect();
        let received = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            (received, ids.len()),
            (12, 12),
            "every message once:\n{got}"
        );
        for e in &emails {
            assert_eq!(
                got.lines()
                    .filter(|l| l.starts_with("DATA ") && l.ends_with(&format!(" {e}")))
                    .count(),
                1,
                "{e}:\n{got}"
            );
        }
        let filter = MessageFilter {
            status: Some(MessageStatus::Sent),
            ..MessageFilter::default()
        };
        let sent = app
            .store
            .list_messages(&filter, None, 100)
            .await
            .unwrap()
            .items;
        assert_eq!(sent.len(), 12);
        let _ = server.kill();
        let _ = server.wait();
    }
}

#[tokio::test]
async fn one_frequency_cap_across_journeys_lets_the_higher_priority_message_through() {
    for db in TestDb::all().await {
        // 03:00 UTC: quiet hours, so the marketing messages wait, queued, for the morning.
        let clock = Clock::fixed(at("2026-12-03T03:00:00Z"));
        let app = app_with(db, &clock, None).await;
        let settings = tenure_domain::journey::JourneySettings {
            cap: tenure_domain::journey::FrequencyCap { max: 1, days: 7 },
            ..tenure_domain::journey::JourneySettings::default()
        };
        app.app
            .set_journey_settings(&operator(), settings)
            .await
            .unwrap();
        let id = customer(&app, json!({"name": "Lin Yu", "tags": ["regular"]})).await;
        // Three journeys want to reach the same customer in the inbox the same day.
        for (name, template, priority) in [
            ("tier_upgrade", "welcome.reassure", 2),
            ("re_engagement", "welcome.reassure", 4),
            ("win_back", "birthday.greeting", 7),
        ] {
            daily_send(
                &app,
                name,
                "tag = \"regular\"",
                Channel::App,
                template,
                MessageClass::Marketing,
                priority,
            )
            .await;
        }
        app.app.evaluate_journey_schedules().await.unwrap();
        assert_eq!(app.app.advance_journeys(10).await.unwrap(), 3);
        let mut m = messages_of(&app, id).await;
        m.sort_by_key(|m| m.priority);
        let got: Vec<_> = m.iter().map(|m| (m.priority, m.status, m.reason)).collect();
        assert_eq!(
            got,
            vec![
                (2, MessageStatus::Skipped, Some(SkipReason::Capped)),
                (4, MessageStatus::Skipped, Some(SkipReason::Capped)),
                (7, MessageStatus::Queued, None),
            ]
        );
        // The one let through goes out in the morning.
        clock.set(at("2026-12-03T09:00:00Z"));
        assert_eq!(app.app.deliver_messages("test").await.unwrap().sent, 1);
    }
}

#[tokio::test]
async fn templates_are_checked_when_saved_and_previewed_for_a_real_customer() {
    for db in TestDb::all().await {
        let app = app_with(db, &Clock::default(), None).await;
        let id = customer(
            &app,
            json!({"name": "Chen Jing", "locale": "zh-CN", "email": "chen@example.com"}),
        )
        .await;
        // A misspelt field is refused when the template is saved, naming the line.
        let (status, problem) = app
            .post_json(
                "/api/v1/templates",
                json!({"name": "spring.offer", "channel": "email", "locale": "zh-CN",
                       "subject": "{{ customer.first_name }}，春季新茶到了",
                       "body": "您好，\n{{ customer.frist_name }}"}),
            )
            .await;
        assert_eq!(status, 422, "{problem}");
        let errors = problem["errors"].to_string();
        assert!(errors.contains("body"), "{problem}");
        assert!(errors.contains("line 2"), "{problem}");
        // An email without a subject is refused too.
        let (status, problem) = app
            .post_json(
                "/api/v1/templates",
                json!({"name": "spring.offer", "channel": "email", "locale": "zh-CN",
                       "body": "{{ customer.first_name }}"}),
            )
            .await;
        assert_eq!(status, 422, "{problem}");
        assert!(
            problem["errors"].to_string().contains("subject"),
            "{problem}"
        );

        let (status, t) = app
            .post_json(
                "/api/v1/templates",
                json!({"name": "spring.offer", "channel": "email", "locale": "zh-CN",
                       "subject": "{{ customer.first_name }}，春季新茶到了",
                       "body": "您好，{{ customer.name }}！\n{% for o in offers %}{{ o.name }}\n{% endfor %}退订：{{ links.unsubscribe }}"}),
            )
            .await;
        assert_eq!(status, 200, "{t}");
        let tid = t["id"].as_i64().unwrap();
        let (status, got) = app.get_json(&format!("/api/v1/templates/{tid}")).await;
        assert_eq!((status, got["locale"].as_str()), (200, Some("zh-CN")));
        let (_, list) = app.get_json("/api/v1/templates").await;
        assert!(
            list.as_array()
                .unwrap()
                .iter()
                .any(|x| x["name"] == "spring.offer")
        );

        // The preview is the real customer's, with a working unsubscribe link.
        let (status, p) = app
            .post_json(
                &format!("/api/v1/templates/{tid}/preview"),
                json!({"customer_id": id}),
            )
            .await;
        assert_eq!(status, 200, "{p}");
        assert_eq!(p["subject"], "Chen，春季新茶到了", "{p}");
        let body = p["body"].as_str().unwrap();
        assert!(body.starts_with("您好，Chen Jing！"), "{body}");
        let link = body.split("退订：").nth(1).unwrap().trim();
        assert!(link.starts_with("https://shop.example.com/u/"), "{body}");
        let token = link.rsplit('/').next().unwrap();
        let (name, channel, done) = app.app.unsubscribe_target(token).await.unwrap();
        assert_eq!(
            (name.as_str(), channel, done),
            ("Chen Jing", Channel::Email, false)
        );
        // A draft previews before it is saved; its errors are the same as saving's.
        let (status, p) = app
            .post_json(
                &format!("/api/v1/templates/{tid}/preview"),
                json!({"customer_id": id, "body": "{{ customer.email }}"}),
            )
            .await;
        assert_eq!(
            (status, p["body"].as_str()),
            (200, Some("chen@example.com"))
        );
        let (status, _) = app
            .post_json(
                &format!("/api/v1/templates/{tid}/preview"),
                json!({"customer_id": id, "body": "{{ customer.nope }}"}),
            )
            .await;
        assert_eq!(status, 422);
        let (status, _) = app
            .post_json(
                &format!("/api/v1/templates/{tid}/preview"),
                json!({"customer_id": 999_999}),
            )
            .await;
        assert_eq!(status, 404);
        // Nothing was sent or stored by the previews.
        assert!(messages_of(&app, id).await.is_empty());
    }
}

#[tokio::test]
async fn two_workers_on_one_database_deliver_each_message_once() {
    let Some(probe) = Smtp::start() else { return };
    drop(probe);
    for db in TestDb::all().await {
        let smtp = Smtp::start().unwrap();
        let url = db.url.clone();
        let app = app_with(db, &Clock::default(), Some(smtp.port)).await;
        let n = 60;
        for i in 0..n {
            customer(
                &app,
                json!({"name": format!("Guest {i}"), "email": format!("guest{i}@example.com"),
                       "consents": [{"channel": "email", "status": "granted", "source": "counter"}]}),
            )
            .await;
        }
        daily_send(
            &app,
            "re_engagement",
            "has(email)",
            Channel::Email,
            "welcome.thanks",
            MessageClass::Transactional,
            5,
        )
        .await;
        app.app.evaluate_journey_schedules().await.unwrap();
        assert_eq!(app.app.advance_journeys(500).await.unwrap(), n);

        // Two worker processes at once, each claiming five messages at a time.
        let worker = || {
            Command::new(env!("CARGO_BIN_EXE_tenure"))
                .args(["worker", "--until-idle"])
                .env("DATABASE_URL", &url)
                .env("TENURE_SMTP_URL", format!("smtp://127.0.0.1:{}", smtp.port))
                .env("TENURE_SMTP_FROM", "Tea House <hello@tea.example.com>")
                .env("TENURE_OUTBOX_BATCH", "5")
                .env("RUST_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        };
        let (a, b) = (worker(), worker());
        let sent_by = |c: Child| -> u64 {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success());
            let text = String::from_utf8(out.stdout).unwrap();
            text.split("sent ")
                .nth(1)
                .and_then(|t| t.split(' ').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no count in {text:?}"))
        };
        let (sa, sb) = (sent_by(a), sent_by(b));
        assert_eq!(sa + sb, n, "{sa} + {sb}");
        assert!(sa > 0 && sb > 0, "both workers delivered: {sa} and {sb}");

        let got = smtp.wait_for(&format!("guest{}@example.com", n - 1)).await;
        assert_eq!(Smtp::message_ids(&got), (60, 60), "each message once");
        let filter = MessageFilter {
            status: Some(MessageStatus::Sent),
            ..MessageFilter::default()
        };
        let sent = app
            .store
            .list_messages(&filter, None, 100)
            .await
            .unwrap()
            .items;
        assert_eq!(sent.len(), 60);
        assert!(sent.iter().all(|m| m.attempts == 1));
    }
}
