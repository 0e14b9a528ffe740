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
//! - **Decide** (`PolicyService::snapshot`): admission (the in-flight
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
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rsp_policies::{PolicyError, Snapshot, SnapshotSource};

use crate::actor_slot::ActorSlot;
use crate::error::ActorError;

/// Wait before retrying a load that failed (cluster unavailable).
const RETRY_LOAD: Duration = Duration::from_secs(1);

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

/// What a policy evaluator is given by its tenant supervisor.
pub(crate) struct PolicyEvaluatorArgs {
    pub tenant: String,
    /// The node's loading and freshness settings.
    pub source: SnapshotSource,
    /// Where it publishes the snapshot.
    pub cell: Arc<PolicyCell>,
    /// Where the actor publishes itself once it has loaded.
    pub slot: Arc<ActorSlot<PolicyMsg>>,
}

pub(crate) struct PolicyEvaluatorState {
    tenant: String,
    source: SnapshotSource,
    cell: Arc<PolicyCell>,
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
    Fault(crate::fault::Fault),
}

impl PolicyEvaluatorState {
    /// Load from this node's applied state unless the published snapshot
    /// is already at `wanted` (None: whatever is applied now), and publish.
    async fn refresh(&mut self, wanted: Option<u64>) -> Result<Arc<Snapshot>, ActorError> {
        let current = self.cell.get();
        let wanted = match wanted {
            Some(w) => w,
            None => self.source.applied_head_rev(&self.tenant).await?,
        };
        if let Some(c) = &current
            && c.head_rev == wanted
        {
            return Ok(c.clone());
        }
        match self.source.load(&self.tenant).await {
            Ok(next) => {
                let next = Arc::new(next);
                self.loads += 1;
                tracing::debug!(
                    tenant = %self.tenant,
                    head_rev = next.head_rev,
                    version = next.head.version,
                    loads = self.loads,
                    "policy snapshot published"
                );
                self.cell.set(Some(next.clone()));
                Ok(next)
            }
            Err(e @ PolicyError::Consensus(_)) => Err(e.into()),
            Err(e) => {
                tracing::error!(tenant = %self.tenant, error = %e, "stored policies do not compile; keeping the previous set");
                current.ok_or_else(|| e.into())
            }
        }
    }
}

impl Actor for PolicyEvaluator {
    type Msg = PolicyMsg;
    type State = PolicyEvaluatorState;
    type Arguments = PolicyEvaluatorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<PolicyMsg>,
        args: PolicyEvaluatorArgs,
    ) -> Result<PolicyEvaluatorState, ActorProcessingErr> {
        let mut state = PolicyEvaluatorState {
            tenant: args.tenant,
            source: args.source,
            cell: args.cell,
            loads: 0,
        };
        // A failed load does not keep the tenant's other actors from
        // starting: decisions ask again (`Sync`), and so does a retry.
        if let Err(e) = state.refresh(None).await {
            tracing::warn!(tenant = %state.tenant, error = %e, "policy load failed; retrying");
            myself.send_after(RETRY_LOAD, || PolicyMsg::Reload);
        }
        args.slot.publish(myself);
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<PolicyMsg>,
        state: &mut PolicyEvaluatorState,
    ) -> Result<(), ActorProcessingErr> {
        // Stopped on purpose (idle, shutdown): free the snapshot.
        state.cell.set(None);
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
                    tracing::warn!(tenant = %state.tenant, error = %e, "policy reload failed; retrying");
                    myself.send_after(RETRY_LOAD, || PolicyMsg::Reload);
                }
            }
            PolicyMsg::Sync { head_rev, reply } => {
                let _ = reply.send(state.refresh(Some(head_rev)).await);
            }
            #[cfg(feature = "testing")]
            PolicyMsg::Fault(f) => crate::fault::apply_fault(f).await,
        }
        Ok(())
    }
}
