//! The Raft type configuration and the cluster member description.

use std::fmt;

use serde::{Deserialize, Serialize};

pub use rsp_storage::GroupId;
pub use rsp_storage::kv::{Command, Response};

/// A node's id, unique in the cluster, never reused.
pub type NodeId = u64;

/// The group every node runs today: cluster metadata and all tenants' data.
/// Data groups per tenant or shard will get ids from 1 on.
pub const META_GROUP: GroupId = 0;

/// What the cluster knows of a member; carried in Raft's membership log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Where peers reach this node (host:port of its peer listener).
    pub peer_addr: String,
    /// Where clients reach this node's HTTP API (host:port), when known.
    pub http_addr: String,
    pub zone: String,
    pub region: String,
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}/{})", self.peer_addr, self.region, self.zone)
    }
}

openraft::declare_raft_types!(
    /// rsp's Raft types: replicated key-value commands over sled.
    pub TypeConfig:
        D = Command,
        R = Response,
        NodeId = NodeId,
        Node = Member,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = rsp_storage::SnapshotFile,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type LogStore = rsp_storage::LogStore<TypeConfig>;
pub type StateMachineStore = rsp_storage::StateMachineStore<TypeConfig>;
pub type RaftMetrics = openraft::RaftMetrics<NodeId, Member>;
pub type Membership = openraft::Membership<NodeId, Member>;
pub type RaftError<E = openraft::error::Infallible> = openraft::error::RaftError<NodeId, E>;
pub type ClientWriteError = openraft::error::ClientWriteError<NodeId, Member>;
pub type CheckIsLeaderError = openraft::error::CheckIsLeaderError<NodeId, Member>;
pub type InstallSnapshotError = openraft::error::InstallSnapshotError;
pub type AppendEntriesRequest = openraft::raft::AppendEntriesRequest<TypeConfig>;
pub type AppendEntriesResponse = openraft::raft::AppendEntriesResponse<NodeId>;
pub type VoteRequest = openraft::raft::VoteRequest<NodeId>;
pub type VoteResponse = openraft::raft::VoteResponse<NodeId>;
pub type InstallSnapshotRequest = openraft::raft::InstallSnapshotRequest<TypeConfig>;
pub type InstallSnapshotResponse = openraft::raft::InstallSnapshotResponse<NodeId>;
