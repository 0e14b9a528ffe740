//! The replicated policy store of a tenant: policy versions (with author
//! and time, restorable), template links and entities, written through
//! consensus and validated before they are proposed.
//!
//! A write reads the current state (after a linearizable barrier), applies
//! its change, compiles the result (refusing it with Cedar's diagnostics if
//! it does not compile), and commits with a compare on `policy/head`'s
//! modification revision, retrying if another write came first. It answers
//! only once the change is in force everywhere (see [`PolicyStore::fence`]).

use std::time::{Duration, Instant};

use rsp_consensus::kv::{CmpOp, Compare, CompareTarget, KeyValue, Txn, TxnOp, tenant_keyspace};
use rsp_consensus::{Consensus, Consistency};
use serde::Serialize;

use crate::compile::{Compiled, compile};
use crate::config::PolicyConfig;
use crate::error::{PolicyError, codes};
use crate::records::{
    self, Head, PolicyVersion, StoredEntities, StoredLink, entities_key, head_key, link_key,
    version_key,
};

/// Most links and versions a tenant keeps (a range read's bound).
pub const MAX_LINKS: usize = 10_000;
pub const MAX_VERSIONS: usize = 100_000;

/// A tenant's stored state at one revision of `policy/head`.
#[derive(Debug, Clone, Default)]
pub struct StoredState {
    pub head: Head,
    /// Modification revision of `policy/head`; 0 when nothing was written.
    pub head_rev: u64,
    pub current: Option<PolicyVersion>,
    pub links: Vec<StoredLink>,
    pub entities: Option<StoredEntities>,
}

impl StoredState {
    pub fn compile(&self) -> Result<Compiled, PolicyError> {
        compile(
            self.current.as_ref(),
            &self.links,
            self.entities.as_ref().map(|e| &e.entities),
        )
    }
}

/// What an accepted write answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    /// The current policy version after the write.
    pub version: u64,
    /// Members that did not confirm applying the write in time (the write
    /// then also waited out the local-decision bound; see docs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unconfirmed: Vec<u64>,
}

/// A version as listed (without its text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionSummary {
    pub version: u64,
    pub author: String,
    pub time_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<u64>,
    pub current: bool,
}

enum Change {
    Policies(PolicyVersion),
    Link(StoredLink),
    Unlink(String),
    Entities(StoredEntities),
}

fn decode<T: serde::de::DeserializeOwned>(kv: &KeyValue) -> Result<T, PolicyError> {
    serde_json::from_slice(&kv.value).map_err(PolicyError::corrupt)
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, PolicyError> {
    serde_json::to_vec(v).map_err(PolicyError::corrupt)
}

/// Link ids become keys and Cedar policy ids: keep them plain.
pub fn valid_link_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[derive(Clone)]
pub struct PolicyStore {
    consensus: Consensus,
    config: PolicyConfig,
}

impl PolicyStore {
    pub fn new(consensus: Consensus, config: PolicyConfig) -> Self {
        PolicyStore { consensus, config }
    }

    /// Read the whole state from this node's applied data. The head is read
    /// before and after the other keys; if it moved, the reads may straddle
    /// a write, and they are done again.
    pub async fn read_local(&self, tenant: &str) -> Result<StoredState, PolicyError> {
        let c = &self.consensus;
        for _ in 0..16 {
            let (head_kv, _) = c.get(&head_key(tenant), Consistency::Local).await?;
            let Some(head_kv) = head_kv else {
                return Ok(StoredState::default());
            };
            let head: Head = decode(&head_kv)?;
            let current = match head.version {
                0 => None,
                n => {
                    let (kv, _) = c.get(&version_key(tenant, n), Consistency::Local).await?;
                    Some(decode::<PolicyVersion>(&kv.ok_or_else(|| {
                        PolicyError::corrupt(format!("policy version {n} is missing"))
                    })?)?)
                }
            };
            let (link_kvs, _) = c
                .range(
                    &tenant_keyspace(tenant),
                    records::LINK_PREFIX.as_bytes(),
                    MAX_LINKS,
                    Consistency::Local,
                )
                .await?;
            let links = link_kvs
                .iter()
                .map(decode::<StoredLink>)
                .collect::<Result<Vec<_>, _>>()?;
            let (entities_kv, _) = c.get(&entities_key(tenant), Consistency::Local).await?;
            let entities = entities_kv
                .as_ref()
                .map(decode::<StoredEntities>)
                .transpose()?;
            let (again, _) = c.get(&head_key(tenant), Consistency::Local).await?;
            if again.as_ref().map(|kv| kv.mod_revision) == Some(head_kv.mod_revision) {
                return Ok(StoredState {
                    head,
                    head_rev: head_kv.mod_revision,
                    current,
                    links,
                    entities,
                });
            }
        }
        Err(PolicyError::Conflict)
    }

    /// The state as of now (linearizable).
    pub async fn read(&self, tenant: &str) -> Result<StoredState, PolicyError> {
        self.consensus.linearizable_barrier().await?;
        self.read_local(tenant).await
    }

    /// Replace the tenant's policies (and schema) with a new version.
    pub async fn put_policies(
        &self,
        tenant: &str,
        policies: String,
        schema: Option<serde_json::Value>,
        author: &str,
    ) -> Result<Receipt, PolicyError> {
        self.write(tenant, |state| {
            Ok(Change::Policies(PolicyVersion {
                version: state.head.version + 1,
                policies: policies.clone(),
                schema: schema.clone(),
                author: author.to_string(),
                time_ms: self.consensus.clock().now_ms(),
                restored_from: None,
            }))
        })
        .await
    }

    /// Make an old version current again, as a new version.
    pub async fn restore(
        &self,
        tenant: &str,
        version: u64,
        author: &str,
    ) -> Result<Receipt, PolicyError> {
        let old = self.version(tenant, version).await?;
        self.write(tenant, |state| {
            Ok(Change::Policies(PolicyVersion {
                version: state.head.version + 1,
                policies: old.policies.clone(),
                schema: old.schema.clone(),
                author: author.to_string(),
                time_ms: self.consensus.clock().now_ms(),
                restored_from: Some(version),
            }))
        })
        .await
    }

    /// Replace the tenant's entities.
    pub async fn put_entities(
        &self,
        tenant: &str,
        entities: serde_json::Value,
        author: &str,
    ) -> Result<Receipt, PolicyError> {
        self.write(tenant, |_| {
            Ok(Change::Entities(StoredEntities {
                entities: entities.clone(),
                author: author.to_string(),
                time_ms: self.consensus.clock().now_ms(),
            }))
        })
        .await
    }

    /// Create or replace the template-linked policy `id`.
    pub async fn link(
        &self,
        tenant: &str,
        id: &str,
        template: &str,
        values: std::collections::BTreeMap<String, String>,
        author: &str,
    ) -> Result<Receipt, PolicyError> {
        if !valid_link_id(id) {
            return Err(PolicyError::invalid_one(
                codes::INVALID_LINK,
                "link ids are 1 to 128 characters of letters, digits and -_.:",
            ));
        }
        self.write(tenant, |_| {
            Ok(Change::Link(StoredLink {
                id: id.to_string(),
                template: template.to_string(),
                values: values.clone(),
                author: author.to_string(),
                time_ms: self.consensus.clock().now_ms(),
            }))
        })
        .await
    }

    pub async fn unlink(&self, tenant: &str, id: &str) -> Result<Receipt, PolicyError> {
        self.write(tenant, |state| {
            if state.links.iter().any(|l| l.id == id) {
                Ok(Change::Unlink(id.to_string()))
            } else {
                Err(PolicyError::NotFound(format!("no link `{id}`")))
            }
        })
        .await
    }

    /// One version with its text.
    pub async fn version(&self, tenant: &str, version: u64) -> Result<PolicyVersion, PolicyError> {
        let (kv, _) = self
            .consensus
            .get(&version_key(tenant, version), Consistency::Linearizable)
            .await?;
        match kv {
            Some(kv) => decode(&kv),
            None => Err(PolicyError::NotFound(format!(
                "no policy version {version}"
            ))),
        }
    }

    /// Every version, oldest first, without texts.
    pub async fn versions(&self, tenant: &str) -> Result<Vec<VersionSummary>, PolicyError> {
        let state = self.read(tenant).await?;
        let (kvs, _) = self
            .consensus
            .range(
                &tenant_keyspace(tenant),
                records::VERSION_PREFIX.as_bytes(),
                MAX_VERSIONS,
                Consistency::Local,
            )
            .await?;
        kvs.iter()
            .map(|kv| {
                let v: PolicyVersion = decode(kv)?;
                Ok(VersionSummary {
                    current: v.version == state.head.version,
                    version: v.version,
                    author: v.author,
                    time_ms: v.time_ms,
                    restored_from: v.restored_from,
                })
            })
            .collect()
    }

    async fn write(
        &self,
        tenant: &str,
        change: impl Fn(&StoredState) -> Result<Change, PolicyError>,
    ) -> Result<Receipt, PolicyError> {
        for _ in 0..8 {
            let state = self.read(tenant).await?;
            let change = change(&state)?;
            let mut next = state.clone();
            let mut ops = Vec::new();
            match change {
                Change::Policies(v) => {
                    next.head.version = v.version;
                    ops.push(TxnOp::Put {
                        key: version_key(tenant, v.version),
                        value: encode(&v)?,
                        ttl_ms: None,
                    });
                    next.current = Some(v);
                }
                Change::Link(link) => {
                    next.head.links_changes += 1;
                    ops.push(TxnOp::Put {
                        key: link_key(tenant, &link.id),
                        value: encode(&link)?,
                        ttl_ms: None,
                    });
                    next.links.retain(|l| l.id != link.id);
                    next.links.push(link);
                }
                Change::Unlink(id) => {
                    next.head.links_changes += 1;
                    ops.push(TxnOp::Delete {
                        key: link_key(tenant, &id),
                    });
                    next.links.retain(|l| l.id != id);
                }
                Change::Entities(e) => {
                    next.head.entities_changes += 1;
                    ops.push(TxnOp::Put {
                        key: entities_key(tenant),
                        value: encode(&e)?,
                        ttl_ms: None,
                    });
                    next.entities = Some(e);
                }
            }
            // Refused here, with Cedar's diagnostics, unless it compiles.
            next.compile()?;
            ops.push(TxnOp::Put {
                key: head_key(tenant),
                value: encode(&next.head)?,
                ttl_ms: None,
            });
            let txn = Txn {
                compares: vec![Compare {
                    key: head_key(tenant),
                    target: CompareTarget::ModRevision(CmpOp::Eq, state.head_rev),
                }],
                success: ops,
                failure: vec![],
            };
            let (resp, index) = self.consensus.txn_indexed(txn).await?;
            if !resp.succeeded {
                continue;
            }
            let committed_at = Instant::now();
            let unconfirmed = self.fence(index, committed_at).await;
            return Ok(Receipt {
                version: next.head.version,
                unconfirmed,
            });
        }
        Err(PolicyError::Conflict)
    }

    /// Wait until a write committed at log `index` governs decisions on
    /// every node: each member confirms it applied it, or, for members that
    /// do not confirm within `confirm_timeout`, the local-decision bound has
    /// passed since the commit (after which such a member refreshes with a
    /// linearizable barrier before deciding; see `PolicyService`).
    pub async fn fence(&self, index: u64, committed_at: Instant) -> Vec<u64> {
        let report = self
            .consensus
            .wait_applied_everywhere(index, self.config.confirm_timeout)
            .await;
        if !report.complete() {
            tracing::warn!(
                index,
                missing = ?report.missing,
                "policy change not confirmed by every member; waiting out the local-decision bound"
            );
            let until = committed_at + self.config.local_bound + Duration::from_millis(50);
            tokio::time::sleep_until(until.into()).await;
        }
        report.missing
    }
}
