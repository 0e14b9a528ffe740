//! Prometheus metrics of the consensus layer, registered in a registry the
//! caller owns (no global registry, so several nodes share a process in tests).

use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Registry};

use crate::types::RaftMetrics;

#[derive(Clone)]
pub struct ConsensusMetrics {
    pub term: IntGauge,
    pub leader: IntGauge,
    pub is_leader: IntGauge,
    pub last_log_index: IntGauge,
    pub applied_index: IntGauge,
    pub snapshot_index: IntGauge,
    pub purged_index: IntGauge,
    pub members: IntGauge,
    pub apply_seconds: Histogram,
    pub write_seconds: Histogram,
    pub forwarded_writes: IntCounter,
    pub check_quorum_silences: IntCounter,
    pub log_syncs: IntGauge,
    pub log_sync_requests: IntGauge,
}

fn gauge(reg: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::new(name, help)?;
    reg.register(Box::new(g.clone()))?;
    Ok(g)
}

impl ConsensusMetrics {
    pub fn register(reg: &Registry) -> prometheus::Result<Self> {
        let apply_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "rsp_raft_apply_duration_seconds",
                "Time to apply one log entry to the state machine",
            )
            .buckets(prometheus::exponential_buckets(0.00001, 4.0, 10)?),
        )?;
        reg.register(Box::new(apply_seconds.clone()))?;
        let write_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "rsp_raft_write_duration_seconds",
                "Time from proposing a write on this node to its applied answer",
            )
            .buckets(prometheus::exponential_buckets(0.0001, 3.0, 12)?),
        )?;
        reg.register(Box::new(write_seconds.clone()))?;
        let forwarded_writes = IntCounter::new(
            "rsp_raft_forwarded_writes_total",
            "Writes this node forwarded to the leader",
        )?;
        reg.register(Box::new(forwarded_writes.clone()))?;
        let check_quorum_silences = IntCounter::new(
            "rsp_raft_check_quorum_silences_total",
            "Times this node, as leader, heard from fewer than a quorum of voters and went silent to let another node lead",
        )?;
        reg.register(Box::new(check_quorum_silences.clone()))?;
        Ok(ConsensusMetrics {
            term: gauge(reg, "rsp_raft_term", "Current Raft term")?,
            leader: gauge(
                reg,
                "rsp_raft_leader_id",
                "Id of the known leader, 0 if none",
            )?,
            is_leader: gauge(reg, "rsp_raft_is_leader", "1 if this node leads")?,
            last_log_index: gauge(
                reg,
                "rsp_raft_last_log_index",
                "Index of the last log entry",
            )?,
            applied_index: gauge(
                reg,
                "rsp_raft_applied_index",
                "Index of the last applied entry",
            )?,
            snapshot_index: gauge(
                reg,
                "rsp_raft_snapshot_index",
                "Index the last snapshot covers",
            )?,
            purged_index: gauge(
                reg,
                "rsp_raft_purged_index",
                "Index up to which the log was purged",
            )?,
            members: gauge(
                reg,
                "rsp_raft_members",
                "Voters and learners in the membership",
            )?,
            apply_seconds,
            write_seconds,
            forwarded_writes,
            check_quorum_silences,
            log_syncs: gauge(
                reg,
                "rsp_storage_log_syncs",
                "fdatasync calls made for the Raft log",
            )?,
            log_sync_requests: gauge(
                reg,
                "rsp_storage_log_sync_requests",
                "Appends and votes those syncs covered (group commit)",
            )?,
        })
    }

    pub fn observe(&self, m: &RaftMetrics) {
        let idx = |v: Option<u64>| v.map_or(-1, |i| i as i64);
        self.term.set(m.current_term as i64);
        self.leader.set(m.current_leader.map_or(0, |l| l as i64));
        self.is_leader.set((m.current_leader == Some(m.id)) as i64);
        self.last_log_index.set(idx(m.last_log_index));
        self.applied_index.set(idx(m.last_applied.map(|l| l.index)));
        self.snapshot_index.set(idx(m.snapshot.map(|l| l.index)));
        self.purged_index.set(idx(m.purged.map(|l| l.index)));
        self.members
            .set(m.membership_config.membership().nodes().count() as i64);
    }
}
