//! [`Directory`]: the tenants known on this node (running, or degraded and
//! cooling down), readable without asking the node supervisor, which alone
//! adds and removes them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::tenant::TenantShared;

/// Tenants known on this node, by id: the incarnation registered for each.
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

    pub fn insert(&self, shared: Arc<TenantShared>) {
        let mut t = self.tenants.write().unwrap_or_else(|p| p.into_inner());
        t.insert(shared.tenant.clone(), shared);
    }

    /// Remove `shared` if it is still the registered incarnation; true if
    /// it was (no newer incarnation took its place).
    pub fn remove(&self, shared: &Arc<TenantShared>) -> bool {
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
    pub fn retire(&self, shared: &Arc<TenantShared>) {
        if self.remove(shared) {
            shared.metrics.remove_gauges();
        }
    }
}
