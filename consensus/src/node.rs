//! [`Consensus`]: one node's handle on the replicated store. It starts Raft
//! over sled, forwards writes to the leader, serves the two read paths, and
//! runs the small background jobs (TTL ticks, metrics).
//!
//! Parts (each adds to `impl Consensus` where it needs to):
//! - this file: the handle, its shared `Inner` state, start-up,
//!   bootstrap and shutdown.
//! - `config`: [`ConsensusConfig`], what a node starts with.
//! - `bugs`: [`InjectedBugs`], deliberate bugs for checker tests.
//! - `writes`: writes proposed here or forwarded to the leader.
//! - `reads`: linearizable and local reads, [`Consistency`], [`ReadInfo`].
//! - `leader_contact`: staleness of this node as a follower.
//! - `backup`: backups, the start of a restored node, `--force-new-cluster`.
//! - `secrets`: node-wide secrets served to joining nodes.
//! - `status`: [`ClusterStatus`], [`MemberStatus`], [`Role`].

mod backup;
mod bugs;
mod config;
mod leader_contact;
mod reads;
mod secrets;
mod status;
mod writes;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use openraft::error::RaftError as RE;
use openraft::{Config, ServerState, SnapshotPolicy};
use rsp_storage::kv::WatchEvent;
use rsp_storage::{KvEngine, Store, StoreConfig, SyncThread};
use tokio::sync::{broadcast, watch};

use crate::clock::Clock;
use crate::error::ConsensusError;
use crate::metrics::ConsensusMetrics;
use crate::network::NetworkFactory;
use crate::peer_auth::PeerAuth;
use crate::rpc::PeerBody;
use crate::transport::{DEFAULT_RPC_TIMEOUT, Transport};
use crate::types::*;

pub use backup::BackupStream;
pub use bugs::InjectedBugs;
pub use config::ConsensusConfig;
pub use reads::{Consistency, ReadInfo};
pub use status::{ClusterStatus, MemberStatus, Role};

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
    /// Which voter a node outside the voters asks next for the leader.
    pub(crate) fallback_turn: std::sync::atomic::AtomicU64,
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
        let metrics = ConsensusMetrics::register(registry)
            .map_err(|e| ConsensusError::Internal(format!("metrics: {e}")))?;
        let sync_hist = metrics.log_sync_seconds.clone();
        let sync = SyncThread::start_with(
            store.clone(),
            config.bugs.skip_log_sync(),
            Some(Arc::new(move |d| sync_hist.observe(d.as_secs_f64()))),
        )?;
        let group = META_GROUP;
        let log = LogStore::open(&store, group, sync.clone())?;
        if config.force_new_cluster {
            backup::force_new_cluster(&store, &log, config.node_id, &config.member)?;
        }
        let apply_hist = metrics.apply_seconds.clone();
        let snapshot_metrics = metrics.clone();
        let sm = StateMachineStore::open(&store, group, sync.clone())?
            .with_apply_observer(Arc::new(move |d| apply_hist.observe(d.as_secs_f64())))
            .with_snapshot_observer(Arc::new(move |event, d| {
                snapshot_metrics.snapshot(event, d.as_secs_f64())
            }));
        let engine = sm.engine();
        let transport = Transport::new(
            config.tls.as_ref(),
            PeerAuth::new(&config.join_token),
            config.routes.clone(),
        )?;
        let raft_config = Config {
            cluster_name: "rsp".into(),
            heartbeat_interval: config.heartbeat_ms,
            election_timeout_min: config.election_timeout_ms,
            election_timeout_max: config.election_timeout_ms * 3 / 2,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(staggered_threshold(
                config.snapshot_threshold,
                config.node_id,
            )),
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
        let batcher = crate::batcher::Batcher::spawn(
            raft.clone(),
            config.clock.clone(),
            config.write_timeout,
        );
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
                fallback_turn: Default::default(),
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

    /// The wall clock this node stamps writes with and its services read.
    pub fn clock(&self) -> &Clock {
        &self.inner.config.clock
    }

    /// Entries this node's proposal batcher has proposed as leader so far.
    pub fn batch_stats(&self) -> &crate::batcher::BatchStats {
        self.inner.batcher.stats()
    }

    pub fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    /// The keys this node's peer messages are tagged and checked with.
    pub fn peer_auth(&self) -> &PeerAuth {
        self.inner.transport.auth()
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
        // A data dir `rsp restore` wrote holds state no log entry carries.
        let restored = !self.inner.engine.tree().is_empty();
        let mut members = BTreeMap::new();
        members.insert(self.inner.id, self.inner.config.member.clone());
        match self.inner.raft.initialize(members).await {
            Ok(()) if restored => {
                self.snapshot_restored_state().await?;
                Ok(true)
            }
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

    /// Time left before `deadline`; `None` once it has passed (writes and
    /// reads both run to a deadline).
    fn remaining(deadline: Instant) -> Option<Duration> {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
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

/// The snapshot threshold of node `id`: the configured one plus up to 3/8
/// of it by the node's id, so the members of a group do not all build a
/// snapshot at the same log index. A commit needs a quorum, not every
/// follower: while one follower builds, the others answer for it.
fn staggered_threshold(threshold: u64, id: NodeId) -> u64 {
    threshold + threshold * (id % 4) / 8
}

#[cfg(test)]
mod tests {
    #[test]
    fn members_of_a_group_snapshot_at_different_log_indexes() {
        let at: Vec<u64> = (1..=3)
            .map(|id| super::staggered_threshold(4000, id))
            .collect();
        assert_eq!(at, vec![4500, 5000, 5500]);
        assert_eq!(super::staggered_threshold(50, 4), 50);
    }
}
