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

pub async fn status(_: AdminCaller, State(state): State<AppState>) -> Json<ClusterStatus> {
    Json(state.consensus.status())
}

pub async fn add_node(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiJson(body, _): ApiJson<AddNode>,
) -> ApiResult<impl IntoResponse> {
    let (id, member, voter) = body.into_member()?;
    state.consensus.add_node(id, member, voter).await?;
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
