//! The policy evaluator actor of one tenant: it holds the tenant's compiled
//! Cedar state (an immutable [`Snapshot`]: policies, links, schema,
//! entities, index) and publishes it for the decision hot path.
//!
//! - **Load.** As it starts (also after a restart by its supervisor) the
//!   evaluator builds the snapshot from this node's applied state with the
//!   node's [`SnapshotSource`] (read, compile, index) and publishes it.
//! - **Reload.** The watch dispatcher sends `Reload` when this node applies
//!   a change to the tenant's `policy/head` (every policy, link and entity
//!   write changes it, so one reload per write). The evaluator rebuilds
//!   only if the applied head revision differs from its snapshot's.
//! - **Publish.** The snapshot sits in a [`PolicyCell`]
//!   (`RwLock<Option<Arc<Snapshot>>>`) shared with the tenant's handles; a
//!   reload replaces it with one pointer swap, so a decision uses the old
//!   state or the new one, never a mix.
//! - **Decide** ([`PolicyService::snapshot`]): admission (the in-flight
//!   bound; decisions are not charged to the requests-per-second quota), then the
//!   freshness gate ([`SnapshotSource::ensure_fresh`]), then one local
//!   read of the applied head revision; if the published snapshot matches,
//!   that is a direct read with no actor hop. Only when it is behind (the
//!   watch has not delivered yet) does the caller ask the evaluator to
//!   catch up (`Sync`, one load shared by every caller waiting for it).
//! - **Stop.** When the tenant supervisor stops (idle, shutdown) the
//!   evaluator empties the cell: an idle tenant holds no snapshot; the next
//!   use starts the tenant and loads again.
//!
//! A stored state that does not compile (writes are validated, so only an
//! upgrade of Cedar could cause this) keeps the last good snapshot and is
//! logged; with none, decisions fail with `Internal`.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rsp_policies::{PolicyError, Snapshot, SnapshotSource};

use crate::error::{ActorError, RESTART_RETRY, call};
use crate::tenant::{Metered, TenantHandle, TenantShared};

/// Wait before retrying a load that failed (cluster unavailable).
const RETRY_LOAD: Duration = Duration::from_secs(1);

impl From<PolicyError> for ActorError {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::Consensus(c) => c.into(),
            PolicyError::Conflict => ActorError::Contention("the policy store".into()),
            other => ActorError::Internal(format!("policies: {other}")),
        }
    }
}

/// A tenant's published snapshot (none before the first load and after the
/// tenant stopped).
#[derive(Default)]
pub(crate) struct PolicyCell(RwLock<Option<Arc<Snapshot>>>);

impl PolicyCell {
    pub fn get(&self) -> Option<Arc<Snapshot>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, snapshot: Option<Arc<Snapshot>>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = snapshot;
    }
}

pub(crate) struct PolicyEvaluator;

pub(crate) struct PolicyEvaluatorState {
    shared: Arc<TenantShared>,
    /// Loads done by this incarnation (tests and logs).
    loads: u64,
}

pub(crate) enum PolicyMsg {
    /// The tenant's `policy/head` changed on this node: reload if the
    /// applied head differs from the published snapshot's.
    Reload,
    /// A decision found the published snapshot behind `head_rev` (the
    /// revision it read as applied): catch up, then answer with the
    /// snapshot to decide on.
    Sync {
        head_rev: u64,
        reply: RpcReplyPort<Result<Arc<Snapshot>, ActorError>>,
    },
    #[cfg(feature = "testing")]
    Fault(crate::tenant::Fault),
}

impl PolicyEvaluatorState {
    /// Load from this node's applied state unless the published snapshot
    /// is already at `wanted` (None: whatever is applied now), and publish.
    async fn refresh(&mut self, wanted: Option<u64>) -> Result<Arc<Snapshot>, ActorError> {
        let s = &self.shared;
        let current = s.snapshot.get();
        let wanted = match wanted {
            Some(w) => w,
            None => s.policy_source.applied_head_rev(&s.tenant).await?,
        };
        if let Some(c) = &current
            && c.head_rev == wanted
        {
            return Ok(c.clone());
        }
        match s.policy_source.load(&s.tenant).await {
            Ok(next) => {
                let next = Arc::new(next);
                self.loads += 1;
                tracing::debug!(
                    tenant = %s.tenant,
                    head_rev = next.head_rev,
                    version = next.head.version,
                    loads = self.loads,
                    "policy snapshot published"
                );
                s.snapshot.set(Some(next.clone()));
                Ok(next)
            }
            Err(e @ PolicyError::Consensus(_)) => Err(e.into()),
            Err(e) => {
                tracing::error!(tenant = %s.tenant, error = %e, "stored policies do not compile; keeping the previous set");
                current.ok_or_else(|| e.into())
            }
        }
    }
}

impl Actor for PolicyEvaluator {
    type Msg = PolicyMsg;
    type State = PolicyEvaluatorState;
    type Arguments = Arc<TenantShared>;

    async fn pre_start(
        &self,
        myself: ActorRef<PolicyMsg>,
        shared: Arc<TenantShared>,
    ) -> Result<PolicyEvaluatorState, ActorProcessingErr> {
        let mut state = PolicyEvaluatorState { shared, loads: 0 };
        // A failed load does not keep the tenant's other actors from
        // starting: decisions ask again (`Sync`), and so does a retry.
        if let Err(e) = state.refresh(None).await {
            tracing::warn!(tenant = %state.shared.tenant, error = %e, "policy load failed; retrying");
            myself.send_after(RETRY_LOAD, || PolicyMsg::Reload);
        }
        state
            .shared
            .children
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .policy = Some(myself);
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<PolicyMsg>,
        state: &mut PolicyEvaluatorState,
    ) -> Result<(), ActorProcessingErr> {
        // Stopped on purpose (idle, shutdown): free the snapshot.
        state.shared.snapshot.set(None);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<PolicyMsg>,
        msg: PolicyMsg,
        state: &mut PolicyEvaluatorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PolicyMsg::Reload => {
                if let Err(e) = state.refresh(None).await {
                    tracing::warn!(tenant = %state.shared.tenant, error = %e, "policy reload failed; retrying");
                    myself.send_after(RETRY_LOAD, || PolicyMsg::Reload);
                }
            }
            PolicyMsg::Sync { head_rev, reply } => {
                let _ = reply.send(state.refresh(Some(head_rev)).await);
            }
            #[cfg(feature = "testing")]
            PolicyMsg::Fault(f) => crate::runtime::apply_fault(f).await,
        }
        Ok(())
    }
}

/// Authorization decisions for one tenant.
#[derive(Clone)]
pub struct PolicyService {
    pub(crate) h: TenantHandle,
}

impl PolicyService {
    /// The snapshot a request that arrived at `started` must be decided on:
    /// it reflects every policy write acknowledged before `started` (the
    /// freshness rule of docs/authorization.md). Decide with
    /// [`Snapshot::decide`]; a snapshot is immutable, so a batch decided on
    /// one sees one state.
    pub async fn snapshot(&self, started: Instant) -> Result<Arc<Snapshot>, ActorError> {
        // Bounded by in-flight calls, not charged to the tenant's
        // requests-per-second quota (docs/authorization.md).
        let p = self.h.enter_as(Metered::No).await?;
        let s = &p.shared;
        s.policy_source.ensure_fresh(started).await?;
        let applied = s.policy_source.applied_head_rev(&s.tenant).await?;
        if let Some(current) = s.snapshot.get()
            && current.head_rev == applied
        {
            return Ok(current);
        }
        let actor = s
            .children
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .policy
            .clone()
            .ok_or(ActorError::Restarting {
                retry_after: RESTART_RETRY,
            })?;
        call(
            &actor,
            |reply| PolicyMsg::Sync {
                head_rev: applied,
                reply,
            },
            s.config.call_timeout,
        )
        .await?
    }

    /// The snapshot published on this node right now, without admission or
    /// freshness checks (None before the first load or once the tenant
    /// stopped).
    pub fn published(&self) -> Option<Arc<Snapshot>> {
        self.h.shared.snapshot.get()
    }

    /// The node's loading and freshness settings.
    pub fn source(&self) -> &SnapshotSource {
        &self.h.shared.policy_source
    }
}
