//! The UserInfo endpoint (OIDC Core section 5.3): `GET` or `POST` with
//! `Authorization: Bearer`, or `POST` with an `access_token` form parameter
//! (RFC 6750 section 2.2). The token must carry `openid`; the answer holds
//! `sub` and the claims its scopes release. A bad token is `invalid_token`
//! (401, `WWW-Authenticate: Bearer error="invalid_token"`), a missing one a
//! bare `Bearer` challenge, a token without `openid` `insufficient_scope`.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::miss_limit::PeerIp;
use crate::oidc::error::{OAuthError, OAuthErrorCode, OAuthErrorResponse, OAuthResult};
use crate::oidc::http::{Params, bearer_token, is_form, json_no_store};
use crate::oidc::tenant::TenantCtx;
use crate::state::AppState;
use rsp_identity::oauth::claims::has_scope;

pub async fn get(
    State(state): State<AppState>,
    t: TenantCtx,
    PeerIp(ip): PeerIp,
    headers: HeaderMap,
) -> Response {
    answer(&state, &t, ip, &headers, None).await
}

pub async fn post(
    State(state): State<AppState>,
    t: TenantCtx,
    PeerIp(ip): PeerIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = if is_form(&headers) {
        match Params::parse(&body) {
            Ok(p) => p,
            Err(e) => return OAuthErrorResponse(e).into_response(),
        }
    } else {
        Params::default()
    };
    answer(&state, &t, ip, &headers, params.get("access_token")).await
}

async fn answer(
    state: &AppState,
    t: &TenantCtx,
    ip: Option<IpAddr>,
    headers: &HeaderMap,
    body_token: Option<&str>,
) -> Response {
    match claims(state, t, ip, headers, body_token).await {
        Ok(Some(resp)) => resp,
        Ok(None) => {
            // RFC 6750 section 3.1: no credentials, no error code.
            let mut resp = StatusCode::UNAUTHORIZED.into_response();
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            resp
        }
        Err(e) => e.into_response(),
    }
}

async fn claims(
    state: &AppState,
    t: &TenantCtx,
    ip: Option<IpAddr>,
    headers: &HeaderMap,
    body_token: Option<&str>,
) -> OAuthResult<Option<Response>> {
    let header_token = bearer_token(headers);
    let token = match (header_token, body_token) {
        (Some(_), Some(_)) => {
            return Err(
                OAuthError::invalid_request("send the access token in one place only").into(),
            );
        }
        (Some(token), None) | (None, Some(token)) => token,
        (None, None) => return Ok(None),
    };
    let tokens = &state.oidc.tokens;
    // An unknown `kid` costs a quorum read within the address's budget.
    let claims = tokens
        .verify_access_token(&t.id, token, &state.misses.gate(ip))
        .await?;
    if !has_scope(&claims.scope, "openid") {
        return Err(OAuthError::new(
            OAuthErrorCode::InsufficientScope,
            "the access token lacks scope openid",
        )
        .into());
    }
    let body = tokens.userinfo(&t.id, &claims).await?;
    Ok(Some(json_no_store(StatusCode::OK, body)))
}
