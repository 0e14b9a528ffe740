//! Second factors of a user. Today: TOTP (RFC 6238) — imported through the
//! admin API (e.g. when migrating from another IdP) and checked at login
//! with a ±1 step window. WebAuthn and recovery codes are not built yet.
//!
//! Seeds are replicated only as AES-256-GCM ciphertext under the KEK (AAD
//! binds tenant, user and factor) and zeroized in memory after use. A code is
//! accepted once: each factor records the last time step it accepted, and a
//! compare-and-swap on that record makes a code (or an earlier one) fail the
//! second time, on any node, even when two nodes check it at the same moment.
//!
//! Records (tenant keyspace): `factor/<user>/<id>` -> [`StoredFactor`] and
//! `factor_step/<user>/<id>` -> last accepted step (decimal).

use std::sync::Arc;

use rsp_consensus::kv::{CmpOp, Compare, CompareTarget, Key, Txn, TxnOp};
use rsp_consensus::{Consensus, ConsensusError, Consistency};
use serde::{Deserialize, Serialize};
use totp_rs::{Algorithm, Builder as TotpBuilder, Secret};
use zeroize::Zeroizing;

use crate::identity::crypto::{CryptoError, KekCell, b64url, b64url_decode, random_token};
use crate::tenants::tenant_keyspace;

/// Shortest imported seed accepted: 80 bits, what most authenticator apps
/// were enrolled with; new seeds are 160 bits.
const MIN_SECRET_BYTES: usize = 10;

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

fn aad(tenant: &str, user: &str, id: &str) -> Vec<u8> {
    format!("totp/{tenant}/{user}/{id}").into_bytes()
}

#[derive(Clone)]
pub struct FactorService {
    consensus: Consensus,
    kek: Arc<KekCell>,
}

impl FactorService {
    pub fn new(consensus: Consensus, kek: Arc<KekCell>) -> Self {
        FactorService { consensus, kek }
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
        let id = random_token(12);
        let sealed = self
            .kek
            .get()?
            .seal(&aad(tenant, user, &id), secret.as_ref())?;
        let factor = StoredFactor {
            id: id.clone(),
            kind: "totp".into(),
            digits,
            period,
            created_at_ms: now_ms,
            sealed_secret: b64url(&sealed),
        };
        let value = serde_json::to_vec(&factor).map_err(|e| FactorError::Corrupt(e.to_string()))?;
        self.consensus
            .txn(Txn::ops(vec![TxnOp::Put {
                key: factor_key(tenant, user, &id),
                value,
                ttl_ms: None,
            }]))
            .await?;
        Ok(FactorInfo::from(&factor))
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
        if code.is_empty() || code.len() > 8 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(false);
        }
        for factor in self.stored_confirmed(tenant, user).await? {
            if factor.kind != "totp" {
                continue;
            }
            let sealed = b64url_decode(&factor.sealed_secret)
                .ok_or_else(|| FactorError::Corrupt("sealed seed is not base64url".into()))?;
            let seed = self
                .kek
                .get()?
                .open(&aad(tenant, user, &factor.id), &sealed)?;
            let totp = TotpBuilder::new()
                .with_algorithm(Algorithm::SHA1)
                .with_digits(factor.digits)
                .with_skew(1)
                .with_step_duration(factor.period)
                .with_secret(Secret::from(seed.to_vec()))
                .build_noncompliant();
            let Some(step) = totp.check(code, now_secs) else {
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
