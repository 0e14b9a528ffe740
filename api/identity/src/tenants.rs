//! Tenants: create, read and delete, replicated through consensus.
//!
//! A tenant's record lives at `sys / tenant/<id>`; everything a tenant owns
//! lives in its own keyspace `t.<id>`, so deleting a tenant removes its data
//! in the same transaction.

use rsp_consensus::kv::{
    CmpOp, Compare, CompareTarget, Key, OpResult, Txn, TxnOp, tenant_keyspace,
};
use rsp_consensus::{Consensus, ConsensusError, Consistency};
use serde::{Deserialize, Serialize};

pub mod settings;

pub use rsp_consensus::kv::SYSTEM_KEYSPACE;
pub use settings::{SettingsError, TenantSettings};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: String,
    pub display_name: String,
    pub created_at_ms: u64,
    /// Only the settings that were set (`{}`: all are the node's defaults).
    #[serde(default)]
    pub settings: TenantSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error(
        "tenant ids are 1 to 62 characters of a-z, 0-9 and '-', starting with a letter or digit"
    )]
    InvalidId,
    #[error("display_name must be 1 to 200 characters")]
    InvalidDisplayName,
    #[error("tenant `{0}` already exists")]
    Exists(String),
    #[error("tenant `{0}` does not exist")]
    NotFound(String),
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
    #[error("stored tenant record is unreadable: {0}")]
    Corrupt(String),
    #[error("the tenant changed since that version was read")]
    Changed,
    #[error(transparent)]
    Settings(#[from] SettingsError),
}

/// Records of a tenant that an administrator made (see
/// [`TenantService::has_data`]).
const OWNED_PREFIXES: [&[u8]; 4] = [b"user/", b"client/", b"saml_sp/", b"policy/"];

/// Tenant records in the system keyspace, listed in id order.
pub const TENANT_LISTING_PREFIX: &[u8] = b"tenant/";

/// Validates a tenant id: lowercase DNS-label-like, at most 62 characters so
/// that `t.<id>` fits a keyspace name.
pub fn valid_tenant_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 62
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// What [`TenantService::create`] checks of a new tenant before any read
/// or write: the id, and the display name, which it answers trimmed.
pub fn check_new<'a>(id: &str, display_name: &'a str) -> Result<&'a str, TenantError> {
    if !valid_tenant_id(id) {
        return Err(TenantError::InvalidId);
    }
    let display_name = display_name.trim();
    if display_name.is_empty() || display_name.chars().count() > 200 {
        return Err(TenantError::InvalidDisplayName);
    }
    Ok(display_name)
}

fn record_key(id: &str) -> Key {
    Key::new(SYSTEM_KEYSPACE, format!("tenant/{id}"))
}

#[derive(Clone)]
pub struct TenantService {
    consensus: Consensus,
}

impl TenantService {
    pub fn new(consensus: Consensus) -> Self {
        TenantService { consensus }
    }

    pub async fn create(
        &self,
        id: &str,
        display_name: &str,
        now_ms: u64,
    ) -> Result<Tenant, TenantError> {
        let display_name = check_new(id, display_name)?;
        let tenant = Tenant {
            id: id.to_string(),
            display_name: display_name.to_string(),
            created_at_ms: now_ms,
            settings: TenantSettings::default(),
        };
        let value = serde_json::to_vec(&tenant).map_err(|e| TenantError::Corrupt(e.to_string()))?;
        let txn = Txn {
            compares: vec![Compare {
                key: record_key(id),
                target: CompareTarget::Exists(false),
            }],
            success: vec![TxnOp::Put {
                key: record_key(id),
                value,
                ttl_ms: None,
            }],
            failure: vec![],
        };
        let resp = self.consensus.txn(txn).await?;
        if resp.succeeded {
            Ok(tenant)
        } else {
            Err(TenantError::Exists(id.to_string()))
        }
    }

    /// The tenant, read on this node; a miss is confirmed with a
    /// linearizable read before it is believed (the tenant may have been
    /// created through another node a moment ago). An id that cannot name
    /// a tenant is not found without a read.
    pub async fn get_confirmed(&self, id: &str) -> Result<Tenant, TenantError> {
        match self.get(id, Consistency::Local).await {
            Err(TenantError::NotFound(_)) if valid_tenant_id(id) => {
                self.get(id, Consistency::Linearizable).await
            }
            other => other,
        }
    }

    pub async fn get(&self, id: &str, consistency: Consistency) -> Result<Tenant, TenantError> {
        if !valid_tenant_id(id) {
            return Err(TenantError::NotFound(id.to_string()));
        }
        let (kv, _) = self.consensus.get(&record_key(id), consistency).await?;
        match kv {
            Some(kv) => {
                serde_json::from_slice(&kv.value).map_err(|e| TenantError::Corrupt(e.to_string()))
            }
            None => Err(TenantError::NotFound(id.to_string())),
        }
    }

    /// Every tenant's id, from this node's copy (for background jobs such
    /// as the key schedule).
    pub async fn ids(&self) -> Result<Vec<String>, TenantError> {
        let (kvs, _) = self
            .consensus
            .range(SYSTEM_KEYSPACE, b"tenant/", usize::MAX, Consistency::Local)
            .await?;
        Ok(kvs
            .iter()
            .filter_map(|kv| kv.key.key.strip_prefix(b"tenant/"))
            .map(|id| String::from_utf8_lossy(id).into_owned())
            .collect())
    }

    /// The tenant read linearizably, with the revision of its record.
    pub async fn get_versioned(&self, id: &str) -> Result<(Tenant, u64), TenantError> {
        if !valid_tenant_id(id) {
            return Err(TenantError::NotFound(id.to_string()));
        }
        let (kv, _) = self
            .consensus
            .get(&record_key(id), Consistency::Linearizable)
            .await?;
        let kv = kv.ok_or_else(|| TenantError::NotFound(id.to_string()))?;
        let tenant =
            serde_json::from_slice(&kv.value).map_err(|e| TenantError::Corrupt(e.to_string()))?;
        Ok((tenant, kv.mod_revision))
    }

    /// The tenant's settings as this node has applied them (an
    /// administrator's change waits for every node before it is
    /// acknowledged, see `PATCH /admin/v1/tenants/{t}`). An unknown tenant
    /// has the defaults: its requests are refused elsewhere.
    pub async fn settings(&self, id: &str) -> Result<TenantSettings, TenantError> {
        match self.get(id, Consistency::Local).await {
            Ok(tenant) => Ok(tenant.settings),
            Err(TenantError::NotFound(_)) => Ok(TenantSettings::default()),
            Err(e) => Err(e),
        }
    }

    /// Change the tenant if its record is still at `revision` (read by
    /// [`Self::get_versioned`]): a new display name, and `settings` patched
    /// ([`TenantSettings::patched`]). Answers the tenant, its new revision
    /// and the write's log index, or [`TenantError::Changed`].
    pub async fn update(
        &self,
        id: &str,
        display_name: Option<&str>,
        settings: Option<&serde_json::Map<String, serde_json::Value>>,
        revision: u64,
    ) -> Result<(Tenant, u64, u64), TenantError> {
        let display_name = display_name.map(|n| check_new(id, n)).transpose()?;
        let (mut tenant, current) = self.get_versioned(id).await?;
        if current != revision {
            return Err(TenantError::Changed);
        }
        if let Some(name) = display_name {
            tenant.display_name = name.to_string();
        }
        if let Some(patch) = settings {
            tenant.settings = tenant.settings.patched(patch)?;
        }
        let value = serde_json::to_vec(&tenant).map_err(|e| TenantError::Corrupt(e.to_string()))?;
        let txn = Txn {
            compares: vec![Compare {
                key: record_key(id),
                target: CompareTarget::ModRevision(CmpOp::Eq, revision),
            }],
            success: vec![TxnOp::Put {
                key: record_key(id),
                value,
                ttl_ms: None,
            }],
            failure: vec![],
        };
        let (resp, index) = self.consensus.txn_indexed(txn).await?;
        if resp.succeeded {
            Ok((tenant, resp.revision, index))
        } else {
            Err(TenantError::Changed)
        }
    }

    /// Whether the tenant holds anything an administrator made: users,
    /// clients, SAML service providers, policies or entities (read
    /// linearizably). Keys, counters and other records the server makes on
    /// its own do not count.
    pub async fn has_data(&self, id: &str) -> Result<bool, TenantError> {
        let keyspace = tenant_keyspace(id);
        for prefix in OWNED_PREFIXES {
            let (kvs, _) = self
                .consensus
                .range(&keyspace, prefix, 1, Consistency::Linearizable)
                .await?;
            if !kvs.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Delete the tenant and everything in its keyspace, atomically; with
    /// `revision`, only while the record is at it.
    pub async fn delete(&self, id: &str) -> Result<(), TenantError> {
        self.delete_at(id, None).await
    }

    /// [`Self::delete`], only while the tenant's record is at `revision`
    /// when given ([`TenantError::Changed`] otherwise).
    pub async fn delete_at(&self, id: &str, revision: Option<u64>) -> Result<(), TenantError> {
        if !valid_tenant_id(id) {
            return Err(TenantError::NotFound(id.to_string()));
        }
        if let Some(revision) = revision {
            let (_, current) = self.get_versioned(id).await?;
            if current != revision {
                return Err(TenantError::Changed);
            }
        }
        let txn = Txn {
            compares: vec![Compare {
                key: record_key(id),
                target: match revision {
                    Some(r) => CompareTarget::ModRevision(CmpOp::Eq, r),
                    None => CompareTarget::Exists(true),
                },
            }],
            success: vec![
                TxnOp::Delete {
                    key: record_key(id),
                },
                TxnOp::DeletePrefix {
                    keyspace: tenant_keyspace(id),
                    prefix: Vec::new(),
                },
            ],
            failure: vec![],
        };
        let resp = self.consensus.txn(txn).await?;
        match (resp.succeeded, resp.results.first()) {
            (true, Some(OpResult::Delete { .. })) => Ok(()),
            (true, _) => Err(TenantError::Corrupt("unexpected transaction result".into())),
            (false, _) if revision.is_some() => Err(TenantError::Changed),
            (false, _) => Err(TenantError::NotFound(id.to_string())),
        }
    }
}
