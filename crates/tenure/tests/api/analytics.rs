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
}
