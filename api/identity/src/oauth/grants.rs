//! The grant types of the token endpoint, one file each. Each takes the
//! authenticated client and the request's parameters, and answers a
//! [`crate::oauth::tokens::TokenSet`] or an RFC 6749 error; [`exchange`]
//! picks the grant a request names.

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod refresh_token;

use crate::clients::{
    Client, GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_DEVICE_CODE,
    GRANT_REFRESH_TOKEN,
};
use crate::oauth::error::{OAuthError, OAuthErrorCode, OAuthResult};
use crate::oauth::params::Params;
use crate::oauth::services::OidcServices;
use crate::oauth::tokens::TokenSet;

/// The grant types the token endpoint serves.
pub const GRANT_TYPES: [&str; 4] = [
    GRANT_AUTHORIZATION_CODE,
    GRANT_CLIENT_CREDENTIALS,
    GRANT_REFRESH_TOKEN,
    GRANT_DEVICE_CODE,
];

/// The token request of an authenticated client, by its `grant_type`:
/// `unsupported_grant_type` for one rsp does not serve,
/// `unauthorized_client` for one the client did not register.
pub async fn exchange(
    oidc: &OidcServices,
    tenant: &str,
    client: &Client,
    params: &Params,
) -> OAuthResult<TokenSet> {
    let grant_type = params.require("grant_type")?;
    if !GRANT_TYPES.contains(&grant_type) {
        return Err(OAuthError::new(
            OAuthErrorCode::UnsupportedGrantType,
            format!("grant_type `{grant_type}` is not supported"),
        ));
    }
    if !client.allows_grant(grant_type) {
        return Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            format!("the client is not registered for grant_type `{grant_type}`"),
        ));
    }
    match grant_type {
        GRANT_AUTHORIZATION_CODE => {
            authorization_code::exchange(oidc, tenant, client, params).await
        }
        GRANT_CLIENT_CREDENTIALS => client_credentials::issue(oidc, tenant, client, params).await,
        GRANT_REFRESH_TOKEN => refresh_token::refresh(oidc, tenant, client, params).await,
        _ => device_code::poll(oidc, tenant, client, params).await,
    }
}
