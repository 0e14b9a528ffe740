//! The authorization services of a node: the policy service (for a node
//! without tenant actors) and the built-in admin policy set. Held by the
//! application state; no handler types here.

use std::sync::Arc;

use rsp_consensus::Consensus;
use rsp_policies::{AdminAuthorizer, PolicyConfig, PolicyService};

/// The authorization services of a node.
#[derive(Clone)]
pub struct AuthzServices {
    pub policies: PolicyService,
    /// The built-in admin policy set; `None` only if it failed to compile
    /// (a bug; admin calls that need it then fail closed).
    pub admin: Option<Arc<AdminAuthorizer>>,
}

impl AuthzServices {
    pub fn new(consensus: Consensus, config: PolicyConfig) -> Self {
        let admin = match AdminAuthorizer::new() {
            Ok(a) => Some(Arc::new(a)),
            Err(e) => {
                tracing::error!(error = %e, "the built-in admin policies do not compile");
                None
            }
        };
        AuthzServices {
            policies: PolicyService::new(consensus, config),
            admin,
        }
    }
}
