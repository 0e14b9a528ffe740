//! `POST {issuer}/device_authorization` (RFC 8628 section 3.1): the client
//! authenticates and the device flow starts
//! ([`rsp_identity::oauth::device`] holds the rules and records).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::oidc::client::{AuthenticatedClient, Endpoint};
use crate::oidc::error::OAuthResult;
use crate::oidc::http::json_no_store;
use crate::state::AppState;

/// Clients of the device flow, public ones included.
pub struct DeviceAuthorizationEndpoint;

impl Endpoint for DeviceAuthorizationEndpoint {
    const PUBLIC_CLIENTS: bool = true;
}

pub async fn device_authorization(
    State(state): State<AppState>,
    client: AuthenticatedClient<DeviceAuthorizationEndpoint>,
) -> OAuthResult<Response> {
    let answer = state
        .oidc
        .device
        .start(
            &client.tenant.id,
            &client.client,
            client.params.get("scope"),
        )
        .await?;
    Ok(json_no_store(StatusCode::OK, &answer))
}
