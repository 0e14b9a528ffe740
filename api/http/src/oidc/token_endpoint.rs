//! `POST {issuer}/token` (RFC 6749 section 3.2): a form body, the client
//! authenticated by its registered method, then one file per grant type in
//! [`crate::oidc::grants`]. Answers carry `Cache-Control: no-store`.
//!
//! Errors: a missing or repeated parameter or a body that is not a form is
//! `invalid_request`; an unknown grant `unsupported_grant_type`; a grant the
//! client did not register `unauthorized_client`; a client over its rate
//! limit (`token-rate-limit`: per client, across the cluster) 429
//! `too_many_requests` with `Retry-After`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::identity::clients::{
    GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_DEVICE_CODE, GRANT_REFRESH_TOKEN,
};
use crate::oidc::client_auth::Public;
use crate::oidc::error::{OAuthError, OAuthErrorCode, OAuthResult};
use crate::oidc::grants;
use crate::oidc::http::{OAuthForm, authorization, json_no_store};
use crate::oidc::tenant::TenantCtx;
use crate::state::AppState;

pub async fn token(
    State(state): State<AppState>,
    t: TenantCtx,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> OAuthResult<Response> {
    let grant_type = params.require("grant_type")?;
    let oidc = &state.oidc;
    let client = oidc
        .client_auth
        .authenticate(
            &t.id,
            authorization(&headers),
            &params,
            &t.endpoint("/token"),
            Public::Allowed,
        )
        .await?;
    // Per client, cluster-wide (each node enforces its share): after client
    // authentication, so an unauthenticated caller cannot drain a client's
    // budget by naming it.
    if let Some(runtime) = state.browser.runtime() {
        runtime
            .tenant(&t.id)
            .await?
            .rate_limits()
            .check(rsp_actors::KIND_TOKEN, &client.client_id)
            .await?;
    }
    let known = [
        GRANT_AUTHORIZATION_CODE,
        GRANT_CLIENT_CREDENTIALS,
        GRANT_REFRESH_TOKEN,
        GRANT_DEVICE_CODE,
    ];
    if !known.contains(&grant_type) {
        return Err(OAuthError::new(
            OAuthErrorCode::UnsupportedGrantType,
            format!("grant_type `{grant_type}` is not supported"),
        ));
    }
    if !client.allows_grant(grant_type) {
        return Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            format!("the client is not registered for grant_type `{grant_type}`"),
        ));
    }
    let tokens = match grant_type {
        GRANT_AUTHORIZATION_CODE => {
            grants::authorization_code::exchange(oidc, &t.id, &client, &params).await?
        }
        GRANT_CLIENT_CREDENTIALS => {
            grants::client_credentials::issue(oidc, &t.id, &client, &params).await?
        }
        GRANT_REFRESH_TOKEN => {
            grants::refresh_token::refresh(oidc, &t.id, &client, &params).await?
        }
        _ => grants::device_code::poll(oidc, &t.id, &client, &params).await?,
    };
    Ok(json_no_store(StatusCode::OK, &tokens))
}
