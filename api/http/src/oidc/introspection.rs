//! Token introspection (RFC 7662): `POST {issuer}/introspect` with client
//! authentication (confidential clients only). Anything not valid here,
//! including another tenant's tokens, revoked, rotated and expired ones, is
//! `{"active": false}`; an active token is described by `scope`,
//! `client_id`, `username`, `token_type`, `exp`, `iat`, `sub`, `aud`, `iss`
//! and `jti`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::oidc::client_auth::Public;
use crate::oidc::error::OAuthResult;
use crate::oidc::http::{OAuthForm, authorization, json_no_store};
use crate::oidc::tenant::TenantCtx;
use crate::state::AppState;

pub async fn introspect(
    State(state): State<AppState>,
    t: TenantCtx,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> OAuthResult<Response> {
    state
        .oidc
        .client_auth
        .authenticate(
            &t.id,
            authorization(&headers),
            &params,
            &t.endpoint("/introspect"),
            Public::Refused,
        )
        .await?;
    let token = params.require("token")?;
    let answer = state.oidc.tokens.introspect(&t.id, token).await?;
    Ok(json_no_store(StatusCode::OK, answer))
}
