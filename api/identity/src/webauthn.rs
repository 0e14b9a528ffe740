//! WebAuthn credentials (passkeys and security keys) and their ceremonies,
//! on `webauthn-rs`. No HTTP here: `rsp-api`'s sign-in and account pages
//! call it. This file keeps the records and the credential list;
//! `registration` and `assertion` hold the two ceremonies.
//!
//! - Relying party: the tenant issuer's origin (`scheme://host[:port]` of
//!   the public URL) and its host as the RP ID. An IP address cannot be an
//!   RP ID (WebAuthn needs a domain), so on such a public URL passkeys are
//!   [`PasskeyError::NotConfigured`].
//! - Credentials: several per user, each with a name, its creation time
//!   and last use. Registration asks for a discoverable credential with
//!   user verification (a passkey in the usual sense), so one credential
//!   serves both as a second factor and for passwordless sign-in.
//! - Use: as a second factor after the password, user verification is
//!   *preferred* (a security key without a PIN still counts as possession);
//!   passwordless (discoverable credentials, no username) *requires* it.
//! - Sign counters: the counter stored with a credential is updated by a
//!   compare-and-swap after every assertion, and an assertion whose counter
//!   is not above the stored one (when either is non-zero) is refused: a
//!   cloned authenticator with a stale counter fails on every node.
//! - Ceremonies: the challenge state lives in the replicated KV with a
//!   short TTL, bound to the caller's `binding` (a keyed hash of the
//!   browser's anti-forgery cookie and the step) and consumed by a CAS
//!   delete, so a challenge answers at most one ceremony, on any node.
//!
//! Records (tenant keyspace): `webauthn/<user>/<id>` -> [`StoredPasskey`],
//! `webauthn_id/<credential id, base64url>` -> `<user>/<id>` (finds the
//! owner of a discoverable credential, and keeps a credential registered
//! to one user only), `webauthn_ceremony/<id>` -> `Ceremony` (TTL).

use std::time::Duration;

use rsp_consensus::kv::{CmpOp, Compare, CompareTarget, Key, Txn, TxnOp};
use rsp_consensus::{Consensus, ConsensusError, Consistency};
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    AuthenticationResult, Credential, DiscoverableAuthentication, DiscoverableKey, Passkey,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, SecurityKey, SecurityKeyAuthentication, SecurityKeyRegistration, Url,
    Uuid, Webauthn, WebauthnBuilder,
};

use crate::crypto::{b64url, ct_eq, random_token};

mod assertion;
mod registration;
use rsp_consensus::kv::tenant_keyspace;

/// How long a started ceremony (a challenge) can be answered.
pub const CEREMONY_TTL: Duration = Duration::from_secs(5 * 60);
/// Most credentials one user may register.
pub const MAX_PASSKEYS: usize = 20;
const MAX_NAME_CHARS: usize = 60;

/// A registered credential as stored: the public key, counter and flags
/// (`webauthn-rs`'s [`Credential`]), and what the user sees.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredPasskey {
    pub id: String,
    pub name: String,
    pub created_at_ms: u64,
    pub last_used_ms: Option<u64>,
    /// Registered as a security key: second factor only (user
    /// verification preferred, no discoverable credential asked for).
    #[serde(default)]
    pub security_key: bool,
    pub credential: Credential,
}

/// What may be shown about a credential (no key material).
#[derive(Debug, Clone, Serialize)]
pub struct PasskeyInfo {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: String,
    pub created_at_ms: u64,
    pub last_used_ms: Option<u64>,
    /// `passkey` (passwordless and second factor) or `security_key`
    /// (second factor only).
    pub kind_detail: &'static str,
    pub sign_count: u32,
    /// Synced (backed-up) passkey, as the authenticator last reported.
    pub backed_up: bool,
}

impl From<&StoredPasskey> for PasskeyInfo {
    fn from(p: &StoredPasskey) -> Self {
        PasskeyInfo {
            id: p.id.clone(),
            kind: "webauthn",
            name: p.name.clone(),
            created_at_ms: p.created_at_ms,
            last_used_ms: p.last_used_ms,
            kind_detail: if p.security_key {
                "security_key"
            } else {
                "passkey"
            },
            sign_count: p.credential.counter,
            backed_up: p.credential.backup_state,
        }
    }
}

/// A ceremony in progress, as stored between its two steps.
#[derive(Serialize, Deserialize)]
struct Ceremony {
    binding: String,
    expires_at_ms: u64,
    step: Step,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
enum Step {
    Register {
        user_id: String,
        name: String,
        state: PasskeyRegistration,
    },
    RegisterSecurityKey {
        user_id: String,
        name: String,
        state: SecurityKeyRegistration,
    },
    SecondFactor {
        user_id: String,
        state: SecurityKeyAuthentication,
    },
    Passwordless {
        state: DiscoverableAuthentication,
    },
}

/// A successful assertion.
#[derive(Debug, Clone)]
pub struct Verified {
    pub user_id: String,
    pub passkey_id: String,
    /// The authenticator verified the user (PIN, biometric).
    pub user_verified: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("passkeys need a public URL whose host is a domain name")]
    NotConfigured,
    #[error("the passkey request expired or was already used")]
    CeremonyExpired,
    #[error("the authenticator's answer was refused: {0}")]
    Rejected(String),
    #[error("the signature counter went backwards: the authenticator may be cloned")]
    ClonedAuthenticator,
    #[error("this passkey is not registered here")]
    UnknownCredential,
    #[error("this passkey is already registered")]
    AlreadyRegistered,
    #[error("{0}")]
    Invalid(String),
    #[error("no such passkey")]
    NotFound,
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
    #[error("stored passkey data is unreadable: {0}")]
    Corrupt(String),
}

fn corrupt(e: impl std::fmt::Display) -> PasskeyError {
    PasskeyError::Corrupt(e.to_string())
}

fn rejected(e: impl std::fmt::Display) -> PasskeyError {
    PasskeyError::Rejected(e.to_string())
}

fn passkey_key(tenant: &str, user: &str, id: &str) -> Key {
    Key::new(
        tenant_keyspace(tenant),
        format!("webauthn/{user}/{id}").into_bytes(),
    )
}

fn index_key(tenant: &str, cred_id: &[u8]) -> Key {
    Key::new(
        tenant_keyspace(tenant),
        format!("webauthn_id/{}", b64url(cred_id)).into_bytes(),
    )
}

fn ceremony_key(tenant: &str, id: &str) -> Key {
    Key::new(
        tenant_keyspace(tenant),
        format!("webauthn_ceremony/{id}").into_bytes(),
    )
}

/// The relying party of a tenant: its issuer's origin, and that origin's
/// host as the RP ID.
pub fn relying_party(issuer: &str) -> Result<Webauthn, PasskeyError> {
    let url = Url::parse(issuer).map_err(|_| PasskeyError::NotConfigured)?;
    let host = url.domain().ok_or(PasskeyError::NotConfigured)?.to_string();
    let origin =
        Url::parse(&url.origin().ascii_serialization()).map_err(|_| PasskeyError::NotConfigured)?;
    WebauthnBuilder::new(&host, &origin)
        .map_err(|_| PasskeyError::NotConfigured)?
        .rp_name(&host)
        .timeout(CEREMONY_TTL)
        .build()
        .map_err(|_| PasskeyError::NotConfigured)
}

/// The WebAuthn user handle of a user: its id when that is a UUID (user
/// ids are UUIDv7), else a stable UUID derived from it.
pub fn user_handle(user_id: &str) -> Uuid {
    Uuid::parse_str(user_id).unwrap_or_else(|_| {
        use sha2::{Digest, Sha256};
        let d = Sha256::digest(user_id.as_bytes());
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        uuid::Builder::from_random_bytes(b).into_uuid()
    })
}

#[derive(Clone)]
pub struct PasskeyService {
    consensus: Consensus,
}

impl PasskeyService {
    pub fn new(consensus: Consensus) -> Self {
        PasskeyService { consensus }
    }

    async fn stored(
        &self,
        tenant: &str,
        user: &str,
        consistency: Consistency,
    ) -> Result<Vec<(StoredPasskey, u64)>, PasskeyError> {
        let prefix = format!("webauthn/{user}/");
        let (kvs, _) = self
            .consensus
            .range(
                &tenant_keyspace(tenant),
                prefix.as_bytes(),
                MAX_PASSKEYS * 2,
                consistency,
            )
            .await?;
        kvs.iter()
            .map(|kv| {
                serde_json::from_slice(&kv.value)
                    .map(|p| (p, kv.mod_revision))
                    .map_err(corrupt)
            })
            .collect()
    }

    /// The user's credentials, read linearizably.
    pub async fn list(&self, tenant: &str, user: &str) -> Result<Vec<PasskeyInfo>, PasskeyError> {
        Ok(self
            .stored(tenant, user, Consistency::Linearizable)
            .await?
            .iter()
            .map(|(p, _)| PasskeyInfo::from(p))
            .collect())
    }

    /// Whether the user has a credential; a local miss is confirmed with a
    /// linearizable read (one added a moment ago elsewhere is not skipped).
    pub async fn has_passkeys(&self, tenant: &str, user: &str) -> Result<bool, PasskeyError> {
        if !self
            .stored(tenant, user, Consistency::Local)
            .await?
            .is_empty()
        {
            return Ok(true);
        }
        Ok(!self
            .stored(tenant, user, Consistency::Linearizable)
            .await?
            .is_empty())
    }

    pub async fn delete(&self, tenant: &str, user: &str, id: &str) -> Result<(), PasskeyError> {
        let key = passkey_key(tenant, user, id);
        // Retried when a sign-in updates the record (its counter) meanwhile.
        for _ in 0..8 {
            let (kv, _) = self.consensus.get(&key, Consistency::Linearizable).await?;
            let Some(kv) = kv else {
                return Err(PasskeyError::NotFound);
            };
            let stored: StoredPasskey = serde_json::from_slice(&kv.value).map_err(corrupt)?;
            let txn = Txn {
                compares: vec![Compare {
                    key: key.clone(),
                    target: CompareTarget::ModRevision(CmpOp::Eq, kv.mod_revision),
                }],
                success: vec![
                    TxnOp::Delete { key: key.clone() },
                    TxnOp::Delete {
                        key: index_key(tenant, stored.credential.cred_id.as_ref()),
                    },
                ],
                failure: vec![],
            };
            if self.consensus.txn(txn).await?.succeeded {
                return Ok(());
            }
        }
        Err(PasskeyError::Consensus(ConsensusError::Unavailable(
            "the passkey kept changing while being removed".into(),
        )))
    }

    /// Remove every credential of a user (the admin factor reset).
    pub async fn delete_all(&self, tenant: &str, user: &str) -> Result<usize, PasskeyError> {
        let all = self.stored(tenant, user, Consistency::Linearizable).await?;
        let mut n = 0;
        for (p, _) in all {
            match self.delete(tenant, user, &p.id).await {
                Ok(()) => n += 1,
                Err(PasskeyError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    async fn put_ceremony(
        &self,
        tenant: &str,
        binding: &str,
        step: Step,
        now_ms: u64,
    ) -> Result<String, PasskeyError> {
        let id = random_token(24);
        let ceremony = Ceremony {
            binding: binding.to_string(),
            expires_at_ms: now_ms + CEREMONY_TTL.as_millis() as u64,
            step,
        };
        let value = serde_json::to_vec(&ceremony).map_err(corrupt)?;
        self.consensus
            .txn(Txn::ops(vec![TxnOp::Put {
                key: ceremony_key(tenant, &id),
                value,
                ttl_ms: Some(CEREMONY_TTL.as_millis() as u64),
            }]))
            .await?;
        Ok(id)
    }

    /// Take a ceremony for good: it must exist, be bound to `binding`, be
    /// unexpired, and this caller must be the one that deletes it.
    async fn take_ceremony(
        &self,
        tenant: &str,
        id: &str,
        binding: &str,
        now_ms: u64,
    ) -> Result<Step, PasskeyError> {
        if id.is_empty() || id.len() > 64 {
            return Err(PasskeyError::CeremonyExpired);
        }
        let key = ceremony_key(tenant, id);
        let (kv, _) = self.consensus.get(&key, Consistency::Linearizable).await?;
        let kv = kv.ok_or(PasskeyError::CeremonyExpired)?;
        let ceremony: Ceremony = serde_json::from_slice(&kv.value).map_err(corrupt)?;
        if !ct_eq(ceremony.binding.as_bytes(), binding.as_bytes())
            || ceremony.expires_at_ms <= now_ms
        {
            return Err(PasskeyError::CeremonyExpired);
        }
        let txn = Txn {
            compares: vec![Compare {
                key: key.clone(),
                target: CompareTarget::ModRevision(CmpOp::Eq, kv.mod_revision),
            }],
            success: vec![TxnOp::Delete { key }],
            failure: vec![],
        };
        if !self.consensus.txn(txn).await?.succeeded {
            return Err(PasskeyError::CeremonyExpired);
        }
        Ok(ceremony.step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_issuer_origin_and_needs_a_domain() {
        assert!(relying_party("https://id.example.com/t/acme").is_ok());
        assert!(relying_party("http://localhost:8080/t/acme").is_ok());
        assert!(matches!(
            relying_party("http://127.0.0.1:8080/t/acme"),
            Err(PasskeyError::NotConfigured)
        ));
    }

    #[test]
    fn user_handles_are_stable() {
        let id = "0190f6a4-8c1e-7b7a-9d55-3f0c2a1b4c5d";
        assert_eq!(user_handle(id).to_string(), id);
        assert_eq!(user_handle("legacy-id"), user_handle("legacy-id"));
        assert_ne!(user_handle("legacy-id"), user_handle("other"));
    }
}
