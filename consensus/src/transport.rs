//! The client side of peer links: one HTTP/2 client shared by Raft
//! replication and forwarded requests, with per-peer address overrides for
//! fault-injection proxies, and mutual TLS when configured. Every request is
//! tagged with the cluster's join token and every answer's tag is checked
//! ([`crate::peer_auth`]).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::error::ConsensusError;
use crate::peer_auth::{PEER_MAC_HEADER, PeerAuth};
use crate::rpc::{PEER_PROTOCOL, PeerBody, PeerRequest, PeerResponse, decode, encode};
use crate::tls::PeerTls;
use crate::types::{GroupId, NodeId};

/// Longest a forwarded request or Raft RPC may take by default.
pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The connection could not be made: nothing was sent.
    #[error("peer {addr} refused the connection: {source}")]
    Connect {
        addr: String,
        #[source]
        source: reqwest::Error,
    },
    /// The request may have been delivered.
    #[error("peer {addr} unreachable: {source}")]
    Unreachable {
        addr: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("peer {addr} timed out")]
    Timeout { addr: String },
    /// The peer refused this node's credentials (401), or its answer did
    /// not carry the cluster's tag: a different cluster, or not a member.
    #[error("peer {addr} does not share this node's join token")]
    Unauthenticated { addr: String },
    #[error("peer {addr} answered status {status}")]
    Status { addr: String, status: u16 },
    #[error("peer message encoding: {0}")]
    Codec(String),
}

/// Cheap to clone; all clones share connections.
#[derive(Clone)]
pub struct Transport {
    client: reqwest::Client,
    scheme: &'static str,
    auth: PeerAuth,
    routes: Arc<RwLock<HashMap<NodeId, String>>>,
}

impl Transport {
    pub fn new(
        tls: Option<&PeerTls>,
        auth: PeerAuth,
        routes: HashMap<NodeId, String>,
    ) -> Result<Self, ConsensusError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .http2_keep_alive_timeout(Duration::from_secs(5));
        let scheme = match tls {
            Some(tls) => {
                builder = builder.use_preconfigured_tls(tls.client_config());
                "https"
            }
            None => {
                builder = builder.http2_prior_knowledge();
                "http"
            }
        };
        let client = builder
            .build()
            .map_err(|e| ConsensusError::Config(format!("peer http client: {e}")))?;
        Ok(Transport {
            client,
            scheme,
            auth,
            routes: Arc::new(RwLock::new(routes)),
        })
    }

    pub fn auth(&self) -> &PeerAuth {
        &self.auth
    }

    /// The address to dial for `target`: its override if any, else `addr`.
    pub fn route(&self, target: NodeId, addr: &str) -> String {
        match self.routes.read() {
            Ok(routes) => routes
                .get(&target)
                .cloned()
                .unwrap_or_else(|| addr.to_string()),
            Err(_) => addr.to_string(),
        }
    }

    pub fn set_route(&self, target: NodeId, addr: Option<String>) {
        if let Ok(mut routes) = self.routes.write() {
            match addr {
                Some(a) => routes.insert(target, a),
                None => routes.remove(&target),
            };
        }
    }

    /// Send one message to the peer listening at `addr`.
    pub async fn call(
        &self,
        addr: &str,
        group: GroupId,
        body: PeerBody,
        timeout: Duration,
    ) -> Result<PeerResponse, TransportError> {
        self.call_traced(addr, group, body, timeout, None).await
    }

    /// [`Transport::call`] with the trace context of the operations it
    /// carries, in the [`crate::trace_context::TRACE_HEADER`] header (which
    /// nodes of an earlier release ignore).
    pub async fn call_traced(
        &self,
        addr: &str,
        group: GroupId,
        body: PeerBody,
        timeout: Duration,
        traces: Option<String>,
    ) -> Result<PeerResponse, TransportError> {
        let req = PeerRequest {
            protocol: PEER_PROTOCOL,
            group,
            body,
        };
        let bytes = encode(&req).map_err(|e| TransportError::Codec(e.to_string()))?;
        let url = format!("{}://{}/peer/v1/rpc", self.scheme, addr);
        let tag = self.auth.sign_request(&bytes);
        let mut send = self
            .client
            .post(&url)
            .header("content-type", "application/octet-stream")
            .header(PEER_MAC_HEADER, &tag);
        if let Some(traces) = traces {
            send = send.header(crate::trace_context::TRACE_HEADER, traces);
        }
        let send = send.body(bytes).send();
        let resp = match tokio::time::timeout(timeout, send).await {
            Err(_) => return Err(TransportError::Timeout { addr: addr.into() }),
            Ok(Err(e)) if e.is_timeout() => {
                return Err(TransportError::Timeout { addr: addr.into() });
            }
            Ok(Err(e)) if e.is_connect() => {
                return Err(TransportError::Connect {
                    addr: addr.into(),
                    source: e,
                });
            }
            Ok(Err(e)) => {
                return Err(TransportError::Unreachable {
                    addr: addr.into(),
                    source: e,
                });
            }
            Ok(Ok(r)) => r,
        };
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Err(TransportError::Unauthenticated { addr: addr.into() });
        }
        if !resp.status().is_success() {
            return Err(TransportError::Status {
                addr: addr.into(),
                status: resp.status().as_u16(),
            });
        }
        let answer_tag = resp
            .headers()
            .get(PEER_MAC_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = match tokio::time::timeout(timeout, resp.bytes()).await {
            Err(_) => return Err(TransportError::Timeout { addr: addr.into() }),
            Ok(Err(e)) => {
                return Err(TransportError::Unreachable {
                    addr: addr.into(),
                    source: e,
                });
            }
            Ok(Ok(b)) => b,
        };
        match answer_tag {
            Some(t) if self.auth.verify_response(&tag, &body, &t) => {}
            _ => return Err(TransportError::Unauthenticated { addr: addr.into() }),
        }
        decode(&body).map_err(|e| TransportError::Codec(e.to_string()))
    }
}
