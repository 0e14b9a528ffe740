//! A tenant administrator's sign-in to the console, through their tenant's
//! own OIDC login (authorization code with PKCE, `state` and `nonce`):
//!
//! - `GET /admin/tenant-signin?tenant=T` (the sign-in page's small form):
//!   on to `/admin/t/T/signin`.
//! - `GET /admin/t/{tenant}/signin`: sets the short-lived sign-in cookie
//!   (`rsp_console_signin`: `r.exp.tag`, an HMAC over the tenant, a random
//!   `r` and the expiry) and sends the browser to `/t/{tenant}/authorize`
//!   for the tenant's built-in console client
//!   ([`rsp_identity::clients::CONSOLE_CLIENT_ID`]), scope
//!   `openid rsp:admin`. `state`, `nonce` and the PKCE verifier are HMACs of
//!   `r` under a KEK-derived key: the browser holds only `r`, never the
//!   verifier.
//! - `GET /admin/t/{tenant}/callback`: the cookie must be sealed for this
//!   tenant and unexpired and `state` must be the one it derives; the code
//!   is redeemed in-process by the token endpoint's own grant
//!   ([`rsp_identity::oauth::grants::authorization_code`]); the ID token's
//!   `nonce` must match; the access token is checked as the admin API
//!   checks a tenant administrator's (`rsp:admin` in its scope, the user
//!   holding `rsp_admin` now, read linearizably). Then the console session
//!   is the tenant administrator's. A user who is not one gets a page
//!   saying so and no session. The tokens are dropped: the console keeps
//!   only its own session cookie.
//!
//! The sign-in cookie is `SameSite=Strict` like the session's: the return
//! from the tenant's login is a same-site redirect, so the browser sends it.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::Digest;

use super::calls::seg;
use super::page::{self, Problem};
use super::session::{self, Principal, SESSION_COOKIE, SESSION_LIFETIME};
use crate::authz::caller::require_tenant;
use crate::state::AppState;
use rsp_consensus::Consistency;
use rsp_identity::clients::{CONSOLE_CLIENT_ID, console_redirect_uri};
use rsp_identity::crypto::{HashKey, b64url, b64url_decode, random_token};
use rsp_identity::miss_gate::Ungated;
use rsp_identity::oauth::claims::{ADMIN_SCOPE, has_scope};
use rsp_identity::oauth::grants::authorization_code;
use rsp_identity::oauth::params::Params;
use rsp_identity::users::UserError;

pub const SIGNIN_COOKIE: &str = "rsp_console_signin";
/// How long a tenant sign-in may take, from the console's form to the
/// callback.
const SIGNIN_LIFETIME_SECS: u64 = 600;
const SIGNIN_LABEL: &str = "rsp admin console tenant sign-in v1";

fn key(state: &AppState) -> Result<HashKey, Problem> {
    crate::oidc::csrf::key(state, SIGNIN_LABEL).map_err(|e| Problem::new(e.status, e.description))
}

/// `state`, `nonce` or `verifier` of the sign-in `r` of `tenant`.
fn derived(key: &HashKey, what: &str, tenant: &str, r: &str) -> String {
    key.hash(format!("{what}\n{tenant}\n{r}").as_bytes())
}

#[derive(Deserialize, Default)]
pub struct Which {
    tenant: Option<String>,
}

/// `GET /admin/tenant-signin?tenant=T`: the sign-in page's form.
pub async fn choose(Query(q): Query<Which>) -> Response {
    match q.tenant.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => page::redirect(&format!("/admin/t/{}/signin", seg(t))),
        None => page::redirect("/admin/"),
    }
}

fn refused(status: StatusCode, message: impl Into<String>) -> Response {
    Problem::new(status, message).into_response()
}

/// `GET /admin/t/{tenant}/signin`: off to the tenant's login.
pub async fn start(State(state): State<AppState>, Path(tenant): Path<String>) -> Response {
    match require_tenant(&state, &tenant).await {
        Ok(()) => {}
        Err(e) if e.status == StatusCode::NOT_FOUND => {
            return refused(e.status, format!("There is no tenant {tenant}."));
        }
        Err(e) => {
            return refused(
                e.status,
                "The console cannot reach the cluster right now. Try again.",
            );
        }
    }
    let key = match key(&state) {
        Ok(k) => k,
        Err(p) => return p.into_response(),
    };
    let r = random_token(32);
    let exp = state.clock().now_secs() + SIGNIN_LIFETIME_SECS;
    let tag = key.hash(format!("{tenant}\n{r}\n{exp}").as_bytes());
    let verifier = derived(&key, "verifier", &tenant, &r);
    let challenge = b64url(&sha2::Sha256::digest(verifier.as_bytes()));
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", CONSOLE_CLIENT_ID)
        .append_pair(
            "redirect_uri",
            &console_redirect_uri(&state.public_url, &tenant),
        )
        .append_pair("scope", &format!("openid {ADMIN_SCOPE}"))
        .append_pair("state", &derived(&key, "state", &tenant, &r))
        .append_pair("nonce", &derived(&key, "nonce", &tenant, &r))
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    page::redirect_setting(
        &format!("/t/{}/authorize?{query}", seg(&tenant)),
        &[session::set_cookie(
            &state,
            SIGNIN_COOKIE,
            &format!("{r}.{exp}.{tag}"),
            SIGNIN_LIFETIME_SECS,
        )],
    )
}

/// The `r` of the browser's sign-in cookie, if it is sealed for `tenant`
/// and unexpired.
fn signin_nonce(
    state: &AppState,
    key: &HashKey,
    headers: &HeaderMap,
    tenant: &str,
) -> Option<String> {
    let value = session::cookie(headers, SIGNIN_COOKIE)?;
    let mut parts = value.splitn(3, '.');
    let (r, exp, tag) = (parts.next()?, parts.next()?, parts.next()?);
    let exp_secs = exp.parse::<u64>().ok()?;
    (key.verify(format!("{tenant}\n{r}\n{exp}").as_bytes(), tag)
        && exp_secs > state.clock().now_secs())
    .then(|| r.to_string())
}

/// The `nonce` claim of an ID token this node's token service just issued
/// (in-process, so its signature needs no check here).
fn id_token_nonce(id_token: &str) -> Option<String> {
    let payload = b64url_decode(id_token.split('.').nth(1)?)?;
    let claims: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    claims.get("nonce")?.as_str().map(str::to_string)
}

fn not_an_admin(tenant: &str) -> Response {
    tracing::info!(tenant = %tenant, "console sign-in refused: not a tenant administrator");
    refused(
        StatusCode::FORBIDDEN,
        format!(
            "You signed in to tenant {tenant}, but you are not an administrator of this tenant. Ask its administrators to grant you rsp_admin."
        ),
    )
}

/// `GET /admin/t/{tenant}/callback`: back from the tenant's login.
pub async fn callback(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let key = match key(&state) {
        Ok(k) => k,
        Err(p) => return p.into_response(),
    };
    let expired = || {
        refused(
            StatusCode::FORBIDDEN,
            "This sign-in expired or was not started from this browser. Start again from the console's sign-in page.",
        )
    };
    let Some(r) = signin_nonce(&state, &key, &headers, &tenant) else {
        return expired();
    };
    let state_ok = q
        .get("state")
        .is_some_and(|s| key.verify(format!("state\n{tenant}\n{r}").as_bytes(), s));
    if !state_ok {
        tracing::info!(tenant = %tenant, "console sign-in refused: state mismatch");
        return expired();
    }
    if let Some(error) = q.get("error") {
        return refused(
            StatusCode::FORBIDDEN,
            format!("The tenant's sign-in did not complete ({error})."),
        );
    }
    let Some(code) = q.get("code") else {
        return refused(StatusCode::BAD_REQUEST, "The tenant's answer had no code.");
    };
    let client = match state.identity.clients.get(&tenant, CONSOLE_CLIENT_ID).await {
        Ok(c) => c,
        Err(e) => return Problem::internal(e).into_response(),
    };
    let params = Params::from_map(BTreeMap::from([
        ("grant_type".to_string(), "authorization_code".to_string()),
        ("code".to_string(), code.clone()),
        (
            "redirect_uri".to_string(),
            console_redirect_uri(&state.public_url, &tenant),
        ),
        (
            "code_verifier".to_string(),
            derived(&key, "verifier", &tenant, &r),
        ),
    ]));
    let tokens = match authorization_code::exchange(&state.oidc, &tenant, &client, &params).await {
        Ok(t) => t,
        Err(e) => {
            tracing::info!(tenant = %tenant, error = %e.description, "console sign-in: code refused");
            return refused(
                StatusCode::FORBIDDEN,
                "The tenant's sign-in could not be completed. Start again from the console's sign-in page.",
            );
        }
    };
    let nonce_ok = tokens
        .id_token
        .as_deref()
        .and_then(id_token_nonce)
        .is_some_and(|n| key.verify(format!("nonce\n{tenant}\n{r}").as_bytes(), &n));
    if !nonce_ok {
        tracing::warn!(tenant = %tenant, "console sign-in refused: ID token nonce mismatch");
        return expired();
    }
    // As the admin API checks a tenant administrator's token.
    let claims = match state
        .oidc
        .tokens
        .verify_access_token(&tenant, &tokens.access_token, &Ungated)
        .await
    {
        Ok(c) => c,
        Err(e) => return Problem::internal(e.description).into_response(),
    };
    if !has_scope(&claims.scope, ADMIN_SCOPE) {
        return not_an_admin(&tenant);
    }
    let user = match state
        .identity
        .users
        .get(&tenant, &claims.sub, Consistency::Linearizable)
        .await
    {
        Ok(u) if u.is_tenant_admin() => u,
        Ok(_) | Err(UserError::NotFound) => return not_an_admin(&tenant),
        Err(e) => return Problem::internal(e).into_response(),
    };
    let who = Principal::TenantAdmin {
        tenant: tenant.clone(),
        user: user.id.clone(),
        username: user.username.clone(),
    };
    match session::new_session(&state, &who) {
        Ok(value) => {
            tracing::info!(tenant = %tenant, "console sign-in of a tenant administrator");
            page::redirect_setting(
                &format!("/admin/tenants/{}", seg(&tenant)),
                &[
                    session::set_cookie(&state, SESSION_COOKIE, &value, SESSION_LIFETIME.as_secs()),
                    session::set_cookie(&state, SIGNIN_COOKIE, "", 0),
                ],
            )
        }
        Err(p) => p.into_response(),
    }
}
