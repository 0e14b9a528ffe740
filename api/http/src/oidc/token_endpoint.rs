//! `POST {issuer}/token` (RFC 6749 section 3.2): a form body, the client
//! authenticated by its registered method, then one file per grant type in
//! [`rsp_identity::oauth::grants`]. Answers carry `Cache-Control: no-store`.
//!
//! Errors: a missing or repeated parameter or a body that is not a form is
//! `invalid_request`; an unknown grant `unsupported_grant_type`; a grant the
//! client did not register `unauthorized_client`; a client over its rate
//! limit (`token-rate-limit`: per client, across the cluster) 429
//! `too_many_requests` with `Retry-After`.
//!
//! Every token response issued counts in `rsp_tokens_issued_total`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use rsp_identity::oauth::grants;

use crate::oidc::client::{AuthenticatedClient, Endpoint};
use crate::oidc::error::OAuthResult;
use crate::oidc::http::json_no_store;
use crate::state::AppState;

/// Every client, public ones included.
pub struct TokenEndpoint;

impl Endpoint for TokenEndpoint {
    const PUBLIC_CLIENTS: bool = true;
}

pub async fn token(
    State(state): State<AppState>,
    AuthenticatedClient {
        tenant: t,
        client,
        params,
        ..
    }: AuthenticatedClient<TokenEndpoint>,
) -> OAuthResult<Response> {
    let grant_type = params.require("grant_type")?;
    // Per client, cluster-wide (each node enforces its share): after client
    // authentication, so an unauthenticated caller cannot drain a client's
    // budget by naming it.
    if let Some(runtime) = state.tenant_runtime.runtime() {
        runtime
            .tenant(&t.id)
            .await?
            .rate_limits()
            .check(rsp_actors::KIND_TOKEN, &client.client_id)
            .await?;
    }
    let tokens = grants::exchange(&state.oidc, &t.id, &client, &params).await?;
    // A grant type that issued tokens is one of the supported few.
    state
        .metrics
        .token_issued(&t.id, grant_type, client.is_public());
    state.identity.usage.token_issued(&t.id);
    Ok(json_no_store(StatusCode::OK, &tokens))
}
