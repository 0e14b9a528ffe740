//! A user's browser sessions, for administrators (the calls Keycloak admins
//! know as "Sessions" and "Sign out"):
//!
//! - `GET /admin/v1/tenants/{t}/users/{id}/sessions`: the user's live
//!   sessions (read linearizably: one just started through any node is
//!   listed);
//! - `DELETE /admin/v1/tenants/{t}/users/{id}/sessions`: sign the user out
//!   everywhere (every session started before the call), with every
//!   refresh token issued in a session;
//! - `DELETE /admin/v1/tenants/{t}/sessions/{sid}`: end one session, named by
//!   its public handle (the `sid` of the ID tokens issued under it), with
//!   the refresh tokens issued in it.
//!
//! `offline_access` refresh tokens survive both (see
//! `rsp_identity::oauth::tokens::sessions`). A revocation answers only once
//! it is in force on every member (or the members that did not confirm are
//! fenced, see docs/actors.md): the body says which, and how many refresh
//! token families went with it. Session ids (the cookie secret) never
//! appear here; handles do.

use axum::Json;
use axum::extract::State;
use rsp_actors::{Revocation, SessionHandle, SessionInfo, TenantHandle};
use rsp_consensus::Consistency;
use serde::Serialize;
use utoipa::ToSchema;

use crate::admin::openapi::params as p;
use crate::admin::openapi::shapes::{self, ErrorBody};
use crate::authz::caller::AdminCaller;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::state::AppState;
use rsp_identity::oauth::error::{OAuthError, OAuthErrorCode};

/// A session as listed.
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    /// The public handle (`sid`).
    id: String,
    user_id: String,
    created_ms: u64,
    last_seen_ms: u64,
    /// When it ends unless used: the earlier of idle and absolute expiry.
    expires_at_ms: u64,
    absolute_expires_ms: u64,
    idle_timeout_s: u64,
    amr: Option<String>,
    acr: Option<String>,
}

impl From<SessionInfo> for SessionView {
    fn from(s: SessionInfo) -> Self {
        SessionView {
            id: s.handle.as_str().to_string(),
            amr: s.attrs.get("amr").cloned(),
            acr: s.attrs.get("acr").cloned(),
            user_id: s.user_id,
            created_ms: s.created_ms,
            last_seen_ms: s.last_seen_ms,
            expires_at_ms: s.expires_at_ms,
            absolute_expires_ms: s.absolute_expires_ms,
            idle_timeout_s: s.idle_timeout.as_secs(),
        }
    }
}

/// A sign-out: the sessions ended and the refresh-token families revoked
/// with them.
#[derive(Serialize)]
pub struct SignOut {
    #[serde(flatten)]
    sessions: Revocation,
    refresh_families_revoked: u64,
}

/// Token-store failures, in the admin API's format.
fn token_error(e: OAuthError) -> ApiError {
    match e.code {
        OAuthErrorCode::TemporarilyUnavailable => ApiError::unavailable(e.description),
        _ => ApiError::internal(e.description),
    }
}

/// The tenant's session service on this node; the tenant must exist.
async fn tenant_actors(state: &AppState, tenant: &str) -> ApiResult<TenantHandle> {
    state.tenants.get_confirmed(tenant).await?;
    let runtime = state
        .tenant_runtime
        .runtime()
        .ok_or_else(|| ApiError::unavailable("sessions are not served by this node"))?;
    Ok(runtime.tenant(tenant).await?)
}

/// The user must exist in the tenant.
async fn require_user(state: &AppState, tenant: &str, user: &str) -> ApiResult<()> {
    state
        .identity
        .users
        .get(tenant, user, Consistency::Linearizable)
        .await?;
    Ok(())
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/users/{user}/sessions",
    operation_id = "list_user_sessions",
    tag = "sessions",
    params(p::TenantUser),
    responses(
        (status = 200, description = "The user's live browser sessions", body = Vec<SessionView>),
        (status = 404, description = "`tenant_not_found`, `user_not_found`", body = ErrorBody),
    ),
)]
pub async fn list(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, user)): ApiPath<(String, String)>,
) -> ApiResult<Json<Vec<SessionView>>> {
    let h = tenant_actors(&state, &tenant).await?;
    require_user(&state, &tenant, &user).await?;
    let sessions = h.sessions().list_for_user(&user).await?;
    Ok(Json(sessions.into_iter().map(SessionView::from).collect()))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/tenants/{tenant}/users/{user}/sessions",
    operation_id = "sign_out_user",
    tag = "sessions",
    params(p::TenantUser),
    responses(
        (status = 200, description = "The user signed out everywhere; their session-bound refresh tokens revoked", body = shapes::SignOutView),
        (status = 404, description = "`tenant_not_found`, `user_not_found`", body = ErrorBody),
    ),
)]
pub async fn revoke_user(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, user)): ApiPath<(String, String)>,
) -> ApiResult<Json<SignOut>> {
    let h = tenant_actors(&state, &tenant).await?;
    require_user(&state, &tenant, &user).await?;
    let sessions = h.sessions().revoke_all_for_user(&user).await?;
    let refresh_families_revoked = state
        .oidc
        .tokens
        .revoke_user_session_families(&tenant, &user)
        .await
        .map_err(token_error)?;
    Ok(Json(SignOut {
        sessions,
        refresh_families_revoked,
    }))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/tenants/{tenant}/sessions/{sid}",
    operation_id = "revoke_session",
    tag = "sessions",
    params(p::Tenant, ("sid" = String, Path, description = "The session's public handle (the `sid` of ID tokens)")),
    responses(
        (status = 200, description = "The session ended and its refresh tokens revoked", body = shapes::SignOutView),
        (status = 404, description = "`tenant_not_found`, `session_not_found`", body = ErrorBody),
    ),
)]
pub async fn revoke(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, sid)): ApiPath<(String, String)>,
) -> ApiResult<Json<SignOut>> {
    let handle = SessionHandle::parse(&sid)
        .map_err(|_| ApiError::not_found("session_not_found", "no such session"))?;
    let h = tenant_actors(&state, &tenant).await?;
    let sessions = h.sessions().revoke_handle(&handle).await?;
    // An expired session's refresh tokens go too.
    let refresh_families_revoked = state
        .oidc
        .tokens
        .revoke_session_families(&tenant, handle.as_str())
        .await
        .map_err(token_error)?;
    if sessions.revoked == 0 && refresh_families_revoked == 0 {
        return Err(ApiError::not_found("session_not_found", "no such session"));
    }
    Ok(Json(SignOut {
        sessions,
        refresh_families_revoked,
    }))
}
