//! [`RateLimitService`]: what the API calls for the rate limits of one
//! tenant; each check is one call to the tenant's rate limiter actor (see
//! `rate_limiter` for the cluster-wide semantics).

use crate::admission::Admission;
use crate::error::{ActorError, call};
use crate::rate_limiter::LimiterMsg;

/// Rate limits of one tenant on this node.
#[derive(Clone)]
pub struct RateLimitService {
    admission: Admission,
}

impl RateLimitService {
    pub(crate) fn new(admission: Admission) -> Self {
        RateLimitService { admission }
    }

    /// Take one token from the bucket (`kind`, `key`), or fail with
    /// [`ActorError::RateLimited`] and how long to wait.
    pub async fn check(&self, kind: &str, key: &str) -> Result<(), ActorError> {
        self.check_cost(kind, key, 1.0).await
    }

    /// Take `cost` tokens at once.
    pub async fn check_cost(&self, kind: &str, key: &str, cost: f64) -> Result<(), ActorError> {
        let p = self.admission.enter().await?;
        if p.shared.config.rate_limits.unlimited.contains(kind) {
            return Ok(());
        }
        let actor = p.shared.children.limiter.current()?;
        let (kind, key) = (kind.to_string(), key.to_string());
        let result = call(
            &actor,
            |reply| LimiterMsg::Check {
                kind: kind.clone(),
                key,
                cost,
                reply,
            },
            p.shared.config.call_timeout,
        )
        .await?;
        result.map_err(|retry_after| {
            p.shared.metrics.rate_limited(&kind);
            ActorError::RateLimited { kind, retry_after }
        })
    }
}
