//! Identity services behind the OAuth 2.0 / OpenID Connect endpoints: no
//! HTTP types here, only rules and replicated records.
//!
//! - [`crypto`]: the key-encryption key, keyed hashes, random tokens;
//! - [`keys`]: per-tenant signing keys, JWKS, rotation;
//! - [`passwords`]: argon2id on a bounded blocking pool;
//! - [`users`], [`clients`]: accounts and OAuth clients;
//! - [`factors`]: second factors (TOTP).

pub mod clients;
pub mod crypto;
pub mod factors;
pub mod keys;
pub mod passwords;
pub mod users;
pub mod webauthn;

use std::sync::Arc;

use rsp_consensus::Consensus;

/// The identity services of a node, built once at start-up.
#[derive(Clone)]
pub struct Identity {
    pub keys: keys::KeyService,
    pub users: users::UserService,
    pub clients: clients::ClientService,
    pub factors: factors::FactorService,
    pub kek: Arc<crypto::KekCell>,
}

impl Identity {
    pub fn new(
        consensus: Consensus,
        kek: Arc<crypto::KekCell>,
        hasher: passwords::PasswordHasher,
    ) -> Self {
        Identity {
            keys: keys::KeyService::new(consensus.clone(), kek.clone()),
            users: users::UserService::new(consensus.clone(), hasher),
            clients: clients::ClientService::new(consensus.clone(), kek.clone()),
            factors: factors::FactorService::new(consensus, kek.clone()),
            kek,
        }
    }
}
