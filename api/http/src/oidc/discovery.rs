//! `GET {issuer}/.well-known/openid-configuration` (OIDC Discovery 1.0) and
//! `GET {issuer}/.well-known/oauth-authorization-server` (RFC 8414), and the
//! JWKS. Only what is implemented is advertised.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::oidc::error::{OAuthError, OAuthResult};
use crate::oidc::tenant::TenantCtx;
use crate::state::AppState;
use rsp_identity::keys::SigningAlg;

/// Claims rsp can put in ID tokens and userinfo answers.
pub const CLAIMS: [&str; 22] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "at_hash",
    "sid",
    "name",
    "preferred_username",
    "given_name",
    "family_name",
    "email",
    "email_verified",
    "address",
    "phone_number",
    "phone_number_verified",
    "updated_at",
    "locale",
];

fn metadata(t: &TenantCtx, oidc: bool) -> Value {
    // What the tenant signs with (its settings may narrow the server's).
    let algs: Vec<&str> = t
        .settings
        .algorithms()
        .into_iter()
        .map(SigningAlg::name)
        .collect();
    let mut doc = json!({
        "issuer": t.issuer,
        "authorization_endpoint": t.endpoint("/authorize"),
        "token_endpoint": t.endpoint("/token"),
        "jwks_uri": t.endpoint("/jwks"),
        "introspection_endpoint": t.endpoint("/introspect"),
        "revocation_endpoint": t.endpoint("/revoke"),
        "device_authorization_endpoint": t.endpoint("/device_authorization"),
        "pushed_authorization_request_endpoint": t.endpoint("/par"),
        "scopes_supported": rsp_identity::oauth::claims::STANDARD_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code", "client_credentials", "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code"
        ],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "EdDSA"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "code_challenge_methods_supported": ["S256"],
        "require_pushed_authorization_requests": false,
        "authorization_response_iss_parameter_supported": true,
    });
    if oidc {
        doc["userinfo_endpoint"] = json!(t.endpoint("/userinfo"));
        doc["end_session_endpoint"] = json!(t.endpoint("/logout"));
        doc["subject_types_supported"] = json!(["public"]);
        doc["id_token_signing_alg_values_supported"] = json!(algs);
        doc["userinfo_signing_alg_values_supported"] = json!(algs);
        doc["claims_supported"] = json!(CLAIMS);
        doc["claims_parameter_supported"] = json!(false);
        doc["request_parameter_supported"] = json!(false);
        doc["request_uri_parameter_supported"] = json!(false);
        doc["prompt_values_supported"] = json!(["none", "login", "consent"]);
        doc["acr_values_supported"] = json!(["urn:rsp:acr:pwd", "urn:rsp:acr:mfa"]);
    }
    doc
}

fn cacheable(body: Value) -> Response {
    let mut resp = Json(body).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

pub async fn openid_configuration(t: TenantCtx) -> Response {
    cacheable(metadata(&t, true))
}

pub async fn oauth_authorization_server(t: TenantCtx) -> Response {
    cacheable(metadata(&t, false))
}

pub async fn jwks(State(state): State<AppState>, t: TenantCtx) -> OAuthResult<Response> {
    let now = state.clock().now_ms();
    let mut set = state
        .identity
        .keys
        .jwks(&t.id, now)
        .await
        .map_err(OAuthError::server_error)?;
    if set.keys.is_empty() {
        // First use of the tenant: make its keys now.
        state
            .identity
            .keys
            .ensure(&t.id, now)
            .await
            .map_err(OAuthError::server_error)?;
        set = state
            .identity
            .keys
            .jwks(&t.id, now)
            .await
            .map_err(OAuthError::server_error)?;
    }
    let body = serde_json::to_value(set).map_err(OAuthError::server_error)?;
    Ok(cacheable(body))
}
