//! [`TenantRuntime`]: the node-level handle the API starts once and asks
//! for tenants. Starting it wires the node's tenant machinery (the node
//! supervisor, the directory, the watch dispatcher, the cluster-features
//! task) into a `TenantHost`; each [`TenantHandle`] it gives out shares
//! that host.

use std::sync::Arc;

use ractor::Actor;
use rsp_consensus::Consensus;

use crate::admission::Admission;
use crate::bucket::ClusterShare;
use crate::config::RuntimeConfig;
use crate::directory::Directory;
use crate::error::ActorError;
use crate::features::ClusterFeatures;
use crate::handle::TenantHandle;
use crate::health::{self, RuntimeHealth};
use crate::host::TenantHost;
use crate::metrics::ActorMetrics;
use crate::node_supervisor::{NodeSupervisor, NodeSupervisorArgs};

/// The tenant runtime of one node. Cheap to clone; once the last clone and
/// the last tenant handle are dropped, every tenant actor on the node stops.
#[derive(Clone)]
pub struct TenantRuntime {
    host: Arc<TenantHost>,
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
        let args = NodeSupervisorArgs {
            directory: directory.clone(),
            config: config.clone(),
            share: Arc::new(ClusterShare::new(consensus.clone())),
            features: features.clone(),
            consensus: consensus.clone(),
            metrics,
            policy_source: rsp_policies::SnapshotSource::new(consensus.clone(), policies),
        };
        let (node, _) = Actor::spawn(None, NodeSupervisor, args)
            .await
            .map_err(|e| ActorError::Internal(format!("node supervisor: {e}")))?;
        let dispatcher = crate::dispatch::spawn(&consensus, directory.clone());
        Ok(TenantRuntime {
            host: Arc::new(TenantHost {
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
        let shared = self.host.acquire(tenant).await?;
        Ok(TenantHandle::new(Admission::new(shared, self.host.clone())))
    }

    /// Status of every tenant known on this node.
    pub fn health(&self) -> RuntimeHealth {
        let mut tenants: Vec<_> = self
            .host
            .directory
            .all()
            .iter()
            .map(|s| health::of(s))
            .collect();
        tenants.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        RuntimeHealth { tenants }
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.host.config
    }

    /// Whether every member can read user-tagged sessions, so new ones are
    /// made that way (see [`crate::features`]).
    pub fn session_user_tags(&self) -> bool {
        self.host.features.session_user_tag()
    }

    /// Stop every tenant actor on this node and wait for them (at most a
    /// few seconds).
    pub async fn shutdown(&self) {
        self.host.shutdown().await;
    }
}
