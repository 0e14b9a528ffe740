//! `grant_type=refresh_token` (RFC 6749 section 6, with the rotation and
//! reuse detection of the OAuth 2.0 Security BCP section 4.14): every use
//! rotates the token; reusing a rotated one revokes its whole family. The
//! scope may only narrow. See [`crate::oauth::tokens::family`].

use crate::clients::Client;
use crate::oauth::error::OAuthResult;
use crate::oauth::params::Params;
use crate::oauth::services::OidcServices;
use crate::oauth::tokens::TokenSet;

pub async fn refresh(
    oidc: &OidcServices,
    tenant: &str,
    client: &Client,
    params: &Params,
) -> OAuthResult<TokenSet> {
    let token = params.require("refresh_token")?;
    oidc.tokens
        .refresh(tenant, client, token, params.get("scope"))
        .await
}
