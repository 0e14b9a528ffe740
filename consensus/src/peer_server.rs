//! The server side of peer links: `POST /peer/v1/rpc` with a bincode
//! [`PeerRequest`], dispatched to the Raft group it names. A request whose
//! tag does not prove the cluster's join token is answered 401 before its
//! body is decoded ([`crate::peer_auth`]).
//!
//! Forwarded writes are traced here as `raft.forwarded_write`, each a child
//! of the `traceparent` the follower sent for it
//! ([`crate::trace_context`]); a write without one (from a background task,
//! or from a node of an earlier release) is not traced here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use openraft::ServerState;
use tracing::Instrument as _;

use crate::batcher::Attempt;
use crate::error::ConsensusError;
use crate::node::Consensus;
use crate::peer_auth::{PEER_MAC_HEADER, PeerAuth};
use crate::rpc::{PEER_PROTOCOL, PeerBody, PeerError, PeerRequest, PeerResponse, decode, encode};
use crate::types::GroupId;

/// Largest peer message accepted (snapshot chunks are 3 MiB by default).
const MAX_PEER_BODY: usize = crate::rpc::MAX_DECODED;

/// Every group this node hosts, by id, and the keys peers prove the join
/// token with.
#[derive(Clone)]
pub struct PeerService {
    auth: PeerAuth,
    groups: Arc<HashMap<GroupId, Consensus>>,
}

impl PeerService {
    pub fn new(auth: PeerAuth, groups: impl IntoIterator<Item = Consensus>) -> Self {
        PeerService {
            auth,
            groups: Arc::new(groups.into_iter().map(|c| (c.group(), c)).collect()),
        }
    }

    /// The peer listener's routes.
    pub fn router(self) -> Router {
        Router::new()
            .route("/peer/v1/rpc", post(rpc))
            .layer(DefaultBodyLimit::max(MAX_PEER_BODY))
            .with_state(self)
    }

    pub async fn handle(&self, req: PeerRequest) -> PeerResponse {
        self.handle_traced(req, None).await
    }

    /// [`PeerService::handle`] with the [`crate::trace_context::TRACE_HEADER`]
    /// the request came with, if any.
    pub async fn handle_traced(&self, req: PeerRequest, traces: Option<&str>) -> PeerResponse {
        if req.protocol != PEER_PROTOCOL {
            return PeerResponse::Err(PeerError::Protocol(req.protocol));
        }
        match self.groups.get(&req.group) {
            Some(c) => handle(c, req.body, traces).await,
            None => PeerResponse::Err(PeerError::UnknownGroup(req.group)),
        }
    }
}

async fn rpc(
    State(svc): State<PeerService>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let tag = headers
        .get(PEER_MAC_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !svc.auth.verify_request(tag, &body) {
        let from = extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|ConnectInfo(a)| a.to_string())
            .unwrap_or_default();
        tracing::warn!(%from, "peer request without the cluster's join token refused");
        return (
            StatusCode::UNAUTHORIZED,
            "peer requests need the cluster's join token",
        )
            .into_response();
    }
    let req: PeerRequest = match decode(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("undecodable peer message: {e}"),
            )
                .into_response();
        }
    };
    let traces = headers
        .get(crate::trace_context::TRACE_HEADER)
        .and_then(|v| v.to_str().ok());
    let resp = svc.handle_traced(req, traces).await;
    match encode(&resp) {
        Ok(bytes) => {
            let answer_tag = svc.auth.sign_response(tag, &bytes);
            (StatusCode::OK, [(PEER_MAC_HEADER, answer_tag)], bytes).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "peer response encoding failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn to_peer_error(c: &Consensus, e: ConsensusError) -> PeerError {
    match e {
        ConsensusError::Timeout => PeerError::Timeout,
        ConsensusError::BadRequest(m) => PeerError::BadRequest(m),
        ConsensusError::UnknownNode(id) => {
            PeerError::BadRequest(format!("node {id} is not a member"))
        }
        ConsensusError::ShuttingDown => PeerError::NotLeader(c.id()),
        other => PeerError::Other(other.to_string()),
    }
}

/// [`forwarded_write`], in a span `raft.forwarded_write` that is a child of
/// the follower's span when `traceparent` names one (untraced otherwise).
async fn traced_write(
    c: &Consensus,
    op: rsp_storage::kv::Op,
    traceparent: Option<&str>,
) -> Result<(rsp_storage::kv::Response, u64), PeerError> {
    let Some(parent) = traceparent.and_then(crate::trace_context::parse) else {
        return forwarded_write(c, op).await;
    };
    let span = tracing::info_span!("raft.forwarded_write");
    let _ = tracing_opentelemetry::OpenTelemetrySpanExt::set_parent(&span, parent);
    forwarded_write(c, op).instrument(span).await
}

/// A write another node forwarded here: proposed only if this node leads
/// (never forwarded again, so forwarding cannot loop).
async fn forwarded_write(
    c: &Consensus,
    op: rsp_storage::kv::Op,
) -> Result<(rsp_storage::kv::Response, u64), PeerError> {
    if c.is_stopping() {
        return Err(PeerError::NotLeader(c.id()));
    }
    let deadline = Instant::now() + c.rpc_timeout();
    match c.write_here(op, deadline).await {
        Ok(Attempt::Done(r, index)) => Ok((r, index)),
        Ok(Attempt::Forward(Some((leader, _)))) => Err(PeerError::NotLeader(leader)),
        Ok(Attempt::Forward(None)) => Err(PeerError::NoLeader),
        Err(e) => Err(to_peer_error(c, e)),
    }
}

async fn handle(c: &Consensus, body: PeerBody, traces: Option<&str>) -> PeerResponse {
    let raft = c.raft();
    match body {
        PeerBody::AppendEntries(req) => {
            let leader_commit = req.leader_commit.map(|l| l.index);
            let resp = raft.append_entries(req).await;
            // Only an accepted append is contact with a legitimate leader.
            if matches!(&resp, Ok(r) if r.is_success()) {
                c.note_leader_contact(leader_commit);
            }
            PeerResponse::AppendEntries(resp)
        }
        PeerBody::Vote(req) => PeerResponse::Vote(raft.vote(req).await),
        PeerBody::InstallSnapshot(req) => {
            let resp = raft.install_snapshot(req).await;
            if resp.is_ok() {
                c.note_leader_contact(None);
            }
            PeerResponse::InstallSnapshot(resp)
        }
        PeerBody::Write(op) => {
            let traceparent = crate::trace_context::decode_batch(traces, 1)
                .pop()
                .flatten();
            PeerResponse::Write(traced_write(c, op, traceparent.as_deref()).await)
        }
        PeerBody::WriteBatch(ops) => {
            let parents = crate::trace_context::decode_batch(traces, ops.len());
            let writes = ops
                .into_iter()
                .zip(parents)
                .map(|(op, parent)| async move { traced_write(c, op, parent.as_deref()).await });
            PeerResponse::WriteBatch(futures::future::join_all(writes).await)
        }
        PeerBody::ReadIndex => {
            PeerResponse::ReadIndex(match c.read_index_here(c.rpc_timeout()).await {
                Ok(Ok(index)) => Ok(index),
                Ok(Err(Some((leader, _)))) => Err(PeerError::NotLeader(leader)),
                Ok(Err(None)) => Err(PeerError::NoLeader),
                Err(e) => Err(to_peer_error(c, e)),
            })
        }
        PeerBody::AddNode { id, member, voter } => PeerResponse::Membership(
            c.add_node(id, member, voter)
                .await
                .map_err(|e| to_peer_error(c, e)),
        ),
        PeerBody::RemoveNode { id } => {
            PeerResponse::Membership(c.remove_node(id).await.map_err(|e| to_peer_error(c, e)))
        }
        PeerBody::WaitApplied { index, timeout_ms } => {
            let timeout = Duration::from_millis(timeout_ms.min(30_000));
            PeerResponse::Applied(
                match raft
                    .wait(Some(timeout))
                    .applied_index_at_least(Some(index), "wait applied")
                    .await
                {
                    Ok(m) => Ok(m.last_applied.map_or(0, |l| l.index)),
                    Err(_) => Err(PeerError::Timeout),
                },
            )
        }
        PeerBody::GetSecret { name } => PeerResponse::Secret(c.secret(&name).map(|s| s.to_vec())),
        PeerBody::ElectNow => {
            let c = c.clone();
            tokio::spawn(async move {
                // The old leader's lease on the other voters runs out after the
                // maximum election timeout; stand for election right then.
                let wait = Duration::from_millis(c.raft().config().election_timeout_max);
                tokio::time::sleep(wait).await;
                if c.metrics().state != ServerState::Leader {
                    let _ = c.raft().trigger().elect().await;
                }
            });
            PeerResponse::Ok
        }
    }
}
