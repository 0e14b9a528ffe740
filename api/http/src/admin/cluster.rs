//! `GET /admin/v1/cluster`, `POST /admin/v1/cluster/nodes`,
//! `DELETE /admin/v1/cluster/nodes/{id}`, `GET /admin/v1/cluster/kek`,
//! `POST /admin/v1/cluster/kek/rotate`, `GET /admin/v1/cluster/backup`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use rsp_consensus::{ClusterStatus, Member, NodeId};
use rsp_identity::crypto::{CryptoError, Kek};
use rsp_identity::kek_ring::{KekStatus, MAX_RESEAL_WAIT, RESEAL_WAIT, RingError};
use serde::Deserialize;
use utoipa::ToSchema;

use super::openapi::{mirrors, shapes::ErrorBody};
use crate::authz::caller::AdminCaller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddNode {
    /// 1 or more.
    #[schema(value_type = u64)]
    id: NodeId,
    /// host:port of the node's peer (Raft) listener.
    peer_addr: String,
    #[serde(default)]
    http_addr: Option<String>,
    zone: Option<String>,
    region: Option<String>,
    /// Default true; false adds a learner.
    #[serde(default = "yes")]
    voter: bool,
}

fn yes() -> bool {
    true
}

impl AddNode {
    /// The member to add, checked: its id and peer address.
    pub(crate) fn into_member(self) -> ApiResult<(NodeId, Member, bool)> {
        if self.id == 0 {
            return Err(ApiError::bad_request(
                "invalid_request",
                "node ids start at 1",
            ));
        }
        if self.peer_addr.parse::<std::net::SocketAddr>().is_err() && !self.peer_addr.contains(':')
        {
            return Err(ApiError::bad_request(
                "invalid_request",
                "peer_addr must be host:port",
            ));
        }
        let member = Member {
            peer_addr: self.peer_addr,
            http_addr: self.http_addr.unwrap_or_default(),
            zone: self.zone.unwrap_or_else(|| "default".into()),
            region: self.region.unwrap_or_else(|| "default".into()),
        };
        Ok((self.id, member, self.voter))
    }
}

#[utoipa::path(
    get,
    path = "/admin/v1/cluster",
    operation_id = "cluster_status",
    tag = "cluster",
    responses(
        (status = 200, description = "The cluster as this node sees it", body = mirrors::ClusterStatus),
    ),
)]
pub async fn status(_: AdminCaller, State(state): State<AppState>) -> Json<ClusterStatus> {
    Json(state.consensus.status())
}

#[utoipa::path(
    post,
    path = "/admin/v1/cluster/nodes",
    operation_id = "add_node",
    tag = "cluster",
    request_body = AddNode,
    responses(
        (status = 200, description = "The node caught up and (if a voter) joined", body = mirrors::ClusterStatus),
        (status = 400, description = "`invalid_request`: a bad id or address", body = ErrorBody),
    ),
)]
pub async fn add_node(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiJson(body, _): ApiJson<AddNode>,
) -> ApiResult<impl IntoResponse> {
    let (id, member, voter) = body.into_member()?;
    state.consensus.add_node(id, member, voter).await?;
    Ok(Json(state.consensus.status()))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/cluster/nodes/{id}",
    operation_id = "remove_node",
    tag = "cluster",
    params(("id" = u64, Path, description = "The node's id")),
    responses(
        (status = 200, description = "Removed from the membership", body = mirrors::ClusterStatus),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 404, description = "`node_not_found`", body = ErrorBody),
    ),
)]
pub async fn remove_node(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<NodeId>,
) -> ApiResult<impl IntoResponse> {
    state.consensus.remove_node(id).await?;
    Ok(Json(state.consensus.status()))
}

#[utoipa::path(
    get,
    path = "/admin/v1/cluster/backup",
    operation_id = "cluster_backup",
    tag = "cluster",
    responses(
        (status = 200, description = "The backup file (`application/octet-stream`; docs/operations.md gives its layout): the whole state at one log index, which includes every write acknowledged before the request. Headers `x-rsp-backup-log-index` and `x-rsp-backup-revision` describe it; the entry count is at the end of the file (format 2).", content_type = "application/octet-stream"),
        (status = 503, description = "`unavailable`: no leader confirmed the copy's point", body = ErrorBody),
    ),
)]
pub async fn backup(
    caller: AdminCaller,
    State(state): State<AppState>,
) -> ApiResult<axum::response::Response> {
    use axum::body::{Body, Bytes};
    use axum::http::header;
    let backup = state.consensus.backup().await?;
    let h = backup.header.clone();
    // Secrets in it stay sealed under the KEK, but it is the whole state:
    // who took one, and of what, is on the cluster's trail.
    state.identity.audit.record(
        rsp_identity::audit::Draft::new(
            None,
            "cluster.backup_taken",
            super::audit::actor(&caller.principal),
            rsp_identity::audit::Outcome::Success,
        )
        .detail("log_index", h.log_index)
        .detail("revision", h.kv_revision),
    );
    // An error midway ends the body early: the client's file then fails
    // its checks (the count and checksum are at the end).
    let chunks = futures::stream::unfold(backup.chunks, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item.map(Bytes::from).map_err(std::io::Error::other), rx))
    });
    axum::response::Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"rsp.backup\"",
        )
        .header("x-rsp-backup-log-index", h.log_index)
        .header("x-rsp-backup-revision", h.kv_revision)
        .body(Body::from_stream(chunks))
        .map_err(ApiError::internal)
}

impl From<RingError> for ApiError {
    fn from(e: RingError) -> Self {
        match e {
            RingError::Consensus(e) => e.into(),
            RingError::Busy(m) => ApiError::conflict("rotation_in_progress", m),
            RingError::Invalid(m) => ApiError::bad_request("invalid_request", m),
            RingError::Crypto(CryptoError::NoKek) => ApiError::unavailable(
                "this node does not hold the cluster's key-encryption key yet",
            ),
            RingError::Missing(id) => ApiError::unavailable(format!(
                "no member could hand over the key-encryption key {id}"
            )),
            other => ApiError::internal(other),
        }
    }
}

/// The KEK rotation's state: current KEK id, the previous ones still
/// accepted, members that lack the current one.
#[utoipa::path(
    get,
    path = "/admin/v1/cluster/kek",
    operation_id = "kek_status",
    tag = "cluster",
    responses(
        (status = 200, description = "The key-encryption key's status (ids only, never a key)", body = mirrors::KekStatus),
    ),
)]
pub async fn kek_status(
    _: AdminCaller,
    State(state): State<AppState>,
) -> ApiResult<Json<KekStatus>> {
    Ok(Json(state.identity.kek_ring.status().await?))
}

#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateKekBody {
    /// The new KEK (32 bytes, base64 or hex), for clusters whose nodes
    /// read it from `RSP_KEK` or `kek-command`; a fresh one when absent.
    #[schema(value_type = Option<String>)]
    kek: Option<zeroize::Zeroizing<String>>,
    /// How long to wait for re-sealing before answering 202 (default 60,
    /// at most 600).
    wait_secs: Option<u64>,
}

/// A KEK rotation request, checked.
pub struct RotateKek {
    /// The new KEK; a fresh one when `None`.
    pub new: Option<Kek>,
    pub wait: Duration,
}

impl RotateKek {
    /// The request in `body`: JSON, or nothing at all.
    pub fn parse(body: &[u8]) -> ApiResult<RotateKek> {
        let request: RotateKekBody = if body.iter().all(u8::is_ascii_whitespace) {
            RotateKekBody::default()
        } else {
            serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))?
        };
        let new = match &request.kek {
            Some(text) => Some(
                Kek::parse(text)
                    .map_err(|e| ApiError::bad_request("invalid_request", format!("kek: {e}")))?,
            ),
            None => None,
        };
        let wait = match request.wait_secs {
            None => RESEAL_WAIT,
            Some(secs) if Duration::from_secs(secs) <= MAX_RESEAL_WAIT => Duration::from_secs(secs),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    format!("wait_secs: at most {}", MAX_RESEAL_WAIT.as_secs()),
                ));
            }
        };
        Ok(RotateKek { new, wait })
    }
}

/// Rotate the KEK and re-seal every sealed secret under the new one: 200
/// when done, 202 when re-sealing goes on (members to wait for, or more
/// than the request's wait), 409 while an earlier rotation re-seals.
#[utoipa::path(
    post,
    path = "/admin/v1/cluster/kek/rotate",
    operation_id = "rotate_kek",
    tag = "cluster",
    request_body(content = Option<RotateKekBody>, description = "Optional"),
    responses(
        (status = 200, description = "Rotated: every sealed secret re-sealed, the old KEK forgotten", body = mirrors::KekStatus),
        (status = 202, description = "Rotated; re-sealing goes on in the background", body = mirrors::KekStatus),
        (status = 400, description = "`invalid_request`: a `kek` that is not a key or is the current one", body = ErrorBody),
        (status = 409, description = "`rotation_in_progress`", body = ErrorBody),
    ),
)]
pub async fn kek_rotate(
    _: AdminCaller,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> ApiResult<impl IntoResponse> {
    let RotateKek { new, wait } = RotateKek::parse(&body)?;
    let status = state.identity.rotate_kek(new, state.clock(), wait).await?;
    let code = if status.rotating {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(status)))
}
