//! [`Consensus`]: one node's handle on the replicated store. It starts Raft
//! over sled, forwards writes to the leader, serves the two read paths, and
//! runs the small background jobs (TTL ticks, metrics).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use openraft::error::RaftError as RE;
use openraft::{Config, ServerState, SnapshotPolicy};
use rsp_storage::kv::{Command, Key, KeyValue, Op, Response, Txn, TxnResponse, WatchEvent};
use rsp_storage::{Durability, KvEngine, Store, StoreConfig, SyncThread};
use tokio::sync::{broadcast, watch};

use crate::batcher::Attempt;
use crate::clock::Clock;
use crate::error::ConsensusError;
use crate::metrics::ConsensusMetrics;
use crate::network::NetworkFactory;
use crate::rpc::{PeerBody, PeerError, PeerResponse};
use crate::tls::PeerTls;
use crate::transport::{DEFAULT_RPC_TIMEOUT, Transport, TransportError};
use crate::types::*;

/// Known bugs a node can be told to have, to prove that the Jepsen checkers
/// catch them (`RSP_INJECT_BUGS`). All off in normal operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InjectedBugs {
    /// Linearizable reads answered from local state without a read index.
    pub stale_reads: bool,
    /// Writes answered as soon as they are proposed, before they commit.
    pub ack_before_commit: bool,
    /// The log is never flushed or synced.
    pub skip_log_sync: bool,
    /// Authorization codes may be redeemed more than once.
    pub double_redeem_codes: bool,
}

impl InjectedBugs {
    pub const NAMES: [&'static str; 4] = [
        "stale-reads",
        "ack-before-commit",
        "skip-log-sync",
        "double-redeem-codes",
    ];

    /// Parse a comma-separated list of bug names.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut bugs = InjectedBugs::default();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "stale-reads" => bugs.stale_reads = true,
                "ack-before-commit" => bugs.ack_before_commit = true,
                "skip-log-sync" => bugs.skip_log_sync = true,
                "double-redeem-codes" => bugs.double_redeem_codes = true,
                other => {
                    return Err(format!(
                        "unknown bug `{other}`; known: {}",
                        Self::NAMES.join(", ")
                    ));
                }
            }
        }
        Ok(bugs)
    }

    pub fn any(&self) -> bool {
        *self != InjectedBugs::default()
    }
}

/// Everything needed to start a node's consensus layer.
#[derive(Clone)]
pub struct ConsensusConfig {
    pub node_id: NodeId,
    /// How this node describes itself to the cluster.
    pub member: Member,
    /// Directory of the sled database.
    pub store_dir: PathBuf,
    pub durability: Durability,
    pub heartbeat_ms: u64,
    /// Minimum election timeout; the maximum is 1.5x.
    pub election_timeout_ms: u64,
    /// Log entries since the last snapshot that trigger a new one.
    pub snapshot_threshold: u64,
    /// Address overrides per peer id (fault-injection proxies).
    pub routes: HashMap<NodeId, String>,
    pub tls: Option<PeerTls>,
    /// Longest a write may wait for its answer before it is reported
    /// indeterminate.
    pub write_timeout: Duration,
    /// Longest a linearizable read may wait for the leader's confirmation.
    pub read_timeout: Duration,
    /// Deliberate bugs for checker tests; default none.
    pub bugs: InjectedBugs,
    /// The wall clock that stamps this node's writes and that the services
    /// above read ([`Consensus::clock`]).
    pub clock: Clock,
}

impl ConsensusConfig {
    pub fn new(node_id: NodeId, member: Member, store_dir: impl Into<PathBuf>) -> Self {
        ConsensusConfig {
            node_id,
            member,
            store_dir: store_dir.into(),
            durability: Durability::Fsync,
            heartbeat_ms: 100,
            election_timeout_ms: 500,
            snapshot_threshold: 10_000,
            routes: HashMap::new(),
            tls: None,
            write_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(3),
            bugs: InjectedBugs::default(),
            clock: Clock::system(),
        }
    }
}

/// Which read path a caller wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Reflects every write acknowledged before the read started, on any
    /// node (read index confirmed by a quorum, then a local read once this
    /// node has applied up to it). Fails when no quorum can be reached.
    Linearizable,
    /// This node's applied state, possibly behind the leader; [`ReadInfo`]
    /// says how far.
    Local,
}

/// What a read was based on, so callers can see its staleness.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReadInfo {
    pub consistency: &'static str,
    pub node_id: NodeId,
    pub applied_index: u64,
    pub revision: u64,
    pub leader: Option<NodeId>,
    /// For local reads on a follower: milliseconds since this node last heard
    /// from the leader (None when it never did or is the leader).
    pub leader_silence_ms: Option<u64>,
    /// For local reads on a follower: how long this node has been applying
    /// behind the commit index the leader announced (None when caught up).
    pub behind_since_ms: Option<u64>,
}

/// Role of a member as shown to operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Leader,
    Follower,
    Learner,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MemberStatus {
    pub id: NodeId,
    pub peer_addr: String,
    pub http_addr: String,
    pub zone: String,
    pub region: String,
    pub role: Role,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ClusterStatus {
    pub leader: Option<NodeId>,
    pub term: u64,
    pub this_node: NodeId,
    pub last_applied: Option<u64>,
    pub last_log_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    pub members: Vec<MemberStatus>,
}

pub(crate) struct Inner {
    pub(crate) id: NodeId,
    pub(crate) group: GroupId,
    pub(crate) raft: Raft,
    pub(crate) engine: KvEngine,
    pub(crate) store: Store,
    pub(crate) sync: SyncThread,
    pub(crate) transport: Transport,
    pub(crate) metrics: ConsensusMetrics,
    pub(crate) config: ConsensusConfig,
    pub(crate) batcher: crate::batcher::Batcher,
    pub(crate) forwarder: crate::forwarder::Forwarder,
    pub(crate) stopping: AtomicBool,
    pub(crate) stop_tx: watch::Sender<bool>,
    /// Node-wide secrets served to joining nodes ([`Consensus::set_secret`]).
    pub(crate) secrets: std::sync::RwLock<HashMap<String, zeroize::Zeroizing<Vec<u8>>>>,
    /// Highest commit index a leader announced here, and since when this
    /// node's applied index has been below it.
    pub(crate) commit_seen: std::sync::Mutex<(u64, Option<Instant>)>,
    /// When this node last saw its applied index move or heard a leader.
    pub(crate) last_leader_contact: std::sync::Mutex<Option<Instant>>,
    /// Answers of peers to this node's Raft requests, and whether it is
    /// silent as a leader cut off from a quorum.
    pub(crate) contacts: Arc<crate::check_quorum::Contacts>,
}

/// A node's consensus handle. Cheap to clone.
#[derive(Clone)]
pub struct Consensus {
    pub(crate) inner: Arc<Inner>,
}

impl Consensus {
    /// Open storage and start Raft. The node does not join or form a cluster
    /// by itself: see [`Consensus::bootstrap`] and [`Consensus::join`].
    pub async fn start(
        config: ConsensusConfig,
        registry: &prometheus::Registry,
    ) -> Result<Consensus, ConsensusError> {
        let mut store_config = StoreConfig::new(&config.store_dir);
        store_config.durability = config.durability;
        let store = Store::open(&store_config)?;
        let sync = SyncThread::start_with(store.clone(), config.bugs.skip_log_sync)?;
        let metrics = ConsensusMetrics::register(registry)
            .map_err(|e| ConsensusError::Internal(format!("metrics: {e}")))?;
        let group = META_GROUP;
        let log = LogStore::open(&store, group, sync.clone())?;
        let apply_hist = metrics.apply_seconds.clone();
        let sm = StateMachineStore::open(&store, group, sync.clone())?
            .with_apply_observer(Arc::new(move |d| apply_hist.observe(d.as_secs_f64())));
        let engine = sm.engine();
        let transport = Transport::new(config.tls.as_ref(), config.routes.clone())?;
        let raft_config = Config {
            cluster_name: "rsp".into(),
            heartbeat_interval: config.heartbeat_ms,
            election_timeout_min: config.election_timeout_ms,
            election_timeout_max: config.election_timeout_ms * 3 / 2,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_threshold),
            max_in_snapshot_log_to_keep: config.snapshot_threshold.min(1000),
            install_snapshot_timeout: 10_000,
            ..Default::default()
        }
        .validate()
        .map_err(|e| ConsensusError::Config(format!("raft: {e}")))?;
        let contacts = Arc::new(crate::check_quorum::Contacts::default());
        let network = NetworkFactory {
            transport: transport.clone(),
            group,
            contacts: contacts.clone(),
        };
        let raft = Raft::new(config.node_id, Arc::new(raft_config), network, log, sm)
            .await
            .map_err(|e| ConsensusError::Internal(format!("raft start: {e}")))?;
        let (stop_tx, _) = watch::channel(false);
        let batcher = crate::batcher::Batcher::spawn(raft.clone(), config.clock.clone());
        let forwarder =
            crate::forwarder::Forwarder::spawn(transport.clone(), group, config.write_timeout);
        let consensus = Consensus {
            inner: Arc::new(Inner {
                id: config.node_id,
                group,
                raft,
                engine,
                store,
                sync,
                transport,
                metrics,
                config,
                batcher,
                forwarder,
                stopping: AtomicBool::new(false),
                stop_tx,
                last_leader_contact: std::sync::Mutex::new(None),
                commit_seen: std::sync::Mutex::new((0, None)),
                secrets: std::sync::RwLock::new(HashMap::new()),
                contacts,
            }),
        };
        crate::tasks::spawn_all(&consensus);
        Ok(consensus)
    }

    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    pub fn group(&self) -> GroupId {
        self.inner.group
    }

    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Syncs of this node's Raft log so far (group commit counts and time).
    pub fn log_sync_stats(&self) -> &rsp_storage::sync_thread::SyncStats {
        self.inner.sync.stats()
    }

    /// Entries this node's proposal batcher has proposed as leader so far.
    /// The wall clock this node stamps writes with and its services read.
    pub fn clock(&self) -> &Clock {
        &self.inner.config.clock
    }

    pub fn batch_stats(&self) -> &crate::batcher::BatchStats {
        self.inner.batcher.stats()
    }

    pub fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    pub fn metrics(&self) -> RaftMetrics {
        self.inner.raft.metrics().borrow().clone()
    }

    /// Make this node a one-node cluster if it has never been part of one.
    /// Returns whether it did.
    pub async fn bootstrap(&self) -> Result<bool, ConsensusError> {
        if self.is_initialized().await? {
            return Ok(false);
        }
        let mut members = BTreeMap::new();
        members.insert(self.inner.id, self.inner.config.member.clone());
        match self.inner.raft.initialize(members).await {
            Ok(()) => Ok(true),
            Err(RE::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(false),
            Err(e) => Err(ConsensusError::Internal(format!("initialize: {e}"))),
        }
    }

    /// Whether this node has any Raft state (it formed or joined a cluster).
    pub async fn is_initialized(&self) -> Result<bool, ConsensusError> {
        self.inner
            .raft
            .is_initialized()
            .await
            .map_err(|e| ConsensusError::Internal(e.to_string()))
    }

    /// Subscribe to changes as this node applies them.
    pub fn watch(&self) -> broadcast::Receiver<WatchEvent> {
        self.inner.engine.watch()
    }

    fn remaining(deadline: Instant) -> Option<Duration> {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// Propose `op` on this node, if it leads.
    pub(crate) async fn write_here(
        &self,
        op: Op,
        deadline: Instant,
    ) -> Result<Attempt, ConsensusError> {
        let timeout = Self::remaining(deadline).ok_or(ConsensusError::Timeout)?;
        let start = Instant::now();
        if self.inner.config.bugs.ack_before_commit {
            return self
                .write_unacknowledged(
                    Command::new(self.inner.config.clock.now_ms(), op),
                    &op_summary_txn(),
                )
                .await;
        }
        if self.inner.contacts.is_silent() {
            return Err(ConsensusError::Unavailable(
                "this node leads but has not heard from a quorum of voters; it is letting another node take over".into(),
            ));
        }
        let rx = self.inner.batcher.submit(op)?;
        match tokio::time::timeout(timeout, rx).await {
            Err(_) => Err(ConsensusError::Timeout),
            Ok(Err(_)) => Err(ConsensusError::ShuttingDown),
            Ok(Ok(Ok(attempt))) => {
                if matches!(attempt, Attempt::Done(..)) {
                    self.inner
                        .metrics
                        .write_seconds
                        .observe(start.elapsed().as_secs_f64());
                }
                Ok(attempt)
            }
            Ok(Ok(Err(e))) => Err(e),
        }
    }

    /// Replicate `op` through the leader, wherever it is, and return the
    /// state machine's answer. [`ConsensusError::Timeout`] means the outcome
    /// is unknown; other errors mean the write was not applied.
    pub async fn write(&self, op: Op) -> Result<Response, ConsensusError> {
        Ok(self.write_indexed(op).await?.0)
    }

    /// [`Consensus::write`], also returning the log index the write was
    /// applied at (for [`Consensus::wait_applied_everywhere`]).
    pub async fn write_indexed(&self, op: Op) -> Result<(Response, u64), ConsensusError> {
        if self.inner.stopping.load(Ordering::Relaxed) {
            return Err(ConsensusError::ShuttingDown);
        }
        rsp_storage::kv_engine::validate(&Command::new(0, op.clone()))
            .map_err(ConsensusError::BadRequest)?;
        let deadline = Instant::now() + self.inner.config.write_timeout;
        loop {
            match self.write_here(op.clone(), deadline).await? {
                Attempt::Done(r, index) => return Ok((r, index)),
                Attempt::Forward(Some((leader, member))) => {
                    self.inner.metrics.forwarded_writes.inc();
                    match self
                        .forward_write(leader, &member, op.clone(), deadline)
                        .await
                    {
                        Ok(Some(r)) => return Ok(r),
                        Ok(None) => {}
                        Err(e) => return Err(e),
                    }
                }
                Attempt::Forward(None) => {}
            }
            // No leader known yet, or it moved: wait a little and try again.
            if Self::remaining(deadline).is_none() {
                return Err(ConsensusError::Unavailable(
                    "no leader could be reached".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `Ok(None)`: not sent or refused before it was proposed; safe to retry.
    async fn forward_write(
        &self,
        leader: NodeId,
        member: &Member,
        op: Op,
        deadline: Instant,
    ) -> Result<Option<(Response, u64)>, ConsensusError> {
        let timeout = Self::remaining(deadline).ok_or(ConsensusError::Timeout)?;
        match tokio::time::timeout(
            timeout,
            self.inner.forwarder.forward(leader, member.clone(), op),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(ConsensusError::Timeout),
        }
    }

    /// Run a transaction; refusals by the state machine become errors.
    pub async fn txn(&self, txn: Txn) -> Result<TxnResponse, ConsensusError> {
        Ok(self.txn_indexed(txn).await?.0)
    }

    /// [`Consensus::txn`], also returning the log index it was applied at.
    pub async fn txn_indexed(&self, txn: Txn) -> Result<(TxnResponse, u64), ConsensusError> {
        let (resp, index) = self.write_indexed(Op::Txn(txn)).await?;
        match resp {
            Response::Txn(r) => Ok((r, index)),
            Response::Rejected(m) => Err(ConsensusError::BadRequest(m)),
            Response::Unsupported { format } => Err(ConsensusError::Unavailable(format!(
                "the leader proposed command format {format}, newer than this node runs"
            ))),
            other => Err(ConsensusError::Internal(format!(
                "unexpected answer {other:?}"
            ))),
        }
    }

    /// The leader's read index, confirmed by a quorum (leader side).
    pub(crate) async fn read_index_here(
        &self,
        timeout: Duration,
    ) -> Result<Result<u64, Option<(NodeId, Member)>>, ConsensusError> {
        match tokio::time::timeout(timeout, self.inner.raft.ensure_linearizable()).await {
            Err(_) => Err(ConsensusError::Unavailable(
                "leadership could not be confirmed by a quorum in time".into(),
            )),
            Ok(Ok(log_id)) => Ok(Ok(log_id.map_or(0, |l| l.index))),
            Ok(Err(RE::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(f)))) => {
                Ok(Err(f.leader_id.zip(f.leader_node)))
            }
            Ok(Err(RE::APIError(openraft::error::CheckIsLeaderError::QuorumNotEnough(e)))) => {
                // One heartbeat round without a quorum's answer: the caller
                // retries until its deadline before giving up.
                tracing::debug!(error = %e, "read index round without a quorum");
                Ok(Err(None))
            }
            Ok(Err(RE::Fatal(_))) => Err(ConsensusError::ShuttingDown),
        }
    }

    /// Wait until this node has applied everything committed before now, as
    /// confirmed by the leader. After it returns, a local read is
    /// linearizable.
    pub async fn linearizable_barrier(&self) -> Result<u64, ConsensusError> {
        let deadline = Instant::now() + self.inner.config.read_timeout;
        let index = loop {
            let timeout = Self::remaining(deadline).ok_or_else(|| {
                ConsensusError::Unavailable("no leader confirmed the read in time".into())
            })?;
            match self.read_index_here(timeout).await? {
                Ok(index) => break index,
                Err(Some((leader, member))) => {
                    let addr = self.inner.transport.route(leader, &member.peer_addr);
                    match self
                        .inner
                        .transport
                        .call(&addr, self.inner.group, PeerBody::ReadIndex, timeout)
                        .await
                    {
                        Ok(PeerResponse::ReadIndex(Ok(index))) => break index,
                        Ok(PeerResponse::ReadIndex(Err(
                            PeerError::NotLeader(_) | PeerError::NoLeader,
                        ))) => {}
                        Ok(PeerResponse::ReadIndex(Err(e))) => {
                            return Err(ConsensusError::Unavailable(e.to_string()));
                        }
                        Ok(_) => {
                            return Err(ConsensusError::Internal(
                                "unexpected answer to read index".into(),
                            ));
                        }
                        Err(TransportError::Connect { .. }) => {}
                        Err(e) => return Err(ConsensusError::Unavailable(e.to_string())),
                    }
                }
                Err(None) => {}
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        let timeout = Self::remaining(deadline)
            .ok_or_else(|| ConsensusError::Unavailable("read index not applied in time".into()))?;
        self.inner
            .raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "linearizable read")
            .await
            .map_err(|_| {
                ConsensusError::Unavailable("this node did not catch up in time".into())
            })?;
        Ok(index)
    }

    /// What a read at this moment is based on.
    pub fn read_info(&self, consistency: Consistency) -> Result<ReadInfo, ConsensusError> {
        // Two fields of the metrics, read under the watch's lock: cloning
        // the whole `RaftMetrics` (membership, replication map) on every
        // local read cost more than the read itself.
        let (current_leader, last_applied) = {
            let metrics = self.inner.raft.metrics();
            let m = metrics.borrow();
            (m.current_leader, m.last_applied.map_or(0, |l| l.index))
        };
        let silence = if current_leader == Some(self.inner.id) {
            None
        } else {
            self.inner
                .last_leader_contact
                .lock()
                .ok()
                .and_then(|t| *t)
                .map(|t| t.elapsed().as_millis() as u64)
        };
        Ok(ReadInfo {
            consistency: match consistency {
                Consistency::Linearizable => "linearizable",
                Consistency::Local => "local",
            },
            node_id: self.inner.id,
            applied_index: last_applied,
            revision: self.inner.engine.revision()?,
            leader: current_leader,
            leader_silence_ms: silence,
            behind_since_ms: self.behind_since_ms(last_applied),
        })
    }

    async fn before_read(&self, consistency: Consistency) -> Result<(), ConsensusError> {
        if consistency == Consistency::Linearizable && !self.inner.config.bugs.stale_reads {
            self.linearizable_barrier().await?;
        }
        Ok(())
    }

    /// Read one key.
    pub async fn get(
        &self,
        key: &Key,
        consistency: Consistency,
    ) -> Result<(Option<KeyValue>, ReadInfo), ConsensusError> {
        self.before_read(consistency).await?;
        let info = self.read_info(consistency)?;
        Ok((self.inner.engine.get(key)?, info))
    }

    /// Read keys of a keyspace by prefix, in key order.
    pub async fn range(
        &self,
        keyspace: &str,
        prefix: &[u8],
        limit: usize,
        consistency: Consistency,
    ) -> Result<(Vec<KeyValue>, ReadInfo), ConsensusError> {
        self.before_read(consistency).await?;
        let info = self.read_info(consistency)?;
        Ok((self.inner.engine.range(keyspace, prefix, limit)?, info))
    }

    /// Ready to serve: a leader is known and this node has applied what the
    /// leader says is committed.
    pub async fn ready(&self) -> Result<ReadInfo, ConsensusError> {
        if self.inner.stopping.load(Ordering::Relaxed) {
            return Err(ConsensusError::ShuttingDown);
        }
        self.linearizable_barrier().await?;
        self.read_info(Consistency::Linearizable)
    }

    /// Whether [`Consensus::shutdown`] has started.
    pub fn is_stopping(&self) -> bool {
        self.inner.stopping.load(Ordering::Relaxed)
    }

    /// Stop taking writes, hand leadership on if this node leads, sync
    /// storage and stop Raft.
    pub async fn shutdown(&self) {
        if self.inner.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        let m = self.metrics();
        let successor = if m.state == ServerState::Leader {
            crate::membership::best_successor(&m)
        } else {
            None
        };
        let _ = self.inner.stop_tx.send(true);
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        if let Err(e) = self.inner.sync.sync().await {
            tracing::error!(error = %e, "final storage sync failed");
        }
        if let Some((id, member)) = successor {
            // Ask the most caught-up voter to stand for election right away
            // rather than wait out its election timer.
            let addr = self.inner.transport.route(id, &member.peer_addr);
            let _ = self
                .inner
                .transport
                .call(
                    &addr,
                    self.inner.group,
                    PeerBody::ElectNow,
                    Duration::from_millis(500),
                )
                .await;
        }
    }

    pub(crate) fn rpc_timeout(&self) -> Duration {
        DEFAULT_RPC_TIMEOUT
    }
}

/// The made-up answer of the `ack-before-commit` bug.
fn op_summary_txn() -> Response {
    Response::Txn(TxnResponse {
        succeeded: true,
        revision: 0,
        results: Vec::new(),
    })
}

impl Consensus {
    /// The deliberate bugs this node runs with (none in normal operation).
    pub fn injected_bugs(&self) -> InjectedBugs {
        self.inner.config.bugs
    }

    /// `ack-before-commit`: propose and answer at once, without waiting.
    async fn write_unacknowledged(
        &self,
        cmd: Command,
        answer: &Response,
    ) -> Result<Attempt, ConsensusError> {
        match self.inner.raft.client_write_ff(cmd).await {
            Ok(_pending) => Ok(Attempt::Done(answer.clone(), 0)),
            Err(_) => Err(ConsensusError::ShuttingDown),
        }
    }

    /// Offer a node-wide secret (e.g. the key-encryption key) to nodes that
    /// join through this one.
    pub fn set_secret(&self, name: &str, value: &[u8]) {
        if let Ok(mut s) = self.inner.secrets.write() {
            s.insert(name.to_string(), zeroize::Zeroizing::new(value.to_vec()));
        }
    }

    pub(crate) fn secret(&self, name: &str) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        self.inner
            .secrets
            .read()
            .ok()
            .and_then(|s| s.get(name).cloned())
    }

    /// Ask the member at `peer_addr` for a node-wide secret.
    pub async fn fetch_secret(
        &self,
        peer_addr: &str,
        name: &str,
    ) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, ConsensusError> {
        let body = PeerBody::GetSecret {
            name: name.to_string(),
        };
        match self
            .inner
            .transport
            .call(peer_addr, self.inner.group, body, DEFAULT_RPC_TIMEOUT)
            .await
        {
            Ok(PeerResponse::Secret(s)) => Ok(s.map(zeroize::Zeroizing::new)),
            Ok(_) => Err(ConsensusError::Internal(
                "unexpected answer to a secret request".into(),
            )),
            Err(e) => Err(ConsensusError::Unavailable(e.to_string())),
        }
    }

    /// Record an accepted append from the leader and the commit index it
    /// announced (for staleness reporting).
    pub(crate) fn note_leader_contact(&self, leader_commit: Option<u64>) {
        if let Ok(mut t) = self.inner.last_leader_contact.lock() {
            *t = Some(Instant::now());
        }
        if let (Some(commit), Ok(mut seen)) = (leader_commit, self.inner.commit_seen.lock()) {
            if commit > seen.0 {
                seen.0 = commit;
            }
            let applied = self
                .inner
                .raft
                .metrics()
                .borrow()
                .last_applied
                .map_or(0, |l| l.index);
            if applied < seen.0 && seen.1.is_none() {
                seen.1 = Some(Instant::now());
            }
        }
    }

    /// How long this node's applied index has been below the highest commit
    /// index a leader announced to it; `None` when it is caught up.
    fn behind_since_ms(&self, applied: u64) -> Option<u64> {
        let mut seen = self.inner.commit_seen.lock().ok()?;
        if applied >= seen.0 {
            seen.1 = None;
            return None;
        }
        seen.1.map(|t| t.elapsed().as_millis() as u64)
    }
}
