//! Token revocation (RFC 7009): `POST {issuer}/revoke` with client
//! authentication. A refresh token revokes its whole family (and so the
//! family's access tokens); an access token is revoked by its `jti` until it
//! expires. The answer comes once every node has applied the revocation.
//! Unknown, invalid and expired tokens answer 200 as well; a token issued to
//! another client is refused. `token_type_hint` is optional and not needed:
//! the two kinds are told apart by their shape.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::oidc::client_auth::Public;
use crate::oidc::error::OAuthResult;
use crate::oidc::http::{OAuthForm, authorization, json_no_store};
use crate::oidc::tenant::TenantCtx;
use crate::state::AppState;

pub async fn revoke(
    State(state): State<AppState>,
    t: TenantCtx,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> OAuthResult<Response> {
    let client = state
        .oidc
        .client_auth
        .authenticate(
            &t.id,
            authorization(&headers),
            &params,
            &t.endpoint("/revoke"),
            Public::Allowed,
        )
        .await?;
    let token = params.require("token")?;
    state.oidc.tokens.revoke(&t.id, &client, token).await?;
    Ok(json_no_store(StatusCode::OK, json!({})))
}
