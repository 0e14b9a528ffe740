//! The life of a tenant's signing keys after the first: a new key is
//! *staged* (published in the JWKS, not yet signing), *activated* when its
//! time comes (it signs; the key it replaces becomes `Previous`), and the
//! replaced key is *retired* (its record removes itself) once every token it
//! signed has expired.
//!
//! Each step is one compare-and-set transaction on the tenant's key
//! pointers, so two nodes running the schedule at once never stage or
//! activate twice: the one that loses the compare does nothing.
//!
//! Records (tenant keyspace `t.<tenant>`), beside those of [`super`]:
//! - `signing_key_next/<alg>` -> kid of the staged key for `alg`
//! - `key_settings` -> [`KeySettings`] (JSON; absent: the defaults)

use rsp_consensus::Consistency;
use rsp_consensus::kv::{CmpOp, Compare, CompareTarget, Key, Txn, TxnOp, tenant_keyspace};
use serde::{Deserialize, Serialize};

use super::{KeyError, KeyService, KeyStatus, SigningAlg, StoredKey, active_pointer, key_record};

const HOUR_MS: u64 = 3600 * 1000;
const DAY_MS: u64 = 24 * HOUR_MS;

/// A tenant's key schedule. Every field has a default, so `{}` is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeySettings {
    /// Days a key signs before the next one takes over (1 to 3650).
    pub rotation_days: u64,
    /// Hours the next key is published in the JWKS before it signs, so
    /// relying parties that cache the JWKS know it first (0 to 720, less
    /// than the rotation period).
    pub publish_hours: u64,
    /// Days a replaced key stays published and verifying (1 to 365): longer
    /// than any token it signed lives.
    pub retire_days: u64,
}

impl Default for KeySettings {
    fn default() -> Self {
        KeySettings {
            rotation_days: 90,
            publish_hours: 24,
            retire_days: 7,
        }
    }
}

impl KeySettings {
    pub fn validate(&self) -> Result<(), KeyError> {
        let bad = |m: &str| Err(KeyError::Invalid(m.to_string()));
        if !(1..=3650).contains(&self.rotation_days) {
            return bad("rotation_days must be 1 to 3650");
        }
        if self.publish_hours > 720 || self.publish_ms() >= self.rotation_ms() {
            return bad("publish_hours must be 0 to 720 and less than the rotation period");
        }
        if !(1..=365).contains(&self.retire_days) {
            return bad("retire_days must be 1 to 365");
        }
        Ok(())
    }

    pub fn rotation_ms(&self) -> u64 {
        self.rotation_days * DAY_MS
    }

    pub fn publish_ms(&self) -> u64 {
        self.publish_hours * HOUR_MS
    }

    pub fn retire_ms(&self) -> u64 {
        self.retire_days * DAY_MS
    }
}

/// A key staged to sign from `activates_at_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Staged {
    pub kid: String,
    pub alg: SigningAlg,
    pub activates_at_ms: u64,
}

/// What one run of the schedule did for a tenant.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScheduleRun {
    /// Keys published to sign later.
    pub staged: Vec<Staged>,
    /// Keys that began to sign.
    pub activated: Vec<String>,
}

fn next_pointer(alg: SigningAlg) -> Vec<u8> {
    format!("signing_key_next/{}", alg.name()).into_bytes()
}

fn settings_key(tenant: &str) -> Key {
    Key::new(tenant_keyspace(tenant), b"key_settings".to_vec())
}

fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>, KeyError> {
    serde_json::to_vec(v).map_err(|e| KeyError::Bad(e.to_string()))
}

impl KeyService {
    /// The tenant's key schedule (local read; the defaults when none is set).
    pub async fn settings(&self, tenant: &str) -> Result<KeySettings, KeyError> {
        let (kv, _) = self
            .consensus
            .get(&settings_key(tenant), Consistency::Local)
            .await?;
        match kv {
            Some(kv) => serde_json::from_slice(&kv.value).map_err(|e| KeyError::Bad(e.to_string())),
            None => Ok(KeySettings::default()),
        }
    }

    pub async fn set_settings(&self, tenant: &str, settings: &KeySettings) -> Result<(), KeyError> {
        settings.validate()?;
        self.consensus
            .txn(Txn::ops(vec![TxnOp::Put {
                key: settings_key(tenant),
                value: to_json(settings)?,
                ttl_ms: None,
            }]))
            .await?;
        Ok(())
    }

    async fn pointer(&self, tenant: &str, pointer: Vec<u8>) -> Result<Option<String>, KeyError> {
        let key = Key::new(tenant_keyspace(tenant), pointer);
        let (kv, _) = self.consensus.get(&key, Consistency::Linearizable).await?;
        Ok(kv.map(|kv| String::from_utf8_lossy(&kv.value).into_owned()))
    }

    async fn record(&self, tenant: &str, kid: &str) -> Result<StoredKey, KeyError> {
        let key = Key::new(tenant_keyspace(tenant), key_record(kid));
        let (kv, _) = self.consensus.get(&key, Consistency::Linearizable).await?;
        let kv = kv.ok_or_else(|| KeyError::UnknownKid(kid.to_string()))?;
        serde_json::from_slice(&kv.value).map_err(|e| KeyError::Bad(e.to_string()))
    }

    /// Publish a new `alg` key that signs from `activates_at_ms` (once the
    /// schedule activates it). If one is staged already, that one is the
    /// answer; a tenant with no `alg` key yet gets one that signs at once.
    pub async fn stage(
        &self,
        tenant: &str,
        alg: SigningAlg,
        now_ms: u64,
        activates_at_ms: u64,
    ) -> Result<Staged, KeyError> {
        let ks = tenant_keyspace(tenant);
        for _ in 0..5 {
            if let Some(kid) = self.pointer(tenant, next_pointer(alg)).await? {
                let staged = self.record(tenant, &kid).await?;
                return Ok(Staged {
                    kid,
                    alg,
                    activates_at_ms: staged.activate_at_ms.unwrap_or(now_ms),
                });
            }
            let Some(active) = self.pointer(tenant, active_pointer(alg)).await? else {
                self.install(tenant, alg, now_ms).await?;
                let kid = self.pointer(tenant, active_pointer(alg)).await?;
                let kid = kid.ok_or_else(|| KeyError::Bad("no active key after install".into()))?;
                return Ok(Staged {
                    kid,
                    alg,
                    activates_at_ms: now_ms,
                });
            };
            let (mut new, guard) = self.new_key(tenant, alg, now_ms)?;
            new.status = KeyStatus::Next;
            new.activate_at_ms = Some(activates_at_ms);
            let next = Key::new(ks.clone(), next_pointer(alg));
            let txn = Txn {
                compares: vec![
                    Compare {
                        key: Key::new(ks.clone(), active_pointer(alg)),
                        target: CompareTarget::Value(CmpOp::Eq, active.into_bytes()),
                    },
                    Compare {
                        key: next.clone(),
                        target: CompareTarget::Exists(false),
                    },
                    guard,
                ],
                success: vec![
                    TxnOp::Put {
                        key: Key::new(ks.clone(), key_record(&new.kid)),
                        value: to_json(&new)?,
                        ttl_ms: None,
                    },
                    TxnOp::Put {
                        key: next,
                        value: new.kid.clone().into_bytes(),
                        ttl_ms: None,
                    },
                ],
                failure: vec![],
            };
            if self.consensus.txn(txn).await?.succeeded {
                return Ok(Staged {
                    kid: new.kid,
                    alg,
                    activates_at_ms,
                });
            }
            // Another rotation, or a KEK rotation that changed the sealing
            // key under the write: look again.
            self.ring.refresh().await;
        }
        Err(KeyError::Bad(
            "staging a key kept conflicting with another rotation".into(),
        ))
    }

    /// Make the staged `alg` key sign if its time has come (at once with
    /// `force`); the key it replaces verifies for `retire_ms` more. The kid
    /// that began to sign, or `None` (nothing due, or another node did it).
    pub async fn activate(
        &self,
        tenant: &str,
        alg: SigningAlg,
        now_ms: u64,
        retire_ms: u64,
        force: bool,
    ) -> Result<Option<String>, KeyError> {
        let ks = tenant_keyspace(tenant);
        let Some(next_kid) = self.pointer(tenant, next_pointer(alg)).await? else {
            return Ok(None);
        };
        let mut next = self.record(tenant, &next_kid).await?;
        if !force && next.activate_at_ms.is_some_and(|t| t > now_ms) {
            return Ok(None);
        }
        next.status = KeyStatus::Active;
        next.activate_at_ms = Some(now_ms);
        let active_key = Key::new(ks.clone(), active_pointer(alg));
        let next_key = Key::new(ks.clone(), next_pointer(alg));
        let mut success = vec![
            TxnOp::Put {
                key: Key::new(ks.clone(), key_record(&next_kid)),
                value: to_json(&next)?,
                ttl_ms: None,
            },
            TxnOp::Put {
                key: active_key.clone(),
                value: next_kid.clone().into_bytes(),
                ttl_ms: None,
            },
            TxnOp::Delete {
                key: next_key.clone(),
            },
        ];
        let active = self.pointer(tenant, active_pointer(alg)).await?;
        let active_target = match &active {
            Some(old_kid) => {
                match self.record(tenant, old_kid).await {
                    Ok(mut old) => {
                        old.status = KeyStatus::Previous;
                        old.retire_at_ms = Some(now_ms + retire_ms);
                        success.push(TxnOp::Put {
                            key: Key::new(ks.clone(), key_record(old_kid)),
                            value: to_json(&old)?,
                            // The record removes itself when it retires.
                            ttl_ms: Some(retire_ms),
                        });
                    }
                    Err(KeyError::UnknownKid(_)) => {}
                    Err(e) => return Err(e),
                }
                CompareTarget::Value(CmpOp::Eq, old_kid.clone().into_bytes())
            }
            None => CompareTarget::Exists(false),
        };
        let txn = Txn {
            compares: vec![
                Compare {
                    key: active_key,
                    target: active_target,
                },
                Compare {
                    key: next_key,
                    target: CompareTarget::Value(CmpOp::Eq, next_kid.clone().into_bytes()),
                },
            ],
            success,
            failure: vec![],
        };
        if self.consensus.txn(txn).await?.succeeded {
            self.forget(tenant);
            Ok(Some(next_kid))
        } else {
            Ok(None)
        }
    }

    /// One run of the schedule for a tenant, as the background job does
    /// it every minute: activate staged keys whose time has come, then
    /// stage the successor of every active key that will have signed for
    /// the rotation period within the publication lead. It decides from
    /// this node's copy of the records (no quorum round for a tenant with
    /// nothing due); each change is a compare-and-set.
    pub async fn run_schedule(&self, tenant: &str, now_ms: u64) -> Result<ScheduleRun, KeyError> {
        let settings = self.settings(tenant).await?;
        let mut run = ScheduleRun::default();
        let keys = self.keys(tenant).await?;
        for alg in SigningAlg::ALL {
            let staged = keys
                .iter()
                .find(|k| k.alg == alg && k.status == KeyStatus::Next);
            if staged.is_some_and(|k| k.activate_at_ms.is_none_or(|t| t <= now_ms))
                && let Some(kid) = self
                    .activate(tenant, alg, now_ms, settings.retire_ms(), false)
                    .await?
            {
                run.activated.push(kid);
            }
        }
        let keys = if run.activated.is_empty() {
            keys
        } else {
            self.keys(tenant).await?
        };
        for alg in SigningAlg::ALL {
            if keys
                .iter()
                .any(|k| k.alg == alg && k.status == KeyStatus::Next)
            {
                continue;
            }
            let Some(active) = keys
                .iter()
                .find(|k| k.alg == alg && k.status == KeyStatus::Active)
            else {
                continue;
            };
            let since = active.activate_at_ms.unwrap_or(active.created_at_ms);
            let due = since + settings.rotation_ms();
            if now_ms + settings.publish_ms() >= due {
                run.staged
                    .push(self.stage(tenant, alg, now_ms, due.max(now_ms)).await?);
            }
        }
        Ok(run)
    }
}
