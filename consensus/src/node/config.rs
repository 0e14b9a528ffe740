//! [`ConsensusConfig`]: everything a node's consensus layer starts with.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use rsp_storage::Durability;

use super::InjectedBugs;
use crate::clock::Clock;
use crate::peer_auth::JoinToken;
use crate::tls::PeerTls;
use crate::types::{Member, NodeId};

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
    /// The secret every member shares; peer messages are tagged with it
    /// ([`crate::peer_auth`]). A new config holds a random one, which suits
    /// a node that stays alone; members of one cluster need the same.
    pub join_token: JoinToken,
    /// Longest a write may wait for its answer before it is reported
    /// indeterminate.
    pub write_timeout: Duration,
    /// Longest a linearizable read may wait for the leader's confirmation.
    pub read_timeout: Duration,
    /// Deliberate bugs for checker tests; default none.
    pub bugs: InjectedBugs,
    /// The wall clock that stamps this node's writes and that the services
    /// above read ([`crate::Consensus::clock`]).
    pub clock: Clock,
    /// `--force-new-cluster`: before Raft starts, make this node the only
    /// voter of the membership its log ends with ([`crate::Consensus::start`]).
    pub force_new_cluster: bool,
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
            join_token: JoinToken::generate(),
            write_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(3),
            bugs: InjectedBugs::default(),
            clock: Clock::system(),
            force_new_cluster: false,
        }
    }
}
