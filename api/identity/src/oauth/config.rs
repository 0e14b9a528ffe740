//! Lifetimes and timing of the OAuth protocol objects.

use std::time::Duration;

/// Lifetimes and timing of the protocol objects. The defaults are the
/// product's; tests shorten some of them.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// Authorization codes (RFC 6749 recommends at most 10 minutes).
    pub code_ttl: Duration,
    /// Access and ID tokens.
    pub access_ttl: Duration,
    /// Refresh tokens and their family, renewed on every rotation.
    pub refresh_ttl: Duration,
    /// Device authorization requests (RFC 8628 `expires_in`).
    pub device_ttl: Duration,
    /// Minimum polling interval of the device flow.
    pub device_interval: Duration,
    /// Pushed authorization requests (RFC 9126 `expires_in`).
    pub par_ttl: Duration,
    /// How long a revocation waits for every node to have applied it.
    pub revocation_wait: Duration,
    /// Longest lifetime (`exp - now`) accepted for a `private_key_jwt`
    /// client assertion.
    pub max_assertion_lifetime: Duration,
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            code_ttl: Duration::from_secs(60),
            access_ttl: Duration::from_secs(600),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            device_ttl: Duration::from_secs(600),
            device_interval: Duration::from_secs(5),
            par_ttl: Duration::from_secs(60),
            revocation_wait: Duration::from_secs(1),
            // Some client libraries (authlib) sign assertions for an hour.
            max_assertion_lifetime: Duration::from_secs(3600),
        }
    }
}
