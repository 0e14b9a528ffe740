//! The policy evaluator actor of one tenant, and the seam the Cedar code
//! plugs into.
//!
//! A [`PolicyLoader`] builds a [`PolicyEngine`] from the tenant's stored
//! policies whenever the evaluator starts (also after a restart) and when a
//! `policy/` key of the tenant changes. Until the Cedar loader exists, the
//! runtime uses [`NoPolicies`], whose engine denies everything with the
//! reason "no policies loaded".

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rsp_consensus::Consensus;
use serde::Serialize;

use crate::error::{ActorError, RESTART_RETRY, call};
use crate::tenant::{TenantHandle, TenantShared};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One authorization question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthzRequest {
    pub principal: String,
    pub action: String,
    pub resource: String,
    pub context: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "lowercase")]
pub enum Decision {
    /// Allowed by these policies.
    Allow { policies: Vec<String> },
    /// Denied, with reasons (policy ids or a diagnostic).
    Deny { reasons: Vec<String> },
}

/// A loaded policy set that answers requests (CPU only, no I/O).
pub trait PolicyEngine: Send + Sync + 'static {
    fn evaluate(&self, request: &AuthzRequest) -> Decision;
    /// Number of policies loaded.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Builds a tenant's engine from storage (`keyspace` is `t.<tenant>`).
pub trait PolicyLoader: Send + Sync + 'static {
    fn load<'a>(
        &'a self,
        consensus: &'a Consensus,
        keyspace: &'a str,
    ) -> BoxFuture<'a, Result<Arc<dyn PolicyEngine>, ActorError>>;
}

/// The empty policy set: denies everything.
pub struct EmptyPolicySet;

impl PolicyEngine for EmptyPolicySet {
    fn evaluate(&self, _request: &AuthzRequest) -> Decision {
        Decision::Deny {
            reasons: vec!["no policies loaded".into()],
        }
    }

    fn len(&self) -> usize {
        0
    }
}

/// The loader used until policies exist: always [`EmptyPolicySet`].
pub struct NoPolicies;

impl PolicyLoader for NoPolicies {
    fn load<'a>(
        &'a self,
        _consensus: &'a Consensus,
        _keyspace: &'a str,
    ) -> BoxFuture<'a, Result<Arc<dyn PolicyEngine>, ActorError>> {
        Box::pin(async { Ok(Arc::new(EmptyPolicySet) as Arc<dyn PolicyEngine>) })
    }
}

pub(crate) struct PolicyEvaluator;

pub(crate) struct PolicyEvaluatorState {
    shared: Arc<TenantShared>,
    engine: Arc<dyn PolicyEngine>,
}

pub(crate) enum PolicyMsg {
    Evaluate {
        request: AuthzRequest,
        reply: RpcReplyPort<Decision>,
    },
    /// Rebuild the engine from storage (a `policy/` key changed).
    Reload,
    #[cfg(feature = "testing")]
    Fault(crate::tenant::Fault),
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
        let engine = shared
            .policy_loader
            .load(&shared.consensus, &shared.keyspace)
            .await?;
        shared
            .children
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .policy = Some(myself);
        Ok(PolicyEvaluatorState { shared, engine })
    }

    async fn handle(
        &self,
        _myself: ActorRef<PolicyMsg>,
        msg: PolicyMsg,
        state: &mut PolicyEvaluatorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PolicyMsg::Evaluate { request, reply } => {
                let _ = reply.send(state.engine.evaluate(&request));
            }
            PolicyMsg::Reload => {
                let s = &state.shared;
                match s.policy_loader.load(&s.consensus, &s.keyspace).await {
                    Ok(engine) => state.engine = engine,
                    // Keep serving the last good set; the error is logged.
                    Err(e) => {
                        tracing::error!(tenant = %s.tenant, error = %e, "policy reload failed")
                    }
                }
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
    pub async fn evaluate(&self, request: AuthzRequest) -> Result<Decision, ActorError> {
        let p = self.h.enter().await?;
        let actor = p
            .shared
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
            |reply| PolicyMsg::Evaluate { request, reply },
            p.shared.config.call_timeout,
        )
        .await
    }
}
