//! Per-tenant status for `/readyz` details and operators.

use serde::Serialize;

use crate::tenant::{Phase, TenantShared};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TenantStatus {
    Starting,
    Running,
    Stopping,
    Stopped,
    /// The restart budget was spent; calls get `Degraded` until
    /// `retry_after_ms` passes, then the next call starts it afresh.
    Degraded {
        reason: String,
        retry_after_ms: u64,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct TenantHealth {
    pub tenant: String,
    pub status: TenantStatus,
    /// Actor restarts of this incarnation of the tenant.
    pub restarts: u64,
    pub in_flight: usize,
}

/// Tenants known on this node (running, or degraded and cooling down).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RuntimeHealth {
    pub tenants: Vec<TenantHealth>,
}

impl RuntimeHealth {
    pub fn tenant(&self, tenant: &str) -> Option<&TenantHealth> {
        self.tenants.iter().find(|t| t.tenant == tenant)
    }

    pub fn degraded(&self) -> impl Iterator<Item = &TenantHealth> {
        self.tenants
            .iter()
            .filter(|t| matches!(t.status, TenantStatus::Degraded { .. }))
    }

    /// No tenant is degraded.
    pub fn all_serving(&self) -> bool {
        self.degraded().next().is_none()
    }
}

pub(crate) fn of(shared: &TenantShared) -> TenantHealth {
    let status = match shared.phase() {
        Phase::Starting => TenantStatus::Starting,
        Phase::Running => TenantStatus::Running,
        Phase::Stopping => TenantStatus::Stopping,
        Phase::Stopped => TenantStatus::Stopped,
        Phase::Degraded => TenantStatus::Degraded {
            reason: shared.degraded_info().map(|(_, r)| r).unwrap_or_default(),
            retry_after_ms: shared.cooldown_left().as_millis() as u64,
        },
    };
    TenantHealth {
        tenant: shared.tenant.clone(),
        status,
        restarts: shared.restarts.load(std::sync::atomic::Ordering::Relaxed),
        in_flight: shared.in_flight(),
    }
}
