//! How the cluster looks to operators: [`ClusterStatus`] with one
//! [`MemberStatus`] per member and its [`Role`]. Built by
//! `crate::membership`.

use crate::types::NodeId;

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
