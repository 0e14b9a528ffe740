//! openraft's `RaftNetworkFactory` / `RaftNetwork` over [`Transport`].

use std::sync::Arc;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};

use crate::check_quorum::Contacts;
use crate::rpc::{PeerBody, PeerResponse};
use crate::transport::{Transport, TransportError};
use crate::types::*;

/// Makes a client per peer for one Raft group.
#[derive(Clone)]
pub struct NetworkFactory {
    pub(crate) transport: Transport,
    pub(crate) group: GroupId,
    pub(crate) contacts: Arc<Contacts>,
}

pub struct PeerNetwork {
    transport: Transport,
    group: GroupId,
    target: NodeId,
    addr: String,
    contacts: Arc<Contacts>,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> PeerNetwork {
        PeerNetwork {
            transport: self.transport.clone(),
            group: self.group,
            target,
            addr: node.peer_addr.clone(),
            contacts: self.contacts.clone(),
        }
    }
}

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, Member, RaftError<NodeId, E>>;

impl PeerNetwork {
    async fn send<E: std::error::Error>(
        &self,
        body: PeerBody,
        option: &RPCOption,
    ) -> Result<PeerResponse, RpcErr<E>> {
        let addr = self.transport.route(self.target, &self.addr);
        self.transport
            .call(&addr, self.group, body, option.hard_ttl())
            .await
            // Any answer in time, even an error, is a round trip.
            .inspect(|_| self.contacts.replied(self.target))
            .map_err(|e| match e {
                TransportError::Connect { .. }
                | TransportError::Unreachable { .. }
                | TransportError::Unauthenticated { .. } => {
                    self.contacts.failed(self.target);
                    RPCError::Unreachable(Unreachable::new(&e))
                }
                // A peer that answers late is alive (a slow disk, a
                // snapshot being written): retry without openraft's
                // 500 ms backoff, which is for peers that cannot be
                // reached at all.
                TransportError::Timeout { .. } => RPCError::Network(NetworkError::new(&e)),
                other => RPCError::Network(NetworkError::new(&other)),
            })
    }

    /// A silent leader (see [`crate::check_quorum`]) sends no AppendEntries
    /// and no snapshot, so followers' leases run out: the error to return
    /// instead, if silent.
    fn silenced<E: std::error::Error>(&self) -> Option<RpcErr<E>> {
        self.contacts.is_silent().then(|| {
            let e = std::io::Error::other("silent: this leader lost contact with a quorum");
            RPCError::Unreachable(Unreachable::new(&e))
        })
    }

    fn unexpected<E: std::error::Error>(&self, what: &str) -> RpcErr<E> {
        let e = std::io::Error::other(format!("unexpected answer to {what}"));
        RPCError::Network(NetworkError::new(&e))
    }
}

impl RaftNetwork<TypeConfig> for PeerNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse, RpcErr> {
        if let Some(e) = self.silenced() {
            return Err(e);
        }
        match self.send(PeerBody::AppendEntries(rpc), &option).await? {
            PeerResponse::AppendEntries(Ok(r)) => Ok(r),
            PeerResponse::AppendEntries(Err(e)) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(self.unexpected("append_entries")),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse, RpcErr<InstallSnapshotError>> {
        if let Some(e) = self.silenced() {
            return Err(e);
        }
        match self.send(PeerBody::InstallSnapshot(rpc), &option).await? {
            PeerResponse::InstallSnapshot(Ok(r)) => Ok(r),
            PeerResponse::InstallSnapshot(Err(e)) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(self.unexpected("install_snapshot")),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest, option: RPCOption) -> Result<VoteResponse, RpcErr> {
        match self.send(PeerBody::Vote(rpc), &option).await? {
            PeerResponse::Vote(Ok(r)) => Ok(r),
            PeerResponse::Vote(Err(e)) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(self.unexpected("vote")),
        }
    }
}
