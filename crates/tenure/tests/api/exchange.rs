//! Data out and back in: a generated business imported file by file (products and order
//! lines included), exported with the same columns, and imported into a second database
//! to the same bytes; vCard contacts in and out; cells a spreadsheet would run as formulas
//! exported as text and read back as typed — on both databases.

use std::path::Path;
use std::process::Command;

use tenure_testkit::TestDb;

use crate::{ok, tenure};

const KINDS: [(&str, &str); 5] = [
    ("customers", "customers.csv"),
    ("products", "products.csv"),
    ("orders", "orders.csv"),
    ("order-lines", "order_lines.csv"),
    ("interactions", "interactions.csv"),
];

pub(crate) fn import_all(db: &TestDb, dir: &Path) {
    for (kind, file) in KINDS {
        ok(&tenure(
            db,
            &["import", kind, dir.join(file).to_str().unwrap()],
        ));
    }
}

fn export_all(db: &TestDb, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (kind, file) in KINDS.iter().chain(&[("purchases", "purchases.csv")]) {
        let out = ok(&tenure(
            db,
            &["export", kind, "--out", dir.join(file).to_str().unwrap()],
        ));
        assert!(out.starts_with("exported "), "{out}");
    }
}

/// The file without the named columns (the generator writes a few the import ignores),
/// each cell as the import reads it (a formula guard taken off).
fn without_columns(path: &Path, drop: &[&str]) -> String {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers = r.headers().unwrap().clone();
    let keep: Vec<usize> = (0..headers.len())
        .filter(|&i| !drop.contains(&&headers[i]))
        .collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(keep.iter().map(|&i| &headers[i])).unwrap();
    for rec in r.records() {
        let rec = rec.unwrap();
        w.write_record(
            keep.iter()
                .map(|&i| tenure_app::export::spreadsheet_text(&rec[i])),
        )
        .unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

#[tokio::test]
async fn a_generated_business_exports_with_its_import_columns_and_round_trips() {
    for db in TestDb::all().await {
        let dir = tempfile::tempdir().unwrap();
        let generated = dir.path().join("generated");
        ok(&Command::new(env!("CARGO_BIN_EXE_tenure"))
            .args(["generate", "--customers", "250", "--seed", "11", "--out"])
            .arg(&generated)
            .output()
            .unwrap());
        import_all(&db, &generated);
        // Importing the lines again adds nothing.
        let again = ok(&tenure(
            &db,
            &[
                "import",
                "order-lines",
                generated.join("order_lines.csv").to_str().unwrap(),
            ],
        ));
        assert!(again.contains(" 0 imported,"), "{again}");

        let first = dir.path().join("first");
        export_all(&db, &first);
        for file in ["orders.csv", "products.csv"] {
            assert_eq!(
                std::fs::read_to_string(first.join(file)).unwrap(),
                std::fs::read_to_string(generated.join(file)).unwrap(),
                "{file} comes out as it went in"
            );
        }
        assert_eq!(
            without_columns(&first.join("customers.csv"), &[]),
            without_columns(&generated.join("customers.csv"), &["created_at"])
        );
        assert_eq!(
            without_columns(&first.join("order_lines.csv"), &["currency"]),
            without_columns(&generated.join("order_lines.csv"), &[])
        );

        // Into an empty database and out again: the same bytes.
        let copy = TestDb::sqlite();
        import_all(&copy, &first);
        let second = dir.path().join("second");
        export_all(&copy, &second);
        for (_, file) in KINDS.iter().chain(&[("purchases", "purchases.csv")]) {
            assert_eq!(
                std::fs::read(first.join(file)).unwrap(),
                std::fs::read(second.join(file)).unwrap(),
                "{file}"
            );
        }
        let lines = std::fs::read_to_string(first.join("order_lines.csv")).unwrap();
        assert!(lines.lines().count() > 1_000, "lines were exported");
    }
}

#[tokio::test]
async fn order_lines_name_their_order_and_bad_rows_are_reported_by_line() {
    for db in TestDb::all().await {
        let dir = tempfile::tempdir().unwrap();
        let orders = dir.path().join("orders.csv");
        std::fs::write(
            &orders,
            "external_id,customer_external_id,occurred_at,total\nO-1,C-1,2024-05-01,30.00\n",
        )
        .unwrap();
        ok(&tenure(
            &db,
            &["import", "orders", orders.to_str().unwrap()],
        ));
        let lines = dir.path().join("lines.csv");
        std::fs::write(
            &lines,
            "order_external_id,line_no,product_external_id,description,quantity,unit_price\n\
             O-1,1,SKU-1,Beans,2,10.00\n\
             O-1,2,,Shipping,1,10.00\n\
             O-2,1,SKU-1,Beans,1,10.00\n\
             O-1,3,SKU-1,Beans,0,10.00\n\
             O-1,x,SKU-1,Beans,1,10.00\n",
        )
        .unwrap();
        let out = tenure(&db, &["import", "order-lines", lines.to_str().unwrap()]);
        assert!(!out.status.success());
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("5 rows, 2 imported, 0 already present, 3 rejected, 1 product created"),
            "{stdout}"
        );
        let errors = std::fs::read_to_string(dir.path().join("lines.csv.errors.csv")).unwrap();
        let located: Vec<String> = errors
            .lines()
            .skip(1)
            .map(|l| l.split(',').take(2).collect::<Vec<_>>().join(","))
            .collect();
        assert_eq!(
            located,
            ["4,order_external_id", "5,quantity", "6,line_no"],
            "{errors}"
        );
        let store = db.store().await;
        let c = store
            .find_customer_by_external_id("C-1")
            .await
            .unwrap()
            .unwrap();
        let page = store.list_orders(Some(c.id), None, 10).await.unwrap();
        let order = store.get_order(page.items[0].id).await.unwrap();
        assert_eq!(order.data.lines.len(), 2);
        assert_eq!(order.data.lines[0].total_minor, 2000);
        assert_eq!(order.data.lines[1].description, "Shipping");
    }
}

#[tokio::test]
async fn vcard_contacts_import_once_and_export_back() {
    for db in TestDb::all().await {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("contacts.vcf");
        std::fs::write(
            &file,
            "BEGIN:VCARD\r\nVERSION:2.1\r\nN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=E7=8E=8B;=E5=B0=8F=E6=98=8E;;;\r\n\
             TEL;CELL:138 0013 8000\r\nTEL;HOME:010-1234567\r\nEND:VCARD\r\n\
             BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ann-1\r\nFN:Ann Lee\r\nEMAIL:ann@example.com\r\n\
             BDAY:1990-05-01\r\nCATEGORIES:vip\r\nEND:VCARD\r\n\
             BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Broken\r\nEMAIL:not-an-email\r\nEND:VCARD\r\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let out = tenure(&db, &["import", "vcard", path]);
        assert!(!out.status.success());
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("3 rows, 2 imported, 0 already present, 1 rejected"),
            "{stdout}"
        );
        let errors = std::fs::read_to_string(dir.path().join("contacts.vcf.errors.csv")).unwrap();
        assert!(errors.contains("\n15,EMAIL,"), "{errors}");
        let again = tenure(&db, &["import", "vcard", path]);
        assert!(
            String::from_utf8_lossy(&again.stdout).contains("0 imported, 2 already present"),
            "a card without a UID is recognised too"
        );

        let store = db.store().await;
        let ann = store
            .find_customer_by_external_id("ann-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ann.data.tags, vec!["vip"]);
        assert_eq!(ann.data.birthday.unwrap().to_string(), "1990-05-01");
        let wang = store
            .search_customers(
                &tenure_store::customers::CustomerFilter {
                    q: Some("小明".into()),
                    ..Default::default()
                },
                None,
                10,
            )
            .await
            .unwrap()
            .items;
        assert_eq!(wang.len(), 1);
        assert_eq!(wang[0].data.name, "王小明");
        assert_eq!(wang[0].data.contact_points.len(), 1, "the second number");

        let out = dir.path().join("out.vcf");
        ok(&tenure(
            &db,
            &["export", "vcard", "--out", out.to_str().unwrap()],
        ));
        let text = std::fs::read_to_string(&out).unwrap();
        let cards = tenure_domain::vcard::parse(&text);
        assert_eq!(cards.len(), 2);
        let copy = TestDb::sqlite();
        let imported = ok(&tenure(&copy, &["import", "vcard", out.to_str().unwrap()]));
        assert!(imported.contains("2 imported"), "{imported}");
        let copy_store = copy.store().await;
        let ann2 = copy_store
            .find_customer_by_external_id("ann-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ann2.data, ann.data);
    }
}

#[tokio::test]
async fn cells_a_spreadsheet_would_run_as_formulas_are_exported_as_text_and_read_back() {
    for db in TestDb::all().await {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("customers.csv");
        std::fs::write(
            &file,
            "external_id,name,phone,tags\n\
             F-1,\"=HYPERLINK(\"\"http://evil.example\"\",\"\"win\"\")\",+86 138 0013 8000,-sale;@home\n\
             F-2,Plain Name,,\n",
        )
        .unwrap();
        ok(&tenure(
            &db,
            &["import", "customers", file.to_str().unwrap()],
        ));
        let out = dir.path().join("out.csv");
        ok(&tenure(
            &db,
            &["export", "customers", "--out", out.to_str().unwrap()],
        ));
        let mut r = csv::Reader::from_path(&out).unwrap();
        let headers = r.headers().unwrap().clone();
        let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        let f1 = rows
            .iter()
            .find(|r| &r[col("external_id")] == "F-1")
            .unwrap();
        assert_eq!(
            &f1[col("name")],
            "'=HYPERLINK(\"http://evil.example\",\"win\")"
        );
        assert_eq!(&f1[col("phone")], "'+86 138 0013 8000");
        assert_eq!(&f1[col("tags")], "'-sale;@home");
        let f2 = rows
            .iter()
            .find(|r| &r[col("external_id")] == "F-2")
            .unwrap();
        assert_eq!(&f2[col("name")], "Plain Name");
        // No cell of the export starts a formula.
        for row in &rows {
            for cell in row {
                assert!(!cell.starts_with(['=', '+', '-', '@']), "{cell}");
            }
        }
        // Imported again, the values are what was typed.
        let copy = TestDb::sqlite();
        ok(&tenure(
            &copy,
            &["import", "customers", out.to_str().unwrap()],
        ));
        let again = dir.path().join("again.csv");
        ok(&tenure(
            &copy,
            &["export", "customers", "--out", again.to_str().unwrap()],
        ));
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
        let store = tenure_store::Store::connect(&copy.options()).await.unwrap();
        let c = store
            .find_customer_by_external_id("F-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.data.name, "=HYPERLINK(\"http://evil.example\",\"win\")");
        assert_eq!(c.data.tags, vec!["-sale".to_owned(), "@home".to_owned()]);
    }
}
