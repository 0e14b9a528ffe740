//! Usage per tenant per day, for billing: active users (distinct users who
//! signed in, by any protocol), sign-ins, token responses issued and
//! authorization decisions.
//!
//! Each node counts in memory ([`UsageMeter`]: a counter bump, no write on
//! the request path) and merges its counts through Raft every
//! [`FLUSH_EVERY`], on [`UsageMeter::flush`] and at graceful shutdown. A
//! merge writes this process's running totals of each day (not
//! increments) under a key of its own, so a write retried after a lost
//! answer counts nothing twice; the day's figure is the sum over the keys.
//! A node that restarts gets a new key (its process id, `incarnation`) and
//! the old one keeps what was merged. Active users are one key per user
//! and day, written once per node.
//!
//! Exactness: after a merge the figures are exact. What a node counted and
//! had not merged when it was killed (at most [`FLUSH_EVERY`] of its
//! traffic) is lost; a graceful stop merges first.
//!
//! Records (tenant keyspace, kept [`RETENTION_DAYS`]):
//! - `usage/<YYYY-MM-DD>/n/<node>-<incarnation>` -> JSON [`Counts`];
//! - `usage/<YYYY-MM-DD>/u/<user id>` -> empty.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::NaiveDate;
use rsp_consensus::kv::{Key, Txn, TxnOp, tenant_keyspace};
use rsp_consensus::{Consensus, ConsensusError, Consistency};
use serde::{Deserialize, Serialize};

use crate::tenants::TenantService;

/// How often a node merges its counts.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);
/// How long a day's records are kept.
pub const RETENTION_DAYS: u64 = 400;
/// The most days one read covers.
pub const MAX_DAYS: i64 = 366;
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// One process's running totals of one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub logins: u64,
    pub tokens_issued: u64,
    pub authz_decisions: u64,
}

/// One day's figures, as the usage route answers them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayUsage {
    pub date: String,
    pub active_users: u64,
    pub logins: u64,
    pub tokens_issued: u64,
    pub authz_decisions: u64,
}

#[derive(Default)]
struct Day {
    counts: Counts,
    merged: Counts,
    /// Users seen and not yet merged.
    users: HashSet<String>,
    /// Users already merged today by this process.
    merged_users: HashSet<String>,
}

struct Shared {
    consensus: Consensus,
    tenants: TenantService,
    node: u64,
    incarnation: u64,
    /// By tenant and day (days since the Unix epoch, UTC): the request
    /// path finds its counter without formatting a date.
    days: Mutex<HashMap<(String, u64), Day>>,
    /// Merges one at a time.
    merging: tokio::sync::Mutex<()>,
    ticker: OnceLock<()>,
}

/// A node's usage counters. A handle: clones share the counts.
#[derive(Clone)]
pub struct UsageMeter(Arc<Shared>);

/// The UTC date of `ms` since the epoch.
pub fn date_of(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string()
}

impl UsageMeter {
    pub fn new(consensus: Consensus, tenants: TenantService) -> Self {
        let node = consensus.id();
        UsageMeter(Arc::new(Shared {
            consensus,
            tenants,
            node,
            incarnation: rand::random::<u64>(),
            days: Mutex::default(),
            merging: tokio::sync::Mutex::new(()),
            ticker: OnceLock::new(),
        }))
    }

    fn count(&self, tenant: &str, f: impl FnOnce(&mut Day)) {
        self.0.ticker.get_or_init(|| {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let weak = Arc::downgrade(&self.0);
                rt.spawn(async move {
                    let mut every = tokio::time::interval(FLUSH_EVERY);
                    every.tick().await;
                    loop {
                        every.tick().await;
                        let Some(shared) = weak.upgrade() else { return };
                        if let Err(e) = UsageMeter(shared).flush().await {
                            tracing::debug!(error = %e, "usage merge postponed");
                        }
                    }
                });
            }
        });
        let day = self.0.consensus.clock().now_ms() / DAY_MS;
        let mut days = self.0.days.lock().unwrap_or_else(|p| p.into_inner());
        f(days.entry((tenant.to_string(), day)).or_default());
    }

    /// A finished sign-in of `user_id`.
    pub fn login(&self, tenant: &str, user_id: &str) {
        self.count(tenant, |d| {
            d.counts.logins += 1;
            if !d.merged_users.contains(user_id) {
                d.users.insert(user_id.to_string());
            }
        });
    }

    /// A token response issued.
    pub fn token_issued(&self, tenant: &str) {
        self.count(tenant, |d| d.counts.tokens_issued += 1);
    }

    /// `n` authorization decisions answered.
    pub fn decisions(&self, tenant: &str, n: u64) {
        self.count(tenant, |d| d.counts.authz_decisions += n);
    }

    /// Merge what this node counted and has not merged, in one write.
    pub async fn flush(&self) -> Result<(), ConsensusError> {
        let _one = self.0.merging.lock().await;
        let today = self.0.consensus.clock().now_ms() / DAY_MS;
        let mut pending: Vec<((String, u64), Counts, Vec<String>)> = Vec::new();
        {
            let days = self.0.days.lock().unwrap_or_else(|p| p.into_inner());
            for (at, day) in days.iter() {
                if day.counts != day.merged || !day.users.is_empty() {
                    pending.push((at.clone(), day.counts, day.users.iter().cloned().collect()));
                }
            }
        }
        let mut ops = Vec::new();
        let ttl_ms = Some(RETENTION_DAYS * DAY_MS);
        for ((tenant, day), counts, users) in &pending {
            let date = date_of(day * DAY_MS);
            // A deleted tenant has nothing to bill (a local miss is
            // confirmed: it may have been created a moment ago elsewhere).
            if let Err(crate::tenants::TenantError::NotFound(_)) =
                self.0.tenants.get_confirmed(tenant).await
            {
                continue;
            }
            let keyspace = tenant_keyspace(tenant);
            let totals = format!(
                "usage/{date}/n/{:x}-{:016x}",
                self.0.node, self.0.incarnation
            );
            ops.push(TxnOp::Put {
                key: Key::new(keyspace.clone(), totals.into_bytes()),
                value: serde_json::to_vec(counts).expect("counts serialize"),
                ttl_ms,
            });
            for user in users {
                ops.push(TxnOp::Put {
                    key: Key::new(
                        keyspace.clone(),
                        format!("usage/{date}/u/{user}").into_bytes(),
                    ),
                    value: Vec::new(),
                    ttl_ms,
                });
            }
        }
        if !ops.is_empty() {
            self.0.consensus.txn(Txn::ops(ops)).await?;
        }
        let mut days = self.0.days.lock().unwrap_or_else(|p| p.into_inner());
        for (at, counts, users) in pending {
            if let Some(day) = days.get_mut(&at) {
                day.merged = counts;
                for user in users {
                    day.users.remove(&user);
                    day.merged_users.insert(user);
                }
            }
        }
        // Days before yesterday that are fully merged leave memory.
        days.retain(|(_, at), day| {
            *at + 1 >= today || day.counts != day.merged || !day.users.is_empty()
        });
        Ok(())
    }
}

/// A calendar day (UTC).
pub use chrono::NaiveDate as Date;

/// The first millisecond of `date` (UTC) since the epoch.
pub fn start_ms(date: NaiveDate) -> u64 {
    date.and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp_millis().max(0) as u64)
}

/// The day `days` before `date`.
pub fn days_before(date: NaiveDate, days: u64) -> NaiveDate {
    date.checked_sub_days(chrono::Days::new(days))
        .unwrap_or(date)
}

/// An RFC 3339 time as milliseconds since the epoch (`None` before 1970).
pub fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    let t = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    u64::try_from(t.timestamp_millis()).ok()
}

/// A `YYYY-MM-DD` date.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .filter(|_| s.len() == 10)
}

#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
    #[error("{0}")]
    BadRange(String),
    #[error("a stored usage record is unreadable: {0}")]
    Corrupt(String),
}

/// The figures of `tenant` for every day from `from` to `to` (inclusive,
/// at most [`MAX_DAYS`]), as merged so far, read linearizably.
pub async fn days(
    consensus: &Consensus,
    tenant: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DayUsage>, UsageError> {
    let span = to.signed_duration_since(from).num_days();
    if span < 0 {
        return Err(UsageError::BadRange("`from` is after `to`".into()));
    }
    if span >= MAX_DAYS {
        return Err(UsageError::BadRange(format!(
            "at most {MAX_DAYS} days per call"
        )));
    }
    consensus.linearizable_barrier().await?;
    let keyspace = tenant_keyspace(tenant);
    let mut out = Vec::new();
    let mut date = from;
    while date <= to {
        let day = date.format("%Y-%m-%d").to_string();
        let prefix = format!("usage/{day}/");
        // After the barrier, this node's copy holds every merge
        // acknowledged before the call.
        let (kvs, _) = consensus
            .range(&keyspace, prefix.as_bytes(), usize::MAX, Consistency::Local)
            .await?;
        let mut usage = DayUsage {
            date: day,
            active_users: 0,
            logins: 0,
            tokens_issued: 0,
            authz_decisions: 0,
        };
        for kv in kvs {
            let rest = &kv.key.key[prefix.len()..];
            if rest.starts_with(b"u/") {
                usage.active_users += 1;
            } else if rest.starts_with(b"n/") {
                let c: Counts = serde_json::from_slice(&kv.value)
                    .map_err(|e| UsageError::Corrupt(e.to_string()))?;
                usage.logins += c.logins;
                usage.tokens_issued += c.tokens_issued;
                usage.authz_decisions += c.authz_decisions;
            }
        }
        out.push(usage);
        date = date
            .succ_opt()
            .ok_or_else(|| UsageError::BadRange("date".into()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_days_and_parse_strictly() {
        assert_eq!(date_of(1_700_000_000_123), "2023-11-14");
        assert!(parse_date("2026-12-07").is_some());
        for bad in [
            "2026-13-01",
            "2026-1-7",
            "yesterday",
            "2026-12-07T00:00:00Z",
        ] {
            assert!(parse_date(bad).is_none(), "{bad}");
        }
        // Counters are kept by day index; a day's first millisecond is
        // that day's date.
        let day = 1_700_000_000_123 / DAY_MS;
        assert_eq!(date_of(day * DAY_MS), "2023-11-14");
        assert_eq!(date_of((day - 1) * DAY_MS), "2023-11-13");
    }

    /// Fault injection: the leader is killed while a follower merges its
    /// counts, so the merge's outcome is unknown and it is made again; the
    /// day still counts each request once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_merge_made_again_after_a_killed_leader_counts_nothing_twice() {
        let (cluster, leader, consensus, other) =
            crate::test_cluster::follower_with_tenant("acme").await;
        let meter = UsageMeter::new(consensus.clone(), TenantService::new(consensus.clone()));
        for i in 0..10 {
            meter.token_issued("acme");
            meter.login("acme", &format!("user-{}", i % 3));
        }
        meter.decisions("acme", 7);
        let merging = {
            let meter = meter.clone();
            tokio::spawn(async move { meter.flush().await })
        };
        cluster.stop(leader).await;
        let _ = merging.await.expect("joined");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while let Err(e) = meter.flush().await {
            assert!(tokio::time::Instant::now() < deadline, "{e}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        meter.flush().await.expect("a merge with nothing new");
        let today = parse_date(&date_of(consensus.clock().now_ms())).expect("today");
        let read = cluster.node(other).clone();
        let got = days(&read, "acme", today, today).await.expect("read");
        assert_eq!(
            got[0],
            DayUsage {
                date: date_of(consensus.clock().now_ms()),
                active_users: 3,
                logins: 10,
                tokens_issued: 10,
                authz_decisions: 7,
            }
        );
    }
}
