//! `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628
//! section 3.4): `authorization_pending` until the user decides,
//! `slow_down` when polled faster than the interval, `access_denied`,
//! `expired_token`, and the tokens exactly once. See
//! [`crate::oauth::device`].

use crate::clients::Client;
use crate::oauth::error::OAuthResult;
use crate::oauth::params::Params;
use crate::oauth::services::OidcServices;
use crate::oauth::tokens::TokenSet;

pub async fn poll(
    oidc: &OidcServices,
    tenant: &str,
    client: &Client,
    params: &Params,
) -> OAuthResult<TokenSet> {
    let device_code = params.require("device_code")?;
    let approved = oidc.device.poll(tenant, client, device_code).await?;
    let grant = &approved.grant;
    oidc.tokens
        .user_tokens(tenant, client, grant, &grant.scope, approved.family, None)
        .await
}
