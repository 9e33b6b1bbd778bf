//! `tenure analytics clv` on the CDNOW sample brought in through `tenure import purchases`,
//! and on the published summary file — on both databases.

use serde_json::Value;
use tenure_testkit::{TestDb, reference_data};

fn run(db: &TestDb, args: &[&str]) -> String {
    crate::ok(&crate::tenure(db, args))
}

fn rel(a: &Value, b: f64) -> f64 {
    ((a.as_f64().unwrap() - b) / b).abs()
}

/// The raw CDNOW file rewritten as the plain purchase log every shop system can export;
/// returns the log's path and the raw text.
fn cdnow_log(data: &std::path::Path, dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let raw = std::fs::read_to_string(data.join("cdnow/CDNOW_sample.txt")).unwrap();
    let mut log = String::from("customer_external_id,occurred_at,amount\n");
    for l in raw.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = l.split_whitespace().collect();
        let d = f[2];
        log.push_str(&format!(
            "{},{}-{}-{},{}\n",
            f[1],
            &d[..4],
            &d[4..6],
            &d[6..],
            f[4]
        ));
    }
    let file = dir.join("cdnow.csv");
    std::fs::write(&file, log).unwrap();
    (file, raw)
}

#[tokio::test]
async fn cdnow_imported_as_a_purchase_log_fits_the_published_models() {
    let Some(data) = reference_data() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (file, raw) = cdnow_log(&data, dir.path());
    // Distinct purchase days after the first, in calibration and in the holdout period.
    let mut days = std::collections::BTreeSet::new();
    for l in raw.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = l.split_whitespace().collect();
        days.insert((f[1].parse::<u32>().unwrap(), f[2].to_owned()));
    }
    let mut first = std::collections::BTreeMap::new();
    let (mut in_calibration_repeats, mut holdout_days) = (0u32, 0u32);
    for (customer, day) in &days {
        if first.insert(*customer, day.clone()).is_none() {
            continue;
        }
        match day.as_str() {
            d if d <= "19970930" => in_calibration_repeats += 1,
            d if d <= "19980630" => holdout_days += 1,
            _ => {}
        }
    }

    for db in TestDb::all().await {
        let imported = run(&db, &["import", "purchases", file.to_str().unwrap()]);
        assert!(imported.contains("2357 customers created"), "{imported}");
        let report: Value = serde_json::from_str(&run(
            &db,
            &[
                "analytics",
                "clv",
                "--calibration-end",
                "1997-09-30",
                "--format",
                "json",
            ],
        ))
        .unwrap();
        assert_eq!(report["customers"], 2357);
        let m = &report["bgnbd"];
        // The published fit is on times rounded to two decimals; from the exact days the
        // maximum moves a little.
        assert!(rel(&m["r"], 0.2425929) < 1e-3, "{report}");
        assert!(rel(&m["alpha"], 4.4135314) < 1e-3, "{report}");
        assert!(rel(&m["a"], 0.7928860) < 1e-3, "{report}");
        assert!(rel(&m["b"], 2.4257527) < 1e-3, "{report}");
        assert!(rel(&m["log_likelihood"], -9582.42556) < 1e-5, "{report}");
        let g = &report["gamma_gamma"];
        assert_eq!(g["customers"], 946);
        assert!(rel(&g["p"], 6.2488025) < 1e-3, "{report}");
        assert!(rel(&g["q"], 3.7445885) < 1e-3, "{report}");
        assert!(rel(&g["gamma"], 15.4477481) < 1e-3, "{report}");

        // Predictions are stored with the customers.
        let store = db.store().await;
        let one = store
            .find_customer_by_external_id("0001")
            .await
            .unwrap()
            .unwrap();
        let p = store.prediction(one.id).await.unwrap().unwrap();
        // Customer 1 (x = 2, t_x = 30.43, T = 38.86): P(alive) 0.72658 at the published fit.
        assert!((p.p_alive - 0.72658).abs() < 1e-3, "{p:?}");
        assert!(p.clv > 0.0 && p.expected_purchases > 0.0);
        assert!((p.churn_risk() - (1.0 - p.p_alive)).abs() < 1e-12);

        // The holdout check: 39 weeks of calibration, 39 weeks of holdout.
        let check: Value = serde_json::from_str(&run(
            &db,
            &[
                "analytics",
                "holdout",
                "--calibration-end",
                "1997-09-30",
                "--holdout-end",
                "1998-06-30",
                "--format",
                "json",
            ],
        ))
        .unwrap();
        assert_eq!(check["customers"], 2357);
        assert_eq!(check["holdout_weeks"], 39.0);
        assert_eq!(check["actual_total"], f64::from(holdout_days), "{check}");
        let predicted = check["predicted_total"].as_f64().unwrap();
        // The model under-forecasts this holdout a little (1,653 expected, 1,882 happened,
        // as in the literature's tracking chart); a wrong count or horizon would be far off.
        assert!(
            (predicted - f64::from(holdout_days)).abs() < 0.15 * f64::from(holdout_days),
            "{check}"
        );
        let buckets = check["by_frequency"].as_array().unwrap();
        assert_eq!(buckets[0]["x"], "0");
        assert_eq!(buckets.last().unwrap()["x"], "7+");
        let in_buckets: f64 = buckets
            .iter()
            .map(|b| b["customers"].as_f64().unwrap())
            .sum();
        assert_eq!(in_buckets, 2357.0);
        // Customers who bought more in calibration buy more in the holdout, and the model
        // expects it.
        let mean = |i: usize, k: &str| buckets[i][k].as_f64().unwrap();
        assert!(
            mean(0, "actual") < mean(3, "actual") && mean(0, "predicted") < mean(3, "predicted")
        );
        let tracking = check["tracking"].as_array().unwrap();
        let last = tracking.last().unwrap();
        assert_eq!(last["week_ending"], "1998-06-30");
        let at_calibration_end = tracking
            .iter()
            .find(|p| p["week_ending"] == "1997-09-30")
            .unwrap();
        assert_eq!(at_calibration_end["holdout"], false);
        let calibration_repeats: f64 = in_calibration_repeats.into();
        assert_eq!(at_calibration_end["actual_cumulative"], calibration_repeats);
        assert_eq!(
            last["actual_cumulative"].as_f64().unwrap(),
            calibration_repeats + f64::from(holdout_days)
        );
        let mape = check["tracking_mape"].as_f64().unwrap();
        assert!(mape > 0.0 && mape < 0.2, "{check}");
    }
}

#[tokio::test]
async fn fits_a_summary_file_in_the_lifetimes_format() {
    let Some(data) = reference_data() else { return };
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("predictions.csv");
    let summary = data.join("cdnow/cdnow_customers_summary.csv");
    let fit = |model: &str| -> Value {
        serde_json::from_str(&run(
            &db,
            &[
                "analytics",
                "clv",
                "--model",
                model,
                "--from-summary",
                summary.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--format",
                "json",
            ],
        ))
        .unwrap()
    };
    let report = fit("bgnbd");
    let m = &report["bgnbd"];
    assert!(rel(&m["r"], 0.2425929) < 1e-5, "{report}");
    assert!(rel(&m["alpha"], 4.4135314) < 1e-5, "{report}");
    assert!(rel(&m["a"], 0.7928860) < 1e-5, "{report}");
    assert!(rel(&m["b"], 2.4257527) < 1e-5, "{report}");
    assert!(rel(&m["log_likelihood"], -9582.42556) < 1e-8, "{report}");
    assert!(
        report["gamma_gamma"].is_null(),
        "no spend column, no spend model"
    );
    let rows = std::fs::read_to_string(&out).unwrap();
    assert_eq!(rows.lines().count(), 2358);
    assert!(rows.starts_with("customer_id,p_alive,churn_risk,expected_purchases"));

    // Pareto/NBD on the same file: the published fit (to its three decimals).
    let report = fit("pareto-nbd");
    assert!(report.get("bgnbd").is_none(), "{report}");
    let m = &report["pareto_nbd"];
    for (k, published) in [
        ("r", 0.553),
        ("alpha", 10.578),
        ("s", 0.606),
        ("beta", 11.669),
    ] {
        assert!(rel(&m[k], published) < 1e-3, "{k}: {report}");
    }
    assert!(
        (m["log_likelihood"].as_f64().unwrap() + 9595.0).abs() < 0.05,
        "{report}"
    );
    assert_eq!(m["converged"], true);
    let rows = std::fs::read_to_string(&out).unwrap();
    assert_eq!(rows.lines().count(), 2358);
}

/// Every customer id the list returns for `query`.
async fn all_ids(app: &tenure_testkit::TestApp, query: &str) -> Vec<i64> {
    crate::all_items(app, &format!("/api/v1/customers?{query}&limit=500"))
        .await
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn predictions_filter_the_customer_list_and_appear_on_the_timeline() {
    let Some(data) = reference_data() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = cdnow_log(&data, dir.path());
    for db in TestDb::all().await {
        run(&db, &["import", "purchases", file.to_str().unwrap()]);
        run(
            &db,
            &["analytics", "clv", "--calibration-end", "1997-09-30"],
        );
        let app = tenure_testkit::spawn_app(db).await;

        // Likely lost (P(alive) ≤ 0.3) and the rest split the customer base between them.
        let lost = all_ids(&app, "p_alive_max=0.3").await;
        let rest = all_ids(&app, "p_alive_min=0.3000001").await;
        assert!(!lost.is_empty() && !rest.is_empty());
        assert_eq!(lost.len() + rest.len(), 2357);
        assert!(lost.iter().all(|id| !rest.contains(id)));
        // Valuable and likely lost: both hold for every customer listed.
        let both = all_ids(&app, "clv_min=20&p_alive_max=0.3").await;
        assert!(!both.is_empty() && both.len() < lost.len());
        for id in &both {
            let (_, c) = app.get_json(&format!("/api/v1/customers/{id}")).await;
            let p = &c["predictions"];
            assert!(p["clv"].as_f64().unwrap() >= 20.0, "{c}");
            assert!(p["p_alive"].as_f64().unwrap() <= 0.3, "{c}");
            assert!(
                (p["churn_risk"].as_f64().unwrap() - (1.0 - p["p_alive"].as_f64().unwrap())).abs()
                    < 1e-12
            );
        }
        let high = all_ids(&app, "clv_min=500").await;
        let (_, c) = app
            .get_json(&format!("/api/v1/customers/{}", high[0]))
            .await;
        assert!(c["predictions"]["clv"].as_f64().unwrap() >= 500.0, "{c}");

        // Bounds that cannot be probabilities or numbers are refused, naming the field.
        for (query, field) in [
            ("p_alive_max=1.5", "p_alive_max"),
            ("p_alive_min=-0.1", "p_alive_min"),
            ("clv_min=NaN", "clv_min"),
        ] {
            let (status, body) = app.get_json(&format!("/api/v1/customers?{query}")).await;
            assert_eq!(status, 400, "{query}: {body}");
            assert_eq!(body["errors"][0]["field"], field, "{body}");
        }

        // The at-risk list: every customer with a prediction, by churn risk × CLV, highest
        // first, across pages.
        let mut ranked: Vec<(f64, i64)> = Vec::new();
        for c in crate::all_items(&app, "/api/v1/customers/at-risk?limit=400").await {
            let p = &c["predictions"];
            let v = p["value_at_risk"].as_f64().unwrap();
            let expected = p["churn_risk"].as_f64().unwrap() * p["clv"].as_f64().unwrap();
            assert!((v - expected).abs() <= 1e-9 * expected.max(1.0), "{c}");
            ranked.push((v, c["id"].as_i64().unwrap()));
        }
        assert_eq!(ranked.len(), 2357);
        assert!(ranked.windows(2).all(|w| w[0].0 >= w[1].0), "not ranked");
        let mut ids: Vec<i64> = ranked.iter().map(|r| r.1).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 2357, "a customer twice");
        // The top of the list is neither sure to stay nor surely gone.
        let (_, top) = app.get_json("/api/v1/customers/at-risk?limit=1").await;
        let p = top["items"][0]["predictions"]["p_alive"].as_f64().unwrap();
        assert!(p > 0.05 && p < 0.95, "{top}");
        let (status, body) = app
            .get_json("/api/v1/customers/at-risk?cursor=bm9wZQ")
            .await;
        assert_eq!(status, 400, "{body}");

        // The prediction is on the timeline, newest (computed now, after every purchase).
        let id = lost[0];
        let (_, c) = app.get_json(&format!("/api/v1/customers/{id}")).await;
        let (status, timeline) = app
            .get_json(&format!("/api/v1/customers/{id}/timeline?limit=2"))
            .await;
        assert_eq!(status, 200, "{timeline}");
        let first = &timeline["items"][0];
        assert_eq!(first["kind"], "prediction", "{timeline}");
        assert_eq!(first["prediction"]["p_alive"], c["predictions"]["p_alive"]);
        assert_eq!(first["prediction"]["clv"], c["predictions"]["clv"]);
        assert_eq!(timeline["items"][1]["kind"], "order", "{timeline}");
        // Paging past it reaches the orders and never shows it again.
        let cursor = timeline["next_cursor"].as_str().unwrap();
        let (_, rest) = app
            .get_json(&format!("/api/v1/customers/{id}/timeline?cursor={cursor}"))
            .await;
        assert!(
            rest["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["kind"] != "prediction"),
            "{rest}"
        );
    }
}

#[test]
fn retention_fits_the_published_subscription_cohorts() {
    let db = TestDb::sqlite();
    // Fader & Hardie (2007): survivors out of 1,000 at renewals 0..7.
    let report: Value = serde_json::from_str(&run(
        &db,
        &[
            "analytics",
            "retention",
            "--survivors",
            "1000,631,468,382,326,289,262,241",
            "--periods",
            "12",
            "--format",
            "json",
        ],
    ))
    .unwrap();
    let m = &report["sbg"];
    assert!(
        (m["alpha"].as_f64().unwrap() - 0.704).abs() < 5e-4,
        "{report}"
    );
    assert!(
        (m["beta"].as_f64().unwrap() - 1.182).abs() < 5e-4,
        "{report}"
    );
    let projection = report["projection"].as_array().unwrap();
    assert_eq!(projection.len(), 13);
    assert_eq!(projection[0]["expected_survivors"], 1000.0);
    assert_eq!(projection[7]["actual_survivors"], 241);
    assert!(projection[8]["actual_survivors"].is_null());
    // Renewal rates rise with tenure: the customers who stay are the loyal ones.
    let rate = |t: usize| projection[t]["retention"].as_f64().unwrap();
    assert!((1..12).all(|t| rate(t) < rate(t + 1)));
    assert!((projection[7]["expected_survivors"].as_f64().unwrap() - 241.0).abs() < 10.0);

    // Counts that grow are refused with the renewal named.
    let out = crate::tenure(&db, &["analytics", "retention", "--survivors", "100,90,95"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("95 after renewal 2"), "{err}");
}

#[tokio::test]
async fn the_models_count_time_in_days_or_weeks_alike() {
    let db = TestDb::sqlite();
    crate::ok(&crate::tenure(&db, &["demo", "--customers", "400"]));
    let fit = |unit: &str| -> Value {
        serde_json::from_str(&run(
            &db,
            &[
                "analytics",
                "clv",
                "--time-unit",
                unit,
                "--calibration-end",
                "2026-06-30",
                "--format",
                "json",
            ],
        ))
        .unwrap()
    };
    let (weeks, days) = (fit("weeks"), fit("days"));
    assert_eq!(weeks["time_unit"], "weeks");
    assert_eq!(days["time_unit"], "days");
    let (w, d) = (&weeks["bgnbd"], &days["bgnbd"]);
    // Counting in days stretches time seven times: the rate's scale follows, the shapes
    // and the dropout probabilities do not.
    for p in ["r", "a", "b"] {
        assert!(rel(&d[p], w[p].as_f64().unwrap()) < 1e-3, "{p}: {w} {d}");
    }
    assert!(
        rel(&d["alpha"], 7.0 * w["alpha"].as_f64().unwrap()) < 1e-3,
        "{w} {d}"
    );
}

#[tokio::test]
async fn the_demo_is_alive_today_and_the_report_speaks_to_a_manager() {
    let db = TestDb::sqlite();
    let demo = run(&db, &["demo", "--customers", "400"]);
    assert!(demo.contains("400 customers scored"), "{demo}");
    let store = db.store().await;
    let last = store
        .all_customer_stats()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|(_, s)| s.last_purchase_at)
        .max()
        .unwrap();
    let silent = chrono::Utc::now() - last;
    assert!(
        silent < chrono::Duration::days(7),
        "the demo's last purchase was {} days ago",
        silent.num_days()
    );

    let json: Value =
        serde_json::from_str(&run(&db, &["analytics", "clv", "--format", "json"])).unwrap();
    let summary = &json["summary"];
    assert_eq!(summary["customers"], 400);
    assert_eq!(summary["currency"], "USD");
    let mean = summary["mean_p_alive"].as_f64().unwrap();
    assert!(mean > 0.45, "a living business: mean P(alive) {mean}");
    let at_risk = summary["at_risk"].as_u64().unwrap();
    assert!(at_risk > 0 && at_risk < 400, "{summary}");

    let text = run(&db, &["analytics", "clv"]);
    let first = text.lines().next().unwrap();
    assert!(first.starts_with("Scored 400 customers"), "{text}");
    assert!(text.contains(&format!("{at_risk} (")), "{text}");
    assert!(text.contains("are at risk"), "{text}");
    assert!(
        text.contains(" USD ("),
        "the value in the reporting currency: {text}"
    );
    assert!(text.contains("GET /api/v1/customers/at-risk"), "{text}");
    let with_errors = text.lines().filter(|l| l.contains(" ± ")).count();
    assert_eq!(
        with_errors, 7,
        "four BG/NBD and three Gamma-Gamma parameters: {text}"
    );
}

#[test]
fn under_ci_a_test_missing_its_reference_data_fails_instead_of_skipping() {
    let run = |ci: &str| {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--nocapture",
                "--exact",
                "analytics::cdnow_imported_as_a_purchase_log_fits_the_published_models",
            ])
            .env("CI", ci)
            .env("TENURE_REFERENCE_DATA", "/nonexistent/reference-data")
            .output()
            .unwrap()
    };
    let skipped = run("false");
    assert!(
        skipped.status.success(),
        "outside CI it is skipped with a note"
    );
    assert!(String::from_utf8_lossy(&skipped.stderr).contains("SKIPPED"));
    let failed = run("true");
    assert!(!failed.status.success(), "under CI it fails");
    let out = String::from_utf8_lossy(&failed.stdout).into_owned()
        + &String::from_utf8_lossy(&failed.stderr);
    assert!(out.contains("CI must run every test"), "{out}");
}
