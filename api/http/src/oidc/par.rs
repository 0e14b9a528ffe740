//! `POST {issuer}/par` (RFC 9126 section 2): the client authenticates and
//! its authorization request is checked and stored
//! ([`rsp_identity::oauth::par`] holds the rules and records).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::oidc::client::{AuthenticatedClient, Endpoint};
use crate::oidc::error::OAuthResult;
use crate::oidc::http::json_no_store;
use crate::state::AppState;

/// Pushed authorization requests, public clients included.
pub struct ParEndpoint;

impl Endpoint for ParEndpoint {
    const PUBLIC_CLIENTS: bool = true;
}

pub async fn push(
    State(state): State<AppState>,
    client: AuthenticatedClient<ParEndpoint>,
) -> OAuthResult<Response> {
    let (request_uri, expires_in) = state
        .oidc
        .par
        .push(&client.tenant.id, &client.client, client.params)
        .await?;
    Ok(json_no_store(
        StatusCode::CREATED,
        json!({"request_uri": request_uri, "expires_in": expires_in}),
    ))
}
