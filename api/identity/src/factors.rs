//! Second factors of a user: TOTP (RFC 6238) — enrolled by the user in the
//! browser (a pending seed confirmed by a first valid code) or imported
//! through the admin API (e.g. when migrating from another IdP) — checked
//! at login with a ±1 step window. Recovery codes are in
//! [`crate::recovery`].
//!
//! Seeds are replicated only as AES-256-GCM ciphertext under the KEK (AAD
//! binds tenant, user and factor) and zeroized in memory after use. A code is
//! accepted once: each factor records the last time step it accepted, and a
//! compare-and-swap on that record makes a code (or an earlier one) fail the
//! second time, on any node, even when two nodes check it at the same moment.
//!
//! Records (tenant keyspace): `factor/<user>/<id>` -> [`StoredFactor`],
//! and `factor_step/<user>/<id>` -> last accepted step (decimal). An
//! enrolment not confirmed yet ([`PendingTotp`], its seed sealed like the
//! others) is not stored: it travels in the enrolment form's sealed ticket
//! and expires after [`PENDING_TTL_MS`], so showing the enrolment page
//! writes nothing.

use std::sync::Arc;

use rsp_consensus::kv::{CmpOp, Compare, CompareTarget, Key, Txn, TxnOp};
use rsp_consensus::{Consensus, ConsensusError, Consistency};
use serde::{Deserialize, Serialize};
use totp_rs::{Algorithm, Builder as TotpBuilder, Secret};
use zeroize::Zeroizing;

use crate::crypto::{CryptoError, KekCell, KekId, b64url, b64url_decode, random_token};
use crate::kek_ring::{KekRing, Resealed, RingError, reseal_records};
use rsp_consensus::kv::tenant_keyspace;

/// Shortest imported seed accepted: 80 bits, what most authenticator apps
/// were enrolled with; new seeds are 160 bits.
const MIN_SECRET_BYTES: usize = 10;
/// A seed generated for enrolment, 160 bits (RFC 4226's recommendation).
const NEW_SECRET_BYTES: usize = 20;
/// How long an enrolment waits for its first code.
pub const PENDING_TTL_MS: u64 = 10 * 60 * 1000;

/// An imported TOTP factor, checked: the seed and its parameters.
pub struct ImportedTotp {
    pub secret: Secret,
    pub digits: u8,
    pub period: u64,
}

/// What [`FactorService::import_totp`] checks of an imported seed before it
/// seals or writes anything: digits, period, base32 and the seed's length.
pub fn check_totp_import(
    secret_base32: &str,
    digits: Option<u8>,
    period: Option<u64>,
) -> Result<ImportedTotp, FactorError> {
    let digits = digits.unwrap_or(6);
    let period = period.unwrap_or(30);
    if !(6..=8).contains(&digits) {
        return Err(FactorError::Invalid("digits must be 6, 7 or 8".into()));
    }
    if !(15..=120).contains(&period) {
        return Err(FactorError::Invalid(
            "period must be 15 to 120 seconds".into(),
        ));
    }
    let cleaned: String = secret_base32
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .to_uppercase();
    let cleaned = Zeroizing::new(cleaned);
    let secret = Secret::try_from_base32(cleaned.trim_end_matches('='))
        .map_err(|_| FactorError::Invalid("secret must be base32 (RFC 4648)".into()))?;
    if secret.as_ref().len() < MIN_SECRET_BYTES {
        return Err(FactorError::Invalid(
            "secret must be at least 80 bits".into(),
        ));
    }
    Ok(ImportedTotp {
        secret,
        digits,
        period,
    })
}

#[derive(Clone, Serialize, Deserialize)]
pub struct StoredFactor {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub digits: u8,
    pub period: u64,
    pub created_at_ms: u64,
    /// The seed sealed under the KEK, base64url.
    pub sealed_secret: String,
}

/// What may be shown about a factor: never the seed.
#[derive(Debug, Clone, Serialize)]
pub struct FactorInfo {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub digits: u8,
    pub period: u64,
    pub created_at_ms: u64,
}

impl From<&StoredFactor> for FactorInfo {
    fn from(f: &StoredFactor) -> Self {
        FactorInfo {
            id: f.id.clone(),
            kind: f.kind.clone(),
            digits: f.digits,
            period: f.period,
            created_at_ms: f.created_at_ms,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FactorError {
    #[error("{0}")]
    Invalid(String),
    #[error("no such factor")]
    NotFound,
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("stored factor is unreadable: {0}")]
    Corrupt(String),
}

fn factor_key(tenant: &str, user: &str, id: &str) -> Key {
    Key::new(
        tenant_keyspace(tenant),
        format!("factor/{user}/{id}").into_bytes(),
    )
}

fn step_key(tenant: &str, user: &str, id: &str) -> Key {
    Key::new(
        tenant_keyspace(tenant),
        format!("factor_step/{user}/{id}").into_bytes(),
    )
}

/// A TOTP enrolment not confirmed yet, as it travels in the enrolment
/// form's sealed ticket: its seed sealed under the KEK (AAD: tenant, user,
/// id), its creation time. Nothing of it is stored until it is confirmed.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingTotp(StoredFactor);

impl std::fmt::Debug for PendingTotp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingTotp")
            .field("id", &self.0.id)
            .finish_non_exhaustive()
    }
}

/// A TOTP enrolment that waits for its first code: what the user's
/// authenticator app needs. The seed is zeroized on drop and never printed.
pub struct TotpEnrolment {
    pub id: String,
    /// The seed, base32 without padding (for typing it in by hand).
    pub secret_base32: Zeroizing<String>,
    /// `otpauth://totp/...` (for the QR code).
    pub uri: Zeroizing<String>,
    pub digits: u8,
    pub period: u64,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpEnrolment")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// What the user's app needs to add `pending` (seed `seed`), labelled
/// `issuer:account`.
fn enrolment_of(
    pending: &StoredFactor,
    seed: &[u8],
    issuer: &str,
    account: &str,
) -> Result<TotpEnrolment, FactorError> {
    // Labels may not hold a colon (it separates issuer and account).
    let label = |s: &str| s.replace(':', "_");
    let totp = TotpBuilder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(pending.digits)
        .with_step_duration(pending.period)
        .with_secret(Secret::from(seed.to_vec()))
        .with_account_name(label(account))
        .with_issuer(Some(label(issuer)))
        .build_noncompliant();
    let uri = Zeroizing::new(
        totp.to_url()
            .map_err(|e| FactorError::Invalid(format!("cannot label the factor: {e}")))?,
    );
    Ok(TotpEnrolment {
        id: pending.id.clone(),
        secret_base32: Zeroizing::new(Secret::from(seed.to_vec()).to_base32()),
        uri,
        digits: pending.digits,
        period: pending.period,
    })
}

fn totp_for(seed: &[u8], digits: u8, period: u64) -> totp_rs::Totp {
    TotpBuilder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(digits)
        .with_skew(1)
        .with_step_duration(period)
        .with_secret(Secret::from(seed.to_vec()))
        .build_noncompliant()
}

/// A code as typed: digits only, at most 8 of them.
fn code_shaped(code: &str) -> bool {
    !code.is_empty() && code.len() <= 8 && code.bytes().all(|b| b.is_ascii_digit())
}

fn aad(tenant: &str, user: &str, id: &str) -> Vec<u8> {
    format!("totp/{tenant}/{user}/{id}").into_bytes()
}

#[derive(Clone)]
pub struct FactorService {
    consensus: Consensus,
    kek: Arc<KekCell>,
    ring: KekRing,
}

impl FactorService {
    /// The node's wall clock, which TOTP steps are counted on.
    pub fn clock(&self) -> &rsp_consensus::Clock {
        self.consensus.clock()
    }

    pub fn new(consensus: Consensus, kek: Arc<KekCell>) -> Self {
        FactorService {
            ring: KekRing::new(consensus.clone(), kek.clone()),
            consensus,
            kek,
        }
    }

    /// Add a TOTP factor with a known seed (base32, as authenticator apps
    /// and other IdPs export it).
    pub async fn import_totp(
        &self,
        tenant: &str,
        user: &str,
        secret_base32: &str,
        digits: Option<u8>,
        period: Option<u64>,
        now_ms: u64,
    ) -> Result<FactorInfo, FactorError> {
        let ImportedTotp {
            secret,
            digits,
            period,
        } = check_totp_import(secret_base32, digits, period)?;
        let id = random_token(12);
        for _ in 0..3 {
            let (sealed, guard) = self.ring.seal(&aad(tenant, user, &id), secret.as_ref())?;
            let factor = StoredFactor {
                id: id.clone(),
                kind: "totp".into(),
                digits,
                period,
                created_at_ms: now_ms,
                sealed_secret: b64url(&sealed),
            };
            let value =
                serde_json::to_vec(&factor).map_err(|e| FactorError::Corrupt(e.to_string()))?;
            let txn = Txn {
                compares: vec![guard],
                success: vec![TxnOp::Put {
                    key: factor_key(tenant, user, &id),
                    value,
                    ttl_ms: None,
                }],
                failure: vec![],
            };
            if self.consensus.txn(txn).await?.succeeded {
                return Ok(FactorInfo::from(&factor));
            }
            // The KEK changed under the write: seal again under the new one.
            self.ring.refresh().await;
        }
        Err(FactorError::Crypto(CryptoError::NoKek))
    }

    /// A local read; an empty answer is confirmed with a linearizable one, so
    /// a factor added on another node a moment ago is never skipped.
    async fn stored_confirmed(
        &self,
        tenant: &str,
        user: &str,
    ) -> Result<Vec<StoredFactor>, FactorError> {
        let local = self.stored(tenant, user, Consistency::Local).await?;
        if local.is_empty() {
            return self.stored(tenant, user, Consistency::Linearizable).await;
        }
        Ok(local)
    }

    async fn stored(
        &self,
        tenant: &str,
        user: &str,
        consistency: Consistency,
    ) -> Result<Vec<StoredFactor>, FactorError> {
        let prefix = format!("factor/{user}/");
        let (kvs, _) = self
            .consensus
            .range(
                &tenant_keyspace(tenant),
                prefix.as_bytes(),
                100,
                consistency,
            )
            .await?;
        kvs.iter()
            .map(|kv| {
                serde_json::from_slice(&kv.value).map_err(|e| FactorError::Corrupt(e.to_string()))
            })
            .collect()
    }

    pub async fn list(&self, tenant: &str, user: &str) -> Result<Vec<FactorInfo>, FactorError> {
        Ok(self
            .stored(tenant, user, Consistency::Linearizable)
            .await?
            .iter()
            .map(FactorInfo::from)
            .collect())
    }

    /// Whether the user has a second factor to present at login.
    pub async fn has_totp(&self, tenant: &str, user: &str) -> Result<bool, FactorError> {
        Ok(self
            .stored_confirmed(tenant, user)
            .await?
            .iter()
            .any(|f| f.kind == "totp"))
    }

    pub async fn delete(&self, tenant: &str, user: &str, id: &str) -> Result<(), FactorError> {
        let txn = Txn {
            compares: vec![Compare {
                key: factor_key(tenant, user, id),
                target: CompareTarget::Exists(true),
            }],
            success: vec![
                TxnOp::Delete {
                    key: factor_key(tenant, user, id),
                },
                TxnOp::Delete {
                    key: step_key(tenant, user, id),
                },
            ],
            failure: vec![],
        };
        if self.consensus.txn(txn).await?.succeeded {
            Ok(())
        } else {
            Err(FactorError::NotFound)
        }
    }

    /// Start enrolling a new TOTP factor: a fresh 160-bit seed, sealed
    /// under the KEK, and nothing written. The [`PendingTotp`] travels with
    /// the enrolment form (in its sealed ticket) until
    /// [`FactorService::confirm_totp`] sees a valid code from it, within
    /// [`PENDING_TTL_MS`]. `issuer` and `account` label it in the user's
    /// app.
    pub fn begin_totp(
        &self,
        tenant: &str,
        user: &str,
        issuer: &str,
        account: &str,
        now_ms: u64,
    ) -> Result<(TotpEnrolment, PendingTotp), FactorError> {
        let seed: Zeroizing<[u8; NEW_SECRET_BYTES]> = Zeroizing::new(rand::random());
        let id = random_token(12);
        let sealed = self.kek.seal(&aad(tenant, user, &id), seed.as_ref())?;
        let pending = StoredFactor {
            id: id.clone(),
            kind: "totp".into(),
            digits: 6,
            period: 30,
            created_at_ms: now_ms,
            sealed_secret: b64url(&sealed),
        };
        let enrolment = enrolment_of(&pending, seed.as_ref(), issuer, account)?;
        Ok((enrolment, PendingTotp(pending)))
    }

    /// A pending enrolment shown again (after a wrong code): the same seed.
    /// [`FactorError::NotFound`]: not `user`'s, or expired.
    pub fn reopen_totp(
        &self,
        tenant: &str,
        user: &str,
        pending: &PendingTotp,
        issuer: &str,
        account: &str,
        now_ms: u64,
    ) -> Result<TotpEnrolment, FactorError> {
        let seed = self.open_pending(tenant, user, pending, now_ms)?;
        enrolment_of(&pending.0, &seed, issuer, account)
    }

    /// The seed of `pending`, if it is `user`'s and not expired.
    fn open_pending(
        &self,
        tenant: &str,
        user: &str,
        pending: &PendingTotp,
        now_ms: u64,
    ) -> Result<Zeroizing<Vec<u8>>, FactorError> {
        let p = &pending.0;
        if now_ms >= p.created_at_ms.saturating_add(PENDING_TTL_MS) {
            return Err(FactorError::NotFound);
        }
        let sealed = b64url_decode(&p.sealed_secret).ok_or(FactorError::NotFound)?;
        // The AAD names tenant, user and id: another user's seed does not
        // open.
        match self.kek.open(&aad(tenant, user, &p.id), &sealed) {
            Ok(seed) => Ok(seed),
            Err(CryptoError::NoKek) => Err(CryptoError::NoKek.into()),
            Err(_) => Err(FactorError::NotFound),
        }
    }

    /// Finish enrolment `pending` with a code from its seed: the factor
    /// becomes active (one write), with the code's step recorded as used
    /// (it cannot also sign in). `Ok(None)`: wrong code (the enrolment may
    /// be tried again); [`FactorError::NotFound`]: not `user`'s, expired,
    /// or already confirmed.
    pub async fn confirm_totp(
        &self,
        tenant: &str,
        user: &str,
        pending: &PendingTotp,
        code: &str,
        now_secs: u64,
    ) -> Result<Option<FactorInfo>, FactorError> {
        let code = code.trim();
        let seed = self.open_pending(tenant, user, pending, now_secs * 1000)?;
        if !code_shaped(code) {
            return Ok(None);
        }
        let p = &pending.0;
        let Some(step) = totp_for(&seed, p.digits, p.period).check(code, now_secs) else {
            return Ok(None);
        };
        let key = factor_key(tenant, user, &p.id);
        for _ in 0..3 {
            // Sealed again under the KEK in force: the pending seed may
            // have been sealed before a rotation.
            let (sealed, guard) = self.ring.seal(&aad(tenant, user, &p.id), &seed)?;
            let factor = StoredFactor {
                created_at_ms: now_secs * 1000,
                sealed_secret: b64url(&sealed),
                ..p.clone()
            };
            let value =
                serde_json::to_vec(&factor).map_err(|e| FactorError::Corrupt(e.to_string()))?;
            let txn = Txn {
                // Confirmed once: a second post of the same form finds it.
                compares: vec![
                    Compare {
                        key: key.clone(),
                        target: CompareTarget::Exists(false),
                    },
                    guard,
                ],
                success: vec![
                    TxnOp::Put {
                        key: key.clone(),
                        value,
                        ttl_ms: None,
                    },
                    TxnOp::Put {
                        key: step_key(tenant, user, &p.id),
                        value: step.to_string().into_bytes(),
                        ttl_ms: None,
                    },
                ],
                failure: vec![],
            };
            if self.consensus.txn(txn).await?.succeeded {
                return Ok(Some(FactorInfo::from(&factor)));
            }
            let (existing, _) = self.consensus.get(&key, Consistency::Linearizable).await?;
            if existing.is_some() {
                return Err(FactorError::NotFound);
            }
            self.ring.refresh().await;
        }
        Err(FactorError::Crypto(CryptoError::NoKek))
    }

    /// Re-seal the tenant's TOTP seeds sealed under an older KEK
    /// ([`crate::kek_ring`]).
    pub async fn reseal(&self, tenant: &str, current: KekId) -> Result<Resealed, RingError> {
        reseal_records(
            &self.ring,
            &tenant_keyspace(tenant),
            b"factor/",
            current,
            |f: &mut StoredFactor| &mut f.sealed_secret,
            |key, f| {
                // `factor/<user>/<id>`
                let user = key
                    .strip_prefix(b"factor/")
                    .and_then(|rest| rest.strip_suffix(format!("/{}", f.id).as_bytes()))
                    .unwrap_or_default();
                aad(tenant, &String::from_utf8_lossy(user), &f.id)
            },
        )
        .await
    }

    /// Remove every TOTP factor of `user`, with their
    /// replay records (an admin's reset).
    pub async fn delete_all(&self, tenant: &str, user: &str) -> Result<(), FactorError> {
        let keyspace = tenant_keyspace(tenant);
        let ops = ["factor", "factor_step"]
            .iter()
            .map(|record| TxnOp::DeletePrefix {
                keyspace: keyspace.clone(),
                prefix: format!("{record}/{user}/").into_bytes(),
            })
            .collect();
        self.consensus.txn(Txn::ops(ops)).await?;
        Ok(())
    }

    /// Check a TOTP code against the user's factors at `now_secs`; true at
    /// most once per code (and never for a code older than one accepted).
    pub async fn verify_totp(
        &self,
        tenant: &str,
        user: &str,
        code: &str,
        now_secs: u64,
    ) -> Result<bool, FactorError> {
        let code = code.trim();
        if !code_shaped(code) {
            return Ok(false);
        }
        for factor in self.stored_confirmed(tenant, user).await? {
            if factor.kind != "totp" {
                continue;
            }
            let sealed = b64url_decode(&factor.sealed_secret)
                .ok_or_else(|| FactorError::Corrupt("sealed seed is not base64url".into()))?;
            let seed = self.kek.open(&aad(tenant, user, &factor.id), &sealed)?;
            let Some(step) = totp_for(&seed, factor.digits, factor.period).check(code, now_secs)
            else {
                continue;
            };
            if self.consume_step(tenant, user, &factor.id, step).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Record `step` as used if it is later than the last used one (CAS).
    async fn consume_step(
        &self,
        tenant: &str,
        user: &str,
        id: &str,
        step: u64,
    ) -> Result<bool, FactorError> {
        let key = step_key(tenant, user, id);
        for _ in 0..5 {
            let (kv, _) = self.consensus.get(&key, Consistency::Linearizable).await?;
            let (last, compare) = match &kv {
                Some(kv) => (
                    String::from_utf8_lossy(&kv.value)
                        .parse::<u64>()
                        .unwrap_or(u64::MAX),
                    CompareTarget::ModRevision(CmpOp::Eq, kv.mod_revision),
                ),
                None => (0, CompareTarget::Exists(false)),
            };
            if kv.is_some() && step <= last {
                return Ok(false);
            }
            let txn = Txn {
                compares: vec![Compare {
                    key: key.clone(),
                    target: compare,
                }],
                success: vec![TxnOp::Put {
                    key: key.clone(),
                    value: step.to_string().into_bytes(),
                    ttl_ms: None,
                }],
                failure: vec![],
            };
            if self.consensus.txn(txn).await?.succeeded {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
