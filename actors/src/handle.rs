//! [`TenantHandle`]: one tenant's services on this node, as the API calls
//! them. The handle owns the tenant's `Admission` and gives each service
//! a copy of it; the services never see the handle.

use crate::admission::Admission;
use crate::lockout::LockoutService;
use crate::policy_service::PolicyService;
use crate::rate_limit_service::RateLimitService;
use crate::session_service::SessionService;
#[cfg(feature = "testing")]
use crate::{error::ActorError, fault::Fault, tenant::ChildKind};

/// A tenant's services on this node. Cheap to clone; get one per request
/// from `TenantRuntime::tenant`. If the tenant was stopped for idleness
/// meanwhile, calls start it again transparently.
#[derive(Clone)]
pub struct TenantHandle {
    admission: Admission,
}

impl TenantHandle {
    pub(crate) fn new(admission: Admission) -> Self {
        TenantHandle { admission }
    }

    pub fn tenant(&self) -> &str {
        &self.admission.shared().tenant
    }

    pub fn sessions(&self) -> SessionService {
        SessionService::new(self.admission.clone())
    }

    pub fn rate_limits(&self) -> RateLimitService {
        RateLimitService::new(self.admission.clone())
    }

    pub fn lockout(&self) -> LockoutService {
        LockoutService::new(self.admission.clone())
    }

    pub fn policies(&self) -> PolicyService {
        PolicyService::new(self.admission.clone())
    }

    /// Calls admitted and not yet answered for this tenant on this node.
    pub fn in_flight(&self) -> usize {
        self.admission.shared().in_flight()
    }

    /// Make a tenant actor panic or stall (tests only).
    #[cfg(feature = "testing")]
    pub fn inject_fault(&self, child: ChildKind, fault: Fault) -> Result<(), ActorError> {
        use crate::error::RESTART_RETRY;
        use crate::policy_evaluator::PolicyMsg;
        use crate::rate_limiter::LimiterMsg;
        use crate::session_manager::SessionMsg;
        let children = &self.admission.shared().children;
        let sent = match child {
            ChildKind::Sessions => children
                .sessions
                .get()
                .map(|a| a.cast(SessionMsg::Fault(fault)).is_ok()),
            ChildKind::RateLimiter => children
                .limiter
                .get()
                .map(|a| a.cast(LimiterMsg::Fault(fault)).is_ok()),
            ChildKind::Policy => children
                .policy
                .get()
                .map(|a| a.cast(PolicyMsg::Fault(fault)).is_ok()),
        };
        match sent {
            Some(true) => Ok(()),
            _ => Err(ActorError::Restarting {
                retry_after: RESTART_RETRY,
            }),
        }
    }
}
