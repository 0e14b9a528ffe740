//! The OAuth services of a node, built once and carried by `rsp-api`'s
//! application state: authorization codes, tokens (with refresh-token
//! families), client authentication, the device flow and pushed
//! authorization requests. None of them sees an HTTP type.

use std::sync::Arc;

use rsp_consensus::Consensus;

use crate::Identity;
use crate::oauth::client_auth::ClientAuthService;
use crate::oauth::codes::CodeService;
use crate::oauth::config::OidcConfig;
use crate::oauth::context::OAuthContext;
use crate::oauth::device::DeviceService;
use crate::oauth::par::ParService;
use crate::oauth::tokens::TokenService;

/// Everything the OAuth endpoints (and the browser side) call.
#[derive(Clone)]
pub struct OidcServices {
    pub codes: CodeService,
    pub tokens: TokenService,
    pub client_auth: ClientAuthService,
    pub device: DeviceService,
    pub par: ParService,
    pub config: Arc<OidcConfig>,
}

impl OidcServices {
    pub fn new(
        consensus: Consensus,
        identity: Identity,
        public_url: &str,
        config: OidcConfig,
    ) -> Self {
        let ctx = OAuthContext::new(consensus, identity, public_url, config);
        let tokens = TokenService::new(ctx.clone());
        OidcServices {
            codes: CodeService::new(ctx.clone(), tokens.clone()),
            device: DeviceService::new(ctx.clone(), tokens.clone()),
            client_auth: ClientAuthService::new(ctx.clone()),
            par: ParService::new(ctx.clone()),
            config: ctx.config.clone(),
            tokens,
        }
    }
}
