//! Token buckets and the node's share of a cluster-wide limit.
//!
//! Rate limits are kept in memory on each node, never written through Raft
//! (a write per request would cost more than the request). A cluster-wide
//! limit of `rate` per second with burst `burst` becomes, on each of the `n`
//! members, a bucket of `rate / n` per second and `max(burst / n, 1)`
//! tokens. `ClusterShare` re-reads `n` from the Raft membership at most
//! once a second, and buckets are rescaled when it changes.

use std::time::{Duration, Instant};

use rsp_consensus::Consensus;

use crate::config::RateRule;

/// Longest `Retry-After` a bucket suggests.
const MAX_RETRY: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, capacity: f64, now: Instant) -> Self {
        TokenBucket {
            rate,
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    /// The node's share of a cluster-wide rule among `members` nodes.
    pub fn share(rule: RateRule, members: usize, now: Instant) -> Self {
        let (rate, cap) = share_of(rule, members);
        TokenBucket::new(rate, cap, now)
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.capacity);
        self.last = now;
    }

    /// Take `cost` tokens, or say how long until they would be there.
    pub fn try_take(&mut self, cost: f64, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= cost {
            self.tokens -= cost;
            return Ok(());
        }
        let missing = cost - self.tokens;
        if self.rate <= 0.0 {
            return Err(MAX_RETRY);
        }
        Err(Duration::from_secs_f64(missing / self.rate).min(MAX_RETRY))
    }

    /// Change rate and capacity (membership changed), keeping what is left.
    pub fn rescale(&mut self, rule: RateRule, members: usize, now: Instant) {
        self.refill(now);
        let (rate, cap) = share_of(rule, members);
        self.rate = rate;
        self.capacity = cap;
        self.tokens = self.tokens.min(cap);
    }

    /// Full again: the bucket holds no information and may be dropped.
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.capacity
    }
}

fn share_of(rule: RateRule, members: usize) -> (f64, f64) {
    let n = members.max(1) as f64;
    (rule.per_sec / n, (rule.burst / n).max(1.0))
}

/// The number of members this node divides cluster-wide limits by: the
/// voters and learners of the membership this node knows now. Read on every
/// check (a borrow of openraft's metrics), never cached: a node that has
/// just started or joined counts itself alone until the membership reaches
/// its log, and a count kept for a while after that let it admit the whole
/// cluster's burst by itself (seen as 10 admitted of a burst of 6 over 3
/// nodes in `oauth_rate_limits`).
pub(crate) struct ClusterShare {
    consensus: Consensus,
}

impl ClusterShare {
    pub fn new(consensus: Consensus) -> Self {
        ClusterShare { consensus }
    }

    /// Members of the cluster (voters and learners), at least 1.
    pub fn members(&self) -> usize {
        let n = self
            .consensus
            .raft()
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .nodes()
            .count();
        n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: RateRule = RateRule {
        per_sec: 30.0,
        burst: 30.0,
    };

    #[test]
    fn each_of_three_nodes_admits_a_third_of_the_burst_then_refills_at_a_third_of_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::share(RULE, 3, t0);
        let admitted = (0..100).filter(|_| b.try_take(1.0, t0).is_ok()).count();
        assert_eq!(admitted, 10);
        let wait = b.try_take(1.0, t0).expect_err("empty");
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        let t1 = t0 + Duration::from_secs(1);
        let admitted = (0..100).filter(|_| b.try_take(1.0, t1).is_ok()).count();
        assert_eq!(admitted, 10);
    }

    #[test]
    fn rescaling_to_fewer_members_raises_the_share_and_keeps_spent_tokens_spent() {
        let t0 = Instant::now();
        let mut b = TokenBucket::share(RULE, 3, t0);
        for _ in 0..10 {
            b.try_take(1.0, t0).expect("token");
        }
        b.rescale(RULE, 1, t0);
        assert!(b.try_take(1.0, t0).is_err(), "spent tokens came back");
        let t1 = t0 + Duration::from_millis(500);
        let admitted = (0..100).filter(|_| b.try_take(1.0, t1).is_ok()).count();
        assert_eq!(admitted, 15, "one member refills at the full 30/s");
    }

    #[test]
    fn a_tiny_share_still_admits_one_request() {
        let t0 = Instant::now();
        let rule = RateRule {
            per_sec: 1.0,
            burst: 1.0,
        };
        let mut b = TokenBucket::share(rule, 5, t0);
        assert!(b.try_take(1.0, t0).is_ok());
        assert!(b.try_take(1.0, t0).is_err());
    }
}
