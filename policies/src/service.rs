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
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::Instant;

use rsp_consensus::Consensus;
use rsp_consensus::kv::{WatchEvent, keyspace_tenant};
use tokio::sync::broadcast::error::RecvError;

use crate::config::PolicyConfig;
use crate::error::PolicyError;
use crate::evaluate::{DecisionRequest, Snapshot};
use crate::index::Outcome;
use crate::records;
use crate::source::SnapshotSource;
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
    source: SnapshotSource,
    tenants: RwLock<HashMap<String, Arc<TenantCell>>>,
    watcher: OnceLock<()>,
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
                source: SnapshotSource::new(consensus.clone(), config),
                consensus,
                tenants: RwLock::new(HashMap::new()),
                watcher: OnceLock::new(),
            }),
        }
    }

    pub fn store(&self) -> &PolicyStore {
        self.inner.source.store()
    }

    pub fn config(&self) -> &PolicyConfig {
        self.inner.source.config()
    }

    /// Loading and the freshness gate (shared with this service's clones).
    pub fn source(&self) -> &SnapshotSource {
        &self.inner.source
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
        snapshot.decide(request, self.config().sliced)
    }

    /// The snapshot a request that arrived at `started` must be decided on.
    pub async fn snapshot(
        &self,
        tenant: &str,
        started: Instant,
    ) -> Result<Arc<Snapshot>, PolicyError> {
        self.start_watcher();
        self.inner.source.ensure_fresh(started).await?;
        let applied_rev = self.inner.source.applied_head_rev(tenant).await?;
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
        if current.head_rev != u64::MAX
            && self.inner.source.applied_head_rev(tenant).await? == current.head_rev
        {
            return Ok(current);
        }
        let snapshot = match self.inner.source.load(tenant).await {
            Ok(s) => Arc::new(s),
            Err(e @ PolicyError::Consensus(_)) => return Err(e),
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
            head_rev = snapshot.head_rev,
            version = snapshot.head.version,
            "policy snapshot swapped"
        );
        cell.swap(snapshot.clone());
        Ok(snapshot)
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
    let tenant = keyspace_tenant(&event.key.keyspace)?;
    (event.key.key == records::HEAD.as_bytes()).then_some(tenant)
}
