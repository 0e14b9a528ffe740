//! The audit recorder's figures (`rsp_audit_events_total` by result,
//! `rsp_audit_writes_total`), read from its counters when `/metrics` is
//! scraped ([`rsp_identity::audit::AuditStats`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use rsp_identity::audit::AuditStats;

struct AuditCollector {
    stats: Arc<AuditStats>,
    events: IntCounterVec,
    writes: IntCounter,
}

/// Register the audit families in `registry`, reading `stats`.
pub fn register(registry: &Registry, stats: Arc<AuditStats>) -> prometheus::Result<()> {
    let collector = AuditCollector {
        stats,
        events: IntCounterVec::new(
            Opts::new(
                "rsp_audit_events_total",
                "Audit events by result: recorded (committed), dropped (the queue was full), failed (the write failed after its retries)",
            ),
            &["result"],
        )?,
        writes: IntCounter::new(
            "rsp_audit_writes_total",
            "Raft writes made by the audit recorder (each carries up to 256 events)",
        )?,
    };
    for result in ["recorded", "dropped", "failed"] {
        collector.events.with_label_values(&[result]);
    }
    registry.register(Box::new(collector))
}

/// Move `counter` up to `value` (both only grow).
fn catch_up(counter: &IntCounter, value: u64) {
    let now = counter.get();
    if value > now {
        counter.inc_by(value - now);
    }
}

impl Collector for AuditCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.events.desc();
        descs.extend(self.writes.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let s = &self.stats;
        for (result, value) in [
            ("recorded", &s.recorded),
            ("dropped", &s.dropped),
            ("failed", &s.failed),
        ] {
            catch_up(
                &self.events.with_label_values(&[result]),
                value.load(Ordering::Relaxed),
            );
        }
        catch_up(&self.writes, s.writes.load(Ordering::Relaxed));
        let mut families = self.events.collect();
        families.extend(self.writes.collect());
        families
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_reports_the_recorders_counters() {
        let registry = Registry::new();
        let stats = Arc::new(AuditStats::default());
        register(&registry, stats.clone()).expect("registers");
        stats.recorded.fetch_add(5, Ordering::Relaxed);
        stats.dropped.fetch_add(1, Ordering::Relaxed);
        stats.writes.fetch_add(2, Ordering::Relaxed);
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .expect("text");
        assert!(
            text.contains("rsp_audit_events_total{result=\"recorded\"} 5"),
            "{text}"
        );
        assert!(
            text.contains("rsp_audit_events_total{result=\"dropped\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("rsp_audit_events_total{result=\"failed\"} 0"),
            "{text}"
        );
        assert!(text.contains("rsp_audit_writes_total 2"), "{text}");
    }
}
