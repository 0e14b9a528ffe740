//! The consensus crate's one error type. Callers map it to their protocol
//! once, at their edge.

use crate::types::NodeId;

#[derive(Debug, thiserror::Error)]
pub enum ConsensusError {
    /// No leader could be reached in time, or this node is cut off from a
    /// quorum. The outcome of a write that fails this way is unknown.
    #[error("the cluster is unavailable: {0}")]
    Unavailable(String),
    /// A write was sent but no answer came in time: it may or may not have
    /// been applied.
    #[error("no answer in time; the outcome is unknown")]
    Timeout,
    /// The request itself is wrong (too large, bad key, unknown node).
    #[error("{0}")]
    BadRequest(String),
    #[error("node {0} is not a member")]
    UnknownNode(NodeId),
    #[error("storage: {0}")]
    Storage(#[from] rsp_storage::StorageError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("this node is shutting down")]
    ShuttingDown,
    #[error("internal: {0}")]
    Internal(String),
}
