//! [`TenantRuntime`]: the node-level handle, and the node supervisor actor
//! behind it that starts a tenant supervisor on first use, stops it when
//! idle, and keeps degraded tenants out of service for a cool-down.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use rsp_consensus::Consensus;
use tokio::task::JoinHandle;

use crate::bucket::ClusterShare;
use crate::config::RuntimeConfig;
use crate::error::{ActorError, call};
use crate::features::ClusterFeatures;
use crate::health::{self, RuntimeHealth};
use crate::metrics::ActorMetrics;
use crate::supervisor::{TenantMsg, TenantSupervisor};
use crate::tenant::{Phase, TenantHandle, TenantShared};

/// Longest tenant id (the keyspace `t.<tenant>` is at most 64 bytes).
const MAX_TENANT_LEN: usize = 62;

/// Tenants known on this node, readable without asking the supervisor.
#[derive(Default)]
pub(crate) struct Directory {
    tenants: RwLock<HashMap<String, Arc<TenantShared>>>,
}

impl Directory {
    pub fn get(&self, tenant: &str) -> Option<Arc<TenantShared>> {
        self.tenants
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .cloned()
    }

    pub fn all(&self) -> Vec<Arc<TenantShared>> {
        let t = self.tenants.read().unwrap_or_else(|p| p.into_inner());
        t.values().cloned().collect()
    }

    fn insert(&self, shared: Arc<TenantShared>) {
        let mut t = self.tenants.write().unwrap_or_else(|p| p.into_inner());
        t.insert(shared.tenant.clone(), shared);
    }

    /// Remove `shared` if it is still the registered incarnation; true if
    /// it was (no newer incarnation took its place).
    fn remove(&self, shared: &Arc<TenantShared>) -> bool {
        let mut t = self.tenants.write().unwrap_or_else(|p| p.into_inner());
        let current = t
            .get(&shared.tenant)
            .is_some_and(|s| Arc::ptr_eq(s, shared));
        if current {
            t.remove(&shared.tenant);
        }
        current
    }

    /// Forget a stopped incarnation, and its gauges unless a newer
    /// incarnation (which shares the label values) is running.
    fn retire(&self, shared: &Arc<TenantShared>) {
        if self.remove(shared) {
            shared.metrics.remove_gauges();
        }
    }
}

pub(crate) fn validate_tenant(tenant: &str) -> Result<(), ActorError> {
    let ok = !tenant.is_empty()
        && tenant.len() <= MAX_TENANT_LEN
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ActorError::InvalidTenant(format!(
            "tenant ids are 1 to {MAX_TENANT_LEN} of [A-Za-z0-9_-]"
        )))
    }
}

struct Node;

struct NodeArgs {
    directory: Arc<Directory>,
    config: Arc<RuntimeConfig>,
    consensus: Consensus,
    metrics: ActorMetrics,
    share: Arc<ClusterShare>,
    features: Arc<ClusterFeatures>,
    policy_source: rsp_policies::SnapshotSource,
}

struct NodeState {
    args: NodeArgs,
    tenants: HashMap<ActorId, (ActorRef<TenantMsg>, Arc<TenantShared>)>,
    sweeper: JoinHandle<()>,
}

enum NodeMsg {
    Start {
        tenant: String,
        reply: RpcReplyPort<Result<Arc<TenantShared>, ActorError>>,
    },
    Sweep,
}

impl Actor for Node {
    type Msg = NodeMsg;
    type State = NodeState;
    type Arguments = NodeArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<NodeMsg>,
        args: NodeArgs,
    ) -> Result<NodeState, ActorProcessingErr> {
        let sweeper = myself.send_interval(args.config.sweep_interval, || NodeMsg::Sweep);
        Ok(NodeState {
            args,
            tenants: HashMap::new(),
            sweeper,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<NodeMsg>,
        state: &mut NodeState,
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
        state: &mut NodeState,
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
        state: &mut NodeState,
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
            let c = shared.children.read().unwrap_or_else(|p| p.into_inner());
            c.sessions.iter().for_each(|a| a.stop(None));
            c.limiter.iter().for_each(|a| a.stop(None));
            c.policy.iter().for_each(|a| a.stop(None));
        } else if shared.phase() != Phase::Degraded {
            shared.set_phase(Phase::Stopped);
            state.args.directory.retire(&shared);
        }
        Ok(())
    }
}

impl NodeState {
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

struct RuntimeInner {
    node: ActorRef<NodeMsg>,
    directory: Arc<Directory>,
    config: Arc<RuntimeConfig>,
    dispatcher: JoinHandle<()>,
    features: Arc<ClusterFeatures>,
    features_task: JoinHandle<()>,
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        self.dispatcher.abort();
        self.features_task.abort();
        self.node.stop(Some("runtime dropped".into()));
    }
}

/// The tenant runtime of one node. Cheap to clone; dropping the last clone
/// stops every tenant actor on the node.
#[derive(Clone)]
pub struct TenantRuntime {
    inner: Arc<RuntimeInner>,
}

impl TenantRuntime {
    /// Start with the product's policy settings.
    pub async fn start(
        consensus: Consensus,
        config: RuntimeConfig,
        registry: &prometheus::Registry,
    ) -> Result<TenantRuntime, ActorError> {
        Self::start_with(
            consensus,
            config,
            registry,
            rsp_policies::PolicyConfig::default(),
        )
        .await
    }

    /// Start with these policy settings (freshness bound, slicing).
    pub async fn start_with(
        consensus: Consensus,
        config: RuntimeConfig,
        registry: &prometheus::Registry,
        policies: rsp_policies::PolicyConfig,
    ) -> Result<TenantRuntime, ActorError> {
        let metrics = ActorMetrics::register(registry)?;
        let config = Arc::new(config);
        let directory = Arc::new(Directory::default());
        let (features, features_task) =
            ClusterFeatures::start(consensus.clone(), metrics.cluster_features.clone());
        let args = NodeArgs {
            directory: directory.clone(),
            config: config.clone(),
            share: Arc::new(ClusterShare::new(consensus.clone())),
            features: features.clone(),
            consensus: consensus.clone(),
            metrics,
            policy_source: rsp_policies::SnapshotSource::new(consensus.clone(), policies),
        };
        let (node, _) = Actor::spawn(None, Node, args)
            .await
            .map_err(|e| ActorError::Internal(format!("node supervisor: {e}")))?;
        let dispatcher = crate::dispatch::spawn(&consensus, directory.clone());
        Ok(TenantRuntime {
            inner: Arc::new(RuntimeInner {
                node,
                directory,
                config,
                dispatcher,
                features,
                features_task,
            }),
        })
    }

    /// A handle on `tenant`, starting its actors on this node if needed.
    pub async fn tenant(&self, tenant: &str) -> Result<TenantHandle, ActorError> {
        let shared = self.acquire(tenant).await?;
        Ok(TenantHandle {
            shared,
            runtime: self.clone(),
        })
    }

    pub(crate) async fn acquire(&self, tenant: &str) -> Result<Arc<TenantShared>, ActorError> {
        validate_tenant(tenant)?;
        if let Some(s) = self.inner.directory.get(tenant) {
            match s.phase() {
                Phase::Running => return Ok(s),
                Phase::Degraded if !s.cooldown_left().is_zero() => return Err(s.degraded_error()),
                _ => {}
            }
        }
        let tenant = tenant.to_string();
        call(
            &self.inner.node,
            |reply| NodeMsg::Start { tenant, reply },
            self.inner.config.call_timeout,
        )
        .await
        .map_err(|e| match e {
            ActorError::Restarting { .. } => ActorError::ShuttingDown,
            other => other,
        })?
    }

    /// Status of every tenant known on this node.
    pub fn health(&self) -> RuntimeHealth {
        let mut tenants: Vec<_> = self
            .inner
            .directory
            .all()
            .iter()
            .map(|s| health::of(s))
            .collect();
        tenants.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        RuntimeHealth { tenants }
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Whether every member can read user-tagged sessions, so new ones are
    /// made that way (see [`crate::features`]).
    pub fn session_user_tags(&self) -> bool {
        self.inner.features.session_user_tag()
    }

    /// Stop every tenant actor on this node and wait for them (at most a
    /// few seconds).
    pub async fn shutdown(&self) {
        self.inner.dispatcher.abort();
        self.inner.features_task.abort();
        let _ = self
            .inner
            .node
            .stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(10)))
            .await;
    }
}

#[cfg(feature = "testing")]
pub(crate) async fn apply_fault(fault: crate::tenant::Fault) {
    match fault {
        crate::tenant::Fault::Panic => panic!("injected fault"),
        crate::tenant::Fault::Stall(d) => tokio::time::sleep(d).await,
    }
}
