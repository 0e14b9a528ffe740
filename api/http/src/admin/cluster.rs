//! `GET /admin/v1/cluster`, `POST /admin/v1/cluster/nodes`,
//! `DELETE /admin/v1/cluster/nodes/{id}`.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use rsp_consensus::{ClusterStatus, Member, NodeId};
use serde::Deserialize;

use crate::authz::caller::AdminCaller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddNode {
    id: NodeId,
    peer_addr: String,
    #[serde(default)]
    http_addr: Option<String>,
    zone: Option<String>,
    region: Option<String>,
    #[serde(default = "yes")]
    voter: bool,
}

fn yes() -> bool {
    true
}

pub async fn status(_: AdminCaller, State(state): State<AppState>) -> Json<ClusterStatus> {
    Json(state.consensus.status())
}

pub async fn add_node(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiJson(body, _): ApiJson<AddNode>,
) -> ApiResult<impl IntoResponse> {
    if body.id == 0 {
        return Err(ApiError::bad_request(
            "invalid_request",
            "node ids start at 1",
        ));
    }
    if body.peer_addr.parse::<std::net::SocketAddr>().is_err() && !body.peer_addr.contains(':') {
        return Err(ApiError::bad_request(
            "invalid_request",
            "peer_addr must be host:port",
        ));
    }
    let member = Member {
        peer_addr: body.peer_addr,
        http_addr: body.http_addr.unwrap_or_default(),
        zone: body.zone.unwrap_or_else(|| "default".into()),
        region: body.region.unwrap_or_else(|| "default".into()),
    };
    state
        .consensus
        .add_node(body.id, member, body.voter)
        .await?;
    Ok(Json(state.consensus.status()))
}

pub async fn remove_node(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<NodeId>,
) -> ApiResult<impl IntoResponse> {
    state.consensus.remove_node(id).await?;
    Ok(Json(state.consensus.status()))
}
