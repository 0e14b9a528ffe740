//! Checks of an authorization request's parameters (RFC 6749 section 4.1.1,
//! RFC 7636, OIDC Core section 3.1.2.1), shared by the pushed authorization
//! request endpoint and the authorization endpoint, so both refuse the same
//! things:
//!
//! - `request` objects are not supported (`request_not_supported`), and
//!   `request_uri` is only for the authorization endpoint, which resolves
//!   it with [`crate::oauth::par::ParService::take`] first;
//! - `client_id` must be the client's (filled in when absent);
//! - `response_type=code` only; the client must use the code grant;
//! - `redirect_uri` exactly as registered (filled in when absent and the
//!   client registered exactly one);
//! - PKCE with S256 only (`plain` refused), mandatory for public clients;
//! - the scope within what the client may ask for;
//! - `response_mode=query` only.

use std::collections::BTreeMap;

use crate::clients::{Client, GRANT_AUTHORIZATION_CODE};
use crate::oauth::claims::user_scope;
use crate::oauth::codes::check_code_challenge;
use crate::oauth::error::{OAuthError, OAuthErrorCode};

/// Validate and complete `params` for `client`; they then hold a
/// `client_id`, a registered `redirect_uri` and a normalized `scope`.
pub fn validate_authorization_request(
    client: &Client,
    params: &mut BTreeMap<String, String>,
) -> Result<(), OAuthError> {
    if params.contains_key("request") {
        return Err(OAuthError::new(
            OAuthErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if params.contains_key("request_uri") {
        return Err(OAuthError::invalid_request(
            "request_uri cannot be used here",
        ));
    }
    match params.get("client_id") {
        Some(id) if *id != client.client_id => {
            return Err(OAuthError::invalid_request(
                "client_id differs from the authenticated client",
            ));
        }
        Some(_) => {}
        None => {
            params.insert("client_id".into(), client.client_id.clone());
        }
    }
    match params.get("response_type").map(String::as_str) {
        Some("code") => {}
        None => return Err(OAuthError::invalid_request("response_type is missing")),
        Some(other) => {
            return Err(OAuthError::new(
                OAuthErrorCode::UnsupportedResponseType,
                format!("response_type `{other}` is not supported; use `code`"),
            ));
        }
    }
    if !client.allows_grant(GRANT_AUTHORIZATION_CODE) {
        return Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            "the client is not registered for the authorization code grant",
        ));
    }
    match params.get("redirect_uri") {
        Some(uri) if !client.has_redirect_uri(uri) => {
            return Err(OAuthError::invalid_request(
                "redirect_uri is not registered for this client",
            ));
        }
        Some(_) => {}
        None if client.redirect_uris.len() == 1 => {
            params.insert("redirect_uri".into(), client.redirect_uris[0].clone());
        }
        None => return Err(OAuthError::invalid_request("redirect_uri is missing")),
    }
    if params
        .get("response_mode")
        .is_some_and(|m| m.as_str() != "query")
    {
        return Err(OAuthError::invalid_request(
            "only response_mode=query is supported",
        ));
    }
    let challenge = params.get("code_challenge").map(String::as_str);
    check_code_challenge(
        challenge,
        params.get("code_challenge_method").map(String::as_str),
    )?;
    if challenge.is_none() && client.is_public() {
        return Err(OAuthError::invalid_request(
            "PKCE (code_challenge with S256) is required for public clients",
        ));
    }
    let scope = user_scope(client, params.get("scope").map(String::as_str))?;
    params.insert("scope".into(), scope);
    Ok(())
}
