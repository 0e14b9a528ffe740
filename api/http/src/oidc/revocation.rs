//! Token revocation (RFC 7009): `POST {issuer}/revoke` with client
//! authentication. A refresh token revokes its whole family (and so the
//! family's access tokens); an access token is revoked by its `jti` until it
//! expires. The answer comes once every node has applied the revocation.
//! Unknown, invalid and expired tokens answer 200 as well; a token issued to
//! another client is refused. `token_type_hint` is optional and not needed:
//! the two kinds are told apart by their shape.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use rsp_identity::audit::{Draft, Outcome};
use serde_json::json;

use crate::oidc::client::{AuthenticatedClient, Endpoint};
use crate::oidc::error::OAuthResult;
use crate::oidc::http::json_no_store;
use crate::state::AppState;

/// Every client, public ones included.
pub struct RevocationEndpoint;

impl Endpoint for RevocationEndpoint {
    const PUBLIC_CLIENTS: bool = true;
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: AuthenticatedClient<RevocationEndpoint>,
) -> OAuthResult<Response> {
    let token = caller.params.require("token")?;
    state
        .oidc
        .tokens
        .revoke(
            &caller.tenant.id,
            &caller.client,
            token,
            &state.misses.gate(caller.client_ip),
        )
        .await?;
    // RFC 7009: the answer is the same whether the token was known; the
    // record names the client that asked, never the token.
    state.identity.audit.record(
        Draft::new(
            Some(&caller.tenant.id),
            "token.revoked",
            format!("client:{}", caller.client.client_id),
            Outcome::Success,
        )
        .ip(caller.client_ip)
        .detail(
            "token_type_hint",
            caller.params.get("token_type_hint").unwrap_or("none"),
        ),
    );
    Ok(json_no_store(StatusCode::OK, json!({})))
}
