//! WebAuthn credentials (passkeys and security keys) and their ceremonies,
//! on `webauthn-rs`. No HTTP here: the pages in
//! [`crate::oidc::passkeys`] and [`crate::account::passkeys`] call it.
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
//! to one user only), `webauthn_ceremony/<id>` -> [`Ceremony`] (TTL).

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

    /// Begin registering a credential for `user` named `name`: the
    /// ceremony id and the options for `navigator.credentials.create`
    /// (JSON, binary fields in base64url). A passkey is asked to be
    /// discoverable and to verify the user; a security key (`security_key`)
    /// is a second factor only, user verification preferred.
    #[allow(clippy::too_many_arguments)]
    pub async fn start_registration(
        &self,
        tenant: &str,
        issuer: &str,
        user_id: &str,
        username: &str,
        name: &str,
        security_key: bool,
        binding: &str,
        now_ms: u64,
    ) -> Result<(String, serde_json::Value), PasskeyError> {
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(PasskeyError::Invalid(format!(
                "Give the passkey a name of 1 to {MAX_NAME_CHARS} characters."
            )));
        }
        let rp = relying_party(issuer)?;
        let existing = self
            .stored(tenant, user_id, Consistency::Linearizable)
            .await?;
        if existing.len() >= MAX_PASSKEYS {
            return Err(PasskeyError::Invalid(format!(
                "An account can have at most {MAX_PASSKEYS} passkeys."
            )));
        }
        let exclude: Vec<_> = existing
            .iter()
            .map(|(p, _)| p.credential.cred_id.clone())
            .collect();
        let handle = user_handle(user_id);
        let (options, step) = if security_key {
            let (options, state) = rp
                .start_securitykey_registration(
                    handle,
                    username,
                    username,
                    Some(exclude),
                    None,
                    None,
                )
                .map_err(rejected)?;
            let step = Step::RegisterSecurityKey {
                user_id: user_id.to_string(),
                name: name.to_string(),
                state,
            };
            (serde_json::to_value(&options).map_err(corrupt)?, step)
        } else {
            let (options, state) = rp
                .start_passkey_registration(handle, username, username, Some(exclude))
                .map_err(rejected)?;
            let mut options = serde_json::to_value(&options).map_err(corrupt)?;
            // Ask for a discoverable credential, so the same passkey also
            // signs in without a username. (Advisory to the client, as the
            // spec says; passwordless sign-in finds no such credential
            // otherwise.)
            if let Some(sel) = options
                .pointer_mut("/publicKey/authenticatorSelection")
                .and_then(serde_json::Value::as_object_mut)
            {
                sel.insert("residentKey".into(), "required".into());
                sel.insert("requireResidentKey".into(), true.into());
            }
            let step = Step::Register {
                user_id: user_id.to_string(),
                name: name.to_string(),
                state,
            };
            (options, step)
        };
        let id = self.put_ceremony(tenant, binding, step, now_ms).await?;
        Ok((id, options))
    }

    /// Finish a registration begun by [`Self::start_registration`] for the
    /// same user and binding; the credential is stored.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_registration(
        &self,
        tenant: &str,
        issuer: &str,
        user_id: &str,
        ceremony: &str,
        binding: &str,
        response: &RegisterPublicKeyCredential,
        now_ms: u64,
    ) -> Result<PasskeyInfo, PasskeyError> {
        let rp = relying_party(issuer)?;
        let (owner, name, credential, security_key) = match self
            .take_ceremony(tenant, ceremony, binding, now_ms)
            .await?
        {
            Step::Register {
                user_id,
                name,
                state,
            } => {
                let passkey = rp
                    .finish_passkey_registration(response, &state)
                    .map_err(rejected)?;
                (user_id, name, Credential::from(passkey), false)
            }
            Step::RegisterSecurityKey {
                user_id,
                name,
                state,
            } => {
                let key = rp
                    .finish_securitykey_registration(response, &state)
                    .map_err(rejected)?;
                (user_id, name, Credential::from(key), true)
            }
            _ => return Err(PasskeyError::CeremonyExpired),
        };
        if owner != user_id {
            return Err(PasskeyError::CeremonyExpired);
        }
        let stored = StoredPasskey {
            id: random_token(12),
            name,
            created_at_ms: now_ms,
            last_used_ms: None,
            security_key,
            credential,
        };
        let index = index_key(tenant, stored.credential.cred_id.as_ref());
        let value = serde_json::to_vec(&stored).map_err(corrupt)?;
        let txn = Txn {
            compares: vec![Compare {
                key: index.clone(),
                target: CompareTarget::Exists(false),
            }],
            success: vec![
                TxnOp::Put {
                    key: passkey_key(tenant, user_id, &stored.id),
                    value,
                    ttl_ms: None,
                },
                TxnOp::Put {
                    key: index,
                    value: format!("{user_id}/{}", stored.id).into_bytes(),
                    ttl_ms: None,
                },
            ],
            failure: vec![],
        };
        if !self.consensus.txn(txn).await?.succeeded {
            return Err(PasskeyError::AlreadyRegistered);
        }
        Ok(PasskeyInfo::from(&stored))
    }

    /// Begin a second-factor assertion for `user_id` (user verification
    /// preferred); `None` when the user has no credential.
    pub async fn start_second_factor(
        &self,
        tenant: &str,
        issuer: &str,
        user_id: &str,
        binding: &str,
        now_ms: u64,
    ) -> Result<Option<(String, RequestChallengeResponse)>, PasskeyError> {
        let creds: Vec<SecurityKey> = self
            .stored(tenant, user_id, Consistency::Linearizable)
            .await?
            .into_iter()
            .map(|(p, _)| SecurityKey::from(p.credential))
            .collect();
        if creds.is_empty() {
            return Ok(None);
        }
        let rp = relying_party(issuer)?;
        let (mut options, state) = rp
            .start_securitykey_authentication(&creds)
            .map_err(rejected)?;
        // Platform passkeys as well as security keys: no UI hint.
        options.public_key.hints = None;
        let step = Step::SecondFactor {
            user_id: user_id.to_string(),
            state,
        };
        let id = self.put_ceremony(tenant, binding, step, now_ms).await?;
        Ok(Some((id, options)))
    }

    /// Finish a second-factor assertion for `user_id`.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_second_factor(
        &self,
        tenant: &str,
        issuer: &str,
        user_id: &str,
        ceremony: &str,
        binding: &str,
        response: &PublicKeyCredential,
        now_ms: u64,
    ) -> Result<Verified, PasskeyError> {
        let Step::SecondFactor {
            user_id: owner,
            state,
        } = self
            .take_ceremony(tenant, ceremony, binding, now_ms)
            .await?
        else {
            return Err(PasskeyError::CeremonyExpired);
        };
        if owner != user_id {
            return Err(PasskeyError::CeremonyExpired);
        }
        let rp = relying_party(issuer)?;
        let result = rp
            .finish_securitykey_authentication(response, &state)
            .map_err(assertion_error)?;
        let (user, id) = self.owner(tenant, result.cred_id().as_ref()).await?;
        if user != user_id {
            return Err(PasskeyError::UnknownCredential);
        }
        self.record_use(tenant, &user, &id, &result, now_ms).await?;
        Ok(Verified {
            user_id: user,
            passkey_id: id,
            user_verified: result.user_verified(),
        })
    }

    /// Begin a passwordless assertion (discoverable credentials, user
    /// verification required).
    pub async fn start_passwordless(
        &self,
        tenant: &str,
        issuer: &str,
        binding: &str,
        now_ms: u64,
    ) -> Result<(String, RequestChallengeResponse), PasskeyError> {
        let rp = relying_party(issuer)?;
        let (mut options, state) = rp.start_discoverable_authentication().map_err(rejected)?;
        // A button-started ceremony, not autofill ("conditional") UI.
        options.mediation = None;
        let id = self
            .put_ceremony(tenant, binding, Step::Passwordless { state }, now_ms)
            .await?;
        Ok((id, options))
    }

    /// Finish a passwordless assertion: who signed in.
    pub async fn finish_passwordless(
        &self,
        tenant: &str,
        issuer: &str,
        ceremony: &str,
        binding: &str,
        response: &PublicKeyCredential,
        now_ms: u64,
    ) -> Result<Verified, PasskeyError> {
        let Step::Passwordless { state } = self
            .take_ceremony(tenant, ceremony, binding, now_ms)
            .await?
        else {
            return Err(PasskeyError::CeremonyExpired);
        };
        let rp = relying_party(issuer)?;
        let (handle, cred_id) = rp
            .identify_discoverable_authentication(response)
            .map_err(|_| PasskeyError::UnknownCredential)?;
        let (user, id) = self.owner(tenant, cred_id).await?;
        if user_handle(&user) != handle {
            return Err(PasskeyError::UnknownCredential);
        }
        let (kv, _) = self
            .consensus
            .get(&passkey_key(tenant, &user, &id), Consistency::Linearizable)
            .await?;
        let stored: StoredPasskey =
            serde_json::from_slice(&kv.ok_or(PasskeyError::UnknownCredential)?.value)
                .map_err(corrupt)?;
        if stored.security_key {
            // Registered as a second factor only.
            return Err(PasskeyError::UnknownCredential);
        }
        let key = DiscoverableKey::from(&Passkey::from(stored.credential));
        let result = rp
            .finish_discoverable_authentication(response, state, &[key])
            .map_err(assertion_error)?;
        if !result.user_verified() {
            return Err(PasskeyError::Rejected(
                "user verification is required".into(),
            ));
        }
        self.record_use(tenant, &user, &id, &result, now_ms).await?;
        Ok(Verified {
            user_id: user,
            passkey_id: id,
            user_verified: true,
        })
    }

    /// The user and passkey id a credential id is registered to.
    async fn owner(&self, tenant: &str, cred_id: &[u8]) -> Result<(String, String), PasskeyError> {
        let (kv, _) = self
            .consensus
            .get(&index_key(tenant, cred_id), Consistency::Linearizable)
            .await?;
        let kv = kv.ok_or(PasskeyError::UnknownCredential)?;
        let text = String::from_utf8(kv.value).map_err(corrupt)?;
        let (user, id) = text
            .rsplit_once('/')
            .ok_or_else(|| corrupt("credential index without an owner"))?;
        Ok((user.to_string(), id.to_string()))
    }

    /// After a valid signature: the counter must still be above the one
    /// stored *now* (another node may have accepted a later one since the
    /// ceremony started); store it, the flags and the time with a CAS.
    async fn record_use(
        &self,
        tenant: &str,
        user: &str,
        id: &str,
        result: &AuthenticationResult,
        now_ms: u64,
    ) -> Result<(), PasskeyError> {
        let key = passkey_key(tenant, user, id);
        for _ in 0..8 {
            let (kv, _) = self.consensus.get(&key, Consistency::Linearizable).await?;
            let kv = kv.ok_or(PasskeyError::UnknownCredential)?;
            let mut stored: StoredPasskey = serde_json::from_slice(&kv.value).map_err(corrupt)?;
            let counter = result.counter();
            if (counter > 0 || stored.credential.counter > 0)
                && counter <= stored.credential.counter
            {
                return Err(PasskeyError::ClonedAuthenticator);
            }
            stored.credential.counter = counter;
            stored.credential.backup_state = result.backup_state();
            stored.credential.backup_eligible |= result.backup_eligible();
            stored.last_used_ms = Some(now_ms);
            let txn = Txn {
                compares: vec![Compare {
                    key: key.clone(),
                    target: CompareTarget::ModRevision(CmpOp::Eq, kv.mod_revision),
                }],
                success: vec![TxnOp::Put {
                    key: key.clone(),
                    value: serde_json::to_vec(&stored).map_err(corrupt)?,
                    ttl_ms: None,
                }],
                failure: vec![],
            };
            if self.consensus.txn(txn).await?.succeeded {
                return Ok(());
            }
        }
        Err(PasskeyError::Consensus(ConsensusError::Unavailable(
            "passkey counter kept changing".into(),
        )))
    }
}

fn assertion_error(e: webauthn_rs::prelude::WebauthnError) -> PasskeyError {
    match e {
        webauthn_rs::prelude::WebauthnError::CredentialPossibleCompromise => {
            PasskeyError::ClonedAuthenticator
        }
        webauthn_rs::prelude::WebauthnError::CredentialNotFound => PasskeyError::UnknownCredential,
        other => rejected(other),
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
