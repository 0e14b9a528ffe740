//! `grant_type=client_credentials` (RFC 6749 section 4.4): for confidential
//! clients only (the token endpoint refused public ones at registration and
//! authentication); the scope is limited to the client's registered scopes
//! (all of them when none is asked for); `sub` is the client; no refresh
//! token.

use crate::clients::Client;
use crate::oauth::claims::client_scope;
use crate::oauth::error::{OAuthError, OAuthErrorCode, OAuthResult};
use crate::oauth::params::Params;
use crate::oauth::services::OidcServices;
use crate::oauth::tokens::TokenSet;

pub async fn issue(
    oidc: &OidcServices,
    tenant: &str,
    client: &Client,
    params: &Params,
) -> OAuthResult<TokenSet> {
    if client.is_public() {
        return Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            "public clients cannot use client_credentials",
        ));
    }
    let scope = client_scope(client, params.get("scope"))?;
    oidc.tokens.client_credentials(tenant, client, &scope).await
}
