//! Small SVG charts, written by hand (no plotting dependency): line charts and a scatter plot.

use std::fmt::Write as _;

/// One line or point set.
#[derive(Debug, Clone)]
pub struct Line<'a> {
    /// Legend.
    pub label: &'a str,
    /// CSS colour.
    pub color: &'a str,
    /// Points (x, y).
    pub points: Vec<(f64, f64)>,
}

/// A chart.
#[derive(Debug, Clone)]
pub struct Chart<'a> {
    /// Title.
    pub title: &'a str,
    /// X axis label.
    pub x_label: &'a str,
    /// Y axis label.
    pub y_label: &'a str,
    /// Series.
    pub lines: Vec<Line<'a>>,
    /// Dots instead of lines.
    pub scatter: bool,
    /// Y starts at 0.
    pub y_from_zero: bool,
    /// Shaded intervals drawn under the lines.
    pub bands: Vec<Band<'a>>,
    /// X values are log10 of the quantity; tick labels show the quantity.
    pub log_x: bool,
}

/// A shaded interval: (x, low, high) points.
#[derive(Debug, Clone)]
pub struct Band<'a> {
    /// CSS colour (drawn translucent).
    pub color: &'a str,
    /// (x, low, high).
    pub points: Vec<(f64, f64, f64)>,
}

const W: f64 = 640.0;
const H: f64 = 360.0;
const L: f64 = 80.0;
const R: f64 = 20.0;
const T: f64 = 40.0;
const B: f64 = 50.0;

fn nice(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Chart<'_> {
    /// The SVG document.
    pub fn render(&self) -> String {
        let band_pts: Vec<(f64, f64)> = self
            .bands
            .iter()
            .flat_map(|b| b.points.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]))
            .collect();
        let pts = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter())
            .chain(band_pts.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in pts {
            if x.is_finite() && y.is_finite() {
                x0 = x0.min(x);
                x1 = x1.max(x);
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
        }
        if x0 > x1 {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        if self.y_from_zero {
            y0 = y0.min(0.0);
        }
        if x1 == x0 {
            x1 = x0 + 1.0;
        }
        if y1 == y0 {
            y1 = y0 + 1.0;
        }
        let pad = (y1 - y0) * 0.05;
        y1 += pad;
        if !self.y_from_zero {
            y0 -= pad;
        }
        let px = |x: f64| L + (x - x0) / (x1 - x0) * (W - L - R);
        let py = |y: f64| H - B - (y - y0) / (y1 - y0) * (H - T - B);
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11">"#
        );
        let _ = write!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
        let _ = write!(
            s,
            r#"<text x="{}" y="20" text-anchor="middle" font-size="14">{}</text>"#,
            W / 2.0,
            esc(self.title)
        );
        for i in 0..=4 {
            let f = f64::from(i) / 4.0;
            let y = y0 + f * (y1 - y0);
            let x = x0 + f * (x1 - x0);
            let _ = write!(
                s,
                r##"<line x1="{L}" x2="{}" y1="{:.1}" y2="{:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                W - R,
                py(y),
                py(y),
                L - 4.0,
                py(y) + 4.0,
                nice(y)
            );
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                px(x),
                H - B + 16.0,
                if self.log_x {
                    nice(10f64.powf(x))
                } else {
                    nice(x)
                }
            );
        }
        let _ = write!(
            s,
            r#"<line x1="{L}" x2="{L}" y1="{T}" y2="{}" stroke="black"/><line x1="{L}" x2="{}" y1="{}" y2="{}" stroke="black"/>"#,
            H - B,
            W - R,
            H - B,
            H - B
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            (L + W - R) / 2.0,
            H - 12.0,
            esc(self.x_label)
        );
        let _ = write!(
            s,
            r#"<text transform="translate(16 {}) rotate(-90)" text-anchor="middle">{}</text>"#,
            (T + H - B) / 2.0,
            esc(self.y_label)
        );
        for band in &self.bands {
            let upper = band.points.iter().map(|&(x, _, hi)| (x, hi));
            let lower = band.points.iter().rev().map(|&(x, lo, _)| (x, lo));
            let d: Vec<String> = upper
                .chain(lower)
                .map(|(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect();
            let _ = write!(
                s,
                r#"<polygon fill="{}" fill-opacity="0.18" stroke="none" points="{}"/>"#,
                band.color,
                d.join(" ")
            );
        }
        for (i, line) in self.lines.iter().enumerate() {
            if self.scatter {
                for &(x, y) in &line.points {
                    let _ = write!(
                        s,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}" fill-opacity="0.8"/>"#,
                        px(x),
                        py(y),
                        line.color
                    );
                }
            } else {
                let d: Vec<String> = line
                    .points
                    .iter()
                    .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                    .collect();
                let _ = write!(
                    s,
                    r#"<polyline fill="none" stroke="{}" stroke-width="1.6" points="{}"/>"#,
                    line.color,
                    d.join(" ")
                );
            }
            let ly = T + 6.0 + 14.0 * i as f64;
            let _ = write!(
                s,
                r#"<rect x="{}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{}" y="{:.1}">{}</text>"#,
                L + 10.0,
                ly,
                line.color,
                L + 24.0,
                ly + 9.0,
                esc(line.label)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}
