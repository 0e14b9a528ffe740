//! What a node needs to hold tenants' policy snapshots, whoever holds them
//! (the `PolicyService` of a node without tenant actors, or each
//! tenant's policy evaluator actor in `rsp-actors`):
//!
//! - [`SnapshotSource::load`]: build a tenant's [`Snapshot`] from this
//!   node's applied state (read, compile, index);
//! - [`SnapshotSource::applied_head_rev`]: the revision of the tenant's
//!   `policy/head` this node has applied (one local read), to compare with
//!   a held snapshot's;
//! - [`SnapshotSource::ensure_fresh`]: the freshness gate. A node decides
//!   from its applied state only while a linearizable barrier that
//!   *started* within `local_bound` before the request arrived has
//!   completed; otherwise it runs one first (one at a time, shared by the
//!   requests waiting for it), and once half the bound has passed it
//!   refreshes in the background. With writes fenced by
//!   [`crate::PolicyStore`] (answered only after every member applied them,
//!   or after `local_bound`), a decision reflects every policy write
//!   acknowledged before the request arrived (docs/authorization.md).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rsp_consensus::{Consensus, Consistency};

use crate::config::PolicyConfig;
use crate::error::PolicyError;
use crate::evaluate::Snapshot;
use crate::records::head_key;
use crate::store::PolicyStore;

struct Gate {
    /// Start time of the last linearizable barrier that completed.
    last_barrier: Mutex<Option<Instant>>,
    barrier: tokio::sync::Mutex<()>,
    refreshing: AtomicBool,
}

/// Loading snapshots and the freshness gate of one node. Cheap to clone
/// (clones share the gate).
#[derive(Clone)]
pub struct SnapshotSource {
    consensus: Consensus,
    store: PolicyStore,
    config: PolicyConfig,
    gate: Arc<Gate>,
}

impl SnapshotSource {
    pub fn new(consensus: Consensus, config: PolicyConfig) -> Self {
        SnapshotSource {
            store: PolicyStore::new(consensus.clone(), config.clone()),
            consensus,
            config,
            gate: Arc::new(Gate {
                last_barrier: Mutex::new(None),
                barrier: tokio::sync::Mutex::new(()),
                refreshing: AtomicBool::new(false),
            }),
        }
    }

    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    pub fn store(&self) -> &PolicyStore {
        &self.store
    }

    /// The modification revision of `tenant`'s `policy/head` that this node
    /// has applied (0: no policy was ever written).
    pub async fn applied_head_rev(&self, tenant: &str) -> Result<u64, PolicyError> {
        let (head, _) = self
            .consensus
            .get(&head_key(tenant), Consistency::Local)
            .await?;
        Ok(head.map_or(0, |kv| kv.mod_revision))
    }

    /// Build `tenant`'s snapshot from this node's applied state.
    pub async fn load(&self, tenant: &str) -> Result<Snapshot, PolicyError> {
        let state = self.store.read_local(tenant).await?;
        let compiled = state.compile()?;
        Snapshot::build(state.head_rev, state.head.clone(), compiled)
    }

    /// Make sure a linearizable barrier that started no earlier than
    /// `local_bound` before `started` has completed (fails closed with
    /// `Unavailable` when this node cannot reach a quorum).
    pub async fn ensure_fresh(&self, started: Instant) -> Result<(), PolicyError> {
        let bound = self.config.local_bound;
        loop {
            let last = self.last_barrier();
            if let Some(at) = last
                && started.saturating_duration_since(at) <= bound
            {
                if at.elapsed() > bound / 2 {
                    self.refresh_in_background();
                }
                return Ok(());
            }
            let _guard = self.gate.barrier.lock().await;
            // Someone else may have just completed one that suffices.
            if self
                .last_barrier()
                .is_some_and(|at| started.saturating_duration_since(at) <= bound)
            {
                continue;
            }
            self.barrier_now().await?;
        }
    }

    fn last_barrier(&self) -> Option<Instant> {
        *self
            .gate
            .last_barrier
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    async fn barrier_now(&self) -> Result<(), PolicyError> {
        let at = Instant::now();
        self.consensus.linearizable_barrier().await?;
        let mut last = self
            .gate
            .last_barrier
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|l| l < at) {
            *last = Some(at);
        }
        Ok(())
    }

    fn refresh_in_background(&self) {
        if self.gate.refreshing.swap(true, Ordering::SeqCst) {
            return;
        }
        let source = self.clone();
        tokio::spawn(async move {
            {
                let _guard = source.gate.barrier.lock().await;
                if let Err(e) = source.barrier_now().await {
                    tracing::debug!(error = %e, "background policy freshness barrier failed");
                }
            }
            source.gate.refreshing.store(false, Ordering::SeqCst);
        });
    }
}
