//! Recovery codes: ten single-use codes a user keeps on paper for when the
//! authenticator is lost, accepted at the second-factor step instead of a
//! TOTP code.
//!
//! - A code is 80 random bits, shown once as 16 base32 characters in four
//!   groups (`abcd-efgh-ijkl-mnop`); typing is forgiving (case, dashes,
//!   spaces).
//! - Only a keyed hash is stored: HMAC-SHA256 under a key derived from the
//!   KEK ([`crate::crypto::HashKey`]), so a copy of the store
//!   without the KEK gives nothing to guess offline, and the comparison is
//!   constant-time.
//! - One record per user, `recovery/<user>` -> [`StoredCodes`]. Using a code
//!   removes its hash by a compare-and-swap on the record's revision, so a
//!   code works once cluster-wide, even when two nodes see it at the same
//!   moment. Generating a new set replaces the record (old codes stop
//!   working at once).

use rsp_consensus::kv::{CmpOp, Compare, CompareTarget, Key, Txn, TxnOp};
use rsp_consensus::{Consensus, ConsensusError, Consistency};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use zeroize::Zeroizing;

use crate::crypto::{CryptoError, KekCell};
use rsp_consensus::kv::tenant_keyspace;

/// Codes in a set.
pub const CODES_PER_SET: usize = 10;
/// Random bytes per code (80 bits: 16 base32 characters).
const CODE_BYTES: usize = 10;
const HASH_LABEL: &str = "rsp recovery codes v1";
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("stored recovery codes are unreadable: {0}")]
    Corrupt(String),
}

/// A user's unused codes, as keyed hashes.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredCodes {
    pub created_at_ms: u64,
    pub hashes: Vec<String>,
}

/// A fresh set, to show once. Zeroized on drop, never printed.
pub struct NewCodes(pub Vec<Zeroizing<String>>);

impl std::fmt::Debug for NewCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NewCodes({} codes)", self.0.len())
    }
}

fn key(tenant: &str, user: &str) -> Key {
    Key::new(
        tenant_keyspace(tenant),
        format!("recovery/{user}").into_bytes(),
    )
}

/// 80 random bits as `xxxx-xxxx-xxxx-xxxx` (base32, lowercase).
fn new_code() -> Zeroizing<String> {
    let bytes: Zeroizing<[u8; CODE_BYTES]> = Zeroizing::new(rand::random());
    let mut out = Zeroizing::new(String::with_capacity(19));
    let (mut buffer, mut bits, mut n) = (0u32, 0u32, 0usize);
    for &b in bytes.iter() {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            if n > 0 && n % 4 == 0 {
                out.push('-');
            }
            out.push(ALPHABET[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
            n += 1;
        }
    }
    out
}

/// A typed code in canonical form (lowercase, no separators), or `None`
/// when it cannot be one of ours.
fn normalized(typed: &str) -> Option<Zeroizing<String>> {
    let s: Zeroizing<String> = Zeroizing::new(
        typed
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect(),
    );
    (s.len() == 16 && s.bytes().all(|b| ALPHABET.contains(&b))).then_some(s)
}

#[derive(Clone)]
pub struct RecoveryService {
    consensus: Consensus,
    kek: Arc<KekCell>,
}

impl RecoveryService {
    pub fn new(consensus: Consensus, kek: Arc<KekCell>) -> Self {
        RecoveryService { consensus, kek }
    }

    fn hash(&self, canonical: &str) -> Result<String, RecoveryError> {
        Ok(self.kek.derive(HASH_LABEL)?.hash(canonical.as_bytes()))
    }

    /// Make a new set for `user`, replacing any earlier one.
    pub async fn generate(
        &self,
        tenant: &str,
        user: &str,
        now_ms: u64,
    ) -> Result<NewCodes, RecoveryError> {
        let codes: Vec<Zeroizing<String>> = (0..CODES_PER_SET).map(|_| new_code()).collect();
        let mut hashes = Vec::with_capacity(codes.len());
        for c in &codes {
            let canonical =
                normalized(c).ok_or_else(|| RecoveryError::Corrupt("bad code".into()))?;
            hashes.push(self.hash(&canonical)?);
        }
        let record = StoredCodes {
            created_at_ms: now_ms,
            hashes,
        };
        let value =
            serde_json::to_vec(&record).map_err(|e| RecoveryError::Corrupt(e.to_string()))?;
        self.consensus
            .txn(Txn::ops(vec![TxnOp::Put {
                key: key(tenant, user),
                value,
                ttl_ms: None,
            }]))
            .await?;
        Ok(NewCodes(codes))
    }

    /// How many unused codes `user` has (0 without a set).
    pub async fn remaining(&self, tenant: &str, user: &str) -> Result<usize, RecoveryError> {
        let (kv, _) = self
            .consensus
            .get(&key(tenant, user), Consistency::Linearizable)
            .await?;
        match kv {
            None => Ok(0),
            Some(kv) => Ok(serde_json::from_slice::<StoredCodes>(&kv.value)
                .map_err(|e| RecoveryError::Corrupt(e.to_string()))?
                .hashes
                .len()),
        }
    }

    /// Use `typed`: true at most once per code, cluster-wide.
    pub async fn redeem(
        &self,
        tenant: &str,
        user: &str,
        typed: &str,
    ) -> Result<bool, RecoveryError> {
        let Some(canonical) = normalized(typed) else {
            return Ok(false);
        };
        let key = key(tenant, user);
        let key_hash = self.kek.derive(HASH_LABEL)?;
        for _ in 0..5 {
            let (kv, _) = self.consensus.get(&key, Consistency::Linearizable).await?;
            let Some(kv) = kv else { return Ok(false) };
            let mut record: StoredCodes = serde_json::from_slice(&kv.value)
                .map_err(|e| RecoveryError::Corrupt(e.to_string()))?;
            // Compare against every stored hash (constant-time each), so the
            // time taken does not tell which one matched.
            let mut found = None;
            for (i, h) in record.hashes.iter().enumerate() {
                if key_hash.verify(canonical.as_bytes(), h) && found.is_none() {
                    found = Some(i);
                }
            }
            let Some(i) = found else { return Ok(false) };
            record.hashes.remove(i);
            let value =
                serde_json::to_vec(&record).map_err(|e| RecoveryError::Corrupt(e.to_string()))?;
            let txn = Txn {
                compares: vec![Compare {
                    key: key.clone(),
                    target: CompareTarget::ModRevision(CmpOp::Eq, kv.mod_revision),
                }],
                success: vec![TxnOp::Put {
                    key: key.clone(),
                    value,
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

    /// Remove `user`'s codes.
    pub async fn delete(&self, tenant: &str, user: &str) -> Result<(), RecoveryError> {
        self.consensus
            .txn(Txn::ops(vec![TxnOp::Delete {
                key: key(tenant, user),
            }]))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_sixteen_base32_characters_in_groups_and_typing_is_forgiving() {
        let c = new_code();
        assert_eq!(c.len(), 19, "{}", c.as_str());
        assert_eq!(c.matches('-').count(), 3);
        let typed = c.to_uppercase().replace('-', " ");
        assert_eq!(
            normalized(&typed).as_deref().map(String::as_str),
            Some(c.replace('-', "").as_str())
        );
        assert!(normalized("123456").is_none());
        assert_ne!(new_code().as_str(), c.as_str());
    }
}
