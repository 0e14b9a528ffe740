//! The audit trail: every administrator's change and every security event
//! (sign-ins, lockouts, second-factor and password changes, revocations),
//! recorded through Raft so that an event recorded on one node is read from
//! every node.
//!
//! Recording must not cost a Raft write per sign-in: [`AuditLog::record`]
//! only queues the event (it never waits and never fails the caller), and
//! one task per node writes what queued as one transaction, after a short
//! linger ([`LINGER`]) that lets a burst of sign-ins share the write. An
//! administrator's change uses [`AuditLog::record_and_wait`] instead: its
//! answer comes once its event is committed, so the trail read right after
//! on any node shows it.
//!
//! Records: in the tenant's keyspace, `audit/<inverted time>-<node>-<seq>`
//! (hex; the time inverted so that a key-order scan lists the newest
//! first), JSON [`AuditEvent`], kept for the tenant's
//! `audit_retention_days` (default [`DEFAULT_RETENTION_DAYS`]) by the
//! store's own expiry. Events of the cluster (membership, tenants created
//! or deleted) and of a tenant that no longer exists go to the system
//! keyspace under the same prefix. A retention change applies to events
//! recorded after it.
//!
//! What is never recorded: passwords, codes, tokens, secrets, keys. The
//! recorders pass identifiers only (user and client ids, usernames,
//! session handles), and [`Draft`] bounds each value's length.
//!
//! Loss: an event queued on a node that is killed before its write (at
//! most [`LINGER`] plus one write) is lost; a queue that overflows drops
//! the newest events and counts them ([`AuditStats`]). Graceful shutdown
//! flushes ([`AuditLog::flush`]).

pub mod query;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rsp_consensus::kv::{Key, SYSTEM_KEYSPACE, Txn, TxnOp, tenant_keyspace};
use rsp_consensus::{Consensus, ConsensusError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use crate::tenants::TenantService;

/// The key prefix of audit records, in a tenant's keyspace or the system
/// keyspace.
pub const PREFIX: &[u8] = b"audit/";
/// How long a queued event waits for others to share its write.
pub const LINGER: Duration = Duration::from_millis(100);
/// The most events one write carries.
pub const MAX_BATCH: usize = 256;
/// Events a node may hold queued; past this, new ones are dropped and
/// counted.
pub const QUEUE: usize = 8192;
/// Retention when a tenant sets none, and of the cluster's events.
pub const DEFAULT_RETENTION_DAYS: u64 = 90;
/// The longest text kept in any field of an event.
pub const MAX_TEXT: usize = 256;
/// How long a write is retried (no leader, a lost answer) before its
/// events are given up and counted as failed.
const RETRY_FOR: Duration = Duration::from_secs(15);
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Whether the audited action succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn parse(s: &str) -> Option<Outcome> {
        match s {
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            _ => None,
        }
    }
}

/// One recorded event, as stored and as the audit route lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Unique in the cluster: `<time ms>-<node>-<seq>`.
    pub id: String,
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Who acted: `operator`, `user:<id>` (a tenant administrator or the
    /// signed-in user), `client:<id>`, or `anonymous`.
    pub actor: String,
    pub outcome: Outcome,
    /// The caller's address, when the event came from a request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The tenant of a cluster event about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub details: Map<String, Value>,
    /// Milliseconds since the Unix epoch (the same instant as `time`).
    pub time_ms: u64,
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct Draft {
    /// `None`: a cluster event.
    pub tenant: Option<String>,
    pub kind: String,
    pub actor: String,
    pub outcome: Outcome,
    pub ip: Option<IpAddr>,
    pub details: Map<String, Value>,
}

impl Draft {
    pub fn new(
        tenant: Option<&str>,
        kind: &str,
        actor: impl Into<String>,
        outcome: Outcome,
    ) -> Self {
        Draft {
            tenant: tenant.map(str::to_string),
            kind: kind.to_string(),
            actor: actor.into(),
            outcome,
            ip: None,
            details: Map::new(),
        }
    }

    pub fn ip(mut self, ip: Option<IpAddr>) -> Self {
        self.ip = ip;
        self
    }

    /// Add a detail; text is cut to [`MAX_TEXT`] characters.
    pub fn detail(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.details.insert(name.to_string(), bounded(value.into()));
        self
    }
}

/// `value` with every string cut to [`MAX_TEXT`] characters and at most
/// 32 entries per array or object.
fn bounded(value: Value) -> Value {
    match value {
        Value::String(s) if s.chars().count() > MAX_TEXT => {
            Value::String(s.chars().take(MAX_TEXT).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().take(32).map(bounded).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .take(32)
                .map(|(k, v)| (k, bounded(v)))
                .collect(),
        ),
        other => other,
    }
}

/// What this node's recorder did since it started.
#[derive(Debug, Default)]
pub struct AuditStats {
    /// Events committed.
    pub recorded: AtomicU64,
    /// Events dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Events whose write failed after its retries.
    pub failed: AtomicU64,
    /// Writes made (each carries up to [`MAX_BATCH`] events).
    pub writes: AtomicU64,
}

/// Why a waited-for event is not known to be recorded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    #[error("the audit queue is full")]
    QueueFull,
    #[error("the audit write failed: {0}")]
    Write(String),
    #[error("the audit recorder stopped")]
    Stopped,
}

enum Msg {
    Event(Box<Queued>),
    Flush(oneshot::Sender<()>),
}

struct Queued {
    event: AuditEvent,
    done: Option<oneshot::Sender<Result<(), AuditError>>>,
}

struct Shared {
    consensus: Consensus,
    tenants: TenantService,
    node: u64,
    seq: AtomicU64,
    stats: Arc<AuditStats>,
    /// Started on first use, inside the runtime.
    tx: OnceLock<mpsc::Sender<Msg>>,
    /// Records nothing (benchmarks compare with it; no setting reaches it).
    disabled: bool,
}

/// A node's audit recorder. A handle: clones share the queue.
#[derive(Clone)]
pub struct AuditLog(Arc<Shared>);

impl AuditLog {
    pub fn new(consensus: Consensus, tenants: TenantService) -> Self {
        Self::build(consensus, tenants, false)
    }

    /// A recorder that records nothing: what the audit trail costs is
    /// measured against it (`api/http/benches`). No setting or flag of
    /// `rsp` builds one.
    pub fn disabled(consensus: Consensus, tenants: TenantService) -> Self {
        Self::build(consensus, tenants, true)
    }

    fn build(consensus: Consensus, tenants: TenantService, disabled: bool) -> Self {
        let node = consensus.id();
        AuditLog(Arc::new(Shared {
            consensus,
            tenants,
            node,
            seq: AtomicU64::new(rand::random::<u32>() as u64),
            stats: Arc::default(),
            tx: OnceLock::new(),
            disabled,
        }))
    }

    pub fn stats(&self) -> &Arc<AuditStats> {
        &self.0.stats
    }

    fn sender(&self) -> &mpsc::Sender<Msg> {
        self.0.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(run(self.0.clone(), rx));
            tx
        })
    }

    fn stamp(&self, draft: Draft) -> AuditEvent {
        let time_ms = self.0.consensus.clock().now_ms();
        let seq = self.0.seq.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff;
        AuditEvent {
            id: format!("{time_ms}-{}-{seq:08x}", self.0.node),
            time: rfc3339(time_ms),
            kind: bounded_text(draft.kind),
            actor: bounded_text(draft.actor),
            outcome: draft.outcome,
            ip: draft.ip.map(|ip| ip.to_string()),
            tenant: draft.tenant,
            details: draft.details,
            time_ms,
        }
    }

    /// Queue `draft`; it is written within about [`LINGER`]. Never waits:
    /// a full queue drops the event and counts it.
    pub fn record(&self, draft: Draft) {
        if self.0.disabled {
            return;
        }
        let event = self.stamp(draft);
        let msg = Msg::Event(Box::new(Queued { event, done: None }));
        if self.sender().try_send(msg).is_err() {
            self.0.stats.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("the audit queue is full: an event was dropped");
        }
    }

    /// Record `draft` and wait until it is committed (an administrator's
    /// change: the trail read afterwards on any node shows it).
    pub async fn record_and_wait(&self, draft: Draft) -> Result<(), AuditError> {
        if self.0.disabled {
            return Ok(());
        }
        let event = self.stamp(draft);
        let (done, answer) = oneshot::channel();
        let msg = Msg::Event(Box::new(Queued {
            event,
            done: Some(done),
        }));
        if self.sender().try_send(msg).is_err() {
            self.0.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(AuditError::QueueFull);
        }
        answer.await.unwrap_or(Err(AuditError::Stopped))
    }

    /// Write everything queued so far (graceful shutdown).
    pub async fn flush(&self) {
        let Some(tx) = self.0.tx.get() else { return };
        let (done, answer) = oneshot::channel();
        if tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = answer.await;
        }
    }
}

fn bounded_text(s: String) -> String {
    match s.chars().count() > MAX_TEXT {
        true => s.chars().take(MAX_TEXT).collect(),
        false => s,
    }
}

/// `ms` since the epoch as RFC 3339 UTC with milliseconds.
pub fn rfc3339(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The record key of an event at `time_ms`: newest first in key order.
pub fn event_key(time_ms: u64, node: u64, seq: &str) -> Vec<u8> {
    let mut key = PREFIX.to_vec();
    key.extend_from_slice(format!("{:016x}-{node:x}-{seq}", u64::MAX - time_ms).as_bytes());
    key
}

/// The key every event at or before `time_ms` sorts after.
pub fn key_at(time_ms: u64) -> Vec<u8> {
    let mut key = PREFIX.to_vec();
    key.extend_from_slice(format!("{:016x}", u64::MAX - time_ms).as_bytes());
    key
}

#[derive(Default)]
struct Round {
    batch: Vec<Queued>,
    flushes: Vec<oneshot::Sender<()>>,
    /// A caller waits on an event of this round: no linger.
    waited: bool,
}

impl Round {
    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Event(q) => {
                self.waited |= q.done.is_some();
                self.batch.push(*q);
            }
            Msg::Flush(done) => self.flushes.push(done),
        }
    }
}

async fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<Msg>) {
    while let Some(first) = rx.recv().await {
        let mut round = Round::default();
        round.take(first);
        if !round.waited && round.flushes.is_empty() {
            tokio::time::sleep(LINGER).await;
        }
        while round.batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(msg) => round.take(msg),
                Err(_) => break,
            }
        }
        if !round.batch.is_empty() {
            let result = write(&shared, &round.batch).await;
            let counter = match result {
                Ok(()) => &shared.stats.recorded,
                Err(_) => &shared.stats.failed,
            };
            counter.fetch_add(round.batch.len() as u64, Ordering::Relaxed);
            for q in round.batch {
                if let Some(done) = q.done {
                    let _ = done.send(result.clone());
                }
            }
        }
        for done in round.flushes {
            let _ = done.send(());
        }
    }
}

/// One transaction for the whole batch, retried while the cluster is
/// unavailable (every put is idempotent: the same key and value).
async fn write(shared: &Shared, batch: &[Queued]) -> Result<(), AuditError> {
    let mut ops = Vec::with_capacity(batch.len());
    let mut retention: std::collections::HashMap<String, Option<u64>> = Default::default();
    for q in batch {
        let mut event = q.event.clone();
        let days = match &event.tenant {
            Some(t) => match retention.get(t) {
                Some(days) => *days,
                None => {
                    let days = tenant_retention(&shared.tenants, t).await;
                    retention.insert(t.clone(), days);
                    days
                }
            },
            None => Some(DEFAULT_RETENTION_DAYS),
        };
        // A tenant that no longer exists (or never did): the system trail.
        let (keyspace, days) = match (&event.tenant, days) {
            (Some(t), Some(days)) => (tenant_keyspace(t), days),
            _ => (SYSTEM_KEYSPACE.to_string(), DEFAULT_RETENTION_DAYS),
        };
        if keyspace != SYSTEM_KEYSPACE {
            event.tenant = None;
        }
        let seq = event.id.rsplit('-').next().unwrap_or_default().to_string();
        let key = Key::new(keyspace, event_key(event.time_ms, shared.node, &seq));
        let value = serde_json::to_vec(&event).map_err(|e| AuditError::Write(e.to_string()))?;
        ops.push(TxnOp::Put {
            key,
            value,
            ttl_ms: Some(days.saturating_mul(DAY_MS)),
        });
    }
    let deadline = tokio::time::Instant::now() + RETRY_FOR;
    let mut pause = Duration::from_millis(50);
    loop {
        shared.stats.writes.fetch_add(1, Ordering::Relaxed);
        match shared.consensus.txn(Txn::ops(ops.clone())).await {
            Ok(_) => return Ok(()),
            Err(e @ (ConsensusError::BadRequest(_) | ConsensusError::ShuttingDown)) => {
                tracing::error!(error = %e, events = batch.len(), "audit events not recorded");
                return Err(AuditError::Write(e.to_string()));
            }
            Err(e) if tokio::time::Instant::now() >= deadline => {
                tracing::error!(error = %e, events = batch.len(), "audit events not recorded");
                return Err(AuditError::Write(e.to_string()));
            }
            Err(e) => {
                tracing::debug!(error = %e, events = batch.len(), "audit write retried");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// The retention of `tenant` in days, `None` when there is no such tenant
/// (a local miss is confirmed by a linearizable read: the tenant may have
/// been created a moment ago through another node). When the read cannot
/// be made (no quorum), the tenant is taken to exist, with the default.
async fn tenant_retention(tenants: &TenantService, tenant: &str) -> Option<u64> {
    match tenants.get_confirmed(tenant).await {
        Ok(t) => Some(
            t.settings
                .audit_retention_days
                .unwrap_or(DEFAULT_RETENTION_DAYS),
        ),
        Err(crate::tenants::TenantError::NotFound(_)) => None,
        Err(_) => Some(DEFAULT_RETENTION_DAYS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_list_the_newest_first_and_bound_a_time() {
        let older = event_key(1_000, 1, "00000001");
        let newer = event_key(2_000, 1, "00000001");
        assert!(newer < older, "newer events sort first");
        // Every event at or before a time sorts after its bound key.
        assert!(key_at(2_000) < newer && key_at(2_000) < older);
        assert!(key_at(1_500) > newer && key_at(1_500) < older);
    }

    #[test]
    fn details_are_bounded_and_times_are_rfc3339() {
        let d = Draft::new(Some("acme"), "login.failed", "anonymous", Outcome::Failure)
            .detail("username", "x".repeat(1000));
        assert_eq!(d.details["username"].as_str().unwrap().len(), MAX_TEXT);
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    /// Fault injection: events queued on a follower while the leader is
    /// killed are all recorded once a new leader is elected (the write is
    /// retried), none twice, and read from another node.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_queued_while_the_leader_is_killed_are_all_recorded_once() {
        let (cluster, leader, consensus, other) =
            crate::test_cluster::follower_with_tenant("acme").await;
        let log = AuditLog::new(consensus.clone(), TenantService::new(consensus.clone()));
        for i in 0..50 {
            log.record(
                Draft::new(Some("acme"), "login.failed", "anonymous", Outcome::Failure)
                    .detail("n", i),
            );
        }
        cluster.stop(leader).await;
        let waited = log
            .record_and_wait(Draft::new(
                Some("acme"),
                "user.created",
                "operator",
                Outcome::Success,
            ))
            .await;
        assert!(waited.is_ok(), "{waited:?}");
        log.flush().await;
        let read = cluster.node(other).clone();
        let page = query::page(
            &read,
            &tenant_keyspace("acme"),
            &query::AuditFilter::default(),
            None,
            1000,
        )
        .await
        .expect("read");
        assert_eq!(page.events.len(), 51, "every event, once");
        let mut ns: Vec<i64> = page
            .events
            .iter()
            .filter_map(|e| e.details.get("n").and_then(Value::as_i64))
            .collect();
        ns.sort();
        assert_eq!(ns, (0..50).collect::<Vec<_>>());
        // Kept for the tenant's retention (the default here), by expiry.
        let (kvs, _) = read
            .range(
                &tenant_keyspace("acme"),
                PREFIX,
                1,
                rsp_consensus::Consistency::Local,
            )
            .await
            .expect("raw read");
        let event: AuditEvent = serde_json::from_slice(&kvs[0].value).expect("event");
        let expires = kvs[0].expires_at_ms.expect("an expiry");
        let kept = expires - event.time_ms;
        let retention = DEFAULT_RETENTION_DAYS * DAY_MS;
        assert!(
            kept >= retention && kept < retention + 60_000,
            "kept {kept} ms"
        );
        assert_eq!(log.stats().recorded.load(Ordering::Relaxed), 51);
        assert_eq!(log.stats().dropped.load(Ordering::Relaxed), 0);
    }
}
