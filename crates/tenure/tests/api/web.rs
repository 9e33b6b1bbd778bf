//! The web application over HTTP, as a browser without script uses it: sign-in, sessions,
//! form tokens, throttling, roles, languages, the customer pages, import and export.

use std::collections::HashMap;

use reqwest::header::{HeaderMap, SET_COOKIE};
use tenure_domain::access::{Permission, Role};
use tenure_testkit::{TestApp, TestDb, operator, spawn_app};

pub const PASSWORD: &str = "a long enough password";

/// A browser's cookie jar and the pages it fetched, without redirects followed.
pub struct Browser {
    base: String,
    client: reqwest::Client,
    pub cookies: HashMap<String, String>,
}

pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of the hidden `_csrf` field of the page's first form.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"_csrf\" value=\"")
            .unwrap_or_else(|| {
                panic!(
                    "a form token in {}",
                    &self.body[..self.body.len().min(3000)]
                )
            });
        let rest = &self.body[at + "name=\"_csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }
}

impl Browser {
    pub fn new(app: &TestApp) -> Browser {
        Browser::at(app.url(""))
    }

    /// A browser for the server at `base` (`http://host:port`).
    pub fn at(base: String) -> Browser {
        Browser {
            base,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    /// The same browser, its cookies kept, talking to another server.
    pub fn switch_to(&mut self, base: String) {
        self.base = base;
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, res: reqwest::Response) -> Page {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        for c in headers.get_all(SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") || v.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let body = res.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    pub async fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> Page {
        let mut req = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        self.finish(res).await
    }

    /// A download, as bytes.
    pub async fn get_bytes(&mut self, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        (status, headers, res.bytes().await.unwrap().to_vec())
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.get_with(path, &[]).await
    }

    pub async fn post_with(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        self.finish(res).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.post_with(path, form, &[]).await
    }

    /// Posts a form of the page at `from`, with that page's form token.
    pub async fn submit(&mut self, from: &str, to: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.get(from).await.csrf();
        let mut form = vec![("_csrf", token.as_str())];
        form.extend_from_slice(fields);
        self.post(to, &form).await
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        self.submit(
            "/login",
            "/login",
            &[("email", email), ("password", password), ("next", "/")],
        )
        .await
    }

    pub async fn upload(
        &mut self,
        from: &str,
        fields: &[(&str, &str)],
        file: (&str, Vec<u8>),
    ) -> Page {
        self.upload_to(from, "/import", fields, file).await
    }

    /// Posts a multipart form of the page at `from` to `to`, with a file.
    pub async fn upload_to(
        &mut self,
        from: &str,
        to: &str,
        fields: &[(&str, &str)],
        file: (&str, Vec<u8>),
    ) -> Page {
        let token = self.get(from).await.csrf();
        let mut form = reqwest::multipart::Form::new().text("_csrf", token);
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        form = form.part(
            "file",
            reqwest::multipart::Part::bytes(file.1).file_name(file.0.to_owned()),
        );
        let res = self
            .client
            .post(format!("{}{to}", self.base))
            .header("cookie", self.cookie_header())
            .multipart(form)
            .send()
            .await
            .unwrap();
        self.finish(res).await
    }
}

/// A staff member with a password.
pub async fn staff(app: &TestApp, email: &str, role: Role) {
    app.app
        .create_user(&operator(), email, "Test User", role, Some(PASSWORD))
        .await
        .unwrap();
}

/// A signed-in browser of a new staff member with `role`.
pub async fn signed_in(app: &TestApp, role: Role) -> Browser {
    let email = format!("{}@shop.example", role.as_str().replace('_', "-"));
    staff(app, &email, role).await;
    let mut b = Browser::new(app);
    let p = b.sign_in(&email, PASSWORD).await;
    assert_eq!(p.status, 303, "{}", p.body);
    b
}

async fn each_db(test: impl AsyncFn(TestApp)) {
    for db in TestDb::all().await {
        test(spawn_app(db).await).await;
    }
}

#[tokio::test]
async fn sign_in_sessions_live_in_the_database_and_end() {
    each_db(async |app| {
        staff(&app, "mia@shop.example", Role::Manager).await;
        let mut b = Browser::new(&app);
        // Not signed in: every page leads to the sign-in page and back.
        let p = b.get("/customers?q=li").await;
        assert_eq!(p.status, 303);
        assert_eq!(p.location(), "/login?next=%2Fcustomers%3Fq%3Dli");
        let login = b.get("/login").await;
        assert!(login.body.contains("name=\"email\"") && login.body.contains("name=\"password\""));
        // A wrong password is refused with a message, the email kept.
        let p = b
            .submit(
                "/login",
                "/login",
                &[
                    ("email", "mia@shop.example"),
                    ("password", "wrong one"),
                    ("next", "/"),
                ],
            )
            .await;
        assert_eq!(p.status, 401);
        assert!(p.body.contains("The email or the password is not right."));
        assert!(p.body.contains("value=\"mia@shop.example\""));
        // The right one: a session cookie with safe flags, and back where we wanted to go.
        let p = b
            .submit(
                "/login",
                "/login",
                &[
                    ("email", "mia@shop.example"),
                    ("password", PASSWORD),
                    ("next", "/customers?q=li"),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        assert_eq!(p.location(), "/customers?q=li");
        let cookie = p
            .set_cookies()
            .into_iter()
            .find(|c| c.starts_with("tenure_session="))
            .unwrap();
        for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
            assert!(cookie.contains(flag), "{cookie} lacks {flag}");
        }
        let token = b.cookies["tenure_session"].clone();
        assert_eq!(token.len(), 64);
        // Stored by hash only, in the database: another server over the same database
        // (a new router, nothing shared in memory) accepts it.
        let pool = app.db.raw_pool().await;
        let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM web_sessions")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(stored.len(), 1);
        assert_ne!(stored[0], token);
        let second = tenure_http::router(tenure_http::AppState::new(app.app.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let other = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, second).await;
        });
        let res = reqwest::Client::new()
            .get(format!("http://{other}/customers"))
            .header("cookie", format!("tenure_session={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        // An offsite redirect target is ignored.
        let mut c = Browser::new(&app);
        let p = c
            .submit(
                "/login",
                "/login",
                &[
                    ("email", "mia@shop.example"),
                    ("password", PASSWORD),
                    ("next", "//evil.example/"),
                ],
            )
            .await;
        assert_eq!(p.location(), "/");
        // Signing out ends the session everywhere.
        let p = b.submit("/customers", "/logout", &[]).await;
        assert_eq!(p.status, 303);
        let res = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("http://{other}/customers"))
            .header("cookie", format!("tenure_session={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        // A session past its end is not accepted.
        assert_eq!(c.get("/customers").await.status, 200);
        sqlx::query("UPDATE web_sessions SET expires_at = 1")
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(c.get("/customers").await.status, 303);
        // Nor one idle for longer than the idle time.
        let mut d = Browser::new(&app);
        d.sign_in("mia@shop.example", PASSWORD).await;
        assert_eq!(d.get("/").await.status, 200);
        sqlx::query("UPDATE web_sessions SET last_seen_at = 1 WHERE expires_at > 1")
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(d.get("/").await.status, 303);
        // The expired one went at the last sign-in; the idle one goes now, the live
        // ones stay.
        assert_eq!(app.app.delete_ended_sessions().await.unwrap(), 1);
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM web_sessions WHERE expires_at <= 1 OR last_seen_at <= 1",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(left, 0);
    })
    .await;
}

#[tokio::test]
async fn repeated_failures_throttle_sign_in_for_that_email() {
    each_db(async |app| {
        staff(&app, "ann@shop.example", Role::Agent).await;
        let mut b = Browser::new(&app);
        for _ in 0..5 {
            let p = b
                .submit(
                    "/login",
                    "/login",
                    &[
                        ("email", "ann@shop.example"),
                        ("password", "guess guess"),
                        ("next", "/"),
                    ],
                )
                .await;
            assert_eq!(p.status, 401);
        }
        // Now even the right password waits, and the page says how long.
        let p = b.sign_in("ann@shop.example", PASSWORD).await;
        assert_eq!(p.status, 429, "{}", p.body);
        assert!(
            p.body
                .contains("Too many failed sign-ins. Try again in 15 minutes."),
            "{}",
            p.body
        );
        assert!(p.headers.get("retry-after").is_some());
        // Another staff member is not locked out by it.
        staff(&app, "bo@shop.example", Role::Agent).await;
        assert_eq!(
            Browser::new(&app)
                .sign_in("bo@shop.example", PASSWORD)
                .await
                .status,
            303
        );
        // The window passes (the failures age out): signing in works again.
        let pool = app.db.raw_pool().await;
        sqlx::query("UPDATE login_failures SET at = 1")
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(b.sign_in("ann@shop.example", PASSWORD).await.status, 303);
    })
    .await;
}

#[tokio::test]
async fn forms_need_the_session_token_and_this_site_as_origin() {
    each_db(async |app| {
        let mut b = signed_in(&app, Role::Manager).await;
        let before = app
            .app
            .list_customers(
                &operator(),
                Default::default(),
                &tenure_app::PageRequest::first(10),
            )
            .await
            .unwrap()
            .items
            .len();
        // No token, a wrong token, another site's origin: refused, nothing stored.
        let p = b.post("/customers", &[("name", "No Token")]).await;
        assert_eq!(p.status, 403);
        assert!(p.body.contains("did not come from this site"));
        let p = b
            .post(
                "/customers",
                &[("_csrf", "0".repeat(64).as_str()), ("name", "Bad Token")],
            )
            .await;
        assert_eq!(p.status, 403);
        let token = b.get("/customers/new").await.csrf();
        let p = b
            .post_with(
                "/customers",
                &[("_csrf", token.as_str()), ("name", "Cross Site")],
                &[("origin", "https://evil.example")],
            )
            .await;
        assert_eq!(p.status, 403);
        // The sign-in form needs its own token too.
        let mut fresh = Browser::new(&app);
        let p = fresh
            .post(
                "/login",
                &[("email", "manager@shop.example"), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(p.status, 403);
        let after = app
            .app
            .list_customers(
                &operator(),
                Default::default(),
                &tenure_app::PageRequest::first(10),
            )
            .await
            .unwrap()
            .items
            .len();
        assert_eq!(before, after);
        // With the token the same form works.
        let p = b
            .submit(
                "/customers/new",
                "/customers",
                &[("name", "王 小明"), ("kind", "person")],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let shown = b.get(p.location()).await;
        // Shown family name first, without the space.
        assert!(shown.body.contains("<h1>王小明</h1>"), "{}", shown.body);
    })
    .await;
}

#[tokio::test]
async fn each_role_sees_only_what_it_may_do() {
    each_db(async |app| {
        let mut analyst = signed_in(&app, Role::Analyst).await;
        let home = analyst.get("/").await;
        assert_eq!(home.status, 200);
        assert!(nav_has(&home.body, "/analytics"));
        for hidden in ["/customers", "/import", "/duplicates"] {
            assert!(!nav_has(&home.body, hidden), "analyst nav has {hidden}");
        }
        let p = analyst.get("/customers").await;
        assert_eq!(p.status, 403);
        assert!(p.body.contains("<html") && p.body.contains("Your role may not open this page"));
        assert_eq!(analyst.get("/import").await.status, 403);
        let mut agent = signed_in(&app, Role::Agent).await;
        let home = agent.get("/customers").await;
        assert!(nav_has(&home.body, "/import"), "{}", home.body);
        assert!(!nav_has(&home.body, "/duplicates"), "{}", home.body);
        assert_eq!(agent.get("/duplicates").await.status, 403);
        let mut manager = signed_in(&app, Role::Manager).await;
        let home = manager.get("/").await;
        for shown in ["/customers", "/import", "/duplicates", "/analytics"] {
            assert!(nav_has(&home.body, shown), "manager nav lacks {shown}");
        }
        // Unknown addresses are pages, not API problems; API addresses stay problems.
        let p = manager
            .get_with("/no/such/page", &[("accept", "text/html,*/*;q=0.8")])
            .await;
        assert_eq!(p.status, 404);
        assert!(
            p.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let p = manager.get("/api/v1/nothing").await;
        assert_eq!(p.headers["content-type"], "application/problem+json");
        let p = manager.get("/customers/999999").await;
        assert_eq!(p.status, 404);
        assert!(p.body.contains("There is no such record"));
    })
    .await;
}

/// Whether the navigation links to `path` (written with `/` escaped, as templates do).
fn nav_has(body: &str, path: &str) -> bool {
    let nav = body.split("<nav aria-label=").nth(1).unwrap_or("");
    let nav = nav.split("</nav>").next().unwrap_or("");
    nav.contains(&format!("href=\"{}\"", path.replace('/', "&#x2f;")))
}

#[tokio::test]
async fn the_language_follows_the_link_the_account_and_the_browser() {
    each_db(async |app| {
        let mut b = Browser::new(&app);
        for (accept, word) in [
            ("zh-HK,zh;q=0.8", "登入 Tenure"),
            ("zh-Hant", "登入 Tenure"),
            ("zh-SG", "登录 Tenure"),
            ("zh", "登录 Tenure"),
            ("fr-FR, de;q=0.8", "Sign in to Tenure"),
        ] {
            let p = b.get_with("/login", &[("accept-language", accept)]).await;
            assert!(p.body.contains(word), "{accept}: {}", p.body);
            assert!(
                p.headers["vary"]
                    .to_str()
                    .unwrap()
                    .contains("Accept-Language")
            );
        }
        let p = b.get("/login?lang=zh-TW").await;
        assert!(p.body.contains("<html lang=\"zh-TW\">") && p.body.contains("登入 Tenure"));
        // Remembered for the next page without the link.
        assert!(b.get("/login").await.body.contains("登入 Tenure"));
        // Signed in, the choice is the account's: a new browser of the same person gets it.
        let mut m = signed_in(&app, Role::Manager).await;
        let p = m.get("/?lang=zh-CN").await;
        assert!(p.body.contains("月度收入"), "{}", p.body);
        let mut again = Browser::new(&app);
        again.sign_in("manager@shop.example", PASSWORD).await;
        let p = again.get_with("/", &[("accept-language", "en")]).await;
        assert!(p.body.contains("<html lang=\"zh-CN\">") && p.body.contains("月度收入"));
        // Dates and money in the language's way.
        let today = chrono::Utc::now().date_naive();
        assert!(p.body.contains(&format!(
            "{}年{}月",
            chrono::Datelike::year(&today),
            chrono::Datelike::month(&today)
        )));
        let p = again.get("/?lang=en").await;
        assert!(p.body.contains("Revenue by month"));
    })
    .await;
}

#[tokio::test]
async fn customers_are_found_by_partial_chinese_names_pinyin_and_initials() {
    each_db(async |app| {
        for name in ["李明朗", "王小明", "Liam Miller", "陳大文"] {
            app.post_json("/api/v1/customers", serde_json::json!({ "name": name }))
                .await;
        }
        let mut b = signed_in(&app, Role::Agent).await;
        for (q, found, not) in [
            ("明朗", "李明朗", "王小明"),
            ("lml", "李明朗", "王小明"),
            ("liminglang", "李明朗", "Liam Miller"),
            ("xiaoming", "王小明", "李明朗"),
            ("cdw", "陳大文", "李明朗"),
            ("大文", "陳大文", "王小明"),
            ("liam", "Liam Miller", "李明朗"),
        ] {
            let p = b.get(&format!("/customers?q={}", urlencode(q))).await;
            assert_eq!(p.status, 200);
            assert!(p.body.contains(found), "{q} should find {found}");
            assert!(
                !p.body.contains(&format!(">{not}</a>")),
                "{q} should not find {not}"
            );
        }
        // A fragment for the live search: the results alone, marked as chosen by the header.
        let p = b
            .get_with("/customers?q=lml", &[("hx-request", "true")])
            .await;
        assert!(
            p.body.trim_start().starts_with("<div id=\"results\""),
            "{}",
            p.body
        );
        assert!(!p.body.contains("<html"));
        assert!(p.headers["vary"].to_str().unwrap().contains("HX-Request"));
        assert_eq!(p.headers["cache-control"], "private, no-store");
    })
    .await;
}

pub fn urlencode(s: &str) -> String {
    url_escape(s)
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn the_edit_form_shows_the_apis_field_errors_and_keeps_the_input() {
    each_db(async |app| {
        let (_, c) = app
            .post_json(
                "/api/v1/customers",
                serde_json::json!({ "name": "Ann Lee" }),
            )
            .await;
        let id = c["id"].as_i64().unwrap();
        let api = app
            .client
            .patch(app.url(&format!("/api/v1/customers/{id}")))
            .bearer_auth(&app.tokens[&Role::Admin])
            .json(&serde_json::json!({ "email": "ann@@example" }))
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap();
        assert_eq!(api["status"], 422);
        let message = api["errors"][0]["message"].as_str().unwrap().to_owned();
        let mut b = signed_in(&app, Role::Agent).await;
        let form = b.get(&format!("/customers/{id}/edit")).await;
        let version = {
            let at = form.body.find("name=\"version\" value=\"").unwrap() + 22;
            form.body[at..at + form.body[at..].find('"').unwrap()].to_owned()
        };
        let p = b
            .submit(
                &format!("/customers/{id}/edit"),
                &format!("/customers/{id}"),
                &[
                    ("name", "Ann Lee"),
                    ("kind", "person"),
                    ("email", "ann@@example"),
                    ("version", &version),
                ],
            )
            .await;
        assert_eq!(p.status, 422);
        let escaped = message.replace('"', "&quot;");
        assert!(
            p.body.contains(&escaped),
            "the page should say {message}: {}",
            p.body
        );
        assert!(
            p.body
                .contains("aria-invalid=\"true\" aria-describedby=\"e-email\"")
        );
        assert!(p.body.contains("value=\"ann@@example\""));
        // Corrected, it saves; a stale version is a conflict that keeps the input.
        let p = b
            .submit(
                &format!("/customers/{id}/edit"),
                &format!("/customers/{id}"),
                &[
                    ("name", "Ann Lee"),
                    ("kind", "person"),
                    ("email", "ann@example.com"),
                    ("version", &version),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let p = b
            .submit(
                &format!("/customers/{id}/edit"),
                &format!("/customers/{id}"),
                &[
                    ("name", "Ann Li"),
                    ("kind", "person"),
                    ("version", &version),
                ],
            )
            .await;
        assert_eq!(p.status, 409);
        assert!(p.body.contains("Someone changed this record"));
        let (_, now) = app.get_json(&format!("/api/v1/customers/{id}")).await;
        assert_eq!(now["email"], "ann@example.com");
        assert_eq!(now["name"], "Ann Lee");
        // Deleting asks first, then deletes.
        let mut m = signed_in(&app, Role::Manager).await;
        let confirm = m.get(&format!("/customers/{id}/delete")).await;
        assert!(confirm.body.contains("Delete Ann Lee?"));
        let p = m
            .submit(
                &format!("/customers/{id}/delete"),
                &format!("/customers/{id}/delete"),
                &[],
            )
            .await;
        assert_eq!(p.status, 303);
        assert_eq!(
            app.get_json(&format!("/api/v1/customers/{id}")).await.0,
            404
        );
    })
    .await;
}

/// Waits until the import page says it is done, and returns that page.
pub async fn finished_import(b: &mut Browser, at: &str) -> Page {
    for _ in 0..200 {
        let p = b.get(at).await;
        if !p.body.contains("hx-trigger=\"every 1s\"") {
            return p;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the import at {at} did not finish");
}

#[tokio::test]
async fn a_browser_import_reports_rejected_lines_and_is_idempotent() {
    each_db(async |app| {
        let mut b = signed_in(&app, Role::Agent).await;
        let csv = "客户编号,姓名,邮箱\nC-1,王小明,xm@example.com\nC-2,,nobody@example.com\nC-3,李明朗,not-an-email\nC-4,陳大文,dw@example.com\n";
        let (bytes, _, _) = encoding_rs::GB18030.encode(csv);
        let p = b
            .upload("/import", &[("kind", "customers"), ("encoding", "gb18030")], ("顾客.csv", bytes.to_vec()))
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let at = p.location().to_owned();
        let done = finished_import(&mut b, &at).await;
        assert!(done.body.contains("<progress id=\"progress\" max=\"100\" value=\"100\">"));
        // Two rows in, two rejected by line, each with its reason.
        assert!(done.body.contains("<dt>Imported</dt><dd>2</dd>"), "{}", done.body);
        assert!(done.body.contains("<dt>Rejected</dt><dd>2</dd>"));
        assert!(done.body.contains("<td class=\"num\">3</td><td>name</td>"), "{}", done.body);
        assert!(done.body.contains("<td class=\"num\">4</td><td>email</td>"));
        let csv_errors = b.get(&format!("{at}/rejected.csv")).await;
        assert!(csv_errors.headers["content-disposition"].to_str().unwrap().contains("attachment"));
        assert!(csv_errors.body.starts_with("line,column,reason\n3,name,"), "{}", csv_errors.body);
        // The same file again changes nothing.
        let (bytes, _, _) = encoding_rs::GB18030.encode(csv);
        let p = b
            .upload("/import", &[("kind", "customers"), ("encoding", "gb18030")], ("顾客.csv", bytes.to_vec()))
            .await;
        let again = finished_import(&mut b, p.location()).await;
        assert!(again.body.contains("<dt>Imported</dt><dd>0</dd>"), "{}", again.body);
        assert!(again.body.contains("<dt>Already there</dt><dd>2</dd>"));
        // Without the encoding the file is refused before anything is stored.
        let (bytes, _, _) = encoding_rs::GB18030.encode("客户编号,姓名\nC-9,赵六\n");
        let p = b.upload("/import", &[("kind", "customers")], ("x.csv", bytes.to_vec())).await;
        let refused = finished_import(&mut b, p.location()).await;
        assert!(refused.body.contains("--encoding gb18030"), "{}", refused.body);
        let (_, found) = app.get_json("/api/v1/customers?external_id=C-9").await;
        assert_eq!(found["items"].as_array().unwrap().len(), 0);
        // Another user cannot see this user's import.
        let mut other = signed_in(&app, Role::Manager).await;
        assert_eq!(other.get(&at).await.status, 404);
        // Exports download the same columns the import takes.
        let p = b.get("/export/customers.csv").await;
        assert_eq!(p.status, 200);
        assert!(p.headers["content-disposition"].to_str().unwrap().contains("customers.csv"));
        assert!(p.body.starts_with("external_id,kind,name,"), "{}", &p.body[..60.min(p.body.len())]);
        assert!(p.body.contains("C-1,person,王小明"));
    })
    .await;
}

#[tokio::test]
async fn duplicates_merge_and_undo_from_the_page() {
    each_db(async |app| {
        for name in ["Ann Lee", "Ann Lee"] {
            app.post_json(
                "/api/v1/customers",
                serde_json::json!({ "name": name, "email": "ann.lee@example.com" }),
            )
            .await;
        }
        let mut m = signed_in(&app, Role::Manager).await;
        let page = m.get("/duplicates").await;
        assert!(page.body.contains("Keep Ann Lee"), "{}", page.body);
        let keep_at = page.body.find("name=\"keep\" value=\"").unwrap() + 19;
        let keep = page.body[keep_at..keep_at + page.body[keep_at..].find('"').unwrap()].to_owned();
        let merge_at = page.body.find("name=\"merge\" value=\"").unwrap() + 20;
        let other =
            page.body[merge_at..merge_at + page.body[merge_at..].find('"').unwrap()].to_owned();
        let p = m
            .submit(
                "/duplicates",
                "/duplicates/merge",
                &[("keep", &keep), ("merge", &other)],
            )
            .await;
        assert_eq!(p.status, 303);
        let after = m.get(p.location()).await;
        assert!(after.body.contains("The customers were merged."));
        assert!(after.body.contains("No likely duplicates."));
        assert_eq!(
            app.get_json(&format!("/api/v1/customers/{other}")).await.0,
            404
        );
        let undo = after.body.find("action=\"/merges/").unwrap() + 16;
        let merge_id = after.body[undo..undo + after.body[undo..].find('/').unwrap()].to_owned();
        let p = m
            .submit("/duplicates", &format!("/merges/{merge_id}/undo"), &[])
            .await;
        assert_eq!(p.status, 303);
        assert!(
            m.get(p.location())
                .await
                .body
                .contains("The merge was undone.")
        );
        assert_eq!(
            app.get_json(&format!("/api/v1/customers/{other}")).await.0,
            200
        );
    })
    .await;
}

#[tokio::test]
async fn the_dashboard_counts_what_is_stored() {
    each_db(async |app| {
        let (_, a) = app.post_json("/api/v1/customers", serde_json::json!({ "name": "Ann", "acquisition_channel": "referral" })).await;
        let (_, _b) = app.post_json("/api/v1/customers", serde_json::json!({ "name": "Bo" })).await;
        let today = chrono::Utc::now();
        let (status, order) = app
            .post_json(
                "/api/v1/orders",
                serde_json::json!({ "customer_id": a["id"], "occurred_at": today.to_rfc3339(), "total_minor": 123450, "currency": "USD" }),
            )
            .await;
        assert_eq!(status, 201, "{order}");
        let mut m = signed_in(&app, Role::Manager).await;
        let p = m.get("/").await;
        assert_eq!(p.status, 200);
        assert!(p.body.contains("<h2>Customers</h2><p>2</p>"), "{}", p.body);
        assert!(p.body.contains("<h2>New customers</h2><p>1</p>"));
        assert!(p.body.contains("<h2>Active customers</h2><p>1</p>"));
        assert!(p.body.contains("$1,234.50"));
        assert!(p.body.contains("<td>referral</td>"));
        assert!(p.body.contains("<svg class=\"chart\""));
        // A range before the order: nothing new, nothing earned.
        let p = m.get("/?from=2020-01-01&to=2020-12-31").await;
        assert!(p.body.contains("<h2>New customers</h2><p>0</p>"), "{}", p.body);
        assert!(p.body.contains("$0.00"));
        // A backwards range is said so, not a crash.
        let p = m.get("/?from=2021-01-01&to=2020-01-01").await;
        assert_eq!(p.status, 400);
        assert!(p.body.contains("The period needs a start on or before its end"));
    })
    .await;
}

#[tokio::test]
async fn the_timeline_pages_as_a_fragment_and_as_a_page() {
    each_db(async |app| {
        let (_, c) = app.post_json("/api/v1/customers", serde_json::json!({ "name": "Ann Lee" })).await;
        let id = c["id"].as_i64().unwrap();
        for day in 1..=25 {
            let (status, body) = app
                .post_json(
                    "/api/v1/orders",
                    serde_json::json!({ "customer_id": id, "occurred_at": format!("2025-01-{day:02}T10:00:00Z"),
                                        "total_minor": 1000 + day, "currency": "USD" }),
                )
                .await;
            assert_eq!(status, 201, "{body}");
        }
        let mut b = signed_in(&app, Role::Agent).await;
        let first = b.get(&format!("/customers/{id}")).await;
        // The newest entries are the customer's two stage moves (placed, then lost long
        // after the last order), then the orders.
        assert_eq!(first.body.matches("<li class=\"entry stage\">").count(), 2);
        assert_eq!(first.body.matches("<li class=\"entry order\">").count(), 18);
        let at = first.body.find("hx-get=\"").unwrap() + 8;
        let more = first.body[at..at + first.body[at..].find('"').unwrap()].replace("&amp;", "&").replace("&#x2f;", "/");
        // htmx asks for the next entries alone: the seven oldest, no frame.
        let fragment = b.get_with(&more, &[("hx-request", "true")]).await;
        assert_eq!(fragment.status, 200, "{}", fragment.body);
        assert!(!fragment.body.contains("<html"));
        assert_eq!(fragment.body.matches("<li class=\"entry order\">").count(), 7);
        assert!(fragment.body.contains("$10.01"));
        // Without script the same link is the whole page from there.
        let page = b.get(&more).await;
        assert!(page.body.contains("<html") && page.body.contains("<h1>Ann Lee</h1>"));
        assert_eq!(page.body.matches("<li class=\"entry order\">").count(), 7);
    })
    .await;
}

#[tokio::test]
async fn the_retention_segment_and_profit_pages_work_in_every_language() {
    each_db(async |app| {
        let me = operator();
        let (_, c) = app
            .post_json("/api/v1/customers", serde_json::json!({ "name": "李明朗", "tags": ["vip"] }))
            .await;
        let id = c["id"].as_i64().unwrap();
        for (day, total) in [("2024-01-10", 5000), ("2024-03-02", 7000)] {
            let (status, body) = app
                .post_json(
                    "/api/v1/orders",
                    serde_json::json!({ "customer_id": id, "occurred_at": format!("{day}T10:00:00Z"), "total_minor": total }),
                )
                .await;
            assert_eq!(status, 201, "{body}");
        }
        app.app.refresh_analytics(&me, None).await.unwrap();
        let mut b = signed_in(&app, Role::Manager).await;
        for lang in ["en", "zh-CN", "zh-TW"] {
            for path in ["/retention", "/segments", "/segments/new", "/profit", &format!("/customers/{id}")] {
                let p = b.get(&format!("{path}{}lang={lang}", if path.contains('?') { "&" } else { "?" })).await;
                assert_eq!(p.status, 200, "{path} in {lang}: {}", p.body);
            }
        }
        let p = b.get("/retention?lang=en").await;
        assert!(p.body.contains("Cohorts by acquisition month"), "{}", p.body);
        assert!(p.body.contains("<td class=\"num h10\">100"), "the cohort's first month: {}", p.body);
        assert!(p.body.contains("Churned"));

        // The live count: htmx asks the form's own address for the preview block.
        let frag = b
            .get_with("/segments/new?expression=tag+%3D+%22vip%22", &[("hx-request", "true")])
            .await;
        assert_eq!(frag.status, 200);
        assert!(!frag.body.contains("<html"));
        assert!(frag.body.contains("1 customers match"), "{}", frag.body);
        let bad = b
            .get_with("/segments/new?expression=stage+%3D+%22at+risk%22", &[("hx-request", "true")])
            .await;
        assert!(bad.body.contains("did you mean &quot;at_risk&quot;"), "{}", bad.body);
        assert!(bad.body.contains("<pre class=\"caret\">"), "{}", bad.body);

        // Saving a segment, then a broken edit keeps the input with the message.
        let p = b
            .submit(
                "/segments/new",
                "/segments",
                &[("name", "VIP"), ("description", ""), ("expression", "tag = \"vip\"")],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let at = p.location().to_owned();
        let page = b.get(&at).await;
        assert!(page.body.contains("李明朗"), "a member: {}", page.body);
        let p = b
            .submit(&at, &at, &[("name", "VIP"), ("description", ""), ("expression", "tag = "), ("version", "1")])
            .await;
        assert_eq!(p.status, 422);
        assert!(p.body.contains("tag = </textarea>") && p.body.contains("aria-invalid=\"true\""), "{}", p.body);

        // Staff set a manual stage on the 360° page.
        let p = b
            .submit(
                &format!("/customers/{id}"),
                &format!("/customers/{id}/lifecycle"),
                &[("override_stage", "loyal"), ("note", "our oldest client")],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let page = b.get(&format!("/customers/{id}?lang=en")).await;
        assert!(page.body.contains("<strong>Loyal</strong>"), "{}", page.body);
        assert!(page.body.contains("set by hand"));

        // The simulator answers for the numbers given and refuses impossible ones.
        let p = b.get("/profit?cut=5&margin=30&discount=10&years=10&retention=80").await;
        assert!(p.body.contains("Cutting defection by 5 points raises the value of a customer by"), "{}", p.body);
        let p = b.get("/profit?cut=5&margin=30&discount=10&years=99").await;
        assert_eq!(p.status, 422);
        assert!(p.body.contains("horizon"), "{}", p.body);
    })
    .await;
}

#[tokio::test]
async fn the_loyalty_pages_configure_the_program_and_move_points_once_per_form() {
    each_db(async |app| {
        let (_, c) = app
            .post_json(
                "/api/v1/customers",
                serde_json::json!({ "name": "Wang Fang", "locale": "zh-TW" }),
            )
            .await;
        let id = c["id"].as_i64().unwrap();
        let mut b = signed_in(&app, Role::Manager).await;
        for lang in ["en", "zh-CN", "zh-TW"] {
            for path in ["/loyalty", &format!("/customers/{id}"), "/"] {
                let p = b.get(&format!("{path}?lang={lang}")).await;
                assert_eq!(p.status, 200, "{path} in {lang}: {}", p.body);
            }
        }
        // A broken program is shown again with its messages and what was typed.
        let mut fields = vec![
            ("enabled", "on"),
            ("points_per_unit", "2,5"),
            ("min_order", "0"),
            ("starts_at", ""),
            ("lifetime_days", "365"),
            ("pending_days", "0"),
            ("point_value", "0.01"),
            ("tier_basis", "points"),
            ("tier_window_days", "365"),
            ("tier_grace_days", "30"),
            ("bonuses.welcome", "0"),
            ("bonuses.birthday", "0"),
            ("bonuses.referral", "0"),
            ("bonuses.referred", "0"),
            ("bonuses.survey_answered", "0"),
            ("tier_name_0", "member"),
            ("tier_threshold_0", "0"),
            ("tier_multiplier_0", "1"),
            ("tier_name_1", "vip"),
            ("tier_threshold_1", "abc"),
            ("tier_multiplier_1", "2"),
        ];
        let p = b
            .submit("/loyalty?lang=en", "/loyalty/program", &fields)
            .await;
        assert_eq!(p.status, 422, "{}", p.body);
        assert!(
            p.body
                .contains("tiers[1].threshold: must be a whole number"),
            "{}",
            p.body
        );
        assert!(
            p.body.contains("value=\"abc\""),
            "the input is kept: {}",
            p.body
        );
        fields[19] = ("tier_threshold_1", "100");
        let p = b.submit("/loyalty", "/loyalty/program", &fields).await;
        assert_eq!(p.status, 303, "{}", p.body);
        let program = app.app.loyalty_program(&operator()).await.unwrap();
        assert!(program.enabled);
        assert_eq!(program.points_per_unit, 2.5, "a decimal comma is read");
        assert_eq!(program.tiers.len(), 2);

        // A reward and a campaign from the page.
        let p = b
            .submit(
                "/loyalty",
                "/loyalty/rewards",
                &[
                    ("name", "Free tea"),
                    ("points_cost", "20"),
                    ("stock", ""),
                    ("description", ""),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let p = b
            .submit(
                "/loyalty",
                "/loyalty/campaigns",
                &[
                    ("name", "Autumn"),
                    ("discount_kind", "amount"),
                    ("discount_value", "5.00"),
                    ("max_uses", ""),
                    ("per_customer", "1"),
                    ("valid_until", ""),
                    ("codes", "AUTUMN26"),
                    ("generate", "2"),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let page = b.get("/loyalty?lang=en").await;
        assert!(
            page.body.contains("Free tea") && page.body.contains("Autumn"),
            "{}",
            page.body
        );

        // Points by hand on the 360° page: a resubmitted form (same key) counts once.
        let at = format!("/customers/{id}");
        let p = b
            .submit(&at, &format!("{at}/loyalty"), &[("action", "enrol")])
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let page = b.get(&at).await;
        let key = page
            .body
            .split("name=\"_key\" value=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .to_owned();
        let form = [
            ("_csrf", page.csrf()),
            ("action", "adjust".into()),
            ("_key", key.clone()),
            ("points", "40".into()),
            ("reason", "welcome gift".into()),
        ];
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for _ in 0..2 {
            let p = b.post(&format!("{at}/loyalty"), &form).await;
            assert_eq!(p.status, 303, "{}", p.body);
        }
        let m = app
            .app
            .member(
                &operator(),
                tenure_domain::ids::CustomerId(id),
                &Default::default(),
            )
            .await
            .unwrap();
        assert_eq!(m.account.balance, 40, "one adjustment for two submits");
        // A reward, then a coupon with its discount.
        let reward = app.app.rewards(&operator()).await.unwrap()[0]
            .id
            .0
            .to_string();
        let p = b
            .submit(
                &at,
                &format!("{at}/loyalty"),
                &[
                    ("action", "reward"),
                    ("reward_id", &reward),
                    ("_key", "r-1"),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let p = b
            .submit(
                &at,
                &format!("{at}/loyalty"),
                &[
                    ("action", "coupon"),
                    ("code", "autumn-26"),
                    ("order_amount", "30"),
                    ("_key", "c-1"),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let page = b.get(p.location()).await;
        assert!(
            page.body.contains("Coupon AUTUMN26 used: discount $5.00"),
            "{}",
            page.body
        );
        let p = b
            .submit(
                &at,
                &format!("{at}/loyalty"),
                &[
                    ("action", "coupon"),
                    ("code", "AUTUMN26"),
                    ("order_amount", "30"),
                    ("_key", "c-2"),
                ],
            )
            .await;
        assert_eq!(p.status, 409, "once per customer: {}", p.body);
        let m = app
            .app
            .member(
                &operator(),
                tenure_domain::ids::CustomerId(id),
                &Default::default(),
            )
            .await
            .unwrap();
        assert_eq!(m.account.balance, 20);

        // The member link, and the member page in the customer's language.
        let p = b
            .submit(&at, &format!("{at}/loyalty"), &[("action", "link")])
            .await;
        assert_eq!(p.status, 303);
        let page = b.get(p.location()).await;
        let link = page
            .body
            .split("href=\"&#x2f;m&#x2f;")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("{}: {}", p.location(), page.body))
            .to_owned();
        let member = app
            .client
            .get(app.url(&format!("/m/{link}")))
            .send()
            .await
            .unwrap();
        assert_eq!(member.status(), 200);
        let html = member.text().await.unwrap();
        assert!(
            html.contains("lang=\"zh-TW\"") && html.contains("積分"),
            "{html}"
        );
        assert!(html.contains("Free tea"), "an affordable reward: {html}");
    })
    .await;
}

/// Every page and form of the web application and the permission it needs; `None` for
/// the public ones (sign-in, the member, survey and unsubscribe links, assets).
const WEB_ROUTES: &[(&str, &str, Option<Permission>)] = {
    use Permission::*;
    &[
        ("GET", "/", Some(ReadAggregates)),
        ("GET", "/login", None),
        ("POST", "/login", None),
        ("POST", "/logout", None),
        ("GET", "/customers", Some(ReadCustomers)),
        ("POST", "/customers", Some(WriteCustomers)),
        ("GET", "/customers/new", Some(WriteCustomers)),
        ("GET", "/customers/{id}", Some(ReadCustomers)),
        ("POST", "/customers/{id}", Some(WriteCustomers)),
        ("GET", "/customers/{id}/edit", Some(WriteCustomers)),
        ("GET", "/customers/{id}/timeline", Some(ReadCustomers)),
        ("GET", "/customers/{id}/delete", Some(DeleteCustomers)),
        ("POST", "/customers/{id}/delete", Some(DeleteCustomers)),
        ("GET", "/customers/{id}/export.json", Some(Privacy)),
        ("GET", "/customers/{id}/export.zip", Some(Privacy)),
        ("GET", "/customers/{id}/erase", Some(Privacy)),
        ("POST", "/customers/{id}/erase", Some(Privacy)),
        ("GET", "/audit", Some(ReadAudit)),
        ("POST", "/audit/retention", Some(Privacy)),
        ("GET", "/webhooks", Some(ManageUsers)),
        ("POST", "/webhooks", Some(ManageUsers)),
        ("POST", "/webhooks/{id}", Some(ManageUsers)),
        ("GET", "/duplicates", Some(DeleteCustomers)),
        ("POST", "/duplicates/merge", Some(DeleteCustomers)),
        ("POST", "/merges/{id}/undo", Some(DeleteCustomers)),
        ("GET", "/import", Some(WriteCustomers)),
        ("POST", "/import", Some(WriteCustomers)),
        ("GET", "/import/{id}", Some(WriteCustomers)),
        ("GET", "/import/{id}/rejected.csv", Some(WriteCustomers)),
        ("GET", "/export", Some(ReadCustomers)),
        ("GET", "/export/{kind}", Some(ReadCustomers)),
        ("GET", "/analytics", Some(ReadAggregates)),
        ("POST", "/analytics/refresh", Some(WriteCatalog)),
        ("GET", "/retention", Some(ReadAggregates)),
        ("POST", "/retention/refresh", Some(WriteCatalog)),
        ("GET", "/segments", Some(ReadAggregates)),
        ("POST", "/segments", Some(WriteCatalog)),
        ("GET", "/segments/new", Some(ReadAggregates)),
        ("GET", "/segments/{id}", Some(ReadAggregates)),
        ("POST", "/segments/{id}", Some(WriteCatalog)),
        ("GET", "/profit", Some(ReadAggregates)),
        ("POST", "/customers/{id}/lifecycle", Some(WriteCustomers)),
        ("POST", "/customers/{id}/loyalty", Some(WriteCustomers)),
        ("GET", "/loyalty", Some(ReadAggregates)),
        ("POST", "/loyalty/program", Some(WriteCatalog)),
        ("POST", "/loyalty/rewards", Some(WriteCatalog)),
        ("POST", "/loyalty/rewards/{id}/toggle", Some(WriteCatalog)),
        ("POST", "/loyalty/campaigns", Some(WriteCatalog)),
        ("POST", "/loyalty/run", Some(WriteCatalog)),
        ("GET", "/m/{token}", None),
        ("GET", "/tickets", Some(ReadCustomers)),
        ("POST", "/tickets", Some(WriteCustomers)),
        ("GET", "/tickets/{id}", Some(ReadCustomers)),
        ("POST", "/tickets/{id}", Some(WriteCustomers)),
        ("GET", "/tasks", Some(ReadCustomers)),
        ("POST", "/tasks", Some(WriteCustomers)),
        ("POST", "/tasks/{id}", Some(WriteCustomers)),
        ("GET", "/surveys", Some(ReadAggregates)),
        ("POST", "/surveys", Some(WriteCatalog)),
        ("GET", "/surveys/{id}", Some(ReadAggregates)),
        // Inviting and recording an answer; building and switching it need WriteCatalog.
        ("POST", "/surveys/{id}", Some(WriteCustomers)),
        ("GET", "/service", Some(ReadAggregates)),
        ("POST", "/service/settings", Some(WriteCatalog)),
        ("POST", "/service/calendar", Some(WriteCatalog)),
        ("POST", "/service/sla-scan", Some(WriteCustomers)),
        ("GET", "/s/{token}", None),
        ("POST", "/s/{token}", None),
        ("GET", "/journeys", Some(ReadAggregates)),
        ("POST", "/journeys/settings", Some(WriteCatalog)),
        ("GET", "/journeys/{id}", Some(ReadAggregates)),
        ("POST", "/journeys/{id}", Some(WriteCatalog)),
        ("GET", "/templates", Some(ReadAggregates)),
        ("POST", "/templates", Some(WriteCatalog)),
        ("GET", "/templates/{id}", Some(ReadAggregates)),
        // A preview with a real customer; saving needs WriteCatalog.
        ("POST", "/templates/{id}", Some(ReadCustomers)),
        ("GET", "/u/{token}", None),
        ("POST", "/u/{token}", None),
        ("GET", "/assets/{name}", None),
    ]
};

/// The routes the web router declares, read from its source: each `.route("PATH", …)`
/// and the `get(` / `post(` inside its arguments.
fn declared_web_routes() -> Vec<(String, String)> {
    let source = include_str!("../../../tenure-web/src/pages/mod.rs");
    let mut out = Vec::new();
    for chunk in source.split(".route(").skip(1) {
        // The arguments: up to the parenthesis that closes `.route(`.
        let mut depth = 1;
        let mut end = chunk.len();
        for (i, c) in chunk.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let args = &chunk[..end];
        let Some(path) = args.split('"').nth(1) else {
            continue;
        };
        for method in ["get", "post"] {
            let called = args.match_indices(&format!("{method}(")).any(|(at, _)| {
                at == 0 || !args[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_')
            });
            if called {
                out.push((method.to_uppercase(), path.to_owned()));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn the_web_role_table_covers_every_route() {
    let mut tabled: Vec<(String, String)> = WEB_ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    tabled.sort();
    assert_eq!(declared_web_routes(), tabled);
}

#[tokio::test]
async fn every_page_and_form_checks_the_role() {
    let app = spawn_app(TestDb::sqlite()).await;
    app.post_json(
        "/api/v1/customers",
        serde_json::json!({"name": "Role Page"}),
    )
    .await;
    for role in Role::ALL {
        let mut b = signed_in(&app, *role).await;
        for (method, template, permission) in WEB_ROUTES {
            let Some(permission) = permission else {
                continue;
            };
            let path = template.replace("{id}", "1").replace("{kind}", "customers");
            let page = match (*method, *template) {
                ("GET", _) => b.get(&path).await,
                (_, "/import" | "/service/calendar") => {
                    b.upload_to("/", &path, &[], ("x.csv", b"name\n".to_vec()))
                        .await
                }
                _ => b.submit("/", &path, &[]).await,
            };
            if role.allows(*permission) {
                assert_ne!(page.status, 403, "{role} {method} {template}");
            } else {
                assert_eq!(
                    page.status,
                    403,
                    "{role} {method} {template}: {}",
                    page.body.chars().take(300).collect::<String>()
                );
            }
            assert!(
                page.status < 500,
                "{role} {method} {template}: {}",
                page.status
            );
        }
    }
}

#[tokio::test]
async fn signing_out_everywhere_ends_the_sessions_of_every_device() {
    each_db(async |app| {
        staff(&app, "sam@shop.example", Role::Agent).await;
        staff(&app, "other@shop.example", Role::Agent).await;
        let mut phone = Browser::new(&app);
        let mut laptop = Browser::new(&app);
        let mut colleague = Browser::new(&app);
        for (b, email) in [
            (&mut phone, "sam@shop.example"),
            (&mut laptop, "sam@shop.example"),
            (&mut colleague, "other@shop.example"),
        ] {
            assert_eq!(b.sign_in(email, PASSWORD).await.status, 303);
            assert_eq!(b.get("/customers").await.status, 200);
        }
        let home = laptop.get("/").await;
        assert!(home.body.contains("Sign out everywhere"));
        let out = laptop.submit("/", "/logout", &[("everywhere", "1")]).await;
        assert_eq!(out.status, 303);
        for b in [&mut phone, &mut laptop] {
            let p = b.get("/customers").await;
            assert_eq!(p.status, 303, "signed out on every device");
            assert!(p.location().starts_with("/login"));
        }
        assert_eq!(
            colleague.get("/customers").await.status,
            200,
            "another user stays signed in"
        );
    })
    .await;
}
