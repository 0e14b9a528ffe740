//! What handlers are given: the consensus handle, the admin credential, the
//! metrics registry and this crate's metric families. Small on purpose; features add their own services.

use std::sync::Arc;

use rsp_consensus::Consensus;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::authz::admin_guard::AdminGuard;
use crate::authz::services::AuthzServices;
use crate::metrics::ApiMetrics;
use crate::miss_limit::{MissLimiter, MissRule};
use crate::oidc::tenant_runtime::TenantRuntimeServices;
use rsp_identity::Identity;
use rsp_identity::oauth::{OidcConfig, OidcServices};
use rsp_identity::tenants::TenantService;

/// The admin token, kept only as a SHA-256 digest and compared in constant
/// time.
#[derive(Clone)]
pub struct AdminToken {
    digest: [u8; 32],
}

impl AdminToken {
    pub fn new(token: Zeroizing<String>) -> Self {
        AdminToken {
            digest: Sha256::digest(token.as_bytes()).into(),
        }
    }

    pub fn matches(&self, presented: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        d.ct_eq(&self.digest).into()
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

#[derive(Clone)]
pub struct AppState {
    pub consensus: Consensus,
    pub admin_token: AdminToken,
    /// Failed admin authentications per client address (this node's).
    pub admin_guard: AdminGuard,
    pub registry: Arc<prometheus::Registry>,
    /// This crate's families in `registry` (requests, tokens, sign-ins).
    pub metrics: ApiMetrics,
    pub tenants: TenantService,
    pub identity: Identity,
    /// Codes, tokens, client authentication, device flow, PAR.
    pub oidc: OidcServices,
    /// Cedar policy stores and decisions; the built-in admin policies.
    pub authz: AuthzServices,
    /// The node's tenant actor runtime (sessions, lockout, rate limits,
    /// policy snapshots), with the second-factor seam and the browser
    /// lifetimes.
    pub tenant_runtime: TenantRuntimeServices,
    /// Per-address buckets for unauthenticated look-ups that would go to
    /// the leader.
    pub misses: MissLimiter,
    /// The node's public URL without a trailing slash; issuers are
    /// `{public_url}/t/{tenant}`.
    pub public_url: Arc<str>,
}

impl AppState {
    pub fn new(
        consensus: Consensus,
        admin_token: AdminToken,
        registry: Arc<prometheus::Registry>,
        identity: Identity,
        public_url: &str,
    ) -> Self {
        AppState {
            oidc: OidcServices::new(
                consensus.clone(),
                identity.clone(),
                public_url,
                OidcConfig::default(),
            ),
            tenant_runtime: TenantRuntimeServices::with_factors(identity.factors.clone()),
            misses: MissLimiter::new(MissRule::default(), consensus.clock().clone()),
            authz: AuthzServices::new(consensus.clone(), rsp_policies::PolicyConfig::default()),
            public_url: Arc::from(public_url.trim_end_matches('/')),
            tenants: TenantService::new(consensus.clone()),
            admin_guard: AdminGuard::new(consensus.clock().clone()),
            metrics: ApiMetrics::in_registry(&registry),
            identity: {
                if let Err(e) =
                    crate::metrics::audit::register(&registry, identity.audit.stats().clone())
                {
                    tracing::warn!(error = %e, "the audit metric families are not registered");
                }
                identity
            },
            consensus,
            admin_token,
            registry,
        }
    }

    /// The node's wall clock (the consensus layer's, injectable in tests).
    pub fn clock(&self) -> &rsp_consensus::Clock {
        self.consensus.clock()
    }

    /// Give the browser pages this node's tenant actor runtime; without
    /// one they answer 503.
    pub fn with_runtime(mut self, runtime: rsp_actors::TenantRuntime) -> Self {
        self.tenant_runtime = self.tenant_runtime.with_runtime(runtime);
        self
    }
}
