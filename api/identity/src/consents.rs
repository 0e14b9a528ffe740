//! What each user granted each client: the scopes agreed to on a consent
//! page, remembered so the page is asked again only for new scopes.
//!
//! Records (tenant keyspace): `consent/<user id>/<client id>` -> JSON
//! `{"scopes": [...], "updated_at_ms": n}`, written through Raft and
//! stamped with the consensus clock. A grant adds to what was granted
//! before; nothing here removes a scope.

use rsp_consensus::kv::{Key, Txn, TxnOp, tenant_keyspace};
use rsp_consensus::{Consensus, ConsensusError};
use serde::{Deserialize, Serialize};

use crate::oauth::context::get_confirmed;

#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
    #[error("the stored consent is unreadable: {0}")]
    Corrupt(String),
}

#[derive(Serialize, Deserialize)]
struct Granted {
    scopes: Vec<String>,
    updated_at_ms: u64,
}

fn key(tenant: &str, user_id: &str, client_id: &str) -> Key {
    Key::new(
        tenant_keyspace(tenant),
        format!("consent/{user_id}/{client_id}").into_bytes(),
    )
}

/// The scopes of a space-separated `scope` value.
fn scopes(scope: &str) -> impl Iterator<Item = &str> {
    scope.split(' ').filter(|s| !s.is_empty())
}

#[derive(Clone)]
pub struct ConsentService {
    consensus: Consensus,
}

impl ConsentService {
    pub fn new(consensus: Consensus) -> Self {
        ConsentService { consensus }
    }

    /// The scopes `user_id` granted `client_id` so far (a local read,
    /// confirmed by a linearizable one when it finds nothing).
    pub async fn granted(
        &self,
        tenant: &str,
        user_id: &str,
        client_id: &str,
    ) -> Result<Vec<String>, ConsentError> {
        match get_confirmed(&self.consensus, &key(tenant, user_id, client_id)).await? {
            Some(kv) => Ok(serde_json::from_slice::<Granted>(&kv.value)
                .map_err(|e| ConsentError::Corrupt(e.to_string()))?
                .scopes),
            None => Ok(Vec::new()),
        }
    }

    /// Whether every scope of `scope` was granted already.
    pub async fn covers(
        &self,
        tenant: &str,
        user_id: &str,
        client_id: &str,
        scope: &str,
    ) -> Result<bool, ConsentError> {
        let granted = self.granted(tenant, user_id, client_id).await?;
        Ok(scopes(scope).all(|s| granted.iter().any(|g| g == s)))
    }

    /// Add the scopes of `scope` to what `user_id` granted `client_id`.
    pub async fn grant(
        &self,
        tenant: &str,
        user_id: &str,
        client_id: &str,
        scope: &str,
    ) -> Result<(), ConsentError> {
        let mut granted = self.granted(tenant, user_id, client_id).await?;
        for s in scopes(scope) {
            if !granted.iter().any(|g| g == s) {
                granted.push(s.to_string());
            }
        }
        let record = Granted {
            scopes: granted,
            updated_at_ms: self.consensus.clock().now_ms(),
        };
        let value =
            serde_json::to_vec(&record).map_err(|e| ConsentError::Corrupt(e.to_string()))?;
        self.consensus
            .txn(Txn::ops(vec![TxnOp::Put {
                key: key(tenant, user_id, client_id),
                value,
                ttl_ms: None,
            }]))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_their_stored_shape() {
        let record = Granted {
            scopes: vec!["openid".into(), "email".into()],
            updated_at_ms: 7,
        };
        assert_eq!(
            serde_json::to_string(&record).expect("json"),
            r#"{"scopes":["openid","email"],"updated_at_ms":7}"#
        );
        assert_eq!(
            key("acme", "u1", "web").key,
            b"consent/u1/web".to_vec(),
            "the record key inside the tenant keyspace"
        );
    }

    #[test]
    fn scope_values_split_on_single_spaces() {
        assert_eq!(
            scopes("openid  email ").collect::<Vec<_>>(),
            ["openid", "email"]
        );
    }
}
