//! Single use of the tickets that carry a sign-in from its password step
//! to its second factor, across the cluster.
//!
//! A ticket (made and sealed by the login pages) names a random id. When
//! the sign-in it carries finishes, [`MfaTicketService::spend`] writes
//! `mfa_ticket/<id>` in the tenant keyspace with a transaction that puts
//! the key only if it is absent: of two nodes finishing the same ticket at
//! once, one wins and the other is told the ticket is spent. The record
//! expires with the ticket, after which the ticket is refused for its age.
//! [`MfaTicketService::is_spent`] lets a step refuse a spent ticket before
//! checking any factor; `spend` is what guarantees single use.
//!
//! The record holds nothing secret (an id worth nothing once spent).

use rsp_consensus::kv::{Key, Txn, tenant_keyspace};
use rsp_consensus::{Consensus, ConsensusError, Consistency};

/// Longest ticket id accepted (ids are 32 random bytes in base64url).
const MAX_ID_LEN: usize = 64;

fn key(tenant: &str, id: &str) -> Key {
    Key::new(
        tenant_keyspace(tenant),
        format!("mfa_ticket/{id}").into_bytes(),
    )
}

fn well_formed(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Spent sign-in tickets of every tenant.
#[derive(Clone)]
pub struct MfaTicketService {
    consensus: Consensus,
}

impl MfaTicketService {
    pub fn new(consensus: Consensus) -> Self {
        MfaTicketService { consensus }
    }

    /// Whether ticket `id` was spent (a linearizable read: a spend
    /// acknowledged on another node is seen). An id that cannot be one of
    /// ours counts as spent.
    pub async fn is_spent(&self, tenant: &str, id: &str) -> Result<bool, ConsensusError> {
        if !well_formed(id) {
            return Ok(true);
        }
        let (kv, _) = self
            .consensus
            .get(&key(tenant, id), Consistency::Linearizable)
            .await?;
        Ok(kv.is_some())
    }

    /// Spend ticket `id`, remembering it for `ttl_ms` (at least until the
    /// ticket expires). `true`: this call spent it; `false`: it was spent
    /// before, here or on another node.
    pub async fn spend(&self, tenant: &str, id: &str, ttl_ms: u64) -> Result<bool, ConsensusError> {
        if !well_formed(id) {
            return Ok(false);
        }
        let key = key(tenant, id);
        let txn = Txn::put_if_absent(key, Vec::new(), Some(ttl_ms.max(1000)));
        Ok(self.consensus.txn(txn).await?.succeeded)
    }
}
