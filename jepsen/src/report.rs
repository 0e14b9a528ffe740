//! What a run leaves for people: `results.json` and `report.html` (figures,
//! the checker's verdict and anomalies, a latency scatter and a throughput
//! plot with fault windows shaded, all inline).

pub mod availability;
pub mod svg;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{Value, json};

use crate::checker::{CheckResult, Validity};
use crate::history::{self, Event, EventType};
use crate::nemesis::NemesisLog;

/// Most points drawn in the latency plot (ok operations are thinned).
const MAX_POINTS: usize = 20_000;

/// Figures of a history.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Per operation name: ok / fail / info counts.
    pub counts: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per operation name: latency percentiles (ms) of ok operations.
    pub latency_ms: BTreeMap<String, Value>,
    pub operations: u64,
    pub duration_s: f64,
    pub ok_per_s: f64,
    pub faults: usize,
    pub availability: availability::Availability,
}

/// Figures of `events`.
pub fn stats(events: &[Event]) -> Stats {
    let ops = history::pair(events);
    let mut counts: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut lat: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for op in &ops {
        let kind = match op.outcome {
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            _ => "info",
        };
        *counts
            .entry(op.f.clone())
            .or_default()
            .entry(kind.to_string())
            .or_default() += 1;
        if op.outcome == EventType::Ok
            && let Some(l) = op.latency_ns()
        {
            lat.entry(op.f.clone()).or_default().push(l as f64 / 1e6);
        }
    }
    let latency_ms = lat
        .into_iter()
        .map(|(f, mut v)| {
            v.sort_by(f64::total_cmp);
            let q = |p: f64| {
                let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
                (v[i] * 100.0).round() / 100.0
            };
            (
                f,
                json!({"p50": q(0.5), "p95": q(0.95), "p99": q(0.99), "max": q(1.0)}),
            )
        })
        .collect();
    let duration_s = events.last().map_or(0.0, |e| e.time_ns as f64 / 1e9);
    let ok = ops.iter().filter(|o| o.outcome == EventType::Ok).count() as f64;
    Stats {
        counts,
        latency_ms,
        operations: ops.len() as u64,
        duration_s,
        ok_per_s: if duration_s > 0.0 {
            ok / duration_s
        } else {
            0.0
        },
        faults: events
            .iter()
            .filter(|e| e.process.is_nemesis() && e.f == "start")
            .count(),
        availability: availability::availability(events),
    }
}

/// Everything `results.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub run: String,
    pub workload: String,
    pub nemesis: Vec<String>,
    pub nodes: usize,
    pub concurrency: usize,
    pub rate: f64,
    pub time_limit_s: f64,
    pub seed: u64,
    pub inject_bugs: Option<String>,
    pub valid: Validity,
    pub exit_code: i32,
    pub checker: CheckResult,
    pub stats: Stats,
    pub nemesis_log: NemesisLog,
    /// Problems of the harness or of healing (they make a valid result
    /// unknown).
    pub harness_errors: Vec<String>,
    /// The membership at the end, as the leader lists it (runs of an `rsp`
    /// cluster started by the harness).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<rsp_chaos::Member>,
}

fn shades(events: &[Event]) -> Vec<svg::Shade> {
    let mut open: Option<(f64, String)> = None;
    let mut out = Vec::new();
    for e in events.iter().filter(|e| e.process.is_nemesis()) {
        let at = e.time_ns as f64 / 1e9;
        match e.f.as_str() {
            "start" => {
                let label = format!(
                    "{}: {}",
                    e.value
                        .get("fault")
                        .and_then(Value::as_str)
                        .unwrap_or("fault"),
                    e.value
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                );
                open = Some((at, label));
            }
            "stop" => {
                if let Some((from_s, label)) = open.take() {
                    out.push(svg::Shade {
                        from_s,
                        to_s: at,
                        label,
                    });
                }
            }
            _ => {}
        }
    }
    if let (Some((from_s, label)), Some(last)) = (open, events.last()) {
        out.push(svg::Shade {
            from_s,
            to_s: last.time_ns as f64 / 1e9,
            label,
        });
    }
    out
}

/// The two plots of a history.
pub fn plots(events: &[Event]) -> (String, String) {
    let ops = history::pair(events);
    let answered = history::answered_at(events);
    let duration_s = events.last().map_or(1.0, |e| e.time_ns as f64 / 1e9);
    let ok_count = ops.iter().filter(|o| o.outcome == EventType::Ok).count();
    let stride = ok_count.div_ceil(MAX_POINTS).max(1);
    let mut points = Vec::new();
    let mut seen_ok = 0usize;
    for op in &ops {
        let Some(done) = answered.get(&op.index) else {
            continue;
        };
        if op.outcome == EventType::Ok {
            seen_ok += 1;
            if !seen_ok.is_multiple_of(stride) {
                continue;
            }
        }
        points.push(svg::Point {
            at_s: op.invoke_ns as f64 / 1e9,
            latency_ms: done.saturating_sub(op.invoke_ns) as f64 / 1e6,
            kind: op.outcome,
            f: op.f.clone(),
        });
    }
    let seconds = duration_s.ceil().max(1.0) as usize;
    let mut per_second = vec![[0u64; 3]; seconds];
    for op in &ops {
        let Some(done) = answered.get(&op.index) else {
            continue;
        };
        let s = ((*done as f64 / 1e9) as usize).min(seconds - 1);
        let i = match op.outcome {
            EventType::Ok => 0,
            EventType::Fail => 1,
            _ => 2,
        };
        per_second[s][i] += 1;
    }
    let shades = shades(events);
    (
        svg::latency_plot(&points, &shades, duration_s),
        svg::throughput_plot(&per_second, &shades, duration_s),
    )
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `report.html`.
pub fn html(results: &Results, events: &[Event]) -> String {
    let (latency, throughput) = plots(events);
    let verdict_colour = match results.valid {
        Validity::Valid => "#2a8a3a",
        Validity::Invalid => "#c0302b",
        Validity::Unknown => "#b07a00",
    };
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<!doctype html><html><head><meta charset="utf-8"><title>rsp-jepsen {run}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1000px}}td,th{{padding:2px 10px;text-align:left}}pre{{background:#f6f6f6;padding:1em;overflow:auto;max-height:30em}}</style></head><body>
<h1>rsp-jepsen: {workload} <span style="color:{verdict_colour}">{valid:?}</span></h1>
<p>{summary}</p>
<table><tr><th>run</th><td>{run}</td></tr><tr><th>nodes</th><td>{nodes}</td></tr><tr><th>nemesis</th><td>{nemesis}</td></tr>
<tr><th>time limit</th><td>{time}s</td></tr><tr><th>concurrency / rate</th><td>{conc} / {rate}</td></tr><tr><th>seed</th><td>{seed}</td></tr>
<tr><th>injected bugs</th><td>{bugs}</td></tr><tr><th>operations</th><td>{ops} ({okps:.1} ok/s)</td></tr><tr><th>faults</th><td>{faults}</td></tr></table>
"#,
        run = esc(&results.run),
        workload = esc(&results.workload),
        valid = results.valid,
        summary = esc(&results.checker.summary),
        nodes = results.nodes,
        nemesis = esc(&results.nemesis.join(", ")),
        time = results.time_limit_s,
        conc = results.concurrency,
        rate = if results.rate > 0.0 {
            format!("{}/s", results.rate)
        } else {
            "unlimited".to_string()
        },
        seed = results.seed,
        bugs = esc(results.inject_bugs.as_deref().unwrap_or("none")),
        ops = results.stats.operations,
        okps = results.stats.ok_per_s,
        faults = results.stats.faults,
    );
    out.push_str("<h2>Latency</h2>");
    out.push_str(&latency);
    out.push_str("<h2>Throughput</h2>");
    out.push_str(&throughput);
    out.push_str("<h2>Operations</h2><table><tr><th>f</th><th>ok</th><th>fail</th><th>info</th><th>latency ms (ok)</th></tr>");
    for (f, c) in &results.stats.counts {
        let get = |k: &str| c.get(k).copied().unwrap_or(0);
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(f),
            get("ok"),
            get("fail"),
            get("info"),
            results
                .stats
                .latency_ms
                .get(f)
                .map(|v| esc(&v.to_string()))
                .unwrap_or_default()
        );
    }
    out.push_str(
        "</table><h2>Faults</h2><table><tr><th>from (s)</th><th>to (s)</th><th>fault</th></tr>",
    );
    for w in &results.nemesis_log.faults {
        let _ = write!(
            out,
            "<tr><td>{:.2}</td><td>{}</td><td>{}</td></tr>",
            w.start_ns as f64 / 1e9,
            w.end_ns
                .map_or("-".to_string(), |e| format!("{:.2}", e as f64 / 1e9)),
            esc(&w.description)
        );
    }
    out.push_str("</table>");
    if !results.harness_errors.is_empty() || !results.nemesis_log.errors.is_empty() {
        out.push_str("<h2>Harness errors</h2><ul>");
        for e in results
            .harness_errors
            .iter()
            .chain(&results.nemesis_log.errors)
        {
            let _ = write!(out, "<li>{}</li>", esc(e));
        }
        out.push_str("</ul>");
    }
    let details = serde_json::to_string_pretty(&results.checker.details).unwrap_or_default();
    let _ = writeln!(
        out,
        "<h2>Checker: {}</h2><pre>{}</pre><p>Full history: <code>history.jsonl</code>.</p></body></html>",
        esc(&results.checker.checker),
        esc(&details)
    );
    out
}

/// Writes `results.json` and `report.html` into `dir`.
pub fn write(dir: &Path, results: &Results, events: &[Event]) -> Result<()> {
    let json = serde_json::to_string_pretty(results)?;
    std::fs::write(dir.join("results.json"), json + "\n").context("writing results.json")?;
    std::fs::write(dir.join("report.html"), html(results, events))
        .context("writing report.html")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Process, Record, Recorder};

    #[test]
    fn stats_and_html_cover_the_history() {
        let rec = Recorder::in_memory();
        let p = Process::Client(0);
        rec.record(Record::new(p.clone(), EventType::Invoke, "read").key("k"));
        rec.record(Record::new(p.clone(), EventType::Ok, "read").key("k"));
        rec.record(
            Record::new(Process::nemesis(), EventType::Info, "start")
                .value(json!({"fault": "kill", "description": "kill -9 nodes [1]"})),
        );
        rec.record(
            Record::new(p.clone(), EventType::Invoke, "write")
                .key("k")
                .value(json!(1)),
        );
        rec.record(
            Record::new(p, EventType::Info, "write")
                .key("k")
                .error("timeout"),
        );
        rec.record(
            Record::new(Process::nemesis(), EventType::Info, "stop")
                .value(json!({"fault": "kill"})),
        );
        let events = rec.events();
        let s = stats(&events);
        assert_eq!(s.operations, 2);
        assert_eq!(s.counts["write"]["info"], 1);
        assert_eq!(s.faults, 1);
        assert!(s.latency_ms.contains_key("read"));
        let results = Results {
            run: "r".into(),
            workload: "register".into(),
            nemesis: vec!["kill".into()],
            nodes: 3,
            concurrency: 1,
            rate: 0.0,
            time_limit_s: 1.0,
            seed: 1,
            inject_bugs: None,
            valid: Validity::Valid,
            exit_code: 0,
            checker: CheckResult {
                checker: "x".into(),
                valid: Validity::Valid,
                summary: "fine".into(),
                details: json!({}),
            },
            stats: s,
            nemesis_log: NemesisLog::default(),
            harness_errors: vec![],
            members: vec![],
        };
        let page = html(&results, &events);
        assert!(page.contains("<svg") && page.contains("kill -9 nodes [1]"));
        assert_eq!(page.matches("<svg").count(), 2);
    }
}
