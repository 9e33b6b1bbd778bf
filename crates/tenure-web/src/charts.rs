//! Charts drawn on the server as SVG: no script, readable without colour (every value is
//! also in a table or a label), scaled by the browser to any width.

use std::fmt::Write;

use minijinja::HtmlEscape;

const W: f64 = 860.0;
const H: f64 = 280.0;
const LEFT: f64 = 84.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 36.0;

/// A "nice" upper bound for an axis and its step: 1, 2 or 5 times a power of ten.
pub fn nice_axis(max: f64) -> (f64, f64) {
    if max.is_nan() || max <= 0.0 || !max.is_finite() {
        return (1.0, 0.25);
    }
    let raw = max / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    ((max / step).ceil() * step, step)
}

fn open(out: &mut String, label: &str) {
    let _ = write!(
        out,
        "<div class=\"chart-box\" tabindex=\"0\" role=\"group\" aria-label=\"{0}\">\
         <svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{0}\" \
         xmlns=\"http://www.w3.org/2000/svg\">",
        HtmlEscape(label)
    );
}

fn y_axis(out: &mut String, top: f64, step: f64, fmt: &dyn Fn(f64) -> String) {
    let plot_h = H - TOP - BOTTOM;
    let mut v = 0.0;
    while v <= top + step / 2.0 {
        let y = TOP + plot_h * (1.0 - v / top);
        let _ = write!(
            out,
            "<line class=\"gridline\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"tick\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            HtmlEscape(&fmt(v))
        );
        v += step;
    }
}

/// Which x labels to print so that they do not overlap: about a dozen.
fn label_every(n: usize) -> usize {
    n.div_ceil(12).max(1)
}

/// A bar chart of `values` under `labels`, each bar titled with its formatted value.
pub fn bars(label: &str, labels: &[String], values: &[f64], fmt: &dyn Fn(f64) -> String) -> String {
    let mut out = String::with_capacity(4096);
    open(&mut out, label);
    let max = values.iter().copied().fold(0.0, f64::max);
    let (top, step) = nice_axis(max);
    y_axis(&mut out, top, step, fmt);
    let n = values.len().max(1) as f64;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let slot = plot_w / n;
    let every = label_every(values.len());
    for (i, v) in values.iter().enumerate() {
        let h = if top > 0.0 {
            plot_h * v.max(0.0) / top
        } else {
            0.0
        };
        let x = LEFT + slot * i as f64 + slot * 0.15;
        let _ = write!(
            out,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\">\
             <title>{}: {}</title></rect>",
            TOP + plot_h - h,
            slot * 0.7,
            HtmlEscape(labels.get(i).map_or("", String::as_str)),
            HtmlEscape(&fmt(*v))
        );
        if i % every == 0 {
            let _ = write!(
                out,
                "<text class=\"tick\" x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                LEFT + slot * (i as f64 + 0.5),
                H - BOTTOM + 16.0,
                HtmlEscape(labels.get(i).map_or("", String::as_str))
            );
        }
    }
    out.push_str("</svg></div>");
    out
}

/// One line of a line chart.
pub struct Series<'a> {
    pub name: &'a str,
    pub values: &'a [f64],
    /// The CSS class that colours and dashes it (`line-a`, `line-b`).
    pub class: &'a str,
}

/// Lines over the points `labels`, with a legend.
pub fn lines(
    label: &str,
    labels: &[String],
    series: &[Series<'_>],
    fmt: &dyn Fn(f64) -> String,
) -> String {
    let mut out = String::with_capacity(8192);
    open(&mut out, label);
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0, f64::max);
    let (top, step) = nice_axis(max);
    y_axis(&mut out, top, step, fmt);
    let n = labels.len();
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let x_at = |i: usize| {
        if n <= 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * i as f64 / (n - 1) as f64
        }
    };
    let every = label_every(n);
    for (i, l) in labels.iter().enumerate() {
        if i % every == 0 {
            let _ = write!(
                out,
                "<text class=\"tick\" x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x_at(i),
                H - BOTTOM + 16.0,
                HtmlEscape(l)
            );
        }
    }
    for (k, s) in series.iter().enumerate() {
        let mut points = String::new();
        for (i, v) in s.values.iter().enumerate() {
            let y = TOP + plot_h * (1.0 - v.max(0.0) / top);
            let _ = write!(points, "{:.1},{y:.1} ", x_at(i));
        }
        let _ = write!(
            out,
            "<polyline class=\"{}\" fill=\"none\" points=\"{}\"><title>{}</title></polyline>",
            HtmlEscape(s.class),
            points.trim_end(),
            HtmlEscape(s.name)
        );
        let lx = LEFT + 8.0 + 180.0 * k as f64;
        let _ = write!(
            out,
            "<line class=\"{}\" x1=\"{lx}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>\
             <text class=\"legend\" x=\"{}\" y=\"{}\">{}</text>",
            HtmlEscape(s.class),
            lx + 20.0,
            TOP + 8.0,
            TOP + 8.0,
            lx + 26.0,
            TOP + 12.0,
            HtmlEscape(s.name)
        );
    }
    out.push_str("</svg></div>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers_above_the_data() {
        assert_eq!(nice_axis(9.0), (10.0, 2.5));
        assert_eq!(nice_axis(1234.0), (1500.0, 500.0));
        assert_eq!(nice_axis(0.0), (1.0, 0.25));
        let (top, step) = nice_axis(87_654.0);
        assert!((87_654.0..=100_000.0).contains(&top) && step > 0.0);
    }

    #[test]
    fn bars_draw_one_rect_per_value_with_escaped_labels() {
        let labels = vec!["<a>".to_owned(), "b".to_owned(), "c".to_owned()];
        let svg = bars("x & y", &labels, &[1.0, 2.0, 0.0], &|v| format!("{v}"));
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("aria-label=\"x &amp; y\""));
        assert!(svg.contains("&lt;a&gt;"));
        assert!(!svg.contains("<a>"));
        // The tallest bar reaches the top of its axis (2 of 2.5).
        assert!(svg.contains("<title>b: 2</title>"));
    }

    #[test]
    fn lines_draw_each_series_with_a_legend() {
        let labels: Vec<String> = (1..=5).map(|i| i.to_string()).collect();
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [1.0, 2.5, 3.5, 4.0, 4.5];
        let svg = lines(
            "tracking",
            &labels,
            &[
                Series {
                    name: "actual",
                    values: &a,
                    class: "line-a",
                },
                Series {
                    name: "expected",
                    values: &b,
                    class: "line-b",
                },
            ],
            &|v| format!("{v}"),
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains(">actual</text>") && svg.contains(">expected</text>"));
    }
}
