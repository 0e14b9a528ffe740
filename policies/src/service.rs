//! Decisions on a node: each tenant's compiled [`Snapshot`] in memory,
//! swapped whole when its policy state changes, and the freshness rule.
//!
//! Swapping: a watch task rebuilds a tenant's snapshot as soon as this node
//! applies a change to its `policy/head` (every policy write changes it),
//! and a decision also compares the snapshot's head revision with the
//! node's applied one and rebuilds first if they differ. A snapshot is one
//! `Arc` holding policies, schema, entities and index; it is replaced by a
//! single pointer swap, so a decision sees the old state or the new, never
//! a mix.
//!
//! Freshness: a decision reflects every policy write acknowledged before
//! the request started. Writes answer only after every member confirmed
//! applying them, or after `local_bound` has passed since the commit
//! ([`crate::store::PolicyStore::fence`]). A node decides from its applied
//! state only while a linearizable barrier that *started* within
//! `local_bound` before the request has completed; otherwise it runs one
//! first (shared by concurrent requests; refreshed in the background once
//! half the bound has passed, so a busy node rarely waits). A member that
//! did not confirm a write therefore either ran a barrier after the commit
//! (and applied the write) or must run one before deciding. A node cut off
//! from the quorum fails closed (`Unavailable`) instead of answering stale.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::Instant;

use rsp_consensus::kv::WatchEvent;
use rsp_consensus::{Consensus, Consistency};
use tokio::sync::broadcast::error::RecvError;

use crate::PolicyConfig;
use crate::error::PolicyError;
use crate::evaluate::{DecisionRequest, Snapshot};
use crate::index::Outcome;
use crate::records::{self, head_key};
use crate::store::PolicyStore;

struct TenantCell {
    snapshot: RwLock<Arc<Snapshot>>,
    /// One rebuild at a time per tenant.
    rebuild: tokio::sync::Mutex<()>,
}

impl TenantCell {
    fn current(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn swap(&self, next: Arc<Snapshot>) {
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = next;
    }
}

struct Inner {
    consensus: Consensus,
    config: PolicyConfig,
    store: PolicyStore,
    tenants: RwLock<HashMap<String, Arc<TenantCell>>>,
    watcher: OnceLock<()>,
    /// Start time of the last linearizable barrier that completed.
    last_barrier: Mutex<Option<Instant>>,
    barrier: tokio::sync::Mutex<()>,
    refreshing: AtomicBool,
}

/// Authorization decisions and the policy store of every tenant, on one
/// node. Cheap to clone.
#[derive(Clone)]
pub struct PolicyService {
    inner: Arc<Inner>,
}

impl PolicyService {
    pub fn new(consensus: Consensus, config: PolicyConfig) -> Self {
        PolicyService {
            inner: Arc::new(Inner {
                store: PolicyStore::new(consensus.clone(), config.clone()),
                consensus,
                config,
                tenants: RwLock::new(HashMap::new()),
                watcher: OnceLock::new(),
                last_barrier: Mutex::new(None),
                barrier: tokio::sync::Mutex::new(()),
                refreshing: AtomicBool::new(false),
            }),
        }
    }

    pub fn store(&self) -> &PolicyStore {
        &self.inner.store
    }

    pub fn config(&self) -> &PolicyConfig {
        &self.inner.config
    }

    /// Decide one request for `tenant`; `started` is when the request
    /// arrived (the freshness guarantee is relative to it).
    pub async fn decide(
        &self,
        tenant: &str,
        request: &DecisionRequest,
        started: Instant,
    ) -> Result<Outcome, PolicyError> {
        let snapshot = self.snapshot(tenant, started).await?;
        snapshot.decide(request, self.inner.config.sliced)
    }

    /// The snapshot a request that arrived at `started` must be decided on.
    pub async fn snapshot(
        &self,
        tenant: &str,
        started: Instant,
    ) -> Result<Arc<Snapshot>, PolicyError> {
        self.start_watcher();
        self.ensure_fresh(started).await?;
        let (head, _) = self
            .inner
            .consensus
            .get(&head_key(tenant), Consistency::Local)
            .await?;
        let applied_rev = head.map_or(0, |kv| kv.mod_revision);
        let cell = self.cell(tenant);
        let current = cell.current();
        if current.head_rev == applied_rev {
            return Ok(current);
        }
        self.rebuild(tenant, &cell, applied_rev).await
    }

    fn cell(&self, tenant: &str) -> Arc<TenantCell> {
        if let Some(c) = self
            .inner
            .tenants
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
        {
            return c.clone();
        }
        self.inner
            .tenants
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(tenant.to_string())
            .or_insert_with(|| {
                Arc::new(TenantCell {
                    snapshot: RwLock::new(Arc::new(Snapshot {
                        // Never equal to a real head revision, so the first
                        // use builds.
                        head_rev: u64::MAX,
                        ..Snapshot::empty()
                    })),
                    rebuild: tokio::sync::Mutex::new(()),
                })
            })
            .clone()
    }

    /// Build from this node's applied state and swap in, unless another
    /// rebuild already reached `at_least` (0: whatever is applied now).
    async fn rebuild(
        &self,
        tenant: &str,
        cell: &TenantCell,
        wanted: u64,
    ) -> Result<Arc<Snapshot>, PolicyError> {
        let _guard = cell.rebuild.lock().await;
        let current = cell.current();
        if current.head_rev == wanted && wanted != 0 {
            return Ok(current);
        }
        let state = self.inner.store.read_local(tenant).await?;
        if state.head_rev == current.head_rev {
            return Ok(current);
        }
        let snapshot = match state
            .compile()
            .and_then(|c| Snapshot::build(state.head_rev, state.head.clone(), c))
        {
            Ok(s) => Arc::new(s),
            Err(e) => {
                // Writes are validated, so this means a stored state this
                // build cannot read. Keep the last good set.
                tracing::error!(tenant, error = %e, "stored policies do not compile; keeping the previous set");
                if current.head_rev == u64::MAX {
                    return Err(PolicyError::corrupt(e));
                }
                return Ok(current);
            }
        };
        tracing::debug!(
            tenant,
            head_rev = state.head_rev,
            version = state.head.version,
            "policy snapshot swapped"
        );
        cell.swap(snapshot.clone());
        Ok(snapshot)
    }

    /// Make sure a linearizable barrier that started no earlier than
    /// `local_bound` before `started` has completed.
    async fn ensure_fresh(&self, started: Instant) -> Result<(), PolicyError> {
        let bound = self.inner.config.local_bound;
        loop {
            let last = *self
                .inner
                .last_barrier
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(at) = last
                && started.saturating_duration_since(at) <= bound
            {
                if at.elapsed() > bound / 2 {
                    self.refresh_in_background();
                }
                return Ok(());
            }
            let _guard = self.inner.barrier.lock().await;
            // Someone else may have just completed one that suffices.
            let last = *self
                .inner
                .last_barrier
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| started.saturating_duration_since(at) <= bound) {
                continue;
            }
            self.barrier_now().await?;
        }
    }

    async fn barrier_now(&self) -> Result<(), PolicyError> {
        let at = Instant::now();
        self.inner.consensus.linearizable_barrier().await?;
        let mut last = self
            .inner
            .last_barrier
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|l| l < at) {
            *last = Some(at);
        }
        Ok(())
    }

    fn refresh_in_background(&self) {
        if self.inner.refreshing.swap(true, Ordering::SeqCst) {
            return;
        }
        let service = self.clone();
        tokio::spawn(async move {
            let _guard = service.inner.barrier.lock().await;
            if let Err(e) = service.barrier_now().await {
                tracing::debug!(error = %e, "background policy freshness barrier failed");
            }
            service.inner.refreshing.store(false, Ordering::SeqCst);
        });
    }

    /// Start the task that rebuilds snapshots as changes are applied; it
    /// ends when the service is dropped or the node stops.
    fn start_watcher(&self) {
        if self.inner.watcher.get().is_some() {
            return;
        }
        if self.inner.watcher.set(()).is_err() {
            return;
        }
        let mut rx = self.inner.consensus.watch();
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let event = rx.recv().await;
                let Some(inner) = weak.upgrade() else { return };
                let service = PolicyService { inner };
                match event {
                    Ok(event) => {
                        if let Some(tenant) = changed_tenant(&event) {
                            service.on_change(tenant).await;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "policy watch lagged; rebuilding every tenant");
                        let tenants: Vec<String> = service
                            .inner
                            .tenants
                            .read()
                            .unwrap_or_else(|p| p.into_inner())
                            .keys()
                            .cloned()
                            .collect();
                        for t in tenants {
                            service.on_change(&t).await;
                        }
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    async fn on_change(&self, tenant: &str) {
        let cell = self
            .inner
            .tenants
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .cloned();
        if let Some(cell) = cell
            && let Err(e) = self.rebuild(tenant, &cell, 0).await
        {
            tracing::warn!(tenant, error = %e, "policy snapshot rebuild failed");
        }
    }

    /// The snapshot this node holds for `tenant` right now, without any
    /// freshness check (None before the tenant's first decision here).
    pub fn peek(&self, tenant: &str) -> Option<Arc<Snapshot>> {
        self.inner
            .tenants
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .map(|c| c.current())
    }

    /// How many tenants have a snapshot on this node.
    pub fn loaded_tenants(&self) -> usize {
        self.inner
            .tenants
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

/// The tenant whose policy head an event changed.
fn changed_tenant(event: &WatchEvent) -> Option<&str> {
    let tenant = event.key.keyspace.strip_prefix("t.")?;
    (event.key.key == records::HEAD.as_bytes()).then_some(tenant)
}
