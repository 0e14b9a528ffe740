//! The OAuth services of a node, built once and carried by `AppState`:
//! authorization codes, tokens (with refresh-token families), client
//! authentication, the device flow and pushed authorization requests. None
//! of them sees an HTTP type; the handlers beside them extract, call and map.
//!
//! Also the few helpers they share: the issuer URL of a tenant, keyed
//! hashes of random secrets, and "local read, confirmed before a miss is
//! believed".

use std::sync::Arc;
use std::time::Duration;

use rsp_consensus::kv::{Key, KeyValue};
use rsp_consensus::{Consensus, ConsensusError, Consistency};

use crate::Identity;
use crate::crypto::{CryptoError, KekCell};
use crate::oauth::client_auth::ClientAuthService;
use crate::oauth::codes::CodeService;
use crate::oauth::device::DeviceService;
use crate::oauth::error::OAuthError;
use crate::oauth::par::ParService;
use crate::oauth::tokens::TokenService;

/// Lifetimes and timing of the protocol objects. The defaults are the
/// product's; tests shorten some of them.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// Authorization codes (RFC 6749 recommends at most 10 minutes).
    pub code_ttl: Duration,
    /// Access and ID tokens.
    pub access_ttl: Duration,
    /// Refresh tokens and their family, renewed on every rotation.
    pub refresh_ttl: Duration,
    /// Device authorization requests (RFC 8628 `expires_in`).
    pub device_ttl: Duration,
    /// Minimum polling interval of the device flow.
    pub device_interval: Duration,
    /// Pushed authorization requests (RFC 9126 `expires_in`).
    pub par_ttl: Duration,
    /// How long a revocation waits for every node to have applied it.
    pub revocation_wait: Duration,
    /// Longest lifetime (`exp - now`) accepted for a `private_key_jwt`
    /// client assertion.
    pub max_assertion_lifetime: Duration,
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            code_ttl: Duration::from_secs(60),
            access_ttl: Duration::from_secs(600),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            device_ttl: Duration::from_secs(600),
            device_interval: Duration::from_secs(5),
            par_ttl: Duration::from_secs(60),
            revocation_wait: Duration::from_secs(1),
            // Some client libraries (authlib) sign assertions for an hour.
            max_assertion_lifetime: Duration::from_secs(3600),
        }
    }
}

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
        let base = Base(Arc::new(BaseServices {
            consensus,
            identity,
            public_url: Arc::from(public_url.trim_end_matches('/')),
            config: Arc::new(config),
        }));
        let tokens = TokenService::new(base.clone());
        OidcServices {
            codes: CodeService::new(base.clone(), tokens.clone()),
            device: DeviceService::new(base.clone(), tokens.clone()),
            client_auth: ClientAuthService::new(base.clone()),
            par: ParService::new(base.clone()),
            config: base.config.clone(),
            tokens,
        }
    }
}

/// What every service holds: a handle, one reference count to clone.
#[derive(Clone)]
pub(crate) struct Base(Arc<BaseServices>);

impl std::ops::Deref for Base {
    type Target = BaseServices;

    fn deref(&self) -> &BaseServices {
        &self.0
    }
}

/// What a [`Base`] holds.
pub(crate) struct BaseServices {
    pub consensus: Consensus,
    pub identity: Identity,
    pub public_url: Arc<str>,
    pub config: Arc<OidcConfig>,
}

impl BaseServices {
    /// Milliseconds since the Unix epoch, on the node's clock.
    pub fn now_ms(&self) -> u64 {
        self.consensus.clock().now_ms()
    }

    /// Seconds since the Unix epoch, on the node's clock.
    pub fn now_secs(&self) -> u64 {
        self.consensus.clock().now_secs()
    }

    /// `{public-url}/t/{tenant}`, the issuer `rsp-api` serves the tenant at.
    pub fn issuer(&self, tenant: &str) -> String {
        format!("{}/t/{tenant}", self.public_url)
    }

    /// Keyed hash of a random secret under a KEK-derived key for `label`.
    pub fn hash(&self, label: &str, secret: &str) -> Result<String, OAuthError> {
        hash_with(&self.identity.kek, label, secret)
    }

    /// Read a key on this node; a miss is confirmed with a linearizable
    /// read, since the record may have been written on another node a
    /// moment ago.
    pub async fn get_confirmed(&self, key: &Key) -> Result<Option<KeyValue>, ConsensusError> {
        get_confirmed(&self.consensus, key).await
    }
}

pub(crate) fn hash_with(kek: &KekCell, label: &str, secret: &str) -> Result<String, OAuthError> {
    Ok(kek
        .derive(label)
        .map_err(crypto_error)?
        .hash(secret.as_bytes()))
}

pub async fn get_confirmed(
    consensus: &Consensus,
    key: &Key,
) -> Result<Option<KeyValue>, ConsensusError> {
    match consensus.get(key, Consistency::Local).await?.0 {
        Some(kv) => Ok(Some(kv)),
        None => Ok(consensus.get(key, Consistency::Linearizable).await?.0),
    }
}

/// A missing KEK (a node still joining) is temporary; anything else is ours.
pub(crate) fn crypto_error(e: CryptoError) -> OAuthError {
    match e {
        CryptoError::NoKek => OAuthError::unavailable("this node is not ready to issue tokens yet"),
        other => OAuthError::server_error(other),
    }
}

/// A stored record that does not parse is our bug, never the caller's.
pub(crate) fn corrupt(e: impl std::fmt::Display) -> OAuthError {
    OAuthError::server_error(format!("stored record is unreadable: {e}"))
}
