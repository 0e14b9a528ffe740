//! rsp's identity domain: tenants, accounts, credentials, OAuth clients,
//! signing keys and the OAuth 2.0 / OpenID Connect rules. Every record is
//! kept through `rsp-consensus` (linearizable and local reads, replicated
//! transactions); there are no HTTP types here, only rules and records, so
//! every protocol front end (`rsp-api`'s OIDC, SAML and admin handlers)
//! reaches the same rules.
//!
//! - [`tenants`]: the tenant registry;
//! - [`crypto`]: the key-encryption key, keyed hashes, random tokens,
//!   base64url; [`kek_ring`]: the online rotation of the KEK;
//! - [`keys`]: per-tenant signing keys, JWKS, rotation;
//! - [`passwords`]: argon2id on a bounded blocking pool;
//! - [`users`], [`clients`]: accounts and OAuth clients; [`consents`]:
//!   the scopes each user granted each client;
//! - [`factors`]: second factors (TOTP); [`recovery`]: recovery codes;
//!   [`mfa_policy`]: who must use a second factor; [`mfa_tickets`]: the
//!   single use of the ticket that carries a sign-in to its second factor;
//!   [`webauthn`]: passkeys;
//! - [`saml`]: the SAML 2.0 IdP of each tenant (metadata, service
//!   providers, AuthnRequest and LogoutRequest checks, signed answers);
//! - [`miss_gate`]: the caller's say before a local miss of a client or
//!   key is confirmed with a quorum read;
//! - [`oauth`]: codes, tokens and families, client authentication, claims,
//!   request validation, the device flow and PAR, [`oauth::OAuthError`];
//! - [`audit`]: the replicated audit trail (batched recording, paged
//!   reads); [`usage`]: per-tenant daily usage, counted per node and
//!   merged through Raft.
//!
//! Not for: HTTP (routes, extractors, pages, the mapping of these errors to
//! responses live in `rsp-api`), sessions and rate limits (`rsp-actors`),
//! Cedar (`rsp-policies`).

pub mod audit;
pub mod clients;
pub mod consents;
pub mod crypto;
pub mod factors;
pub mod kek_ring;
pub mod keys;
pub mod mfa_policy;
pub mod mfa_tickets;
pub mod miss_gate;
pub mod oauth;
pub mod passwords;
pub mod recovery;
pub mod saml;
pub mod tenants;
#[cfg(test)]
mod test_cluster;
pub mod usage;
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
    pub saml: saml::SamlService,
    pub kek: Arc<crypto::KekCell>,
    pub kek_ring: kek_ring::KekRing,
    pub audit: audit::AuditLog,
    pub usage: usage::UsageMeter,
    tenants: tenants::TenantService,
}

impl Identity {
    pub fn new(
        consensus: Consensus,
        kek: Arc<crypto::KekCell>,
        hasher: passwords::PasswordHasher,
        public_url: &str,
    ) -> Self {
        let keys = keys::KeyService::new(consensus.clone(), kek.clone());
        Identity(Arc::new(IdentityServices {
            saml: saml::SamlService::new(consensus.clone(), keys.clone(), kek.clone()),
            keys,
            users: users::UserService::new(consensus.clone(), hasher),
            clients: clients::ClientService::new(consensus.clone(), kek.clone(), public_url),
            consents: consents::ConsentService::new(consensus.clone()),
            recovery: recovery::RecoveryService::new(consensus.clone(), kek.clone()),
            mfa_policy: mfa_policy::MfaPolicyService::new(consensus.clone()),
            mfa_tickets: mfa_tickets::MfaTicketService::new(consensus.clone()),
            factors: factors::FactorService::new(consensus.clone(), kek.clone()),
            kek_ring: kek_ring::KekRing::new(consensus.clone(), kek.clone()),
            audit: audit::AuditLog::new(
                consensus.clone(),
                tenants::TenantService::new(consensus.clone()),
            ),
            usage: usage::UsageMeter::new(
                consensus.clone(),
                tenants::TenantService::new(consensus.clone()),
            ),
            tenants: tenants::TenantService::new(consensus),
            kek,
        }))
    }

    /// The same services with another audit recorder (a benchmark's
    /// [`audit::AuditLog::disabled`]). Call before cloning.
    pub fn with_audit(self, audit: audit::AuditLog) -> Self {
        match Arc::try_unwrap(self.0) {
            Ok(mut services) => {
                services.audit = audit;
                Identity(Arc::new(services))
            }
            Err(shared) => Identity(shared),
        }
    }

    /// The same services, with the store that keeps the KEKs a rotation
    /// hands this node ([`kek_ring::KekStore`]). Call before cloning.
    pub fn with_kek_store(self, store: Arc<dyn kek_ring::KekStore>) -> Self {
        match Arc::try_unwrap(self.0) {
            Ok(mut services) => {
                services.kek_ring = services.kek_ring.clone().with_store(store);
                Identity(Arc::new(services))
            }
            Err(shared) => Identity(shared),
        }
    }
}

impl IdentityServices {
    /// One pass of a KEK rotation's re-sealing ([`kek_ring`], steps 4 and
    /// 5): every signing key and TOTP seed of every tenant still sealed
    /// under a previous KEK is sealed again under the current one; a pass
    /// that finds nothing left ends the rotation. Nothing happens while a
    /// member lacks the current KEK (the status names it) or when no
    /// rotation is under way.
    pub async fn reseal_pass(
        &self,
        now_ms: u64,
    ) -> Result<kek_ring::KekStatus, kek_ring::RingError> {
        let (record, revision) = match self.kek_ring.ready_to_reseal().await? {
            Ok(ready) => ready,
            Err(status) => return Ok(status),
        };
        let current = crypto::KekId::parse(&record.current)
            .ok_or_else(|| kek_ring::RingError::Corrupt("current KEK id".into()))?;
        let mut done = kek_ring::Resealed::default();
        let tenants = self
            .tenants
            .ids()
            .await
            .map_err(|e| kek_ring::RingError::Corrupt(e.to_string()))?;
        for tenant in tenants {
            done.add(self.keys.reseal(&tenant, current).await?);
            done.add(self.factors.reseal(&tenant, current).await?);
        }
        if done.rewritten == 0 && done.conflicts == 0 {
            self.kek_ring.finish(record, revision, now_ms).await?;
        }
        let mut status = self.kek_ring.status().await?;
        status.resealed = done.rewritten;
        Ok(status)
    }

    /// Rotate the KEK to `new` (a fresh one when `None`) and re-seal,
    /// waiting up to `wait` for the rotation to finish (the status says
    /// whether it did; the leader's background job goes on otherwise).
    pub async fn rotate_kek(
        &self,
        new: Option<crypto::Kek>,
        clock: &rsp_consensus::Clock,
        wait: std::time::Duration,
    ) -> Result<kek_ring::KekStatus, kek_ring::RingError> {
        self.kek_ring.begin_rotation(new, clock.now_ms()).await?;
        let deadline = std::time::Instant::now() + wait;
        let mut resealed = 0;
        loop {
            let mut status = self.reseal_pass(clock.now_ms()).await?;
            resealed += status.resealed;
            if !status.rotating || std::time::Instant::now() >= deadline {
                status.resealed = resealed;
                return Ok(status);
            }
            if status.resealed == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
}
