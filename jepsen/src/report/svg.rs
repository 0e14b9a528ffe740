//! Two plots as inline SVG, drawn by hand (no plotting stack): latency of
//! every operation over time, and throughput per second; fault windows are
//! shaded in both.

use std::fmt::Write;

use crate::history::EventType;

const W: f64 = 960.0;
const H: f64 = 320.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;

/// A shaded fault window, in seconds.
pub struct Shade {
    pub from_s: f64,
    pub to_s: f64,
    pub label: String,
}

/// One point of the latency plot.
pub struct Point {
    pub at_s: f64,
    pub latency_ms: f64,
    pub kind: EventType,
    /// Operation name; picks the marker.
    pub f: String,
}

fn colour(kind: EventType) -> &'static str {
    match kind {
        EventType::Ok => "#3a7bd5",
        EventType::Fail => "#e0457b",
        _ => "#f0a030",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

struct Frame {
    x_max: f64,
    y_min: f64,
    y_max: f64,
    log_y: bool,
}

impl Frame {
    fn x(&self, s: f64) -> f64 {
        LEFT + (s / self.x_max).clamp(0.0, 1.0) * (W - LEFT - RIGHT)
    }

    fn y(&self, v: f64) -> f64 {
        let frac = if self.log_y {
            (v.max(self.y_min).ln() - self.y_min.ln()) / (self.y_max.ln() - self.y_min.ln())
        } else {
            (v - self.y_min) / (self.y_max - self.y_min)
        };
        H - BOTTOM - frac.clamp(0.0, 1.0) * (H - TOP - BOTTOM)
    }

    fn open(&self, out: &mut String, title: &str, y_label: &str, shades: &[Shade]) {
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" font-family="sans-serif" font-size="11"><title>{}</title><rect x="0" y="0" width="{W}" height="{H}" fill="white"/>"#,
            esc(title)
        );
        for s in shades {
            let (x0, x1) = (self.x(s.from_s), self.x(s.to_s));
            let _ = write!(
                out,
                r##"<rect x="{x0:.1}" y="{TOP}" width="{:.1}" height="{:.1}" fill="#999" fill-opacity="0.18"><title>{}</title></rect><text x="{:.1}" y="{:.1}" fill="#666" font-size="9">{}</text>"##,
                (x1 - x0).max(1.0),
                H - TOP - BOTTOM,
                esc(&s.label),
                x0 + 2.0,
                TOP + 10.0,
                esc(s.label.split(':').next().unwrap_or(""))
            );
        }
        // Axes and ticks.
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{b}" x2="{r}" y2="{b}" stroke="#333"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{b}" stroke="#333"/>"##,
            b = H - BOTTOM,
            r = W - RIGHT
        );
        let step = nice_step(self.x_max / 10.0);
        let mut t = 0.0;
        while t <= self.x_max + 1e-9 {
            let x = self.x(t);
            let _ = write!(
                out,
                r##"<line x1="{x:.1}" y1="{b}" x2="{x:.1}" y2="{b2}" stroke="#333"/><text x="{x:.1}" y="{ty}" text-anchor="middle">{}</text>"##,
                fmt_num(t),
                b = H - BOTTOM,
                b2 = H - BOTTOM + 4.0,
                ty = H - BOTTOM + 16.0
            );
            t += step;
        }
        for v in self.y_ticks() {
            let y = self.y(v);
            let _ = write!(
                out,
                r##"<line x1="{l}" y1="{y:.1}" x2="{LEFT}" y2="{y:.1}" stroke="#333"/><line x1="{LEFT}" y1="{y:.1}" x2="{r}" y2="{y:.1}" stroke="#eee"/><text x="{tx}" y="{ty:.1}" text-anchor="end">{}</text>"##,
                fmt_num(v),
                l = LEFT - 4.0,
                r = W - RIGHT,
                tx = LEFT - 6.0,
                ty = y + 4.0
            );
        }
        let _ = write!(
            out,
            r#"<text x="{cx}" y="{by}" text-anchor="middle">time (s)</text><text x="14" y="{cy}" text-anchor="middle" transform="rotate(-90 14 {cy})">{}</text>"#,
            esc(y_label),
            cx = (LEFT + W - RIGHT) / 2.0,
            by = H - 6.0,
            cy = (TOP + H - BOTTOM) / 2.0
        );
    }

    fn y_ticks(&self) -> Vec<f64> {
        if self.log_y {
            let mut v = 1.0;
            while v * 10.0 <= self.y_min {
                v *= 10.0;
            }
            let mut out = Vec::new();
            while v <= self.y_max * 1.0001 {
                if v >= self.y_min {
                    out.push(v);
                }
                v *= 10.0;
            }
            out
        } else {
            let step = nice_step((self.y_max - self.y_min) / 6.0);
            let mut out = Vec::new();
            let mut v = self.y_min;
            while v <= self.y_max + 1e-9 {
                out.push(v);
                v += step;
            }
            out
        }
    }
}

fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn fmt_num(v: f64) -> String {
    if v >= 1.0 && (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.2}")
    }
}

fn legend(out: &mut String, items: &[(&str, &str)]) {
    let mut x = LEFT + 8.0;
    for (label, colour) in items {
        let _ = write!(
            out,
            r#"<rect x="{x}" y="{y}" width="10" height="10" fill="{colour}"/><text x="{tx}" y="{ty}">{}</text>"#,
            esc(label),
            y = TOP + 16.0,
            tx = x + 14.0,
            ty = TOP + 25.0
        );
        x += 24.0 + 7.0 * label.len() as f64;
    }
}

/// Latency (log scale) of every operation at its invocation time.
pub fn latency_plot(points: &[Point], shades: &[Shade], duration_s: f64) -> String {
    let y_max = points.iter().map(|p| p.latency_ms).fold(10.0f64, f64::max) * 1.2;
    let frame = Frame {
        x_max: duration_s.max(1.0),
        y_min: 0.1,
        y_max,
        log_y: true,
    };
    let mut out = String::new();
    frame.open(&mut out, "latency over time", "latency (ms)", shades);
    for p in points {
        let (x, y) = (frame.x(p.at_s), frame.y(p.latency_ms));
        let c = colour(p.kind);
        let _ = match p.f.as_str() {
            "write" | "add" => write!(
                out,
                r#"<rect x="{:.1}" y="{:.1}" width="3" height="3" fill="{c}" fill-opacity="0.6"/>"#,
                x - 1.5,
                y - 1.5
            ),
            "cas" => write!(
                out,
                r#"<path d="M{x:.1} {:.1}l2 2l-2 2l-2-2z" fill="{c}" fill-opacity="0.6"/>"#,
                y - 2.0
            ),
            _ => write!(
                out,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="1.5" fill="{c}" fill-opacity="0.6"/>"#
            ),
        };
    }
    legend(
        &mut out,
        &[
            ("ok", colour(EventType::Ok)),
            ("fail", colour(EventType::Fail)),
            ("info", colour(EventType::Info)),
            ("● read  ■ write/add  ◆ cas", "#fff"),
        ],
    );
    out.push_str("</svg>");
    out
}

/// Completions per second, by outcome.
pub fn throughput_plot(per_second: &[[u64; 3]], shades: &[Shade], duration_s: f64) -> String {
    let y_max = per_second
        .iter()
        .flat_map(|c| c.iter())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.15;
    let frame = Frame {
        x_max: duration_s.max(1.0),
        y_min: 0.0,
        y_max,
        log_y: false,
    };
    let mut out = String::new();
    frame.open(&mut out, "throughput", "operations / s", shades);
    let kinds = [EventType::Ok, EventType::Fail, EventType::Info];
    for (i, kind) in kinds.iter().enumerate() {
        let mut d = String::new();
        for (s, counts) in per_second.iter().enumerate() {
            let x = frame.x(s as f64 + 0.5);
            let y = frame.y(counts[i] as f64);
            let _ = write!(d, "{}{x:.1} {y:.1}", if s == 0 { "M" } else { " L" });
        }
        if !d.is_empty() {
            let _ = write!(
                out,
                r#"<path d="{d}" fill="none" stroke="{}" stroke-width="1.5"/>"#,
                colour(*kind)
            );
        }
    }
    legend(
        &mut out,
        &[
            ("ok", colour(EventType::Ok)),
            ("fail", colour(EventType::Fail)),
            ("info", colour(EventType::Info)),
        ],
    );
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_are_well_formed_svg_with_shaded_faults() {
        let points = vec![
            Point {
                at_s: 0.5,
                latency_ms: 3.0,
                kind: EventType::Ok,
                f: "read".into(),
            },
            Point {
                at_s: 1.5,
                latency_ms: 5000.0,
                kind: EventType::Info,
                f: "write".into(),
            },
        ];
        let shades = vec![Shade {
            from_s: 1.0,
            to_s: 2.0,
            label: "partition: x<y>".into(),
        }];
        let svg = latency_plot(&points, &shades, 3.0);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("x&lt;y&gt;"), "labels are escaped");
        assert_eq!(svg.matches("<circle").count(), 1);
        let svg = throughput_plot(&[[5, 0, 1], [3, 1, 0]], &shades, 2.0);
        assert_eq!(svg.matches("<path").count(), 3);
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(3.0), 5.0);
    }
}
