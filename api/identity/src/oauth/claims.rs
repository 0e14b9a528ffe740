//! Scopes and the claims they release (OIDC Core section 5.4): which scopes
//! a client may ask for, what a user's tokens may carry ([`ADMIN_SCOPE`]
//! only for a user granted it), and what `profile`, `email`, `address` and
//! `phone` put into ID tokens and userinfo answers from a user record.

use serde_json::{Map, Value};

use crate::clients::Client;
use crate::oauth::error::{OAuthError, OAuthErrorCode};
use crate::users::User;

/// The scope that makes an access token's subject an administrator of its
/// tenant. A client-credentials token carries it when the client is allowed
/// it; a user's token only when the user is granted it
/// ([`User::is_tenant_admin`]).
pub const ADMIN_SCOPE: &str = "rsp:admin";

/// The scope of a refresh token meant to outlive the browser session
/// (OIDC Core section 11).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Scopes every tenant supports.
pub const STANDARD_SCOPES: [&str; 6] = [
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
];

/// Claims of the `profile` scope read from a user's attributes.
const PROFILE_ATTRIBUTES: [&str; 13] = [
    "name",
    "family_name",
    "given_name",
    "middle_name",
    "nickname",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "updated_at",
];

/// Whether a space-separated scope string contains `scope`.
pub fn has_scope(scopes: &str, scope: &str) -> bool {
    scopes.split(' ').any(|s| s == scope)
}

fn valid_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// Split and de-duplicate a requested scope, keeping its order; refuse
/// malformed tokens and anything `allowed` refuses (`invalid_scope`).
fn checked(requested: &str, allowed: impl Fn(&str) -> bool) -> Result<Vec<&str>, OAuthError> {
    let mut out: Vec<&str> = Vec::new();
    for s in requested.split([' ', '\t']).filter(|s| !s.is_empty()) {
        if !valid_scope_token(s) || !allowed(s) {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidScope,
                format!("scope `{s}` is not available to this client"),
            ));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

/// The scope of a user-facing request (authorization code, device flow):
/// `openid`, plus the client's registered scopes (or the standard ones
/// when it registered none). Absent: empty.
pub fn user_scope(client: &Client, requested: Option<&str>) -> Result<String, OAuthError> {
    let allowed = |s: &str| {
        s == "openid"
            || if client.scopes.is_empty() {
                STANDARD_SCOPES.contains(&s)
            } else {
                client.scopes.iter().any(|c| c == s)
            }
    };
    Ok(checked(requested.unwrap_or(""), allowed)?.join(" "))
}

/// The scope of a client-credentials token: only the client's registered
/// scopes; absent means all of them (RFC 6749 section 3.3's default).
pub fn client_scope(client: &Client, requested: Option<&str>) -> Result<String, OAuthError> {
    match requested {
        None => Ok(client.scopes.join(" ")),
        Some(r) => Ok(checked(r, |s| client.scopes.iter().any(|c| c == s))?.join(" ")),
    }
}

/// A scope that may only narrow `granted` (refresh, RFC 6749 section 6).
pub fn narrowed_scope(granted: &str, requested: Option<&str>) -> Result<String, OAuthError> {
    match requested {
        None => Ok(granted.to_string()),
        Some(r) => Ok(checked(r, |s| has_scope(granted, s))?.join(" ")),
    }
}

/// What of `scope` a token of `user` carries: [`ADMIN_SCOPE`] is dropped
/// unless the user is granted it (as Keycloak drops scopes a user may not
/// have); everything else stays, in order.
pub fn user_token_scope(user: &User, scope: &str) -> String {
    if user.is_tenant_admin() || !has_scope(scope, ADMIN_SCOPE) {
        return scope.to_string();
    }
    scope
        .split(' ')
        .filter(|s| *s != ADMIN_SCOPE)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The claims `scope` releases about `user` (besides `sub`).
pub fn user_claims(user: &User, scope: &str) -> Map<String, Value> {
    let mut claims = Map::new();
    let attr = |claims: &mut Map<String, Value>, name: &str| {
        if let Some(v) = user.attributes.get(name) {
            claims.insert(name.to_string(), v.clone());
        }
    };
    if has_scope(scope, "profile") {
        claims.insert(
            "preferred_username".into(),
            Value::String(user.username.clone()),
        );
        for name in PROFILE_ATTRIBUTES {
            attr(&mut claims, name);
        }
        claims
            .entry("updated_at")
            .or_insert_with(|| Value::from(user.created_at_ms / 1000));
    }
    if has_scope(scope, "email")
        && let Some(email) = &user.email
    {
        claims.insert("email".into(), Value::String(email.clone()));
        claims.insert("email_verified".into(), Value::Bool(user.email_verified));
    }
    if has_scope(scope, "address") {
        attr(&mut claims, "address");
    }
    if has_scope(scope, "phone") {
        attr(&mut claims, "phone_number");
        attr(&mut claims, "phone_number_verified");
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrowing_keeps_only_granted_scopes() {
        assert_eq!(
            narrowed_scope("openid profile", None).expect("same"),
            "openid profile"
        );
        assert_eq!(
            narrowed_scope("openid profile", Some("profile")).expect("narrow"),
            "profile"
        );
        assert!(narrowed_scope("openid", Some("openid email")).is_err());
        assert!(narrowed_scope("openid", Some("open\"id")).is_err());
    }

    fn user(attributes: serde_json::Value) -> User {
        serde_json::from_value(serde_json::json!({
            "id": "u1", "username": "alice", "password_hash": "x",
            "created_at_ms": 0, "attributes": attributes,
        }))
        .expect("user")
    }

    #[test]
    fn a_users_token_carries_rsp_admin_only_when_the_user_is_granted_it() {
        let plain = user(serde_json::json!({}));
        assert_eq!(
            user_token_scope(&plain, "openid rsp:admin profile"),
            "openid profile"
        );
        let not_quite = user(serde_json::json!({"rsp_admin": "true"}));
        assert_eq!(user_token_scope(&not_quite, "rsp:admin"), "");
        let mut admin = user(serde_json::json!({"rsp_admin": true}));
        assert_eq!(
            user_token_scope(&admin, "openid rsp:admin"),
            "openid rsp:admin"
        );
        admin.disabled = true;
        assert_eq!(user_token_scope(&admin, "openid rsp:admin"), "openid");
    }
}
