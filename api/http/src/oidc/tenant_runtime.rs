//! [`TenantRuntimeServices`]: the node's tenant actor runtime (sessions,
//! lockout, rate limits and policy snapshots, used by the browser pages,
//! the token endpoint, the admin session API, readiness and Cedar
//! decisions), with what sign-in plugs into it: the second-factor seam
//! ([`crate::oidc::second_factors`]) and the lifetimes of sessions and
//! forms ([`BrowserConfig`]).
//!
//! Built from handles, not from the application state: `AppState` holds
//! one of these, and nothing here reads `AppState`.

use std::sync::Arc;
use std::time::Duration;

use rsp_actors::{TenantHandle, TenantRuntime};

use crate::oidc::pages::PageError;
use crate::oidc::second_factors::{NoSecondFactors, SecondFactors, StoredFactors};
use rsp_identity::factors::FactorService;

/// Lifetimes of browser sessions and of the signed state a form carries.
#[derive(Debug, Clone)]
pub struct BrowserConfig {
    /// A session ends after this long without use.
    pub session_idle: Duration,
    /// ... and after this long in any case.
    pub session_lifetime: Duration,
    /// How long a rendered form (login, consent, second factor) stays usable.
    pub form_ttl: Duration,
}

impl Default for BrowserConfig {
    fn default() -> Self {
        BrowserConfig {
            session_idle: Duration::from_secs(30 * 60),
            session_lifetime: Duration::from_secs(10 * 3600),
            form_ttl: Duration::from_secs(30 * 60),
        }
    }
}

/// The tenant actor runtime of this node (none yet: the browser pages
/// answer 503), the second-factor seam and the browser lifetimes.
#[derive(Clone)]
pub struct TenantRuntimeServices {
    runtime: Option<TenantRuntime>,
    pub factors: Arc<dyn SecondFactors>,
    pub config: Arc<BrowserConfig>,
}

impl Default for TenantRuntimeServices {
    fn default() -> Self {
        TenantRuntimeServices {
            runtime: None,
            factors: Arc::new(NoSecondFactors),
            config: Arc::new(BrowserConfig::default()),
        }
    }
}

impl TenantRuntimeServices {
    pub fn new(
        runtime: Option<TenantRuntime>,
        factors: Arc<dyn SecondFactors>,
        config: BrowserConfig,
    ) -> Self {
        TenantRuntimeServices {
            runtime,
            factors,
            config: Arc::new(config),
        }
    }

    /// No runtime yet, second factors from `factors`.
    pub fn with_factors(factors: FactorService) -> Self {
        TenantRuntimeServices {
            factors: Arc::new(StoredFactors(factors)),
            ..TenantRuntimeServices::default()
        }
    }

    /// The same factors and lifetimes, on `runtime`.
    pub fn with_runtime(&self, runtime: TenantRuntime) -> Self {
        TenantRuntimeServices {
            runtime: Some(runtime),
            factors: self.factors.clone(),
            config: self.config.clone(),
        }
    }

    pub fn runtime(&self) -> Option<&TenantRuntime> {
        self.runtime.as_ref()
    }

    /// The tenant's actors on this node, for a browser page; without a
    /// runtime the pages answer 503 rather than pretend.
    pub async fn tenant(&self, tenant: &str) -> Result<TenantHandle, PageError> {
        let runtime = self.runtime.as_ref().ok_or_else(|| {
            PageError::unavailable("Sign-in is not available on this node.", None)
        })?;
        Ok(runtime.tenant(tenant).await?)
    }
}
