//! Background jobs of a node, stopped by [`crate::Consensus::shutdown`]:
//! - metrics: mirror openraft's metrics into Prometheus gauges;
//! - expiry ticks: while this node leads and a key's TTL is due, propose a
//!   `Tick` so the key expires even when nothing else is written;
//! - check-quorum: see [`crate::check_quorum`].

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use openraft::ServerState;
use rsp_storage::kv::Op;

use crate::node::Consensus;

/// How often the leader looks for due TTLs.
const TICK_EVERY: Duration = Duration::from_millis(200);

pub(crate) fn spawn_all(c: &Consensus) {
    tokio::spawn(metrics_loop(c.clone()));
    tokio::spawn(tick_loop(c.clone()));
    tokio::spawn(crate::check_quorum::run(c.clone()));
}

/// How often the store's size on disk is read.
const SIZE_EVERY: Duration = Duration::from_secs(5);

async fn metrics_loop(c: Consensus) {
    let mut rx = c.raft().metrics();
    let mut stop = c.inner.stop_tx.subscribe();
    let mut size_tick = tokio::time::interval(SIZE_EVERY);
    size_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        {
            let m = rx.borrow_and_update().clone();
            c.inner.metrics.observe(&m);
            let stats = c.inner.sync.stats();
            c.inner
                .metrics
                .log_syncs
                .set(stats.syncs.load(Relaxed) as i64);
            c.inner
                .metrics
                .log_sync_requests
                .set(stats.requests.load(Relaxed) as i64);
        }
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            _ = size_tick.tick() => observe_size(&c),
            _ = stop.changed() => return,
        }
    }
}

fn observe_size(c: &Consensus) {
    match c.inner.store.size_on_disk() {
        Ok(bytes) => c
            .inner
            .metrics
            .storage_bytes
            .set(bytes.min(i64::MAX as u64) as i64),
        Err(e) => tracing::debug!(error = %e, "reading the store's size failed"),
    }
}

async fn tick_loop(c: Consensus) {
    let mut stop = c.inner.stop_tx.subscribe();
    let mut interval = tokio::time::interval(TICK_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.changed() => return,
        }
        if c.metrics().state != ServerState::Leader {
            continue;
        }
        match c.inner.engine.next_expiry_ms() {
            Ok(Some(at)) if at <= c.clock().now_ms() => {
                if let Err(e) = c.write(Op::Tick).await {
                    tracing::debug!(error = %e, "expiry tick not committed");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reading the expiry index failed"),
        }
    }
}
