//! "Principal from a token": a decision request may carry an access token
//! instead of a principal. The token is verified as any access token of the
//! tenant (signature with its key's algorithm, issuer, audience, expiry,
//! revocation); the principal is `User::"<sub>"` and its attributes are the
//! token's claims (`sub`, `client_id`, `scope`, `scopes` as a set, `iss`,
//! `iat`, `exp`, and `auth_time`, `acr`, `amr` when present). Its parents
//! are those the stored entity `User::"<sub>"` has (all its ancestors), so
//! group policies (`principal in Group::"..."`) still apply.
//!
//! With a schema, `User` must declare these attributes (the entity is
//! checked like any request entity).

use rsp_policies::cedar_policy::{Entities, EntityUid};
use rsp_policies::evaluate::uid;
use serde_json::{Value, json};

use crate::authz::error::AuthzError;
use crate::state::AppState;
use rsp_identity::miss_gate::Ungated;
use rsp_identity::oauth::tokens::AccessClaims;

/// The entity type of principals taken from tokens.
pub const TOKEN_PRINCIPAL_TYPE: &str = "User";

/// Verify `token` for `tenant` and return the principal and its entity
/// (Cedar entity JSON), parented as the stored entity is in `stored`.
pub async fn from_token(
    state: &AppState,
    tenant: &str,
    token: &str,
    stored: &Entities,
) -> Result<(EntityUid, Value), AuthzError> {
    // The caller authenticated (the decision API's token), so an unknown
    // `kid` here is not an anonymous quorum read.
    let claims = state
        .oidc
        .tokens
        .verify_access_token(tenant, token, &Ungated)
        .await
        .map_err(|e| {
            // The caller authenticated; the token in the body is data.
            AuthzError::invalid_request(format!("access_token: {}", e.description))
        })?;
    principal_entity(&claims, stored)
}

pub fn principal_entity(
    claims: &AccessClaims,
    stored: &Entities,
) -> Result<(EntityUid, Value), AuthzError> {
    let principal = uid(TOKEN_PRINCIPAL_TYPE, &claims.sub, "access_token")?;
    let parents: Vec<Value> = stored
        .ancestors(&principal)
        .map(|a| {
            a.map(|p| json!({"type": p.type_name().to_string(), "id": p.id().unescaped()}))
                .collect()
        })
        .unwrap_or_default();
    let scopes: Vec<&str> = claims.scope.split(' ').filter(|s| !s.is_empty()).collect();
    let mut attrs = json!({
        "sub": claims.sub,
        "client_id": claims.client_id,
        "scope": claims.scope,
        "scopes": scopes,
        "iss": claims.iss,
        "iat": claims.iat,
        "exp": claims.exp,
    });
    if let Some(t) = claims.auth_time {
        attrs["auth_time"] = json!(t);
    }
    if let Some(acr) = &claims.acr {
        attrs["acr"] = json!(acr);
    }
    if !claims.amr.is_empty() {
        attrs["amr"] = json!(claims.amr);
    }
    let entity = json!({
        "uid": {"type": TOKEN_PRINCIPAL_TYPE, "id": claims.sub},
        "attrs": attrs,
        "parents": parents,
    });
    Ok((principal, entity))
}
