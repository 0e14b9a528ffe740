//! The caller's say before a look-up confirms a local miss.
//!
//! A client id or signing key this node does not hold may have been made
//! a moment ago through another node, so "not found" is answered only
//! after a linearizable read, which costs a quorum round trip. Look-ups
//! that unauthenticated callers can aim at unknown names take a
//! [`MissGate`] and ask it just before that read; the HTTP edge answers
//! with a per-address budget (`rsp_api::miss_limit`), since only it knows
//! the caller's address. A refused miss reads nothing and fails with
//! [`MissRefused`]. Local hits never ask the gate.

use std::time::Duration;

/// Admits or refuses the confirming read of a local miss.
pub trait MissGate: Send + Sync {
    /// `Err(wait)`: refuse, and say how long until a retry may pass.
    fn admit(&self) -> Result<(), Duration>;
}

/// A gate that admits every confirming read: for callers that are already
/// limited another way (an authenticated caller, an address guard).
pub struct Ungated;

impl MissGate for Ungated {
    fn admit(&self) -> Result<(), Duration> {
        Ok(())
    }
}

/// A confirming read the gate refused; retry after `.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissRefused(pub Duration);

impl std::fmt::Display for MissRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("too many look-ups of unknown names from this address; retry later")
    }
}

impl std::error::Error for MissRefused {}

impl MissRefused {
    /// Ask `gate` before a confirming read.
    pub fn check(gate: &dyn MissGate) -> Result<(), MissRefused> {
        gate.admit().map_err(MissRefused)
    }
}

impl From<MissRefused> for crate::oauth::OAuthError {
    /// 429 `too_many_requests` with `Retry-After`.
    fn from(r: MissRefused) -> Self {
        let mut err = crate::oauth::OAuthError::new(
            crate::oauth::error::OAuthErrorCode::TooManyRequests,
            r.to_string(),
        );
        err.retry_after = Some(r.0.as_secs().max(1));
        err
    }
}
