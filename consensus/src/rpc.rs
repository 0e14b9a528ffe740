//! Messages between nodes. Every request names its Raft group, so one peer
//! listener serves every group a node hosts.
//!
//! Wire format: bincode 2 (serde) in the body of an HTTP/2 `POST /peer/v1/rpc`,
//! tagged with the cluster's join token in both directions
//! ([`crate::peer_auth`]).
//! A node that does not host the named group answers
//! [`PeerError::UnknownGroup`].

use serde::{Deserialize, Serialize};

use crate::types::*;
use rsp_storage::kv::Op;

/// Bumped when a message changes shape; peers refuse what they cannot read.
pub const PEER_PROTOCOL: u16 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct PeerRequest {
    pub protocol: u16,
    pub group: GroupId,
    pub body: PeerBody,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum PeerBody {
    AppendEntries(AppendEntriesRequest),
    Vote(VoteRequest),
    InstallSnapshot(InstallSnapshotRequest),
    /// A client write forwarded to the node believed to lead.
    Write(Op),
    /// Several forwarded writes, answered one by one.
    WriteBatch(Vec<Op>),
    /// Ask the leader for a read index (its committed log index, confirmed by a
    /// quorum).
    ReadIndex,
    /// Add a node (sent by the joining node to any member, or forwarded).
    AddNode {
        id: NodeId,
        member: Member,
        voter: bool,
    },
    RemoveNode {
        id: NodeId,
    },
    /// Answer once this node has applied the log up to the index (or the
    /// timeout in milliseconds passes).
    WaitApplied {
        index: u64,
        timeout_ms: u64,
    },
    /// A node-wide secret a joining node needs (e.g. the key-encryption
    /// key). Like every peer message it is answered only to a holder of the
    /// join token; mutual TLS keeps the answer off the wire.
    GetSecret {
        name: String,
    },
    /// Start an election now (sent by a leader that is shutting down).
    ElectNow,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum PeerResponse {
    AppendEntries(Result<AppendEntriesResponse, RaftError>),
    Vote(Result<VoteResponse, RaftError>),
    InstallSnapshot(Result<InstallSnapshotResponse, RaftError<InstallSnapshotError>>),
    /// The state machine's answer and the log index it was applied at.
    Write(Result<(Response, u64), PeerError>),
    WriteBatch(Vec<Result<(Response, u64), PeerError>>),
    /// Answer to [`PeerBody::WaitApplied`]: this node's applied index.
    Applied(Result<u64, PeerError>),
    ReadIndex(Result<u64, PeerError>),
    Membership(Result<(), PeerError>),
    Secret(Option<Vec<u8>>),
    Ok,
    Err(PeerError),
}

/// Errors a peer reports for forwarded work; they map onto
/// [`crate::ConsensusError`] on the caller's side.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
pub enum PeerError {
    #[error("node {0} is not the leader")]
    NotLeader(NodeId),
    #[error("no leader is known")]
    NoLeader,
    #[error("timed out")]
    Timeout,
    #[error("group {0} is not hosted here")]
    UnknownGroup(GroupId),
    #[error("peer protocol {0} is not supported")]
    Protocol(u16),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("{0}")]
    Other(String),
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, bincode::error::EncodeError> {
    bincode::serde::encode_to_vec(v, bincode::config::standard())
}

/// The most a peer message may decode to, in bytes: the largest body the
/// listener accepts. A length prefix that claims more is an error before
/// anything is allocated (without a limit, 14 bytes claiming a string of
/// 800 TB abort the process: found by the `peer_frame` fuzz target).
pub const MAX_DECODED: usize = 64 << 20;

pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, bincode::error::DecodeError> {
    let config = bincode::config::standard().with_limit::<MAX_DECODED>();
    bincode::serde::decode_from_slice(bytes, config).map(|(v, _)| v)
}

/// Encode a peer request as the transport does (public for fuzz seeds).
pub fn encode_request(req: &PeerRequest) -> Result<Vec<u8>, bincode::error::EncodeError> {
    encode(req)
}

/// Decode a peer request as the listener does once its tag is checked
/// (public for the fuzz targets).
pub fn decode_request(bytes: &[u8]) -> Result<PeerRequest, bincode::error::DecodeError> {
    decode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Forwarded writes carry their trace context in an HTTP header
    /// (`crate::trace_context`), not in the message: a batch is the same
    /// bytes as in the release before, so either release decodes the
    /// other's.
    #[test]
    fn a_forwarded_batch_keeps_the_encoding_of_the_previous_release() {
        let req = PeerRequest {
            protocol: PEER_PROTOCOL,
            group: 0,
            body: PeerBody::WriteBatch(vec![Op::Tick, Op::Tick]),
        };
        // protocol 1, group 0, variant 4 (WriteBatch), 2 ops, each Tick (1).
        let previous_release = [1u8, 0, 4, 2, 1, 1];
        assert_eq!(
            encode_request(&req).expect("encodes"),
            previous_release.to_vec()
        );
        let decoded = decode_request(&previous_release).expect("decodes");
        assert!(
            matches!(decoded.body, PeerBody::WriteBatch(ops) if ops.len() == 2),
            "a batch of two"
        );
    }
}
