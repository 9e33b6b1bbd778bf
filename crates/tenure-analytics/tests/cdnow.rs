//! The CDNOW sample: summaries computed from the raw purchases equal the published file,
//! and the fits and per-customer values equal the published ones (see the reference data's
//! README for the numbers).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use chrono::NaiveDate;
use tenure_analytics::bgnbd::{self, BgNbd};
use tenure_analytics::clv::{ClvTerms, clv};
use tenure_analytics::gamma_gamma::{self, GammaGamma};
use tenure_analytics::pareto_nbd::{self, ParetoNbd};
use tenure_analytics::{Summary, summarize};

use tenure_testkit::reference_data as data_dir;

fn published(dir: &Path) -> Vec<(u32, Summary)> {
    let mut r =
        csv::Reader::from_path(dir.join("cdnow/cdnow_customers_summary_with_transactions.csv"))
            .unwrap();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            let f = |i: usize| rec[i].parse::<f64>().unwrap();
            (
                rec[0].parse().unwrap(),
                Summary {
                    x: f(1),
                    t_x: f(2),
                    t: f(3),
                    monetary: f(4),
                },
            )
        })
        .collect()
}

fn round2(v: f64) -> f64 {
    // Half up on the decimal value, as the published file rounds.
    (v * 100.0 + 0.5 + 1e-9).floor() / 100.0
}

#[test]
fn summaries_from_raw_purchases_equal_the_published_file() {
    let Some(dir) = data_dir() else { return };
    let text = std::fs::read_to_string(dir.join("cdnow/CDNOW_sample.txt")).unwrap();
    let purchases = text.lines().filter(|l| !l.trim().is_empty()).map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let day = NaiveDate::parse_from_str(f[2], "%Y%m%d").unwrap();
        (
            f[1].parse::<u32>().unwrap(),
            day,
            f[4].parse::<f64>().unwrap(),
        )
    });
    let end = NaiveDate::from_ymd_opt(1997, 9, 30).unwrap();
    let ours = summarize(purchases, end, 7.0);
    let theirs = published(&dir);
    assert_eq!(ours.len(), theirs.len());
    for ((id, s), (pid, p)) in ours.iter().zip(&theirs) {
        assert_eq!(id, pid);
        assert_eq!(s.x, p.x, "customer {id}");
        assert_eq!(round2(s.t_x), p.t_x, "customer {id} t_x {}", s.t_x);
        assert_eq!(round2(s.t), p.t, "customer {id} T {}", s.t);
        assert_eq!(
            round2(s.monetary),
            p.monetary,
            "customer {id} zbar {}",
            s.monetary
        );
    }
}

/// Pareto/NBD on CDNOW as published (Fader, Hardie & Lee 2005).
const PUBLISHED_PARETO: ParetoNbd = ParetoNbd {
    r: 0.553,
    alpha: 10.578,
    s: 0.606,
    beta: 11.669,
};

/// The tight BG/NBD maximum of the reference README, on `copies` copies of CDNOW.
fn assert_tight_bgnbd(fit: &bgnbd::Fit, copies: f64) {
    assert!(fit.converged, "{fit:?}");
    let p = fit.params;
    assert!(rel(p.r, 0.2425929) < 1e-5, "{fit:?}");
    assert!(rel(p.alpha, 4.4135314) < 1e-5, "{fit:?}");
    assert!(rel(p.a, 0.7928860) < 1e-5, "{fit:?}");
    assert!(rel(p.b, 2.4257527) < 1e-5, "{fit:?}");
    assert!(
        rel(fit.log_likelihood, copies * -9582.42556) < 1e-8,
        "{fit:?}"
    );
}

fn rel(a: f64, b: f64) -> f64 {
    ((a - b) / b).abs()
}

#[test]
fn bgnbd_fit_reproduces_the_published_maximum() {
    let Some(dir) = data_dir() else { return };
    let customers: Vec<Summary> = published(&dir).into_iter().map(|(_, s)| s).collect();
    let fit = bgnbd::fit(&customers);
    assert_tight_bgnbd(&fit, 1.0);
    assert!(
        fit.standard_errors
            .iter()
            .all(|s| s.is_finite() && *s > 0.0),
        "{fit:?}"
    );
}

#[test]
fn pareto_nbd_fit_reproduces_the_published_maximum() {
    let Some(dir) = data_dir() else { return };
    let customers: Vec<Summary> = published(&dir).into_iter().map(|(_, s)| s).collect();
    let fit = pareto_nbd::fit(&customers);
    assert!(fit.converged, "{fit:?}");
    let p = fit.params;
    // Published to three decimals: r = 0.553, α = 10.578, s = 0.606, β = 11.669, LL −9595.0.
    assert!((p.r - 0.553).abs() < 6e-4, "{fit:?}");
    assert!((p.alpha - 10.578).abs() < 6e-3, "{fit:?}");
    assert!((p.s - 0.606).abs() < 6e-4, "{fit:?}");
    assert!((p.beta - 11.669).abs() < 6e-3, "{fit:?}");
    assert!((fit.log_likelihood - -9595.0).abs() < 0.05, "{fit:?}");
    assert!(
        fit.standard_errors
            .iter()
            .all(|s| s.is_finite() && *s > 0.0),
        "{fit:?}"
    );
    // The published parameters are (to their rounding) a maximum: the fit is no worse.
    let published = PUBLISHED_PARETO;
    let at_published = published.log_likelihood(&customers);
    assert!(fit.log_likelihood >= at_published, "{at_published}");
    assert!(
        (at_published - fit.log_likelihood).abs() < 0.01,
        "{at_published}"
    );
}

#[test]
fn pareto_nbd_expectations_are_consistent() {
    let m = PUBLISHED_PARETO;
    // A customer who has just made their first purchase is a new customer.
    let newcomer = Summary {
        x: 0.0,
        t_x: 0.0,
        t: 1e-9,
        monetary: 0.0,
    };
    for t in [1.0, 39.0, 78.0] {
        let a = m.expected_purchases(&newcomer, t);
        let b = m.expected_purchases_new(t);
        assert!(rel(a, b) < 1e-6, "{t}: {a} vs {b}");
    }
    // Purchases recently make a customer more likely alive than the same count long ago,
    // and the expectation grows with the horizon.
    let recent = Summary {
        x: 3.0,
        t_x: 37.0,
        t: 38.0,
        monetary: 0.0,
    };
    let long_ago = Summary { t_x: 5.0, ..recent };
    assert!(m.p_alive(&recent) > 0.9 && m.p_alive(&long_ago) < m.p_alive(&recent));
    assert!(m.expected_purchases(&recent, 52.0) > m.expected_purchases(&recent, 26.0));
    // P(alive) of someone who bought on their last day is 1 (nothing unseen to die in).
    let at_end = Summary {
        t_x: 38.0,
        ..recent
    };
    assert_eq!(m.p_alive(&at_end), 1.0);
}

#[test]
fn large_fits_start_on_a_sample_and_reach_the_same_maximum() {
    let Some(dir) = data_dir() else { return };
    // The CDNOW customers 250 times over: big enough for both fits to start on a sample;
    // the maximum is CDNOW's, with 250 times its log-likelihood.
    let one: Vec<Summary> = published(&dir).into_iter().map(|(_, s)| s).collect();
    let many: Vec<Summary> = (0..250).flat_map(|_| one.iter().copied()).collect();
    let fit = bgnbd::fit(&many);
    assert_tight_bgnbd(&fit, 250.0);
    // Standard errors shrink with the square root of the data.
    let small = bgnbd::fit(&one);
    for (big, small) in fit.standard_errors.iter().zip(small.standard_errors) {
        assert!(rel(big * 250f64.sqrt(), small) < 1e-2, "{big} vs {small}");
    }
    let spend = gamma_gamma::fit(&many);
    assert_eq!(spend.customers, 250 * 946);
    assert!(rel(spend.params.p, 6.2488025) < 1e-5, "{spend:?}");
    assert!(rel(spend.params.q, 3.7445885) < 1e-5, "{spend:?}");
    assert!(rel(spend.params.gamma, 15.4477481) < 1e-5, "{spend:?}");
    assert!(
        rel(spend.log_likelihood, 250.0 * -4055.92324) < 1e-8,
        "{spend:?}"
    );
}

#[test]
fn gamma_gamma_fit_reproduces_the_published_maximum() {
    let Some(dir) = data_dir() else { return };
    let customers: Vec<Summary> = published(&dir).into_iter().map(|(_, s)| s).collect();
    let fit = gamma_gamma::fit(&customers);
    assert_eq!(fit.customers, 946);
    let p = fit.params;
    assert!(rel(p.p, 6.2488025) < 1e-5, "{fit:?}");
    assert!(rel(p.q, 3.7445885) < 1e-5, "{fit:?}");
    assert!(rel(p.gamma, 15.4477481) < 1e-5, "{fit:?}");
    assert!(rel(fit.log_likelihood, -4055.92324) < 1e-8, "{fit:?}");
}

#[test]
fn per_customer_values_match_the_reference_table() {
    let model = BgNbd {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };
    let spend = GammaGamma {
        p: 6.25,
        q: 3.74,
        gamma: 15.44,
    };
    // ID, x, t_x, T, z̄, E[Y(39)], P(alive), E[M], CLV.
    let table = [
        (
            1,
            2.0,
            30.43,
            38.86,
            22.35,
            1.22602817477,
            0.726578570081,
            24.6637139108,
            36.2892111256,
        ),
        (
            2,
            1.0,
            1.71,
            38.86,
            11.77,
            0.203186987080,
            0.212100985377,
            18.9168520578,
            4.63729465975,
        ),
        (
            3,
            0.0,
            0.0,
            38.86,
            0.0,
            0.195098052011,
            1.0,
            35.2189781022,
            8.36900435892,
        ),
        (
            18,
            1.0,
            4.86,
            38.86,
            9.99,
            0.297721262291,
            0.310782565396,
            17.6793659622,
            6.35033259706,
        ),
        (
            1516,
            26.0,
            30.86,
            31.00,
            39.97,
            20.7497261409,
            0.968915649718,
            39.8912188332,
            972.101051488,
        ),
    ];
    for (id, x, t_x, t, z, ey, alive, em, value) in table {
        let c = Summary {
            x,
            t_x,
            t,
            monetary: z,
        };
        assert!(
            rel(model.expected_purchases(&c, 39.0), ey) < 1e-9,
            "{id} E[Y]"
        );
        assert!(rel(model.p_alive(&c), alive) < 1e-9, "{id} P(alive)");
        assert!(rel(spend.expected_value(&c), em) < 1e-9, "{id} E[M]");
        let got = clv(&model, &spend, &c, ClvTerms::MONTHLY_WEEKS_YEAR);
        assert!(rel(got, value) < 1e-9, "{id} CLV {got}");
    }
    assert!(rel(model.expected_purchases_new(39.0), 1.19672319332) < 1e-9);
    assert!(rel(model.expected_purchases_new(78.0), 1.86051905794) < 1e-9);
}
