//! Hostile input, generated: the segment language, the CSV row parsers (through a real
//! import), the vCard reader and the template checker take arbitrary text and answer with
//! a result or a clear error — never a panic, a hang or a lie about positions. Cases per
//! target: `TENURE_FUZZ_CASES` (256 when unset; CI sets its own budget).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tenure_domain::journey::Channel;

fn cases() -> u32 {
    std::env::var("TENURE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })
}

/// Text a hostile or careless user might type: the language's own tokens, quotes,
/// escapes, full-width punctuation, control characters and any other character.
fn noisy_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("\\".to_owned()),
        Just(" and ".to_owned()),
        Just(" or ".to_owned()),
        Just("not ".to_owned()),
        Just(" in ".to_owned()),
        Just(",".to_owned()),
        Just("（".to_owned()),
        Just("，".to_owned()),
        Just("“".to_owned()),
        Just("=".to_owned()),
        Just(">=".to_owned()),
        Just("!=".to_owned()),
        Just("orders".to_owned()),
        Just("tag".to_owned()),
        Just("clv".to_owned()),
        Just("in_segment(".to_owned()),
        Just("has(".to_owned()),
        Just("-1.5e9999".to_owned()),
        Just("99999999999999999999999".to_owned()),
        "[a-z_]{1,8}",
        "[0-9.\\-]{1,12}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

/// A filter that is right by construction: conditions on fields of each type, combined
/// with and, or, not and parentheses.
fn valid_filter() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (0i64..1000).prop_map(|n| format!("orders > {n}")),
        (0u32..100_000).prop_map(|n| format!("clv >= {}.{:02}", n / 100, n % 100)),
        "[a-z]{1,10}".prop_map(|t| format!("tag = \"{t}\"")),
        prop::collection::vec("[a-z]{1,6}", 1..4).prop_map(|v| format!(
            "tag in ({})",
            v.iter()
                .map(|t| format!("\"{t}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Just("stage = \"at_risk\"".to_owned()),
        Just("has(email)".to_owned()),
        Just("true".to_owned()),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} or {b})")),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    })
}

#[test]
fn the_segment_language_never_panics_and_points_inside_the_input() {
    let mut runner = runner();
    runner
        .run(&noisy_text(), |text| {
            match tenure_domain::segment::parse(&text) {
                Ok(_) => {}
                Err(e) => {
                    let len = text.chars().count();
                    prop_assert!(e.position <= len, "{e:?} for {text:?}");
                    prop_assert!(e.length >= 1);
                    prop_assert!(!e.message.is_empty());
                }
            }
            // The same answer every time.
            prop_assert_eq!(
                tenure_domain::segment::parse(&text).is_ok(),
                tenure_domain::segment::parse(&text).is_ok()
            );
            Ok(())
        })
        .unwrap();
    runner
        .run(&valid_filter(), |text| {
            let parsed = tenure_domain::segment::parse(&text);
            prop_assert!(parsed.is_ok(), "{text}: {:?}", parsed.err());
            Ok(())
        })
        .unwrap();
}

fn vcard_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("BEGIN:VCARD".to_owned()),
        Just("END:VCARD".to_owned()),
        Just("VERSION:3.0".to_owned()),
        "FN:[^\r\n]{0,30}".prop_map(|s| s),
        "N:[^\r\n]{0,10};[^\r\n]{0,10};;;".prop_map(|s| s),
        "EMAIL;TYPE=[a-z]{0,5}:[^\r\n]{0,30}".prop_map(|s| s),
        "TEL:[0-9+() -]{0,20}".prop_map(|s| s),
        "BDAY:[0-9-]{0,12}".prop_map(|s| s),
        Just(" folded continuation".to_owned()),
        Just("=E4=BD=A0=".to_owned()),
        Just("ENCODING=QUOTED-PRINTABLE".to_owned()),
        "[^\r\n]{0,40}".prop_map(|s| s),
    ];
    (
        prop::collection::vec(line, 0..30),
        prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
    )
        .prop_map(|(lines, end)| lines.join(end))
}

#[test]
fn the_vcard_reader_never_panics_and_names_real_lines() {
    runner()
        .run(&vcard_text(), |text| {
            let lines = text.split(['\n', '\r']).count() as u64 + 1;
            for card in tenure_domain::vcard::parse(&text) {
                if let Err((line, message)) = card {
                    prop_assert!(line >= 1 && line <= lines, "line {line} of {lines}");
                    prop_assert!(!message.is_empty());
                }
            }
            Ok(())
        })
        .unwrap();
}

fn template_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("{{ customer.name }}".to_owned()),
        Just("{{ customer.points }}".to_owned()),
        Just("{{ customer.nmae }}".to_owned()),
        Just("{{".to_owned()),
        Just("}}".to_owned()),
        Just("{%".to_owned()),
        Just("%}".to_owned()),
        Just("{% if customer.tier %}".to_owned()),
        Just("{% endif %}".to_owned()),
        Just("{% for o in offers %}{{ o.name }}{% endfor %}".to_owned()),
        Just(
            "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}"
                .to_owned()
        ),
        Just("{{ 1 / 0 }}".to_owned()),
        Just("{{ customer.name|upper|replace('A', 'B') }}".to_owned()),
        Just("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}".to_owned()),
        "[^{}%]{0,20}".prop_map(|s| s),
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

#[test]
fn the_template_checker_never_panics_or_hangs() {
    let loops = "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}";
    let errors = tenure_app::messages::check_template(Channel::Email, "Hello", loops);
    assert!(
        errors.iter().any(|e| e.field == "body"),
        "a loop of loops is refused when saved: {errors:?}"
    );
    assert!(errors[0].message.contains("too much work"), "{errors:?}");
    runner()
        .run(&(template_text(), template_text()), |(subject, body)| {
            let started = std::time::Instant::now();
            let errors = tenure_app::messages::check_template(Channel::Email, &subject, &body);
            for e in &errors {
                prop_assert!(e.field == "subject" || e.field == "body", "{e:?}");
                prop_assert!(!e.message.is_empty());
            }
            // A loop of loops is refused for the work it would take, not run.
            prop_assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "checking took {:?}",
                started.elapsed()
            );
            Ok(())
        })
        .unwrap();
}

fn csv_cell() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("\"".to_owned()),
        Just("\"\"".to_owned()),
        Just("a,b".to_owned()),
        Just("line\nbreak".to_owned()),
        Just("=cmd|' /C calc'!A0".to_owned()),
        Just("'+1 555".to_owned()),
        Just("2026-02-30".to_owned()),
        Just("31/12/2026".to_owned()),
        Just("王小明".to_owned()),
        Just("x@y".to_owned()),
        Just("ok@example.com".to_owned()),
        Just("\u{feff}".to_owned()),
        Just("\0".to_owned()),
        "[^\0]{0,16}".prop_map(|s| s),
    ]
}

#[test]
fn a_customers_file_of_any_shape_is_imported_or_rejected_row_by_row() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = tenure_testkit::TestDb::sqlite();
    let app = rt.block_on(async { tenure_app::App::new(db.store().await) });
    let strategy = prop::collection::vec(
        (csv_cell(), csv_cell(), csv_cell(), csv_cell(), csv_cell()),
        0..12,
    );
    let n = std::sync::atomic::AtomicU32::new(0);
    // A real import per case: fewer of them.
    let mut runner = TestRunner::new(Config {
        cases: (cases() / 4).max(16),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |rows| {
            let n = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(["name", "email", "phone", "birthday", "tags"])
                .unwrap();
            for (a, b, c, d, e) in &rows {
                w.write_record([a, b, c, d, e]).unwrap();
            }
            let mut bytes = w.into_inner().unwrap();
            // Now and then a cut-off last line.
            if n.is_multiple_of(5) && bytes.len() > 3 {
                bytes.truncate(bytes.len() - 2);
            }
            let summary = rt.block_on(app.import(
                &tenure_testkit::operator(),
                tenure_app::import::Kind::Customers,
                std::io::Cursor::new(bytes),
                &tenure_app::import::Format::default(),
                100,
                |_| {},
            ));
            match summary {
                Ok(s) => {
                    prop_assert_eq!(s.rows, s.imported + s.skipped + s.rejected, "{:?}", s);
                    prop_assert!(
                        s.rejections.iter().all(|r| r.line >= 2),
                        "{:?}",
                        s.rejections
                    );
                }
                // The whole file refused, with a reason (an unreadable header, say).
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
            Ok(())
        })
        .unwrap();
}
