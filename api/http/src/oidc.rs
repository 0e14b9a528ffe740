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
//! - the browser side, handlers: [`authorize`] (the authorization
//!   endpoint; [`authz_request`] checks the request and issues the code),
//!   [`login`] (the password step; [`login_totp`] the code step,
//!   [`login_enrol`] enrolment during sign-in), [`passkeys`] (passkey
//!   sign-in), [`consent`], [`logout`] (RP-initiated logout),
//!   [`device_page`] (the device flow's verification page);
//! - the browser side, what the handlers share: [`signin`] (the one way a
//!   sign-in finishes), [`login_page`] (the login form and where it
//!   leads), [`mfa`] (when a second factor is needed, `amr` / `acr`),
//!   [`mfa_ticket`] (the single-use, browser-bound ticket from the
//!   password to the second factor), [`lockout`] (rate limit and lockout
//!   of sign-in attempts),
//!   [`passkey_ceremony`], [`enrolment_pages`] (TOTP and recovery-code
//!   pages), [`id_token_hint`];
//! - the browser side, plumbing: [`browser_session`] (the `Browser`
//!   extractor, the session cookie, sessions), [`browser_form`] (the
//!   posted-form extractors with the anti-forgery check), [`csrf`]
//!   (anti-forgery and sealed form state), [`pages`] (`Page`, security
//!   headers, templates, error pages), [`tenant_runtime`] (the tenant
//!   actor runtime and what sign-in plugs into it), [`second_factors`]
//!   (the second-factor seam).

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
pub mod mfa_ticket;
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
