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

#[tokio::test]
async fn cdnow_imported_as_a_purchase_log_fits_the_published_models() {
    let Some(data) = reference_data() else { return };
    let dir = tempfile::tempdir().unwrap();
    // The raw CDNOW file rewritten as the plain purchase log every shop system can export.
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
    let file = dir.path().join("cdnow.csv");
    std::fs::write(&file, log).unwrap();
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
    let report: Value = serde_json::from_str(&run(
        &db,
        &[
            "analytics",
            "clv",
            "--from-summary",
            summary.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--format",
            "json",
        ],
    ))
    .unwrap();
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
    let report: Value = serde_json::from_str(&run(
        &db,
        &[
            "analytics",
            "clv",
            "--model",
            "pareto-nbd",
            "--from-summary",
            summary.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--format",
            "json",
        ],
    ))
    .unwrap();
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
