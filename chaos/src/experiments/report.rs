//! What an experiment reports: each judged part of its hypothesis
//! ([`Check`]), the fault events, and the figures of each phase, as text for
//! a terminal or JSON.

use serde::Serialize;

use super::load::Window;

/// One judged part of the hypothesis.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub expected: String,
    pub observed: String,
    pub passed: bool,
}

impl Check {
    pub(crate) fn new(
        name: impl Into<String>,
        expected: impl Into<String>,
        observed: impl Into<String>,
        passed: bool,
    ) -> Self {
        Self {
            name: name.into(),
            expected: expected.into(),
            observed: observed.into(),
            passed,
        }
    }

    /// Requests per second during the fault as a share of before: a
    /// cluster that answers almost nothing must not pass on a success rate
    /// of a handful of requests.
    pub(crate) fn throughput(before: &Window, during: &Window, least: f64) -> Self {
        let share = if before.rate() > 0.0 {
            during.rate() / before.rate()
        } else {
            1.0
        };
        Self::new(
            "throughput during",
            format!("≥ {:.0}% of before", least * 100.0),
            format!(
                "{:.0}% ({:.1}/s, before {:.1}/s)",
                share * 100.0,
                during.rate(),
                before.rate()
            ),
            share >= least,
        )
    }

    pub(crate) fn rate(name: &str, window: &Window, least: f64) -> Self {
        Self::new(
            format!("success {name}"),
            format!("≥ {:.1}%", least * 100.0),
            format!(
                "{:.1}% of {} requests (p99 {} ms)",
                window.success() * 100.0,
                window.requests,
                window.p99_ms
            ),
            window.success() >= least,
        )
    }
}

/// A fault event during the experiment.
#[derive(Debug, Clone, Serialize)]
pub struct FaultEvent {
    /// Seconds since the load started.
    pub at_s: f64,
    pub what: String,
}

/// The result of one experiment.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentReport {
    pub name: String,
    pub description: String,
    pub hypothesis: String,
    pub nodes: usize,
    pub seed: u64,
    pub before: Window,
    pub during: Window,
    pub after: Window,
    pub recovery_ms: u64,
    pub acknowledged_writes: usize,
    pub lost_writes: Vec<String>,
    pub read_violations: Vec<String>,
    pub events: Vec<FaultEvent>,
    pub checks: Vec<Check>,
    pub passed: bool,
    pub dir: Option<String>,
}

impl ExperimentReport {
    /// A few lines for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "experiment {} ({} nodes, seed {}): {}\n  {}\n  hypothesis: {}\n",
            self.name,
            self.nodes,
            self.seed,
            if self.passed { "PASSED" } else { "FAILED" },
            self.description,
            self.hypothesis
        );
        for e in &self.events {
            out.push_str(&format!("  {:>7.2}s  {}\n", e.at_s, e.what));
        }
        for c in &self.checks {
            out.push_str(&format!(
                "  [{}] {}: expected {}, observed {}\n",
                if c.passed { "ok" } else { "FAIL" },
                c.name,
                c.expected,
                c.observed
            ));
        }
        out.push_str(&format!(
            "  {} writes acknowledged; recovery {} ms\n",
            self.acknowledged_writes, self.recovery_ms
        ));
        for l in self.lost_writes.iter().take(5) {
            out.push_str(&format!("  lost: {l}\n"));
        }
        for v in self.read_violations.iter().take(5) {
            out.push_str(&format!("  bad read: {v}\n"));
        }
        if let Some(dir) = &self.dir {
            out.push_str(&format!("  node dirs and logs: {dir}\n"));
        }
        out
    }
}
