//! `grant_type=authorization_code` (RFC 6749 section 4.1.3, RFC 7636
//! section 4.5): the code must be this client's, unexpired and unused, the
//! `redirect_uri` the one it was issued for, and the PKCE verifier match
//! its S256 challenge (mandatory for public clients). Redemption is single
//! use across the cluster; see [`crate::oauth::codes`].

use crate::clients::Client;
use crate::oauth::error::OAuthResult;
use crate::oauth::params::Params;
use crate::oauth::services::OidcServices;
use crate::oauth::tokens::TokenSet;

pub async fn exchange(
    oidc: &OidcServices,
    tenant: &str,
    client: &Client,
    params: &Params,
) -> OAuthResult<TokenSet> {
    let code = params.require("code")?;
    let redeemed = oidc
        .codes
        .redeem(
            tenant,
            code,
            client,
            params.get("redirect_uri"),
            params.get("code_verifier"),
        )
        .await?;
    let grant = &redeemed.grant;
    oidc.tokens
        .user_tokens(
            tenant,
            client,
            &grant.user_grant(),
            &grant.scope,
            redeemed.family,
            grant.nonce.as_deref(),
        )
        .await
}
