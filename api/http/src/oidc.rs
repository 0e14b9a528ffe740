//! The per-tenant OAuth 2.0 and OpenID Connect provider, under
//! `{public-url}/t/{tenant}`.
//!
//! The rules (codes, tokens, client authentication, claims, the device
//! flow, PAR) are `rsp_identity::oauth`'s; this module extracts, calls
//! them and answers.
//!
//! - [`error`]: `OAuthError`s answered in RFC 6749 / OIDC format;
//! - [`tenant`]: the tenant extractor (unknown tenants answer 404);
//!   [`client`]: the authenticated-client extractor;
//! - [`discovery`]: discovery documents and the JWKS.
//! - endpoints: [`token_endpoint`] (one file per grant in `rsp_identity::oauth::grants`),
//!   [`userinfo`], [`introspection`], [`revocation`], [`device`], [`par`];
//!   [`http`] is their form and header plumbing.
//! - the browser side: [`authorize`] (the authorization endpoint), [`login`],
//!   [`consent`], [`logout`] (RP-initiated logout), [`device_page`] (the
//!   device flow's verification page), [`passkeys`] (passkey sign-in);
//!   [`browser_session`] (session cookie,
//!   tenant actors, the second-factor seam), [`csrf`] (anti-forgery and
//!   sealed form state), [`id_token_hint`], [`pages`] (templates, security
//!   headers, error pages).

pub mod authorize;
pub mod authz_request;
pub mod browser_form;
pub mod browser_session;
pub mod client;
pub mod consent;
pub mod csrf;
pub mod device;
pub mod device_page;
pub mod discovery;
pub mod enrolment_pages;
pub mod error;
pub mod http;
pub mod id_token_hint;
pub mod introspection;
pub mod lockout;
pub mod login;
pub mod login_enrol;
pub mod login_page;
pub mod login_totp;
pub mod logout;
pub mod mfa;
pub mod pages;
pub mod par;
pub mod passkey_ceremony;
pub mod passkeys;
pub mod revocation;
pub mod second_factors;
pub mod signin;
pub mod tenant;
pub mod tenant_runtime;
pub mod token_endpoint;
pub mod userinfo;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/t/{tenant}/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(
            "/t/{tenant}/.well-known/oauth-authorization-server",
            get(discovery::oauth_authorization_server),
        )
        .route("/t/{tenant}/jwks", get(discovery::jwks))
        .route("/t/{tenant}/token", post(token_endpoint::token))
        .route(
            "/t/{tenant}/userinfo",
            get(userinfo::get).post(userinfo::post),
        )
        .route("/t/{tenant}/introspect", post(introspection::introspect))
        .route("/t/{tenant}/revoke", post(revocation::revoke))
        .route(
            "/t/{tenant}/device_authorization",
            post(device::device_authorization),
        )
        .route("/t/{tenant}/par", post(par::push))
        .route(
            "/t/{tenant}/authorize",
            get(authorize::get).post(authorize::post),
        )
        .route("/t/{tenant}/login", post(login::post))
        .route("/t/{tenant}/passkey/login", post(passkeys::login))
        .route("/t/{tenant}/passkey/verify", post(passkeys::verify))
        .route("/t/{tenant}/consent", post(consent::post))
        .route("/t/{tenant}/logout", get(logout::get).post(logout::post))
        .route(
            "/t/{tenant}/device",
            get(device_page::get).post(device_page::post),
        )
}
