//! [`Admission`]: the way a call gets into a tenant on this node. It admits
//! the call to the incarnation it was made with (bounded in-flight calls,
//! the requests-per-second quota) or, if that one stopped for idleness
//! meanwhile, to the incarnation the host starts in its place, so a handle
//! kept across an idle stop goes on working. Each of a tenant's services
//! holds one, given by the tenant's handle; a call then uses the admitted
//! incarnation's consensus handle, clock, config and actors.

use std::sync::Arc;

use crate::error::{ActorError, RESTART_RETRY};
use crate::host::TenantHost;
use crate::tenant::{Metered, Permit, TenantShared};

#[derive(Clone)]
pub(crate) struct Admission {
    shared: Arc<TenantShared>,
    host: Arc<TenantHost>,
}

impl Admission {
    pub fn new(shared: Arc<TenantShared>, host: Arc<TenantHost>) -> Self {
        Admission { shared, host }
    }

    /// The incarnation this admission was made with (it may have stopped
    /// since).
    pub fn shared(&self) -> &Arc<TenantShared> {
        &self.shared
    }

    /// Admit one call, restarting the tenant if it was stopped for idleness.
    pub async fn enter(&self) -> Result<Permit, ActorError> {
        self.enter_as(Metered::Yes).await
    }

    /// [`Self::enter`], choosing whether the call counts against the
    /// requests-per-second quota (it always counts against in-flight).
    pub async fn enter_as(&self, metered: Metered) -> Result<Permit, ActorError> {
        let mut shared = self.shared.clone();
        for _ in 0..3 {
            if let Some(permit) = shared.admit(metered)? {
                return Ok(permit);
            }
            shared = self.host.acquire(&self.shared.tenant).await?;
        }
        Err(ActorError::Restarting {
            retry_after: RESTART_RETRY,
        })
    }
}
