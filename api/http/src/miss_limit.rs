//! The per-node, per-client-address limit on look-ups an unauthenticated
//! caller can make go to the leader: a name this node does not hold (an
//! unknown tenant) must be confirmed by a linearizable read before "not
//! found" is answered, and that read costs a quorum round trip. Before
//! each such read the caller's address takes a token from its bucket; an
//! empty bucket gets `429` with `Retry-After` and no read. The same buckets
//! limit device `user_code` entry (RFC 8628 section 5.1): each code typed
//! at the device page takes a token, found or not.
//!
//! The buckets are this node's, in memory, like the tenant actors' rate
//! limits ([`rsp_actors`]), but not per tenant: an unknown tenant has no
//! actors. Look-ups that this node answers from its own copy cost nothing
//! and take nothing. The table holds at most [`MAX_ADDRESSES`] addresses;
//! past that, buckets that refilled are dropped, and if none did, the
//! newcomers share one bucket (stricter, never looser). A request without
//! a known peer address uses that shared bucket too.
//!
//! The same budget is asked before an unknown OAuth client id (token,
//! introspection, revocation, PAR and device-authorization endpoints, the
//! authorization and logout pages) and an unknown signing key `kid` (an
//! access token at userinfo, introspection or revocation, an
//! `id_token_hint`) are confirmed: the identity look-ups take a
//! [`MissGate`], and [`MissLimiter::gate`] is this node's for an address.
//!
//! There is no negative cache of misses: a repeat would have to be
//! answered without the leader, and a tenant created through another node
//! a moment ago would then be "not found" here although its creation had
//! returned, which a linearizable "not found" must never say.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::Extensions;
use axum::http::request::Parts;
use rsp_consensus::Clock;
use rsp_identity::miss_gate::MissGate;

/// Most addresses with a bucket of their own.
pub const MAX_ADDRESSES: usize = 16_384;

/// Tokens per second and burst of each address's bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MissRule {
    pub per_sec: f64,
    pub burst: f64,
}

impl Default for MissRule {
    /// Two misses a second with a burst of twenty: far more than a person
    /// mistyping a tenant or a user code, far less than a scan.
    fn default() -> Self {
        MissRule {
            per_sec: 2.0,
            burst: 20.0,
        }
    }
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    last_ms: u64,
}

/// The buckets of one node, shared by its handlers.
#[derive(Clone)]
pub struct MissLimiter {
    rule: MissRule,
    clock: Clock,
    /// `None`: the shared bucket.
    buckets: Arc<Mutex<HashMap<Option<IpAddr>, Bucket>>>,
}

impl MissLimiter {
    pub fn new(rule: MissRule, clock: Clock) -> Self {
        MissLimiter {
            rule,
            clock,
            buckets: Arc::default(),
        }
    }

    pub fn rule(&self) -> MissRule {
        self.rule
    }

    /// The gate identity look-ups ask before confirming a miss for `ip`.
    pub fn gate(&self, ip: Option<IpAddr>) -> AddressGate<'_> {
        AddressGate { limiter: self, ip }
    }

    /// Take a token for `ip`, or say how long until one is there.
    pub fn take(&self, ip: Option<IpAddr>) -> Result<(), Duration> {
        let now = self.clock.now_ms();
        let rule = self.rule;
        let refill = |b: &mut Bucket| {
            let dt = now.saturating_sub(b.last_ms) as f64 / 1000.0;
            b.tokens = (b.tokens + dt * rule.per_sec).min(rule.burst);
            b.last_ms = now;
        };
        let Ok(mut buckets) = self.buckets.lock() else {
            // A panicked holder: refuse rather than skip the limit.
            return Err(Duration::from_secs(1));
        };
        let mut key = ip;
        if !buckets.contains_key(&key) && buckets.len() >= MAX_ADDRESSES {
            buckets.retain(|k, b| {
                refill(b);
                k.is_none() || b.tokens < rule.burst
            });
            if buckets.len() >= MAX_ADDRESSES {
                key = None;
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: rule.burst,
            last_ms: now,
        });
        refill(bucket);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = if rule.per_sec > 0.0 {
            (1.0 - bucket.tokens) / rule.per_sec
        } else {
            3600.0
        };
        Err(Duration::from_secs_f64(wait.clamp(1.0, 3600.0)))
    }
}

/// [`MissGate`] taking from one address's bucket.
pub struct AddressGate<'a> {
    limiter: &'a MissLimiter,
    ip: Option<IpAddr>,
}

impl MissGate for AddressGate<'_> {
    fn admit(&self) -> Result<(), Duration> {
        self.limiter.take(self.ip)
    }
}

/// The TCP peer's address of a request, if the server recorded one
/// (`ConnectInfo`; in-process tests may not).
pub fn peer_ip(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Extractor of [`peer_ip`]; never rejects.
pub struct PeerIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PeerIp(peer_ip(&parts.extensions)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_burst_then_waits_and_others_are_not_affected() {
        let (clock, manual) = Clock::manual(1_000_000);
        let limiter = MissLimiter::new(
            MissRule {
                per_sec: 1.0,
                burst: 3.0,
            },
            clock,
        );
        let a = Some(IpAddr::from([192, 0, 2, 1]));
        let b = Some(IpAddr::from([192, 0, 2, 2]));
        for _ in 0..3 {
            assert!(limiter.take(a).is_ok());
        }
        assert!(limiter.take(a).is_err());
        assert!(limiter.take(b).is_ok());
        manual.advance(Duration::from_secs(1));
        assert!(limiter.take(a).is_ok());
        assert!(limiter.take(a).is_err());
    }
}
