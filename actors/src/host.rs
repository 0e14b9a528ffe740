//! [`TenantHost`]: the tenant machinery of one node, owned as one: the node
//! supervisor, the [`Directory`] of known tenants, the watch dispatcher and
//! the cluster-features task. The runtime and every tenant handle hold it,
//! so it runs while any of them is alive; dropping the last stops it all.
//!
//! [`TenantHost::acquire`] finds a tenant's running incarnation, or has the
//! node supervisor start one.

use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;
use tokio::task::JoinHandle;

use crate::config::RuntimeConfig;
use crate::directory::Directory;
use crate::error::{ActorError, call};
use crate::features::ClusterFeatures;
use crate::node_supervisor::NodeMsg;
use crate::tenant::{Phase, TenantShared};

/// Longest tenant id (the keyspace `t.<tenant>` is at most 64 bytes).
const MAX_TENANT_LEN: usize = 62;

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

pub(crate) struct TenantHost {
    pub node: ActorRef<NodeMsg>,
    pub directory: Arc<Directory>,
    pub config: Arc<RuntimeConfig>,
    pub dispatcher: JoinHandle<()>,
    pub features: Arc<ClusterFeatures>,
    pub features_task: JoinHandle<()>,
}

impl Drop for TenantHost {
    fn drop(&mut self) {
        self.dispatcher.abort();
        self.features_task.abort();
        self.node.stop(Some("runtime dropped".into()));
    }
}

impl TenantHost {
    /// The running incarnation of `tenant`, started if there is none.
    pub async fn acquire(&self, tenant: &str) -> Result<Arc<TenantShared>, ActorError> {
        validate_tenant(tenant)?;
        if let Some(s) = self.directory.get(tenant) {
            match s.phase() {
                Phase::Running => return Ok(s),
                Phase::Degraded if !s.cooldown_left().is_zero() => return Err(s.degraded_error()),
                _ => {}
            }
        }
        let tenant = tenant.to_string();
        call(
            &self.node,
            |reply| NodeMsg::Start { tenant, reply },
            self.config.call_timeout,
        )
        .await
        .map_err(|e| match e {
            ActorError::Restarting { .. } => ActorError::ShuttingDown,
            other => other,
        })?
    }

    /// Stop every tenant actor on this node and wait for them (at most a
    /// few seconds).
    pub async fn shutdown(&self) {
        self.dispatcher.abort();
        self.features_task.abort();
        let _ = self
            .node
            .stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(10)))
            .await;
    }
}
