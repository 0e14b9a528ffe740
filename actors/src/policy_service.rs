//! [`PolicyService`]: authorization decisions for one tenant. A decision
//! reads the snapshot the tenant's policy evaluator publishes, directly
//! (see `policy_evaluator` for how it is loaded, reloaded and published);
//! only a snapshot behind this node's applied state costs a call to the
//! evaluator.

use std::sync::Arc;
use std::time::Instant;

use rsp_policies::{Snapshot, SnapshotSource};

use crate::admission::Admission;
use crate::error::{ActorError, call};
use crate::policy_evaluator::PolicyMsg;
use crate::tenant::Metered;

/// Authorization decisions for one tenant.
#[derive(Clone)]
pub struct PolicyService {
    admission: Admission,
}

impl PolicyService {
    pub(crate) fn new(admission: Admission) -> Self {
        PolicyService { admission }
    }

    /// The snapshot a request that arrived at `started` must be decided on:
    /// it reflects every policy write acknowledged before `started` (the
    /// freshness rule of docs/authorization.md). Decide with
    /// [`Snapshot::decide`]; a snapshot is immutable, so a batch decided on
    /// one sees one state.
    pub async fn snapshot(&self, started: Instant) -> Result<Arc<Snapshot>, ActorError> {
        // Bounded by in-flight calls, not charged to the tenant's
        // requests-per-second quota (docs/authorization.md).
        let p = self.admission.enter_as(Metered::No).await?;
        let s = &p.shared;
        s.policy_source.ensure_fresh(started).await?;
        let applied = s.policy_source.applied_head_rev(&s.tenant).await?;
        if let Some(current) = s.snapshot.get()
            && current.head_rev == applied
        {
            return Ok(current);
        }
        let actor = s.children.policy.current()?;
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
        self.admission.shared().snapshot.get()
    }

    /// The node's loading and freshness settings.
    pub fn source(&self) -> &SnapshotSource {
        &self.admission.shared().policy_source
    }
}
