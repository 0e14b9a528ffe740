//! The tenant supervisor: spawn-links the tenant's session manager, rate
//! limiter and policy evaluator, restarts a child that fails (the child
//! reloads its state from storage as it starts), and marks the tenant
//! degraded and stops when more than `max_restarts` failures happen within
//! the restart window.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SpawnErr, SupervisionEvent};

use crate::policy_evaluator::{PolicyEvaluator, PolicyEvaluatorArgs};
use crate::rate_limiter::{RateLimiter, RateLimiterArgs};
use crate::session_manager::{SessionManager, SessionManagerArgs};
use crate::session_writes::SessionStore;
use crate::tenant::{ChildKind, Phase, TenantShared};

/// Wait before retrying a child whose start failed.
const RESPAWN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest a stopping tenant waits for its children.
const STOP_CHILDREN_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) struct TenantSupervisor;

pub(crate) struct TenantSupervisorState {
    shared: Arc<TenantShared>,
    children: HashMap<ActorId, ChildKind>,
    failures: VecDeque<Instant>,
}

pub(crate) enum TenantMsg {
    Respawn(ChildKind),
}

/// Spawn the child of `kind`, linked, with what it needs of the tenant.
async fn spawn_child(
    myself: &ActorRef<TenantMsg>,
    kind: ChildKind,
    shared: &TenantShared,
) -> Result<ActorId, SpawnErr> {
    let cell = myself.get_cell();
    Ok(match kind {
        ChildKind::Sessions => {
            let args = SessionManagerArgs {
                store: Arc::new(SessionStore {
                    consensus: shared.consensus.clone(),
                    keyspace: shared.keyspace.clone(),
                }),
                max_sessions: shared.limits.max_sessions,
                metrics: shared.metrics.clone(),
                features: shared.features.clone(),
                pending_touches: shared.pending_touches.clone(),
                slot: shared.children.sessions.clone(),
            };
            Actor::spawn_linked(None, SessionManager, args, cell)
                .await?
                .0
                .get_id()
        }
        ChildKind::RateLimiter => {
            let args = RateLimiterArgs {
                config: shared.config.clone(),
                share: shared.share.clone(),
                slot: shared.children.limiter.clone(),
            };
            Actor::spawn_linked(None, RateLimiter, args, cell)
                .await?
                .0
                .get_id()
        }
        ChildKind::Policy => {
            let args = PolicyEvaluatorArgs {
                tenant: shared.tenant.clone(),
                source: shared.policy_source.clone(),
                cell: shared.snapshot.clone(),
                slot: shared.children.policy.clone(),
            };
            Actor::spawn_linked(None, PolicyEvaluator, args, cell)
                .await?
                .0
                .get_id()
        }
    })
}

impl Actor for TenantSupervisor {
    type Msg = TenantMsg;
    type State = TenantSupervisorState;
    type Arguments = Arc<TenantShared>;

    async fn pre_start(
        &self,
        myself: ActorRef<TenantMsg>,
        shared: Arc<TenantShared>,
    ) -> Result<TenantSupervisorState, ActorProcessingErr> {
        let mut children = HashMap::new();
        for kind in ChildKind::ALL {
            match spawn_child(&myself, kind, &shared).await {
                Ok(id) => {
                    children.insert(id, kind);
                }
                Err(e) => {
                    myself.stop_children(Some("tenant failed to start".into()));
                    return Err(format!("{} did not start: {e}", kind.as_str()).into());
                }
            }
        }
        Ok(TenantSupervisorState {
            shared,
            children,
            failures: VecDeque::new(),
        })
    }

    async fn post_stop(
        &self,
        myself: ActorRef<TenantMsg>,
        state: &mut TenantSupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        for kind in ChildKind::ALL {
            state.shared.children.clear(kind);
        }
        myself
            .stop_children_and_wait(Some("tenant stopping".into()), Some(STOP_CHILDREN_TIMEOUT))
            .await;
        if state.shared.phase() != Phase::Degraded {
            state.shared.set_phase(Phase::Stopped);
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<TenantMsg>,
        msg: TenantMsg,
        state: &mut TenantSupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            TenantMsg::Respawn(kind) => state.respawn(&myself, kind).await,
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<TenantMsg>,
        event: SupervisionEvent,
        state: &mut TenantSupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, reason) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            // Children stop only when we stop them; any other exit is a fault.
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".into()))
            }
            _ => return Ok(()),
        };
        if let Some(kind) = state.children.remove(&cell.get_id()) {
            tracing::warn!(tenant = %state.shared.tenant, actor = kind.as_str(), %reason, "tenant actor failed");
            state.shared.children.clear(kind);
            if state.count_failure(&myself, kind, &reason) {
                state.respawn(&myself, kind).await;
            }
        }
        Ok(())
    }
}

impl TenantSupervisorState {
    /// Record a failure; false (and the tenant degraded and stopping) when
    /// the restart budget is spent.
    fn count_failure(
        &mut self,
        myself: &ActorRef<TenantMsg>,
        kind: ChildKind,
        reason: &str,
    ) -> bool {
        let policy = self.shared.config.restart;
        let now = Instant::now();
        self.failures.push_back(now);
        while self
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > policy.window)
        {
            self.failures.pop_front();
        }
        if self.failures.len() > policy.max_restarts as usize {
            self.shared.mark_degraded(format!(
                "{} failed {} times within {:?} (last: {reason})",
                kind.as_str(),
                self.failures.len(),
                policy.window
            ));
            myself.stop(Some("degraded".into()));
            return false;
        }
        true
    }

    async fn respawn(&mut self, myself: &ActorRef<TenantMsg>, kind: ChildKind) {
        if self.shared.phase() == Phase::Degraded {
            return;
        }
        match spawn_child(myself, kind, &self.shared).await {
            Ok(id) => {
                self.children.insert(id, kind);
                self.shared.restarts.fetch_add(1, Ordering::Relaxed);
                self.shared.metrics.restarted(kind.as_str());
            }
            Err(e) => {
                let reason = format!("restart failed: {e}");
                if self.count_failure(myself, kind, &reason) {
                    myself.send_after(RESPAWN_BACKOFF, move || TenantMsg::Respawn(kind));
                }
            }
        }
    }
}
