//! Node-wide secrets (e.g. the key-encryption key) that a member offers to
//! the nodes joining through it, and the request a joining node makes.

use super::Consensus;
use crate::error::ConsensusError;
use crate::rpc::{PeerBody, PeerResponse};
use crate::transport::{DEFAULT_RPC_TIMEOUT, TransportError};

impl Consensus {
    /// Offer a node-wide secret (e.g. the key-encryption key) to nodes that
    /// join through this one. Only a node that proves the cluster's join
    /// token is answered ([`crate::peer_auth`]).
    pub fn set_secret(&self, name: &str, value: &[u8]) {
        if let Ok(mut s) = self.inner.secrets.write() {
            s.insert(name.to_string(), zeroize::Zeroizing::new(value.to_vec()));
        }
    }

    /// Stop offering a node-wide secret.
    pub fn remove_secret(&self, name: &str) {
        if let Ok(mut s) = self.inner.secrets.write() {
            s.remove(name);
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
            Err(e @ TransportError::Unauthenticated { .. }) => Err(ConsensusError::Config(
                format!("{e}: this node's join token is not the cluster's"),
            )),
            Err(e) => Err(ConsensusError::Unavailable(e.to_string())),
        }
    }
}
