//! The web application in a real browser (headless Chromium): a manager signs in, finds a
//! customer by part of a Chinese name, opens the 360° page, submits an edit with a wrong
//! email and sees the message, merges two duplicates and undoes it, imports a file and
//! sees its errors, runs the life cycle, loyalty and service pages, switches a journey on,
//! reads its report and the customers it did not reach, previews a template for a real
//! customer, and switches to traditional Chinese. Every main page is checked with
//! axe-core (no serious or critical violation) and saved as a screenshot under
//! `target/screenshots/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::dom::SetFileInputFilesParams;
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::{Page, ScreenshotParams};
use futures_util::StreamExt;
use tenure_domain::access::Role;
use tenure_testkit::{TestDb, skip, spawn_app};

use crate::web::{PASSWORD, staff};

fn chromium() -> Option<PathBuf> {
    std::env::var_os("TENURE_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            [
                "/usr/bin/chromium",
                "/usr/bin/chromium-browser",
                "/usr/bin/google-chrome",
            ]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
        })
        .filter(|p| p.exists())
}

/// axe-core's script: `TENURE_AXE_JS`, or where `ci/axe-core.sh` puts it.
fn axe_source() -> Option<String> {
    let path = std::env::var_os("TENURE_AXE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-ci/axe-core-4.14.1/axe.min.js")
        });
    std::fs::read_to_string(path).ok()
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Session {
    page: Page,
    axe: Option<String>,
    base: String,
}

impl Session {
    async fn eval<T: serde::de::DeserializeOwned>(&self, js: &str) -> T {
        self.page
            .evaluate_expression(js)
            .await
            .unwrap_or_else(|e| panic!("{js}: {e}"))
            .into_value()
            .unwrap_or_else(|e| panic!("{js}: {e}"))
    }

    /// Waits until `js` is true in the page.
    async fn until(&self, js: &str) {
        for _ in 0..200 {
            if let Ok(r) = self.page.evaluate_expression(js).await
                && r.into_value::<bool>().unwrap_or(false)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let body: String = self.eval("document.body.innerText").await;
        panic!("waited in vain for {js}; the page says:\n{body}");
    }

    async fn goto(&self, path: &str) {
        self.page
            .goto(format!("{}{path}", self.base))
            .await
            .unwrap();
        self.until("document.readyState === 'complete'").await;
    }

    /// Clicks the element; when the page replaced it meanwhile (an htmx swap detaches the
    /// node found), finds it again.
    async fn click(&self, selector: &str) {
        let mut last = String::new();
        for _ in 0..40 {
            match self.page.find_element(selector).await {
                Ok(el) => match el.click().await {
                    Ok(_) => return,
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{selector}: {last}");
    }

    async fn type_into(&self, selector: &str, text: &str) {
        self.click(selector).await;
        let el = self.page.find_element(selector).await.unwrap();
        // Select what is there, so typing replaces it.
        self.eval::<bool>(&format!(
            "(document.querySelector({selector:?}).select(), true)"
        ))
        .await;
        if text.is_ascii() {
            el.type_str(text).await.unwrap();
        } else {
            // As an input method does: the text arrives composed, not as key presses.
            self.page
                .execute(chromiumoxide::cdp::browser_protocol::input::InsertTextParams::new(text))
                .await
                .unwrap();
        }
    }

    /// Saves a screenshot of the whole page and checks it with axe-core.
    async fn check(&self, name: &str) {
        self.page
            .save_screenshot(
                ScreenshotParams::builder()
                    .format(CaptureScreenshotFormat::Png)
                    .full_page(true)
                    .build(),
                screenshots().join(format!("{name}.png")),
            )
            .await
            .unwrap();
        let Some(axe) = &self.axe else {
            return;
        };
        self.eval::<bool>(&format!("(() => {{ {axe}; return true; }})()"))
            .await;
        let found: Vec<String> = self
            .eval(
                "axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] })\
                 .then(r => r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')\
                 .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.map(n => n.target.join(' ')).slice(0, 5).join(', ')))",
            )
            .await;
        assert!(
            found.is_empty(),
            "{name}: accessibility violations: {found:#?}"
        );
    }
}

#[tokio::test]
async fn a_manager_runs_the_shop_from_the_browser() {
    let Some(chrome) = chromium() else {
        skip("no Chromium (apt-get install chromium); skipping the browser test");
        return;
    };
    let axe = axe_source();
    if axe.is_none() {
        skip(
            "axe-core is not fetched (ci/axe-core.sh); the browser test runs without its accessibility check",
        );
    }
    let db = TestDb::sqlite();
    // A small business with history and models, as `tenure demo` makes it.
    let out = crate::tenure(&db, &["demo", "--customers", "300"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let app = spawn_app(db).await;
    for (name, email) in [("李明朗", "lml@example.com"), ("李明朗", "lml@example.com")] {
        app.post_json(
            "/api/v1/customers",
            serde_json::json!({ "name": name, "email": email, "tags": ["vip"] }),
        )
        .await;
    }
    app.app
        .rebuild_duplicates(&tenure_testkit::operator())
        .await
        .unwrap();
    staff(&app, "mia@shop.example", Role::Manager).await;

    let profile = tempfile::tempdir().unwrap();
    let config = BrowserConfig::builder()
        .chrome_executable(chrome)
        .no_sandbox()
        .window_size(1280, 900)
        .user_data_dir(profile.path())
        .viewport(Viewport {
            width: 1280,
            height: 900,
            ..Default::default()
        })
        .args([
            "disable-gpu",
            "disable-quic",
            "no-first-run",
            "disable-background-networking",
            "disable-component-update",
            "disable-sync",
            "lang=en-US",
        ])
        .build()
        .unwrap();
    let (mut browser, mut handler) = Browser::launch(config).await.unwrap();
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
    let page = browser.new_page("about:blank").await.unwrap();
    let s = Session {
        page,
        axe,
        base: app.url(""),
    };

    // Sign in.
    s.goto("/").await;
    s.until("location.pathname === '/login'").await;
    s.check("login").await;
    s.type_into("#f-email", "mia@shop.example").await;
    s.type_into("#f-password", PASSWORD).await;
    s.click("main form button[type=submit]").await;
    s.until("location.pathname === '/' && !!document.querySelector('svg.chart')")
        .await;
    s.check("dashboard").await;

    // Find 李明朗 by part of the name, live (htmx swaps the results in).
    s.goto("/customers").await;
    s.check("customers").await;
    s.type_into("#f-q", "明朗").await;
    s.until("location.search.includes('q=') && [...document.querySelectorAll('#results tbody a')].length === 2 \
             && [...document.querySelectorAll('#results tbody a')].every(a => a.textContent === '李明朗')")
        .await;
    // And by initials. Wait for this search's own answer (its address is pushed after the
    // swap): a click while it is still on its way would be cancelled by that push.
    s.type_into("#f-q", "lml").await;
    s.until(
        "location.search.includes('q=lml') && !document.querySelector('#results.htmx-request, form.htmx-request') \
         && [...document.querySelectorAll('#results tbody a')].some(a => a.textContent === '李明朗')",
    )
    .await;
    s.check("customers-search").await;

    // The 360° page: the initials find others too (劉美玲 is also l-m-l).
    s.eval::<bool>(
        "([...document.querySelectorAll('#results tbody a')].find(a => a.textContent === '李明朗').click(), true)",
    )
    .await;
    s.until("location.pathname.startsWith('/customers/') && document.querySelector('h1')?.textContent === '李明朗'")
        .await;
    s.check("customer").await;

    // An edit with a wrong email shows the message under the field.
    s.click("a[href$='/edit']").await;
    s.until("!!document.querySelector('#f-email')").await;
    s.type_into("#f-email", "lml@@example").await;
    s.click("main form button[type=submit]").await;
    s.until("!!document.querySelector('#e-email')").await;
    let message: String = s
        .eval("document.querySelector('#e-email').textContent")
        .await;
    assert!(
        message.contains("is not a valid email address"),
        "{message}"
    );
    let invalid: String = s
        .eval("document.querySelector('#f-email').getAttribute('aria-invalid')")
        .await;
    assert_eq!(invalid, "true");
    s.check("customer-edit-invalid").await;

    // Merge the two 李明朗 and undo it.
    s.goto("/duplicates").await;
    s.check("duplicates").await;
    s.click(".pair form button[type=submit]").await;
    s.until("document.body.innerText.includes('The customers were merged.')")
        .await;
    s.check("duplicates-merged").await;
    s.click(".notice form button[type=submit]").await;
    s.until("document.body.innerText.includes('The merge was undone.')")
        .await;

    // Import a file with errors through the page.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("new customers.csv");
    std::fs::write(&file, "external_id,name,email\nW-1,赵小红,xh@example.com\nW-2,,x@example.com\nW-3,Tom,not an email\n").unwrap();
    s.goto("/import").await;
    s.check("import").await;
    let input = s.page.find_element("#f-file").await.unwrap();
    s.page
        .execute(
            SetFileInputFilesParams::builder()
                .files(vec![file.to_string_lossy().into_owned()])
                .node_id(input.node_id)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    s.click("main form button[type=submit]").await;
    s.until("!!document.querySelector('#rejections')").await;
    let lines: Vec<String> = s
        .eval("[...document.querySelectorAll('#rejections tbody tr td:first-child')].map(td => td.textContent)")
        .await;
    assert_eq!(lines, ["3", "4"]);
    s.check("import-done").await;

    // The models' page, with a holdout check.
    s.goto("/analytics").await;
    s.click("#f-cal + button, form.range button").await;
    s.until("document.querySelectorAll('svg.chart polyline').length >= 4")
        .await;
    s.check("analytics").await;

    // The life cycle: refresh, then the retention page with its heat-maps.
    app.app
        .refresh_analytics(&tenure_testkit::operator(), None)
        .await
        .unwrap();
    s.goto("/retention").await;
    s.until("document.querySelectorAll('table.heatmap td.h10').length > 0")
        .await;
    s.check("retention").await;
    // A segment, counted live while its filter is typed; a mistake is shown where it is.
    s.goto("/segments/new").await;
    s.type_into("#f-name", "Lost VIPs").await;
    s.type_into("#f-expression", "stage = \"at risk\"").await;
    s.until("document.querySelector('#preview pre.caret') !== null")
        .await;
    s.check("segment-error").await;
    s.type_into(
        "#f-expression",
        "stage in (\"at_risk\", \"churned\") and tag = \"vip\"",
    )
    .await;
    s.until("document.querySelector('#preview').innerText.includes('customers match')")
        .await;
    s.click("form[action='/segments'] button[type=submit]")
        .await;
    s.until("document.querySelector('h2') && document.body.innerText.includes('Members')")
        .await;
    s.check("segment").await;
    // The simulator follows its sliders.
    s.goto("/profit").await;
    s.until("document.querySelector('#result p.big') !== null")
        .await;
    let before: String = s
        .eval("document.querySelector('#result p.big').innerText")
        .await;
    s.eval::<bool>(
        "(() => { const r = document.querySelector('#f-cut'); r.value = 10; \
          r.dispatchEvent(new Event('input', { bubbles: true })); return true; })()",
    )
    .await;
    s.until("document.querySelector('#result p.big').innerText.includes('10 points')")
        .await;
    let after: String = s
        .eval("document.querySelector('#result p.big').innerText")
        .await;
    assert_ne!(before, after);
    s.check("profit").await;

    // The loyalty program: its page, a new reward, a member's panel with an adjustment,
    // and a member link.
    s.goto("/loyalty").await;
    s.until("document.querySelectorAll('svg.chart').length >= 2")
        .await;
    s.check("loyalty").await;
    s.type_into("#f-rname", "Mug").await;
    s.type_into("#f-rcost", "500").await;
    s.click("form[action='/loyalty/rewards'] button[type=submit]")
        .await;
    s.until("document.body.innerText.includes('The reward is added.')")
        .await;
    let pool = app.db.raw_pool().await;
    let member: i64 = sqlx::Row::get(
        &sqlx::query(
            "SELECT customer_id FROM loyalty_accounts ORDER BY balance DESC, customer_id LIMIT 1",
        )
        .fetch_one(&pool)
        .await
        .unwrap(),
        0,
    );
    s.goto(&format!("/customers/{member}")).await;
    s.type_into("#f-points", "25").await;
    s.type_into("#f-reason", "Goodwill: the order was late")
        .await;
    s.click("form:has(#f-points) button[type=submit]").await;
    s.until("document.querySelector('#h-loyalty').parentElement.innerText.includes('Goodwill: the order was late')")
        .await;
    s.click("form:has(input[name=action][value=link]) button[type=submit]")
        .await;
    s.until("!!document.querySelector('#h-loyalty ~ p.notice a')")
        .await;
    let member_link: String = s
        .eval("document.querySelector('#h-loyalty ~ p.notice a').getAttribute('href')")
        .await;
    assert!(member_link.starts_with("/m/"), "{member_link}");
    s.check("customer-loyalty").await;

    // Service: a complaint from the queue, answered and resolved on its page; the CSAT
    // link it makes is answered on a phone further down.
    s.goto("/tickets?lang=en").await;
    s.type_into("#f-customer_id", &member.to_string()).await;
    s.type_into("#f-subject", "The parcel arrived two days late")
        .await;
    s.click("form[action='/tickets'] button[type=submit]").await;
    s.until(
        "document.querySelector('h1').textContent.includes('The parcel arrived two days late')",
    )
    .await;
    s.type_into("#f-body", "Sorry! A voucher is in the mail.")
        .await;
    s.click("form:has(#f-body) button[type=submit]").await;
    s.until("document.body.innerText.includes('A voucher is in the mail.')")
        .await;
    s.click("button[name=status][value=resolved]").await;
    s.until("document.querySelector('#h-follow-up').parentElement.querySelector('a[href*=\"/s/\"]') !== null")
        .await;
    let survey_link: String = s
        .eval("document.querySelector('#h-follow-up').parentElement.querySelector('a[href*=\"/s/\"]').getAttribute('href')")
        .await;
    s.check("ticket").await;
    s.goto("/tickets?view=all").await;
    s.check("tickets").await;
    s.goto("/tasks?view=open").await;
    s.check("tasks").await;
    s.goto("/service").await;
    s.check("service").await;
    s.goto("/surveys").await;
    s.check("surveys").await;

    // Journeys: switch one on from the list, set the delivery settings (a mistake first),
    // run a day of it and read its report and the customers it did not reach.
    let op = tenure_testkit::operator();
    let re = app.app.journey_named(&op, "re_engagement").await.unwrap();
    s.goto("/journeys").await;
    s.check("journeys").await;
    s.click(&format!("form[action='/journeys/{}'] button", re.id.0))
        .await;
    s.until(&format!(
        "document.querySelector(\"form[action='/journeys/{}'] button\").classList.contains('on')",
        re.id.0
    ))
    .await;
    s.type_into("#f-cap_max", "three").await;
    s.click("form[action='/journeys/settings'] button[type=submit]")
        .await;
    s.until("!!document.querySelector('#e-cap_max')").await;
    s.check("journey-settings-invalid").await;
    s.type_into("#f-cap_max", "3").await;
    s.click("form[action='/journeys/settings'] button[type=submit]")
        .await;
    s.until("document.body.innerText.includes('The delivery settings are saved.')")
        .await;
    // The journey waits for 10:00 in the customer's time zone before it sends; the test runs
    // at any hour on the real clock, so it sends at once instead.
    let re_now = app.app.journey_named(&op, "re_engagement").await.unwrap();
    assert!(re_now.enabled, "the journey is switched on from the list");
    let def = tenure_domain::journey::JourneyDefinition {
        steps: re_now
            .definition
            .steps
            .iter()
            .filter(|s| !matches!(s, tenure_domain::journey::Step::WaitUntil { .. }))
            .cloned()
            .collect(),
        ..re_now.definition.clone()
    };
    app.app
        .update_journey(&op, re.id, None, None, Some(def), None)
        .await
        .unwrap();
    // The member gets a message in the app inbox from another journey.
    let res = app
        .admin(
            reqwest::Method::PATCH,
            &format!("/api/v1/customers/{member}"),
        )
        .json(&serde_json::json!({"tags": ["tea-club"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let inbox = app.app.journey_named(&op, "win_back").await.unwrap();
    let def = tenure_domain::journey::JourneyDefinition {
        trigger: tenure_domain::journey::Trigger::Daily,
        entry: "tag = \"tea-club\"".into(),
        steps: vec![tenure_domain::journey::Step::Send {
            channel: tenure_domain::journey::Channel::App,
            template: "welcome.reassure".into(),
            class: tenure_domain::journey::MessageClass::Transactional,
            priority: 5,
        }],
        control_percent: 0,
        ..inbox.definition.clone()
    };
    app.app
        .update_journey(&op, inbox.id, None, None, Some(def), Some(true))
        .await
        .unwrap();
    app.app.evaluate_journey_schedules().await.unwrap();
    while app.app.advance_journeys(500).await.unwrap() > 0 {}
    app.app.deliver_messages("browser").await.unwrap();
    s.goto(&format!("/journeys/{}", re.id.0)).await;
    let not_sent: usize = s
        .eval("document.querySelectorAll('#h-not-sent + p + table tbody tr td .tag').length")
        .await;
    assert!(
        not_sent > 0,
        "the at-risk customers without consent are listed"
    );
    s.check("journey").await;
    // A reason's link narrows the list to it.
    s.click("a[href*='reason=']").await;
    s.until("location.search.includes('reason=')").await;

    // Templates: the editor previews for a real customer and refuses a misspelt field.
    s.goto("/templates").await;
    s.check("templates").await;
    let tpl = app
        .app
        .templates(&op)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == "welcome.thanks" && t.locale == "en")
        .unwrap();
    s.goto(&format!("/templates/{}", tpl.id.0)).await;
    s.type_into("#f-customer_id", &member.to_string()).await;
    s.click("button[value=preview]").await;
    s.until("!!document.querySelector('.message-preview')")
        .await;
    s.check("template").await;
    s.type_into("#f-body", "Hello {{ customer.frist_name }}")
        .await;
    s.click("button[value=save]").await;
    s.until("!!document.querySelector('#e-body')").await;
    let error: String = s
        .eval("document.querySelector('#e-body').textContent")
        .await;
    assert!(error.contains("line 1"), "{error}");
    s.check("template-invalid").await;
    // The 360° page shows the member's messages.
    s.goto(&format!("/customers/{member}")).await;
    s.until("document.querySelector('#h-messages').parentElement.innerText.includes('sent')")
        .await;
    s.check("customer-messages").await;

    // The audit log of that customer, from the 360° page, and the erase confirmation.
    s.click("a[href^='/audit?customer=']").await;
    s.until("location.pathname === '/audit' && !!document.querySelector('table.audit')")
        .await;
    s.check("audit").await;
    s.goto(&format!("/customers/{member}/erase")).await;
    s.check("customer-erase").await;

    // Traditional Chinese, by the language link, for every page after.
    s.goto("/").await;
    s.click("a[hreflang='zh-TW']").await;
    s.until(
        "document.documentElement.lang === 'zh-TW' && document.body.innerText.includes('總覽')",
    )
    .await;
    s.check("dashboard-zh-TW").await;
    s.goto("/customers").await;
    let heading: String = s.eval("document.querySelector('h1').textContent").await;
    assert_eq!(heading, "客戶");
    s.check("customers-zh-TW").await;
    s.goto("/journeys").await;
    s.check("journeys-zh-TW").await;
    s.goto(&format!("/journeys/{}", re.id.0)).await;
    s.check("journey-zh-TW").await;
    s.goto("/audit").await;
    s.check("audit-zh-TW").await;

    // On a phone.
    s.page
        .execute(
            chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams::builder()
                .width(390)
                .height(844)
                .device_scale_factor(2.0)
                .mobile(true)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    s.goto("/?lang=zh-CN").await;
    s.check("dashboard-phone-zh-CN").await;
    let wide: bool = s
        .eval("document.documentElement.scrollWidth > window.innerWidth + 1")
        .await;
    assert!(!wide, "the dashboard scrolls sideways on a phone");
    // The member page as a customer opens it on a phone.
    s.goto(&format!("{member_link}?lang=zh-CN")).await;
    s.until("document.body.innerText.includes('积分')").await;
    let inbox: usize = s
        .eval("document.querySelectorAll('ul.inbox li p.body').length")
        .await;
    assert_eq!(inbox, 1, "the inbox message is on the member page");
    s.check("member-phone-zh-CN").await;
    let wide: bool = s
        .eval("document.documentElement.scrollWidth > window.innerWidth + 1")
        .await;
    assert!(!wide, "the member page scrolls sideways on a phone");

    // The CSAT answer page on a phone: the rating link only pre-selects; the customer sends.
    s.goto(&format!("{survey_link}?score=4&lang=zh-CN")).await;
    s.until("document.querySelector('input[name=\"q.score\"][value=\"4\"]').checked")
        .await;
    s.check("answer-phone-zh-CN").await;
    let wide: bool = s
        .eval("document.documentElement.scrollWidth > window.innerWidth + 1")
        .await;
    assert!(!wide, "the answer page scrolls sideways on a phone");
    s.click("form[action^='/s/'] button[type=submit]").await;
    s.until("document.body.innerText.includes('谢谢')").await;
    s.check("answered-phone-zh-CN").await;

    browser.close().await.unwrap();
    let _ = browser.wait().await;
    events.abort();
}
