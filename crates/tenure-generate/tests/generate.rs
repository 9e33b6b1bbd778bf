//! The generator: same seed, same bytes; files consistent with each other and with the
//! manifest; the drawn business looks like its parameters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;

use tenure_generate::{Params, generate};

fn read(dir: &Path, name: &str) -> Vec<csv::StringRecord> {
    let mut r = csv::Reader::from_path(dir.join(name)).unwrap();
    r.records().map(|x| x.unwrap()).collect()
}

fn cents(s: &str) -> i64 {
    let (int, frac) = s.split_once('.').unwrap();
    int.parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap()
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    generate(&Params::new(9_000, 7), a.path()).unwrap();
    generate(&Params::new(9_000, 7), b.path()).unwrap();
    generate(&Params::new(9_000, 8), c.path()).unwrap();
    for f in [
        "customers.csv",
        "orders.csv",
        "order_lines.csv",
        "interactions.csv",
        "products.csv",
        "manifest.json",
    ] {
        let x = std::fs::read(a.path().join(f)).unwrap();
        assert_eq!(x, std::fs::read(b.path().join(f)).unwrap(), "{f}");
        if f != "products.csv" && f != "manifest.json" {
            assert_ne!(
                x,
                std::fs::read(c.path().join(f)).unwrap(),
                "{f} should change with the seed"
            );
        }
    }
}

#[test]
fn files_agree_with_each_other_and_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let counts = generate(&Params::new(20_000, 42), dir.path()).unwrap();
    let customers = read(dir.path(), "customers.csv");
    let orders = read(dir.path(), "orders.csv");
    let lines = read(dir.path(), "order_lines.csv");
    let interactions = read(dir.path(), "interactions.csv");
    let products = read(dir.path(), "products.csv");
    assert_eq!(customers.len() as u64, counts.customers);
    assert_eq!(orders.len() as u64, counts.orders);
    assert_eq!(lines.len() as u64, counts.order_lines);
    assert_eq!(interactions.len() as u64, counts.interactions);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["counts"]["orders"], counts.orders);
    assert_eq!(manifest["bgnbd"]["r"], 1.1);
    assert_eq!(manifest["gamma_gamma"]["gamma"], 25.0);

    let ids: std::collections::HashSet<&str> =
        customers.iter().map(|c| c.get(0).unwrap()).collect();
    assert_eq!(ids.len(), customers.len(), "external ids are unique");
    let product_ids: std::collections::HashSet<&str> =
        products.iter().map(|p| p.get(0).unwrap()).collect();
    let mut order_totals: HashMap<&str, i64> = HashMap::new();
    for o in &orders {
        assert!(ids.contains(o.get(1).unwrap()));
        let at = o.get(2).unwrap();
        assert!(("2023-01-01".."2026-01-02").contains(&at), "{at}");
        order_totals.insert(o.get(0).unwrap(), cents(o.get(4).unwrap()));
    }
    let mut line_sums: HashMap<&str, i64> = HashMap::new();
    for l in &lines {
        assert!(product_ids.contains(l.get(2).unwrap()));
        let q: i64 = l.get(4).unwrap().parse().unwrap();
        assert_eq!(
            cents(l.get(5).unwrap()) * q,
            cents(l.get(6).unwrap()),
            "unit × quantity = line total"
        );
        *line_sums.entry(l.get(0).unwrap()).or_default() += cents(l.get(6).unwrap());
    }
    assert_eq!(
        line_sums, order_totals,
        "every order's lines add up to its total"
    );
    for i in &interactions {
        assert!(ids.contains(i.get(1).unwrap()));
    }
}

#[test]
fn the_business_looks_like_its_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let counts = generate(&Params::new(30_000, 3), dir.path()).unwrap();
    let per_customer = counts.orders as f64 / counts.customers as f64;
    assert!(
        (6.0..14.0).contains(&per_customer),
        "orders per customer {per_customer}"
    );
    let orders = read(dir.path(), "orders.csv");
    let mean = orders
        .iter()
        .map(|o| cents(o.get(4).unwrap()) as f64)
        .sum::<f64>()
        / orders.len() as f64
        / 100.0;
    // Gamma-Gamma: E[z] = p·γ/(q−1) = 50.
    assert!((45.0..55.0).contains(&mean), "mean order value {mean}");
    let customers = read(dir.path(), "customers.csv");
    let share = |locale: &str| {
        customers
            .iter()
            .filter(|c| c.get(6) == Some(locale))
            .count() as f64
            / customers.len() as f64
    };
    assert!((0.40..0.50).contains(&share("zh-CN")));
    assert!((0.12..0.18).contains(&share("zh-TW")));
    assert!((0.35..0.45).contains(&share("en")));
}
