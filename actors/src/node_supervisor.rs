//! The node supervisor actor: it starts a tenant's supervisor on first use
//! (a new incarnation, registered in the [`Directory`]), stops tenants that
//! have been idle, and keeps a degraded tenant out of service for its
//! cool-down before letting the next use start it afresh. Callers reach it
//! through the host (`TenantHost::acquire`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use rsp_consensus::Consensus;
use tokio::task::JoinHandle;

use crate::bucket::ClusterShare;
use crate::config::RuntimeConfig;
use crate::directory::Directory;
use crate::error::ActorError;
use crate::features::ClusterFeatures;
use crate::metrics::ActorMetrics;
use crate::supervisor::{TenantMsg, TenantSupervisor};
use crate::tenant::{Phase, TenantShared};

pub(crate) struct NodeSupervisor;

pub(crate) struct NodeSupervisorArgs {
    pub directory: Arc<Directory>,
    pub config: Arc<RuntimeConfig>,
    pub consensus: Consensus,
    pub metrics: ActorMetrics,
    pub share: Arc<ClusterShare>,
    pub features: Arc<ClusterFeatures>,
    pub policy_source: rsp_policies::SnapshotSource,
}

pub(crate) struct NodeSupervisorState {
    args: NodeSupervisorArgs,
    tenants: HashMap<ActorId, (ActorRef<TenantMsg>, Arc<TenantShared>)>,
    sweeper: JoinHandle<()>,
}

pub(crate) enum NodeMsg {
    Start {
        tenant: String,
        reply: RpcReplyPort<Result<Arc<TenantShared>, ActorError>>,
    },
    Sweep,
}

impl Actor for NodeSupervisor {
    type Msg = NodeMsg;
    type State = NodeSupervisorState;
    type Arguments = NodeSupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<NodeMsg>,
        args: NodeSupervisorArgs,
    ) -> Result<NodeSupervisorState, ActorProcessingErr> {
        let sweeper = myself.send_interval(args.config.sweep_interval, || NodeMsg::Sweep);
        Ok(NodeSupervisorState {
            args,
            tenants: HashMap::new(),
            sweeper,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<NodeMsg>,
        state: &mut NodeSupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        state.sweeper.abort();
        for (actor, shared) in state.tenants.values() {
            shared.set_phase(Phase::Stopping);
            let _ = actor
                .stop_and_wait(Some("node stopping".into()), Some(Duration::from_secs(5)))
                .await;
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<NodeMsg>,
        msg: NodeMsg,
        state: &mut NodeSupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            NodeMsg::Start { tenant, reply } => {
                let result = state.start(&myself, &tenant).await;
                let _ = reply.send(result);
            }
            NodeMsg::Sweep => state.sweep(),
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<NodeMsg>,
        event: SupervisionEvent,
        state: &mut NodeSupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, failure) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, Some(err.to_string())),
            SupervisionEvent::ActorTerminated(cell, _, _) => (cell, None),
            _ => return Ok(()),
        };
        let Some((_, shared)) = state.tenants.remove(&cell.get_id()) else {
            return Ok(());
        };
        state.args.metrics.running_tenants.dec();
        if let Some(err) = failure {
            // The tenant supervisor itself failed: its children may be
            // orphaned, so stop them, and keep the tenant out for a while.
            shared.mark_degraded(format!("tenant supervisor failed: {err}"));
            shared.children.stop_all();
        } else if shared.phase() != Phase::Degraded {
            shared.set_phase(Phase::Stopped);
            state.args.directory.retire(&shared);
        }
        Ok(())
    }
}

impl NodeSupervisorState {
    async fn start(
        &mut self,
        myself: &ActorRef<NodeMsg>,
        tenant: &str,
    ) -> Result<Arc<TenantShared>, ActorError> {
        if let Some(s) = self.args.directory.get(tenant) {
            match s.phase() {
                Phase::Running => return Ok(s),
                Phase::Degraded if !s.cooldown_left().is_zero() => return Err(s.degraded_error()),
                // Stopping, stopped, or cooled down: start a new incarnation.
                _ => {
                    self.args.directory.remove(&s);
                }
            }
        }
        let a = &self.args;
        let shared = Arc::new(TenantShared::new(
            tenant,
            a.consensus.clone(),
            a.config.clone(),
            a.metrics.for_tenant(tenant),
            a.share.clone(),
            a.features.clone(),
            a.policy_source.clone(),
        ));
        shared.metrics.degraded.set(0);
        let (actor, _) =
            Actor::spawn_linked(None, TenantSupervisor, shared.clone(), myself.get_cell())
                .await
                .map_err(|e| {
                    ActorError::Unavailable(format!("tenant {tenant} did not start: {e}"))
                })?;
        shared.set_phase(Phase::Running);
        self.tenants.insert(actor.get_id(), (actor, shared.clone()));
        a.directory.insert(shared.clone());
        a.metrics.running_tenants.inc();
        tracing::debug!(tenant, "tenant started");
        Ok(shared)
    }

    fn sweep(&mut self) {
        let idle = self.args.config.idle_timeout;
        for (actor, shared) in self.tenants.values() {
            if shared.try_begin_idle_stop(idle) {
                tracing::debug!(tenant = %shared.tenant, "stopping idle tenant");
                actor.stop(Some("idle".into()));
            }
        }
        for shared in self.args.directory.all() {
            if shared.phase() == Phase::Degraded && shared.cooldown_left().is_zero() {
                self.args.directory.retire(&shared);
            }
        }
    }
}
