//! What the OAuth services share (`OAuthContext`) and the few helpers
//! they all use: the issuer URL of a tenant, the node's clock, keyed hashes
//! of random secrets, "local read, confirmed before a miss is believed",
//! and the mapping of crypto and storage failures to OAuth errors.

use std::sync::Arc;

use rsp_consensus::kv::{Key, KeyValue};
use rsp_consensus::{Consensus, ConsensusError, Consistency};

use crate::Identity;
use crate::crypto::{CryptoError, KekCell};
use crate::oauth::config::OidcConfig;
use crate::oauth::error::OAuthError;

/// What every OAuth service holds: the consensus handle, the identity
/// services, the public URL and the configuration. A handle: one reference
/// count to clone.
#[derive(Clone)]
pub(crate) struct OAuthContext(Arc<ContextParts>);

impl OAuthContext {
    pub(crate) fn new(
        consensus: Consensus,
        identity: Identity,
        public_url: &str,
        config: OidcConfig,
    ) -> Self {
        OAuthContext(Arc::new(ContextParts {
            consensus,
            identity,
            public_url: Arc::from(public_url.trim_end_matches('/')),
            config: Arc::new(config),
        }))
    }
}

impl std::ops::Deref for OAuthContext {
    type Target = ContextParts;

    fn deref(&self) -> &ContextParts {
        &self.0
    }
}

/// What an [`OAuthContext`] holds.
pub(crate) struct ContextParts {
    pub consensus: Consensus,
    pub identity: Identity,
    pub public_url: Arc<str>,
    pub config: Arc<OidcConfig>,
}

impl ContextParts {
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
