//! Prometheus metrics of the tenant runtime, labelled by tenant and
//! registered in the registry the caller passes in (no global registry);
//! and [`TenantLabels`], the cardinality cap on tenant label values that the
//! HTTP layer's families share.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::error::ActorError;

/// Distinct tenant label values a node gives before folding the rest.
pub const TENANT_LABEL_CAP: usize = 100;
/// The label value of every tenant past the cap.
pub const OTHER_TENANT: &str = "other";

/// The tenant label values: the first `cap` tenants seen keep their id,
/// later ones are [`OTHER_TENANT`], so a node with many tenants does not
/// grow a series per tenant without bound.
#[derive(Clone)]
pub struct TenantLabels {
    cap: usize,
    seen: Arc<Mutex<HashSet<String>>>,
}

impl TenantLabels {
    pub fn new(cap: usize) -> Self {
        TenantLabels {
            cap,
            seen: Arc::default(),
        }
    }

    /// The label value for `tenant`.
    pub fn label(&self, tenant: &str) -> String {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(tenant) {
            return tenant.to_string();
        }
        if seen.len() < self.cap {
            seen.insert(tenant.to_string());
            return tenant.to_string();
        }
        OTHER_TENANT.to_string()
    }
}

#[derive(Clone)]
pub struct ActorMetrics {
    pub active_sessions: IntGaugeVec,
    pub rate_limited: IntCounterVec,
    pub quota_rejections: IntCounterVec,
    pub restarts: IntCounterVec,
    pub in_flight: IntGaugeVec,
    pub overloaded: IntCounterVec,
    pub degraded: IntGaugeVec,
    pub running_tenants: IntGauge,
    /// 1 when every member understands the feature (see [`crate::features`]).
    pub cluster_features: IntGaugeVec,
    pub sessions_created: IntCounterVec,
    pub sessions_revoked: IntCounterVec,
    /// The `tenant` label of the session counters, capped.
    pub tenants: TenantLabels,
}

fn gauge_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let v = IntGaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(v.clone()))?;
    Ok(v)
}

fn counter_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let v = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(v.clone()))?;
    Ok(v)
}

impl ActorMetrics {
    pub fn register(r: &Registry) -> Result<ActorMetrics, ActorError> {
        let build = || -> prometheus::Result<ActorMetrics> {
            let running_tenants = IntGauge::new(
                "rsp_tenant_running",
                "Tenants with a running supervisor on this node",
            )?;
            r.register(Box::new(running_tenants.clone()))?;
            Ok(ActorMetrics {
                cluster_features: gauge_vec(
                    r,
                    "rsp_cluster_feature",
                    "1 when every member of the cluster understands the feature, so this node uses it",
                    &["feature"],
                )?,
                active_sessions: gauge_vec(
                    r,
                    "rsp_tenant_active_sessions",
                    "Live sessions of the tenant (this node's applied view)",
                    &["tenant"],
                )?,
                rate_limited: counter_vec(
                    r,
                    "rsp_tenant_rate_limited_total",
                    "Calls refused by a rate limit",
                    &["tenant", "kind"],
                )?,
                quota_rejections: counter_vec(
                    r,
                    "rsp_tenant_quota_rejections_total",
                    "Calls refused by a tenant quota",
                    &["tenant", "quota"],
                )?,
                restarts: counter_vec(
                    r,
                    "rsp_tenant_actor_restarts_total",
                    "Tenant actors restarted after a failure",
                    &["tenant", "actor"],
                )?,
                in_flight: gauge_vec(
                    r,
                    "rsp_tenant_in_flight",
                    "Calls in flight (admitted, not answered) for the tenant on this node",
                    &["tenant"],
                )?,
                overloaded: counter_vec(
                    r,
                    "rsp_tenant_overloaded_total",
                    "Calls refused because the tenant had too many in flight",
                    &["tenant"],
                )?,
                degraded: gauge_vec(
                    r,
                    "rsp_tenant_degraded",
                    "1 while the tenant is degraded on this node",
                    &["tenant"],
                )?,
                sessions_created: counter_vec(
                    r,
                    "rsp_sessions_created_total",
                    "Sessions started (sign-ins and other session creations)",
                    &["tenant"],
                )?,
                sessions_revoked: counter_vec(
                    r,
                    "rsp_sessions_revoked_total",
                    "Sessions ended before their time: sign-out, single logout, an admin revocation, a user's sessions revoked",
                    &["tenant"],
                )?,
                tenants: TenantLabels::new(TENANT_LABEL_CAP),
                running_tenants,
            })
        };
        build().map_err(|e| ActorError::Internal(format!("metrics: {e}")))
    }

    pub(crate) fn for_tenant(&self, tenant: &str) -> TenantMetrics {
        TenantMetrics {
            active_sessions: self.active_sessions.with_label_values(&[tenant]),
            in_flight: self.in_flight.with_label_values(&[tenant]),
            overloaded: self.overloaded.with_label_values(&[tenant]),
            degraded: self.degraded.with_label_values(&[tenant]),
            sessions_created: self
                .sessions_created
                .with_label_values(&[&self.tenants.label(tenant)]),
            sessions_revoked: self
                .sessions_revoked
                .with_label_values(&[&self.tenants.label(tenant)]),
            all: self.clone(),
            tenant: tenant.to_string(),
        }
    }
}

/// The label values of one tenant, resolved once.
#[derive(Clone)]
pub(crate) struct TenantMetrics {
    pub active_sessions: IntGauge,
    pub in_flight: IntGauge,
    pub overloaded: IntCounter,
    pub degraded: IntGauge,
    /// Capped tenant label: see [`TenantLabels`].
    pub sessions_created: IntCounter,
    pub sessions_revoked: IntCounter,
    all: ActorMetrics,
    tenant: String,
}

impl TenantMetrics {
    pub fn rate_limited(&self, kind: &str) {
        self.all
            .rate_limited
            .with_label_values(&[self.tenant.as_str(), kind])
            .inc();
    }

    pub fn quota_rejected(&self, quota: crate::error::Quota) {
        self.all
            .quota_rejections
            .with_label_values(&[self.tenant.as_str(), quota.as_str()])
            .inc();
    }

    pub fn restarted(&self, actor: &str) {
        self.all
            .restarts
            .with_label_values(&[self.tenant.as_str(), actor])
            .inc();
    }

    /// Drop this tenant's gauges when it stops on this node.
    pub fn remove_gauges(&self) {
        let t = [self.tenant.as_str()];
        let _ = self.all.active_sessions.remove_label_values(&t);
        let _ = self.all.in_flight.remove_label_values(&t);
        let _ = self.all.degraded.remove_label_values(&t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_past_the_cap_fold_into_other() {
        let labels = TenantLabels::new(2);
        assert_eq!(labels.label("a"), "a");
        assert_eq!(labels.label("b"), "b");
        assert_eq!(labels.label("c"), OTHER_TENANT);
        assert_eq!(labels.label("d"), OTHER_TENANT);
        // Tenants seen before the cap was reached keep their label.
        assert_eq!(labels.label("a"), "a");
        assert_eq!(labels.label("b"), "b");
        assert_eq!(labels.label("c"), OTHER_TENANT);
    }

    #[test]
    fn the_default_cap_keeps_a_hundred_tenants() {
        let labels = TenantLabels::new(TENANT_LABEL_CAP);
        for i in 0..TENANT_LABEL_CAP {
            assert_eq!(labels.label(&format!("t{i}")), format!("t{i}"));
        }
        assert_eq!(labels.label("one-more"), OTHER_TENANT);
    }
}
