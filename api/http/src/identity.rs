//! Identity services behind the OAuth 2.0 / OpenID Connect endpoints: no
//! HTTP types here, only rules and replicated records.
//!
//! - [`crypto`]: the key-encryption key, keyed hashes, random tokens;
//! - [`keys`]: per-tenant signing keys, JWKS, rotation;
//! - [`passwords`]: argon2id on a bounded blocking pool;
//! - [`users`], [`clients`]: accounts and OAuth clients;
//! - [`factors`]: second factors (TOTP); [`recovery`]: recovery codes;
//!   [`mfa_policy`]: who must use a second factor.

pub mod clients;
pub mod crypto;
pub mod factors;
pub mod keys;
pub mod mfa_policy;
pub mod passwords;
pub mod recovery;
pub mod users;
pub mod webauthn;

use std::sync::Arc;

use rsp_consensus::Consensus;

/// The identity services of a node, built once at start-up. A handle: a
/// clone is one reference count (handlers clone the application state on
/// every request, and cloning each service's handles cost more than the
/// introspection itself).
#[derive(Clone)]
pub struct Identity(Arc<IdentityServices>);

impl std::ops::Deref for Identity {
    type Target = IdentityServices;

    fn deref(&self) -> &IdentityServices {
        &self.0
    }
}

/// What an [`Identity`] holds.
pub struct IdentityServices {
    pub keys: keys::KeyService,
    pub users: users::UserService,
    pub clients: clients::ClientService,
    pub factors: factors::FactorService,
    pub recovery: recovery::RecoveryService,
    pub mfa_policy: mfa_policy::MfaPolicyService,
    pub kek: Arc<crypto::KekCell>,
}

impl Identity {
    pub fn new(
        consensus: Consensus,
        kek: Arc<crypto::KekCell>,
        hasher: passwords::PasswordHasher,
    ) -> Self {
        Identity(Arc::new(IdentityServices {
            keys: keys::KeyService::new(consensus.clone(), kek.clone()),
            users: users::UserService::new(consensus.clone(), hasher),
            clients: clients::ClientService::new(consensus.clone(), kek.clone()),
            recovery: recovery::RecoveryService::new(consensus.clone(), kek.clone()),
            mfa_policy: mfa_policy::MfaPolicyService::new(consensus.clone()),
            factors: factors::FactorService::new(consensus, kek.clone()),
            kek,
        }))
    }
}
