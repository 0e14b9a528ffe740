//! Failed admin authentication, counted per client address: after
//! [`MAX_FAILURES`] failures within [`WINDOW`], the address is refused
//! (429 `too_many_requests` with `Retry-After`) until that window ends,
//! without the token it sends being looked at, so guessing learns nothing.
//!
//! A failure is a 401 from admin authentication (no token, or a token that
//! is neither the admin token nor a valid access token), and, at the
//! decision endpoints, a bearer token that is neither. There a refused
//! address is not answered 429 (its access tokens keep working); only the
//! admin token stops being accepted from it. A success forgets the
//! address's failures: only a holder of a credential can succeed.
//!
//! Addresses are the TCP peer's (`ConnectInfo`): IPv4 addresses one by
//! one, IPv6 ones by their /64 network (one host usually holds a whole
//! /64). A request without `ConnectInfo` (in-process tests) is not
//! counted. Counts live in this node's memory only (each node counts the
//! failures it saw) in a table of at most [`MAX_TRACKED`] addresses: when
//! it is full, expired entries go first, then the oldest.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::http::request::Parts;
use rsp_consensus::Clock;

use crate::authz::error::AuthzError;

/// Failed admin authentications one address may make per window.
pub const MAX_FAILURES: u32 = 10;
/// The window failures are counted in, from an address's first failure.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most.
pub const MAX_TRACKED: usize = 10_000;

/// The per-node table of failed admin authentications. Cheap to clone.
#[derive(Clone)]
pub struct AdminGuard {
    clock: Clock,
    table: Arc<Mutex<HashMap<IpAddr, Failures>>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    /// When the first failure of the window was seen.
    since_ms: u64,
    count: u32,
}

impl std::fmt::Debug for AdminGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminGuard(..)")
    }
}

/// One admin authentication under way, from one address.
#[must_use = "record the outcome, or failures are not counted"]
pub struct Attempt<'a> {
    guard: &'a AdminGuard,
    from: Option<IpAddr>,
}

impl AdminGuard {
    pub fn new(clock: Clock) -> Self {
        AdminGuard {
            clock,
            table: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Start an admin authentication: 429 `too_many_requests` while the
    /// caller's address is over the limit, before any token is checked.
    pub fn admit(&self, parts: &Parts) -> Result<Attempt<'_>, AuthzError> {
        let from = client_key(parts);
        if let Some(wait) = from.and_then(|ip| self.blocked_for(ip)) {
            let mut e = AuthzError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "too many failed admin authentications from this address; try again later",
            );
            e.retry_after = Some(wait.as_millis().div_ceil(1000) as u64);
            return Err(e);
        }
        Ok(Attempt { guard: self, from })
    }

    /// Whether the caller's address is over the limit (the decision
    /// endpoints then do not accept the admin token from it).
    pub fn is_blocked(&self, parts: &Parts) -> bool {
        client_key(parts).is_some_and(|ip| self.blocked_for(ip).is_some())
    }

    /// Count a failed authentication from the caller's address.
    pub fn failed(&self, parts: &Parts) {
        if let Some(ip) = client_key(parts) {
            self.record_failure(ip);
        }
    }

    /// How long `ip` stays refused, if it is.
    fn blocked_for(&self, ip: IpAddr) -> Option<Duration> {
        let now = self.clock.now_ms();
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let f = table.get(&ip)?;
        let ends = f.since_ms.saturating_add(window_ms());
        (f.count >= MAX_FAILURES && now < ends).then(|| Duration::from_millis(ends - now))
    }

    fn record_failure(&self, ip: IpAddr) {
        let now = self.clock.now_ms();
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if !table.contains_key(&ip) && table.len() >= MAX_TRACKED {
            make_room(&mut table, now);
        }
        let f = table.entry(ip).or_insert(Failures {
            since_ms: now,
            count: 0,
        });
        if now >= f.since_ms.saturating_add(window_ms()) {
            *f = Failures {
                since_ms: now,
                count: 0,
            };
        }
        f.count = f.count.saturating_add(1);
        if f.count == MAX_FAILURES {
            tracing::warn!(client = %ip, window_secs = WINDOW.as_secs(), "too many failed admin authentications; refusing this address until the window ends");
        }
    }

    fn succeeded(&self, ip: IpAddr) {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.remove(&ip);
    }
}

impl Attempt<'_> {
    /// Count a 401 against the address; a success forgets its failures.
    pub fn record<T>(self, outcome: Result<T, AuthzError>) -> Result<T, AuthzError> {
        if let Some(ip) = self.from {
            match &outcome {
                Ok(_) => self.guard.succeeded(ip),
                Err(e) if e.status == StatusCode::UNAUTHORIZED => self.guard.record_failure(ip),
                Err(_) => {}
            }
        }
        outcome
    }
}

fn window_ms() -> u64 {
    WINDOW.as_millis() as u64
}

/// Drop expired entries; if none expired, the one whose window began first.
fn make_room(table: &mut HashMap<IpAddr, Failures>, now: u64) {
    table.retain(|_, f| now < f.since_ms.saturating_add(window_ms()));
    if table.len() >= MAX_TRACKED
        && let Some(oldest) = table
            .iter()
            .min_by_key(|(_, f)| f.since_ms)
            .map(|(ip, _)| *ip)
    {
        table.remove(&oldest);
    }
}

/// The address failures are counted under: the peer's IPv4 address, or
/// the /64 network of its IPv6 one.
fn client_key(parts: &Parts) -> Option<IpAddr> {
    let ConnectInfo(addr) = parts.extensions.get::<ConnectInfo<SocketAddr>>()?;
    Some(match addr.ip() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts_from(addr: &str) -> Parts {
        let mut req = axum::http::Request::new(());
        let addr: SocketAddr = addr.parse().expect("address");
        req.extensions_mut().insert(ConnectInfo(addr));
        req.into_parts().0
    }

    fn unauthorized() -> Result<(), AuthzError> {
        Err(AuthzError::unauthorized("invalid_token", "no"))
    }

    #[test]
    fn the_table_stays_bounded_and_forgets_the_oldest_first() {
        let (clock, manual) = Clock::manual(1_000_000);
        let guard = AdminGuard::new(clock);
        for i in 0..MAX_TRACKED as u32 + 5 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            guard.record_failure(ip);
            manual.advance(Duration::from_millis(1));
        }
        let table = guard.table.lock().expect("lock");
        assert_eq!(table.len(), MAX_TRACKED);
        assert!(!table.contains_key(&IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000))));
    }

    #[test]
    fn an_ipv6_network_counts_as_one_address() {
        let (clock, _manual) = Clock::manual(1_000_000);
        let guard = AdminGuard::new(clock);
        for i in 0..MAX_FAILURES {
            let parts = parts_from(&format!("[2001:db8:1:2::{:x}]:4000", i + 1));
            let attempt = guard.admit(&parts).expect("not yet refused");
            let _ = attempt.record(unauthorized());
        }
        assert!(guard.admit(&parts_from("[2001:db8:1:2::ffff]:1")).is_err());
        assert!(guard.admit(&parts_from("[2001:db8:1:3::1]:1")).is_ok());
        assert!(guard.admit(&parts_from("10.0.0.1:1")).is_ok());
    }

    #[test]
    fn a_request_without_an_address_is_not_counted() {
        let (clock, _manual) = Clock::manual(1_000_000);
        let guard = AdminGuard::new(clock);
        let parts = axum::http::Request::new(()).into_parts().0;
        for _ in 0..MAX_FAILURES * 2 {
            let _ = guard
                .admit(&parts)
                .expect("admitted")
                .record(unauthorized());
        }
        assert!(guard.table.lock().expect("lock").is_empty());
    }
}
