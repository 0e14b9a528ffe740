//! Settings of the tenant runtime. Everything has a default that suits
//! production; tests shrink the times.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Restart budget of a tenant supervisor: more than `max_restarts` child
/// failures within `window` mark the tenant degraded.
#[derive(Debug, Clone, Copy)]
pub struct RestartPolicy {
    pub max_restarts: u32,
    pub window: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            max_restarts: 5,
            window: Duration::from_secs(60),
        }
    }
}

/// Limits of one tenant on one node.
#[derive(Debug, Clone, Copy)]
pub struct TenantLimits {
    /// Calls admitted at once on this node; more get `Overloaded`.
    pub max_in_flight: usize,
    /// Cluster-wide requests per second (each node enforces its share);
    /// 0 turns the quota off.
    pub requests_per_sec: f64,
    /// Cluster-wide burst above the rate.
    pub request_burst: f64,
    /// Live sessions stored for the tenant.
    pub max_sessions: u64,
}

impl Default for TenantLimits {
    fn default() -> Self {
        TenantLimits {
            max_in_flight: 1024,
            requests_per_sec: 5_000.0,
            request_burst: 10_000.0,
            max_sessions: 1_000_000,
        }
    }
}

/// A token bucket's cluster-wide rate and burst.
#[derive(Debug, Clone, Copy)]
pub struct RateRule {
    pub per_sec: f64,
    pub burst: f64,
}

/// Rate-limit kind: the token endpoint, keyed by client id.
pub const KIND_TOKEN: &str = "token";
/// Rate-limit kind: login-form posts, keyed by client IP.
pub const KIND_LOGIN: &str = "login";

/// Token-bucket rules by kind (`"token"`, `"login"`, ...).
#[derive(Debug, Clone)]
pub struct RateLimits {
    pub rules: HashMap<String, RateRule>,
    /// Rule for kinds not listed.
    pub default: RateRule,
    /// Kinds the operator turned off: every check passes.
    pub unlimited: HashSet<String>,
    /// Buckets kept per tenant and node before idle (full) ones are dropped.
    pub max_keys: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        let rules = [
            // Per client on the token endpoint.
            (
                KIND_TOKEN,
                RateRule {
                    per_sec: 500.0,
                    burst: 1000.0,
                },
            ),
            // Per IP on the login form.
            (
                KIND_LOGIN,
                RateRule {
                    per_sec: 5.0,
                    burst: 20.0,
                },
            ),
        ];
        RateLimits {
            rules: rules.into_iter().map(|(k, r)| (k.to_string(), r)).collect(),
            default: RateRule {
                per_sec: 100.0,
                burst: 200.0,
            },
            max_keys: 100_000,
            unlimited: HashSet::new(),
        }
    }
}

impl RateLimits {
    pub fn rule(&self, kind: &str) -> RateRule {
        self.rules.get(kind).copied().unwrap_or(self.default)
    }
}

/// Brute-force lockout: `max_failures` failed logins within `window` lock
/// the account for `lockout`.
#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    pub max_failures: u32,
    pub window: Duration,
    pub lockout: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            max_failures: 5,
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(15 * 60),
        }
    }
}

/// Bounds on sessions.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub min_idle_timeout: Duration,
    pub max_idle_timeout: Duration,
    pub max_lifetime: Duration,
    /// A validation writes a touch only when more than
    /// `idle_timeout / touch_divisor` has passed since the last one.
    pub touch_divisor: u32,
    /// On a local miss, confirm with a linearizable read before answering
    /// "not found" (a session made a moment ago on another node).
    pub linearizable_on_miss: bool,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            min_idle_timeout: Duration::from_millis(100),
            max_idle_timeout: Duration::from_secs(30 * 24 * 3600),
            max_lifetime: Duration::from_secs(365 * 24 * 3600),
            touch_divisor: 10,
            linearizable_on_miss: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// A tenant unused this long on this node is stopped.
    pub idle_timeout: Duration,
    /// How often idle and degraded tenants are looked at.
    pub sweep_interval: Duration,
    pub restart: RestartPolicy,
    /// How long a degraded tenant refuses calls before it may start again.
    pub degraded_cooldown: Duration,
    /// Timeout of calls answered from memory.
    pub call_timeout: Duration,
    /// Timeout of calls that wait for a Raft write (above the consensus
    /// layer's write timeout, so its own verdict arrives first).
    pub write_call_timeout: Duration,
    /// `Retry-After` given with `Overloaded`.
    pub overload_retry_after: Duration,
    /// A node serves revocation-sensitive reads locally only while it heard
    /// from the leader (or, leading, from a quorum) within this bound;
    /// otherwise it reads linearizably and fails closed.
    pub max_local_read_silence: Duration,
    /// How long a revocation waits for every member to confirm.
    pub revoke_confirm_timeout: Duration,
    pub limits: TenantLimits,
    /// Per-tenant overrides of `limits`.
    pub tenant_limits: HashMap<String, TenantLimits>,
    pub rate_limits: RateLimits,
    pub lockout: LockoutPolicy,
    pub sessions: SessionPolicy,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            idle_timeout: Duration::from_secs(600),
            sweep_interval: Duration::from_secs(30),
            restart: RestartPolicy::default(),
            degraded_cooldown: Duration::from_secs(60),
            call_timeout: Duration::from_secs(2),
            write_call_timeout: Duration::from_secs(7),
            overload_retry_after: Duration::from_secs(1),
            max_local_read_silence: Duration::from_millis(1500),
            revoke_confirm_timeout: Duration::from_secs(1),
            limits: TenantLimits::default(),
            tenant_limits: HashMap::new(),
            rate_limits: RateLimits::default(),
            lockout: LockoutPolicy::default(),
            sessions: SessionPolicy::default(),
        }
    }
}

impl RuntimeConfig {
    pub fn limits_for(&self, tenant: &str) -> TenantLimits {
        self.tenant_limits
            .get(tenant)
            .copied()
            .unwrap_or(self.limits)
    }
}
