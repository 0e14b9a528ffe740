//! Refresh families bound to a browser session, revoked when it ends.
//!
//! A family opened from an authorization code issued in a browser session
//! (the grant's `sid`, the session's public handle), with a refresh token
//! and without `offline_access`, is linked to that session: two index
//! records, `rt_session/<sid>/<fid>` and `rt_user/<user id>/<fid>`, written
//! in the transaction that opens the family and kept as long as it can be
//! renewed. Ending the session (RP-initiated logout, an administrator's
//! sign-out of one session or of all of a user's) revokes every linked
//! family through [`TokenService::revoke_session_families`] or
//! [`TokenService::revoke_user_session_families`]: their refresh tokens
//! stop working and their access tokens stop verifying, on every node,
//! before the call returns (as Keycloak ends a user session's refresh
//! tokens). `offline_access` families and device grants are not linked and
//! survive sign-out; revoking them is RFC 7009 revocation.

use rsp_consensus::Consistency;
use rsp_consensus::kv::{Key, Txn, TxnOp, tenant_keyspace};

use super::TokenService;
use super::family::{family_key, parse_family};
use crate::oauth::error::OAuthError;

/// Links handled per transaction.
const BATCH: usize = 256;

fn session_prefix(sid: &str) -> String {
    format!("rt_session/{sid}/")
}

fn user_prefix(user_id: &str) -> String {
    format!("rt_user/{user_id}/")
}

fn link(tenant: &str, prefix: &str, fid: &str) -> Key {
    Key::new(
        tenant_keyspace(tenant),
        format!("{prefix}{fid}").into_bytes(),
    )
}

/// Names that cannot break out of their prefix.
fn plain(s: &str) -> bool {
    !s.is_empty() && !s.contains('/')
}

impl TokenService {
    /// The writes linking family `fid` of `user_id` to session `sid`, kept
    /// for `ttl_ms`.
    pub(super) fn session_links(
        tenant: &str,
        sid: &str,
        user_id: &str,
        fid: &str,
        ttl_ms: u64,
    ) -> Vec<TxnOp> {
        [session_prefix(sid), user_prefix(user_id)]
            .iter()
            .map(|prefix| TxnOp::Put {
                key: link(tenant, prefix, fid),
                value: Vec::new(),
                ttl_ms: Some(ttl_ms),
            })
            .collect()
    }

    /// Revoke every refresh family bound to session `sid` (its public
    /// handle); in force on every node when this returns. Answers how many
    /// families were revoked.
    pub async fn revoke_session_families(
        &self,
        tenant: &str,
        sid: &str,
    ) -> Result<u64, OAuthError> {
        if !plain(sid) {
            return Ok(0);
        }
        self.revoke_linked(tenant, &session_prefix(sid)).await
    }

    /// Revoke every session-bound refresh family of `user_id` (of any
    /// session, live or ended); `offline_access` families stay.
    pub async fn revoke_user_session_families(
        &self,
        tenant: &str,
        user_id: &str,
    ) -> Result<u64, OAuthError> {
        if !plain(user_id) {
            return Ok(0);
        }
        self.revoke_linked(tenant, &user_prefix(user_id)).await
    }

    /// Revoke the families linked under `prefix` and drop both links of
    /// each, a batch per transaction; then wait until every node applied
    /// the last one.
    async fn revoke_linked(&self, tenant: &str, prefix: &str) -> Result<u64, OAuthError> {
        let keyspace = tenant_keyspace(tenant);
        let consensus = &self.ctx.consensus;
        let mut revoked = 0;
        let mut last_index = None;
        loop {
            let (links, _) = consensus
                .range(
                    &keyspace,
                    prefix.as_bytes(),
                    BATCH,
                    Consistency::Linearizable,
                )
                .await?;
            let mut ops = Vec::new();
            for kv in &links {
                ops.push(TxnOp::Delete {
                    key: kv.key.clone(),
                });
                let Some(fid) = kv.key.key.strip_prefix(prefix.as_bytes()) else {
                    continue;
                };
                let fid = String::from_utf8_lossy(fid);
                let fkey = family_key(tenant, &fid);
                // The range read was linearizable: the local state is as new.
                let Some(fam_kv) = consensus.get(&fkey, Consistency::Local).await?.0 else {
                    continue;
                };
                let family = parse_family(&fam_kv)?;
                if let Some(sid) = &family.session {
                    ops.push(TxnOp::Delete {
                        key: link(tenant, &session_prefix(sid), &fid),
                    });
                    ops.push(TxnOp::Delete {
                        key: link(tenant, &user_prefix(&family.grant.user_id), &fid),
                    });
                }
                if !family.is_revoked() {
                    ops.push(self.revoked(fkey, family)?);
                    revoked += 1;
                }
            }
            if ops.is_empty() {
                break;
            }
            let (_, index) = consensus.txn_indexed(Txn::ops(ops)).await?;
            last_index = Some(index);
            if links.len() < BATCH {
                break;
            }
        }
        if let Some(index) = last_index {
            self.wait_everywhere(index).await;
        }
        if revoked > 0 {
            tracing::info!(tenant, revoked, "session-bound token families revoked");
        }
        Ok(revoked)
    }
}
