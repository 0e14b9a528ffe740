//! A tenant's multi-factor policy: who must present a second factor at
//! sign-in.
//!
//! - `optional` (the default): users with a factor are asked for it, others
//!   sign in with a password (unless the client asks for
//!   `acr_values=urn:rsp:acr:mfa`);
//! - `required`: everyone; a user without a factor is led to enrolment
//!   right after the password;
//! - `cedar`: those for whom the tenant's Cedar policies allow
//!   `Action::"mfa_required"` with principal `User::"<user id>"` and
//!   resource `Client::"<client id>"` (decided by the login page through
//!   the policy service; an evaluation error counts as required).
//!
//! Stored replicated at `mfa_policy` in the tenant keyspace.

use rsp_consensus::kv::{Key, Txn, TxnOp};
use rsp_consensus::{Consensus, ConsensusError, Consistency};
use serde::{Deserialize, Serialize};

use rsp_consensus::kv::tenant_keyspace;

/// The Cedar action the `cedar` mode asks about.
pub const MFA_ACTION: &str = "mfa_required";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MfaMode {
    #[default]
    Optional,
    Required,
    Cedar,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfaPolicy {
    pub mode: MfaMode,
}

#[derive(Debug, thiserror::Error)]
pub enum MfaPolicyError {
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
    #[error("the stored MFA policy is unreadable: {0}")]
    Corrupt(String),
}

fn key(tenant: &str) -> Key {
    Key::new(tenant_keyspace(tenant), b"mfa_policy".to_vec())
}

#[derive(Clone)]
pub struct MfaPolicyService {
    consensus: Consensus,
}

impl MfaPolicyService {
    pub fn new(consensus: Consensus) -> Self {
        MfaPolicyService { consensus }
    }

    /// The policy in force (linearizable: a policy just set applies to the
    /// next sign-in on every node).
    pub async fn get(&self, tenant: &str) -> Result<MfaPolicy, MfaPolicyError> {
        let (kv, _) = self
            .consensus
            .get(&key(tenant), Consistency::Linearizable)
            .await?;
        match kv {
            None => Ok(MfaPolicy::default()),
            Some(kv) => serde_json::from_slice(&kv.value)
                .map_err(|e| MfaPolicyError::Corrupt(e.to_string())),
        }
    }

    pub async fn put(&self, tenant: &str, policy: &MfaPolicy) -> Result<(), MfaPolicyError> {
        let value =
            serde_json::to_vec(policy).map_err(|e| MfaPolicyError::Corrupt(e.to_string()))?;
        self.consensus
            .txn(Txn::ops(vec![TxnOp::Put {
                key: key(tenant),
                value,
                ttl_ms: None,
            }]))
            .await?;
        Ok(())
    }
}
