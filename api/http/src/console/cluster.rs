//! `/admin/cluster`: the members, their roles, the leader and term (the
//! admin API's cluster status), this node's readiness (as `/readyz` says)
//! and, on the leader, how far each member has replicated.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::calls::answer;
use super::page;
use super::session::SignedIn;
use super::templates::{ClusterPage, MemberRow, Nav};
use crate::admin::cluster as api;
use crate::state::AppState;

fn index(i: Option<u64>) -> String {
    i.map_or_else(|| "none".to_string(), |i| i.to_string())
}

/// `GET /admin/cluster`.
pub async fn show(op: SignedIn, State(state): State<AppState>) -> Response {
    let axum::Json(status) = api::status(op.caller(), State(state.clone())).await;
    let (ready, readiness, degraded) =
        match answer(crate::ops::readyz(State(state.clone())).await).await {
            Ok(r) => {
                let degraded = r["degraded_tenants"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|t| match t {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                (true, "ready".to_string(), degraded)
            }
            Err(f) => (false, format!("not ready: {}", f.message), Vec::new()),
        };
    let metrics = state.consensus.metrics();
    let replication = metrics.replication.as_ref();
    let is_leader = status.leader == Some(status.this_node);
    let members = status
        .members
        .iter()
        .map(|m| {
            let matched = match replication {
                _ if m.id == status.this_node && is_leader => index(status.last_log_index),
                Some(r) => match r.get(&m.id) {
                    Some(Some(log)) => {
                        let lag = status.last_log_index.unwrap_or(0).saturating_sub(log.index);
                        format!("{} ({lag} behind)", log.index)
                    }
                    Some(None) => "nothing yet".to_string(),
                    None => "unknown".to_string(),
                },
                None => "unknown".to_string(),
            };
            MemberRow {
                id: m.id,
                peer_addr: m.peer_addr.clone(),
                http_addr: m.http_addr.clone(),
                zone: m.zone.clone(),
                region: m.region.clone(),
                role: serde_json::to_value(m.role)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                matched,
            }
        })
        .collect();
    page::render(
        StatusCode::OK,
        &ClusterPage {
            nav: Nav::new(&op, None, "cluster"),
            leader: index(status.leader),
            term: status.term,
            this_node: status.this_node,
            last_applied: index(status.last_applied),
            last_log_index: index(status.last_log_index),
            snapshot_index: index(status.snapshot_index),
            ready,
            readiness,
            degraded,
            is_leader,
            members,
        },
        &[],
    )
}
