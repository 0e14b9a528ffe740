//! rsp's identity domain: tenants, accounts, credentials, OAuth clients,
//! signing keys and the OAuth 2.0 / OpenID Connect rules. Every record is
//! kept through `rsp-consensus` (linearizable and local reads, replicated
//! transactions); there are no HTTP types here, only rules and records, so
//! every protocol front end (`rsp-api`'s OIDC, SAML and admin handlers)
//! reaches the same rules.
//!
//! - [`tenants`]: the tenant registry;
//! - [`crypto`]: the key-encryption key, keyed hashes, random tokens,
//!   base64url;
//! - [`keys`]: per-tenant signing keys, JWKS, rotation;
//! - [`passwords`]: argon2id on a bounded blocking pool;
//! - [`users`], [`clients`]: accounts and OAuth clients; [`consents`]:
//!   the scopes each user granted each client;
//! - [`factors`]: second factors (TOTP); [`recovery`]: recovery codes;
//!   [`mfa_policy`]: who must use a second factor; [`mfa_tickets`]: the
//!   single use of the ticket that carries a sign-in to its second factor;
//!   [`webauthn`]: passkeys;
//! - [`miss_gate`]: the caller's say before a local miss of a client or
//!   key is confirmed with a quorum read;
//! - [`oauth`]: codes, tokens and families, client authentication, claims,
//!   request validation, the device flow and PAR, [`oauth::OAuthError`].
//!
//! Not for: HTTP (routes, extractors, pages, the mapping of these errors to
//! responses live in `rsp-api`), sessions and rate limits (`rsp-actors`),
//! Cedar (`rsp-policies`).

pub mod clients;
pub mod consents;
pub mod crypto;
pub mod factors;
pub mod keys;
pub mod mfa_policy;
pub mod mfa_tickets;
pub mod miss_gate;
pub mod oauth;
pub mod passwords;
pub mod recovery;
pub mod tenants;
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
    pub consents: consents::ConsentService,
    pub factors: factors::FactorService,
    pub recovery: recovery::RecoveryService,
    pub mfa_policy: mfa_policy::MfaPolicyService,
    pub mfa_tickets: mfa_tickets::MfaTicketService,
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
            consents: consents::ConsentService::new(consensus.clone()),
            recovery: recovery::RecoveryService::new(consensus.clone(), kek.clone()),
            mfa_policy: mfa_policy::MfaPolicyService::new(consensus.clone()),
            mfa_tickets: mfa_tickets::MfaTicketService::new(consensus.clone()),
            factors: factors::FactorService::new(consensus, kek.clone()),
            kek,
        }))
    }
}
