//! `GET /healthz`, `GET /readyz`, `GET /metrics`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// The process is up and answering.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// This node knows a leader and has applied everything committed. Tenants
/// whose actors are degraded (restarting too often) are listed; they do not
/// make the node unready, since every other tenant is still served.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let degraded: Vec<serde_json::Value> = state
        .tenant_runtime
        .runtime()
        .map(|rt| {
            rt.health()
                .degraded()
                .map(|t| serde_json::to_value(t).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    match tokio::time::timeout(Duration::from_secs(2), state.consensus.ready()).await {
        Ok(Ok(_)) if !state.identity.kek.is_ready() => {
            let mut err = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "the key-encryption key is not in place yet",
            );
            err.retry_after = Some(1);
            err.into_response()
        }
        Ok(Ok(info)) => Json(json!({
            "status": "ready",
            "leader": info.leader,
            "applied_index": info.applied_index,
            "degraded_tenants": degraded,
        }))
        .into_response(),
        Ok(Err(e)) => {
            let mut err =
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", e.to_string());
            err.retry_after = Some(1);
            err.into_response()
        }
        Err(_) => {
            let mut err = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "no leader confirmed in time",
            );
            err.retry_after = Some(1);
            err.into_response()
        }
    }
}

/// Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let families = state.registry.gather();
    match prometheus::TextEncoder::new().encode_to_string(&families) {
        Ok(text) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}
