//! Token introspection (RFC 7662): `POST {issuer}/introspect` with client
//! authentication (confidential clients only). Anything not valid here,
//! including another tenant's tokens, revoked, rotated and expired ones,
//! and another client's refresh tokens (any client may introspect an
//! access token: resource servers do), is `{"active": false}`; an active
//! token is described by `scope`, `client_id`, `username`, `token_type`,
//! `exp`, `iat`, `sub`, `aud`, `iss` and `jti`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::oidc::client::{AuthenticatedClient, Endpoint};
use crate::oidc::error::OAuthResult;
use crate::oidc::http::json_no_store;
use crate::state::AppState;

/// Confidential clients only.
pub struct IntrospectionEndpoint;

impl Endpoint for IntrospectionEndpoint {
    const PUBLIC_CLIENTS: bool = false;
}

pub async fn introspect(
    State(state): State<AppState>,
    caller: AuthenticatedClient<IntrospectionEndpoint>,
) -> OAuthResult<Response> {
    let token = caller.params.require("token")?;
    let answer = state
        .oidc
        .tokens
        .introspect(
            &caller.tenant.id,
            &caller.client,
            token,
            &state.misses.gate(caller.client_ip),
        )
        .await?;
    Ok(json_no_store(StatusCode::OK, answer))
}
