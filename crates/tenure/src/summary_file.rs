//! The files of `tenure analytics clv --from-summary`: a customer summary in the `lifetimes`
//! format read in, the per-customer predictions written out. A million-customer file is
//! read and written in a few tens of milliseconds: the rows are parsed, and the predictions
//! formatted, in chunks on every core, and joined in file order.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use tenure_analytics::Summary;
use tenure_app::analytics::ClvReport;

/// A chunk of the file holds about this many bytes.
const CHUNK_BYTES: usize = 1 << 20;

/// Where a summary's fields are, by column.
#[derive(Clone, Copy)]
struct Columns {
    id: usize,
    x: usize,
    t_x: usize,
    t: usize,
    monetary: Option<usize>,
}

impl Columns {
    fn of(headers: &csv::ByteRecord, file: &Path) -> Result<Columns> {
        let headers: Vec<String> = headers
            .iter()
            .map(|h| String::from_utf8_lossy(h).trim().to_ascii_lowercase())
            .collect();
        let find = |names: &[&str]| headers.iter().position(|h| names.contains(&h.as_str()));
        let (Some(x), Some(t_x), Some(t)) = (
            find(&["frequency", "x"]),
            find(&["recency", "t_x"]),
            find(&["t"]),
        ) else {
            bail!(
                "{} needs the columns customer_id,frequency,recency,T[,monetary_value] (its header is: {})",
                file.display(),
                headers.join(",")
            );
        };
        Ok(Columns {
            id: find(&["customer_id", "id"]).unwrap_or(0),
            x,
            t_x,
            t,
            monetary: find(&["monetary_value", "zbar"]),
        })
    }
}

/// The customers of a summary file and their keys, in file order.
#[derive(Default)]
struct Rows {
    keys: Vec<String>,
    summaries: Vec<Summary>,
}

/// Reads a summary CSV in the `lifetimes` format (also accepting `x,t_x,T,zbar`). A bad row
/// stops the read with its line number (the first in the file, however the work was split).
pub fn read(file: &Path) -> Result<(Vec<String>, Vec<Summary>)> {
    let bytes = std::fs::read(file).with_context(|| format!("opening {}", file.display()))?;
    let mut reader = csv::ReaderBuilder::new().from_reader(bytes.as_slice());
    let columns = Columns::of(reader.byte_headers()?, file)?;
    let body = reader.position().byte() as usize;
    // The number of the header's last line.
    let header_lines = reader.position().line() - 1;
    let rows = if memchr::memchr(b'"', &bytes[body..]).is_some() {
        // A quoted field may hold a line break, so the file is not split at lines.
        parse(&bytes[body..], header_lines, columns)?
    } else {
        let chunks = split_at_lines(&bytes[body..]);
        let lines: Vec<u64> = chunks
            .par_iter()
            .map(|c| memchr::memchr_iter(b'\n', c).count() as u64)
            .collect();
        let firsts = lines.iter().scan(header_lines, |first, n| {
            let this = *first;
            *first += n;
            Some(this)
        });
        let parsed: Vec<Result<Rows>> = chunks
            .into_par_iter()
            .zip(firsts.collect::<Vec<_>>())
            .map(|(chunk, first)| parse(chunk, first, columns))
            .collect();
        let mut rows = Rows::default();
        for part in parsed {
            let part = part?;
            rows.keys.extend(part.keys);
            rows.summaries.extend(part.summaries);
        }
        rows
    };
    Ok((rows.keys, rows.summaries))
}

/// `bytes` cut into pieces of about [`CHUNK_BYTES`], each ending with a whole line.
fn split_at_lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut chunks = Vec::with_capacity(bytes.len() / CHUNK_BYTES + 1);
    let mut rest = bytes;
    while rest.len() > CHUNK_BYTES {
        let end =
            memchr::memchr(b'\n', &rest[CHUNK_BYTES..]).map_or(rest.len(), |i| CHUNK_BYTES + i + 1);
        let (chunk, tail) = rest.split_at(end);
        chunks.push(chunk);
        rest = tail;
    }
    if !rest.is_empty() {
        chunks.push(rest);
    }
    chunks
}

/// Parses rows (no header); `lines_before` is the number of the line before the first.
fn parse(bytes: &[u8], lines_before: u64, c: Columns) -> Result<Rows> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    let mut rows = Rows::default();
    while reader.read_byte_record(&mut record)? {
        let line = lines_before + record.position().map_or(0, csv::Position::line);
        let num = |i: usize| -> Result<f64> {
            let v = record.get(i).unwrap_or_default();
            let v = String::from_utf8_lossy(v);
            let v = v.trim();
            v.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .with_context(|| format!("line {line}: {v:?} is not a number of at least 0"))
        };
        let s = Summary {
            x: num(c.x)?,
            t_x: num(c.t_x)?,
            t: num(c.t)?,
            monetary: c.monetary.map(num).transpose()?.unwrap_or(0.0),
        };
        if s.t_x > s.t {
            bail!("line {line}: recency is after T");
        }
        let key = record.get(c.id).unwrap_or_default();
        rows.keys.push(
            String::from_utf8(key.to_vec())
                .with_context(|| format!("line {line}: the customer id is not UTF-8"))?,
        );
        rows.summaries.push(s);
    }
    Ok(rows)
}

/// Writes every customer's predictions as CSV: customer id, P(alive), churn risk, expected
/// purchases over the horizon, expected purchase value and CLV, numbers in their shortest
/// exact form.
pub fn write(out: &Path, report: &ClvReport) -> Result<()> {
    let chunks: Vec<Result<Vec<u8>>> = report
        .scores
        .par_chunks(16_384)
        .map(|chunk| {
            let mut w = csv::Writer::from_writer(Vec::with_capacity(chunk.len() * 96));
            let mut numbers = [ryu::Buffer::new(); 5];
            for (key, s) in chunk {
                let [a, b, c, d, e] = &mut numbers;
                w.write_record([
                    key.as_bytes(),
                    a.format(s.p_alive).as_bytes(),
                    b.format(1.0 - s.p_alive).as_bytes(),
                    c.format(s.expected_purchases).as_bytes(),
                    d.format(s.expected_value).as_bytes(),
                    e.format(s.clv).as_bytes(),
                ])?;
            }
            w.into_inner().map_err(|e| anyhow::anyhow!("{}", e.error()))
        })
        .collect();
    let mut file = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(out).with_context(|| format!("writing {}", out.display()))?,
    );
    file.write_all(b"customer_id,p_alive,churn_risk,expected_purchases,expected_value,clv\n")?;
    for chunk in chunks {
        file.write_all(&chunk?)?;
    }
    file.flush()
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.csv");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    /// A file of `n` rows, the row of line `bad` (if any) replaced by `row`.
    fn rows(n: usize, bad: Option<(usize, &str)>) -> String {
        let mut text = String::from("customer_id,frequency,recency,T,monetary_value\n");
        for i in 0..n {
            let line = i + 2;
            match bad {
                Some((b, row)) if b == line => text.push_str(row),
                _ => text.push_str(&format!("c{i},{},{}.5,40.25,{}.75", i % 7, i % 30, i % 50)),
            }
            text.push('\n');
        }
        text
    }

    #[test]
    fn a_large_file_read_in_pieces_keeps_its_order_and_every_row() {
        // Big enough for several chunks.
        let n = 120_000;
        let (_dir, path) = summary_file(&rows(n, None));
        let (keys, summaries) = read(&path).unwrap();
        assert_eq!(keys.len(), n);
        for i in [0, 1, 54_321, n - 1] {
            assert_eq!(keys[i], format!("c{i}"));
            let s = summaries[i];
            assert_eq!(
                (s.x, s.t_x, s.t, s.monetary),
                (
                    (i % 7) as f64,
                    (i % 30) as f64 + 0.5,
                    40.25,
                    (i % 50) as f64 + 0.75
                )
            );
        }
    }

    #[test]
    fn a_bad_row_deep_in_the_file_is_named_by_its_line() {
        let (_dir, path) = summary_file(&rows(120_000, Some((99_999, "c,1,x,3,0"))));
        let e = read(&path).unwrap_err().to_string();
        assert_eq!(e, "line 99999: \"x\" is not a number of at least 0");
        let (_dir, path) = summary_file(&rows(120_000, Some((77_777, "c,1,45,40,0"))));
        assert_eq!(
            read(&path).unwrap_err().to_string(),
            "line 77777: recency is after T"
        );
        let (_dir, path) = summary_file(&rows(120_000, Some((88_888, "c,-1,4,40,0"))));
        assert!(
            read(&path)
                .unwrap_err()
                .to_string()
                .starts_with("line 88888: ")
        );
    }

    #[test]
    fn quoted_ids_with_commas_and_line_breaks_are_read_whole_and_line_numbers_still_hold() {
        let text = "id,x,t_x,T\n\"Smith, J\",1,2,3\n\"two\nlines\",0,0,5\nplain,1,9,5\n";
        let (_dir, path) = summary_file(text);
        let e = read(&path).unwrap_err().to_string();
        assert_eq!(e, "line 5: recency is after T");
        let (_dir, path) = summary_file(&text.replace(",1,9,5", ",1,4,5"));
        let (keys, _) = read(&path).unwrap();
        assert_eq!(keys, ["Smith, J", "two\nlines", "plain"]);
    }

    #[test]
    fn a_file_without_the_columns_says_which_it_needs() {
        let (_dir, path) = summary_file("id,visits\n1,2\n");
        let e = read(&path).unwrap_err().to_string();
        assert!(
            e.contains("needs the columns customer_id,frequency,recency,T"),
            "{e}"
        );
        assert!(e.contains("its header is: id,visits"), "{e}");
    }
}
