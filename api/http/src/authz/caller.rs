//! Who is asking, as extractors (a handler that takes one cannot forget
//! the check):
//!
//! - [`AuthzCaller`]: for the decision endpoints of tenant `t`: the tenant
//!   exists, and the caller presents the admin token or an access token of
//!   `t` carrying scope `authz:check`.
//! - [`AdminCaller`]: for the admin API, the caller the admin layer
//!   ([`crate::authz::admin_access`]) authenticated ([`authenticate_admin`]:
//!   the admin token, or an access token with scope `rsp:admin` of the
//!   tenant that issued it, whose user, when it has one, holds the
//!   `rsp_admin` attribute at the time of the request) and authorized with
//!   the built-in Cedar admin policies ([`AdminCaller::authorize`]);
//!   outside the layer, the operator's admin token only.

use std::collections::HashMap;
use std::time::Instant;

use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;
use rsp_policies::{AdminAction, AdminPrincipal, AdminResource};

use crate::authz::error::AuthzError;
use crate::authz::{ADMIN_SCOPE, CHECK_SCOPE};
use crate::oidc::http::bearer_token;
use crate::state::AppState;
use rsp_consensus::Consistency;
use rsp_identity::miss_gate::Ungated;
use rsp_identity::oauth::claims::has_scope;
use rsp_identity::tenants::TenantError;
use rsp_identity::users::{ADMIN_ATTRIBUTE, UserError};

/// How the caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    AdminToken,
    /// An access token: its client and subject.
    AccessToken {
        client_id: String,
        sub: String,
    },
}

/// A caller allowed to ask tenant `tenant` for decisions.
#[derive(Debug, Clone)]
pub struct AuthzCaller {
    pub tenant: String,
    /// `{public-url}/t/{tenant}`.
    pub issuer: String,
    /// When the request arrived: decisions reflect every policy write
    /// acknowledged before this instant.
    pub started: Instant,
    pub credential: Credential,
}

fn missing_token() -> AuthzError {
    AuthzError::unauthorized(
        "missing_token",
        "send an access token with scope authz:check (or the admin token) as `Authorization: Bearer <token>`",
    )
}

async fn path_tenant(parts: &mut Parts, state: &AppState) -> Result<String, AuthzError> {
    let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(|e| AuthzError::invalid_request(e.body_text()))?;
    params
        .get("tenant")
        .cloned()
        .ok_or_else(|| AuthzError::invalid_request("the URL does not name a tenant"))
}

/// The tenant must exist; a local miss is confirmed linearizably (it may
/// have been created a moment ago through another node).
pub async fn require_tenant(state: &AppState, tenant: &str) -> Result<(), AuthzError> {
    match state.tenants.get_confirmed(tenant).await {
        Ok(_) => Ok(()),
        Err(TenantError::NotFound(_)) => Err(AuthzError::new(
            StatusCode::NOT_FOUND,
            "tenant_not_found",
            format!("tenant `{tenant}` does not exist"),
        )),
        Err(TenantError::Consensus(e)) => Err(e.into()),
        Err(e) => Err(crate::error::ApiError::internal(e).into()),
    }
}

impl FromRequestParts<AppState> for AuthzCaller {
    type Rejection = AuthzError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AuthzError> {
        let started = Instant::now();
        let tenant = path_tenant(parts, state).await?;
        require_tenant(state, &tenant).await?;
        let token = bearer_token(&parts.headers).ok_or_else(missing_token)?;
        let admin_allowed = !state.admin_guard.is_blocked(parts);
        let credential = if admin_allowed && state.admin_token.matches(token) {
            Credential::AdminToken
        } else {
            // Ungated: a token that fails here (an unknown `kid` included)
            // counts against the address in the admin guard.
            let claims = state
                .oidc
                .tokens
                .verify_access_token(&tenant, token, &Ungated)
                .await
                .map_err(AuthzError::from)
                .inspect_err(|e| {
                    if e.status == StatusCode::UNAUTHORIZED {
                        state.admin_guard.failed(parts);
                    }
                })?;
            if !has_scope(&claims.scope, CHECK_SCOPE) {
                return Err(AuthzError::forbidden(
                    "insufficient_scope",
                    "the access token lacks scope authz:check",
                ));
            }
            Credential::AccessToken {
                client_id: claims.client_id,
                sub: claims.sub,
            }
        };
        Ok(AuthzCaller {
            issuer: format!("{}/t/{tenant}", state.public_url),
            tenant,
            started,
            credential,
        })
    }
}

/// An authenticated admin API caller; what it may do is decided per call.
#[derive(Debug, Clone)]
pub struct AdminCaller {
    pub principal: AdminPrincipal,
}

/// The tenant a JWT claims to come from (unverified: only used to pick the
/// tenant whose keys then verify it).
fn claimed_tenant(token: &str, public_url: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = rsp_consensus::encoding::b64url_decode(payload)?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let iss = claims.get("iss")?.as_str()?;
    let tenant = iss.strip_prefix(public_url)?.strip_prefix("/t/")?;
    (!tenant.is_empty() && !tenant.contains('/')).then(|| tenant.to_string())
}

/// Authenticate an admin API caller, unless its address made too many
/// failed attempts ([`crate::authz::admin_guard`]: 429 then).
pub async fn authenticate_admin(
    parts: &Parts,
    state: &AppState,
) -> Result<AdminCaller, AuthzError> {
    let attempt = state.admin_guard.admit(parts)?;
    attempt.record(authenticate_admin_caller(parts, state).await)
}

/// Authenticate an admin API caller: the admin token (the operator) or an
/// access token with scope `rsp:admin` of the tenant that issued it (a
/// tenant admin). A token issued to a user (one with a refresh family)
/// counts only while that user is granted administration: the user is
/// read linearizably on every call, so taking the `rsp_admin` attribute
/// away (or disabling or deleting the user) stops their tokens at once. A
/// client-credentials token needs no such grant: its client was allowed the
/// scope. What the caller may do is not decided here: the admin layer
/// ([`crate::authz::admin_access`]) asks the built-in Cedar policies.
async fn authenticate_admin_caller(
    parts: &Parts,
    state: &AppState,
) -> Result<AdminCaller, AuthzError> {
    let Some(token) = bearer_token(&parts.headers) else {
        return Err(AuthzError::unauthorized(
            "missing_token",
            "send the admin token (or a tenant admin's access token) as `Authorization: Bearer <token>`",
        ));
    };
    if state.admin_token.matches(token) {
        return Ok(AdminCaller {
            principal: AdminPrincipal::Operator,
        });
    }
    let invalid = || AuthzError::unauthorized("invalid_token", "the token is not valid");
    let tenant = claimed_tenant(token, &state.public_url).ok_or_else(invalid)?;
    // Ungated: the admin guard counts this address's failures.
    let claims = state
        .oidc
        .tokens
        .verify_access_token(&tenant, token, &Ungated)
        .await
        .map_err(AuthzError::from)?;
    if !has_scope(&claims.scope, ADMIN_SCOPE) {
        return Err(AuthzError::forbidden(
            "insufficient_scope",
            "the access token lacks scope rsp:admin",
        ));
    }
    if claims.fid.is_some() {
        require_user_admin(state, &tenant, &claims.sub).await?;
    }
    Ok(AdminCaller {
        principal: AdminPrincipal::TenantAdmin {
            tenant,
            subject: claims.sub,
        },
    })
}

/// The user `sub` of `tenant` must be granted tenant administration now
/// (a linearizable read: a grant taken away on any node counts at once).
pub(crate) async fn require_user_admin(
    state: &AppState,
    tenant: &str,
    sub: &str,
) -> Result<(), AuthzError> {
    let denied = || {
        AuthzError::forbidden(
            "forbidden",
            format!(
                "the token's user is not an administrator of `{tenant}` (user attribute `{ADMIN_ATTRIBUTE}`)"
            ),
        )
    };
    match state
        .identity
        .users
        .get(tenant, sub, Consistency::Linearizable)
        .await
    {
        Ok(user) if user.is_tenant_admin() => Ok(()),
        Ok(_) | Err(UserError::NotFound) => Err(denied()),
        Err(UserError::Consensus(e)) => Err(e.into()),
        Err(e) => Err(crate::error::ApiError::internal(e).into()),
    }
}

/// A caller the admin layer let through, with what it was allowed to do
/// (a request extension the layer sets).
#[derive(Debug, Clone)]
pub struct Granted {
    pub caller: AdminCaller,
    pub action: AdminAction,
    pub resource: AdminResource,
}

/// The one admin-caller extractor: proof that the admin API may serve
/// this request. Behind the admin layer it is the caller the layer
/// authorized with the built-in Cedar admin policies. Outside that layer (a
/// handler mounted elsewhere) no policy was asked, so only the operator's
/// admin token is accepted. A handler that takes it cannot forget the
/// check.
impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = AuthzError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AuthzError> {
        if let Some(granted) = parts.extensions.get::<Granted>() {
            return Ok(granted.caller.clone());
        }
        let caller = authenticate_admin(parts, state).await?;
        match caller.principal {
            AdminPrincipal::Operator => Ok(caller),
            _ => Err(AuthzError::forbidden(
                "forbidden",
                "only the admin token may call this endpoint",
            )),
        }
    }
}

impl AdminCaller {
    /// Ask the built-in admin policies; 403 `forbidden` when they deny.
    pub fn authorize(
        &self,
        state: &AppState,
        action: AdminAction,
        resource: AdminResource,
    ) -> Result<(), AuthzError> {
        let admin = state.authz.admin.as_ref().ok_or_else(|| {
            AuthzError::from(crate::error::ApiError::internal(
                "the built-in admin policies are not loaded",
            ))
        })?;
        let (allowed, _) = admin.is_allowed(&self.principal, action, &resource)?;
        if allowed {
            Ok(())
        } else {
            Err(AuthzError::forbidden(
                "forbidden",
                format!("{} may not {} here", self.principal.author(), action.name()),
            ))
        }
    }

    pub fn author(&self) -> String {
        self.principal.author()
    }
}
