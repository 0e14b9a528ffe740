//! Refresh tokens and their families.
//!
//! Every user grant (a redeemed code, an approved device request) opens a
//! family `rt_family/<fid>` holding what was granted and the keyed hash of
//! the family's one current refresh token. Refresh tokens are opaque 256-bit
//! random values stored as `refresh/<keyed hash>` -> family id.
//!
//! - Rotation on every use: a compare-and-swap on the family record makes
//!   the presented token the family's last, so two nodes cannot both rotate
//!   it.
//! - Reuse detection: presenting a token that is no longer current (or
//!   losing a rotation race) revokes the family: its refresh tokens and,
//!   through `fid`, its access tokens.
//! - Revocation marks the family revoked (kept long enough to outlive every
//!   access token it issued) and waits until every node applied it. A
//!   family that no longer exists counts as revoked.
//! - An absolute lifetime: a family is renewed by each rotation (the idle
//!   lifetime, `refresh_ttl`) but never past `ends_at_ms`, fixed when it
//!   opens from its client's `refresh_token_absolute_lifetime_secs` (30
//!   days by default). A refresh at or after it is `invalid_grant`.
//! - A family opened in a browser session without `offline_access` is
//!   bound to that session ([`super::sessions`]): ending the session
//!   revokes it.

use rsp_consensus::Consistency;
use rsp_consensus::kv::{CmpOp, Compare, CompareTarget, Key, KeyValue, Txn, TxnOp};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{Lifetimes, TokenService, UserGrant};
use crate::clients::{Client, GRANT_REFRESH_TOKEN};
use crate::crypto::random_token;
use crate::oauth::claims::{OFFLINE_ACCESS, has_scope, narrowed_scope};
use crate::oauth::context::corrupt;
use crate::oauth::error::OAuthError;
use rsp_consensus::kv::tenant_keyspace;

/// HKDF label of the key refresh tokens are hashed under.
const REFRESH_LABEL: &str = "rsp refresh tokens v1";
/// How long a family without refresh tokens, or a revoked one, is kept
/// beyond the access-token lifetime.
const GRACE_MS: u64 = 5 * 60 * 1000;

#[derive(Clone, Serialize, Deserialize)]
pub(super) struct Family {
    client_id: String,
    pub(super) grant: UserGrant,
    /// Keyed hash of the current refresh token.
    current: Option<String>,
    revoked: bool,
    created_at_ms: u64,
    /// When refreshing stops for good (ms since the epoch). Families
    /// written before it existed end at `created_at_ms` plus the default
    /// absolute lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ends_at_ms: Option<u64>,
    /// The browser session (its public handle) whose end revokes this
    /// family; none for `offline_access` and device grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) session: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct RefreshRecord {
    fid: String,
    client_id: String,
    issued_at: u64,
}

/// A family about to be opened. Its writes go into the transaction that
/// consumes the code or device approval, so the family exists exactly when
/// the grant was consumed and a replay can always find it.
pub struct FamilyDraft {
    pub fid: String,
    pub(crate) refresh_token: Option<Zeroizing<String>>,
    pub(crate) ops: Vec<TxnOp>,
    /// What the family was drafted under, and its tokens are issued under.
    pub(crate) lifetimes: Lifetimes,
}

impl std::fmt::Debug for FamilyDraft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FamilyDraft")
            .field("fid", &self.fid)
            .finish_non_exhaustive()
    }
}

impl Family {
    pub(super) fn is_revoked(&self) -> bool {
        self.revoked
    }
}

/// A refresh token's record and its family, as read.
struct Lookup {
    hash: String,
    record: RefreshRecord,
    record_expires_at_ms: Option<u64>,
    fam_kv: KeyValue,
    family: Family,
}

/// What introspection says about an active refresh token.
#[derive(Debug)]
pub(crate) struct RefreshInfo {
    pub fid: String,
    pub client_id: String,
    pub sub: String,
    pub scope: String,
    pub iat: u64,
    pub exp: Option<u64>,
}

pub(super) fn family_key(tenant: &str, fid: &str) -> Key {
    Key::new(
        tenant_keyspace(tenant),
        format!("rt_family/{fid}").into_bytes(),
    )
}

fn refresh_key(tenant: &str, hash: &str) -> Key {
    Key::new(
        tenant_keyspace(tenant),
        format!("refresh/{hash}").into_bytes(),
    )
}

pub(super) fn parse_family(kv: &KeyValue) -> Result<Family, OAuthError> {
    serde_json::from_slice(&kv.value).map_err(corrupt)
}

fn invalid_refresh() -> OAuthError {
    OAuthError::invalid_grant("the refresh token is invalid, expired or revoked")
}

impl TokenService {
    /// How long a family record is kept past its last refresh token, so
    /// that every access token it issued (under `lifetimes`) still finds
    /// it.
    pub(super) fn short_ttl_ms(&self, lifetimes: &Lifetimes) -> u64 {
        lifetimes.access.as_millis() as u64 + GRACE_MS
    }

    /// [`Self::short_ttl_ms`] when the lifetime it was issued under is not
    /// at hand (a revoked family): the longest a tenant may set.
    fn longest_short_ttl_ms() -> u64 {
        crate::tenants::settings::ACCESS_TOKEN_LIFETIME.1 * 1000 + GRACE_MS
    }

    /// When `family` stops being renewable.
    fn ends_at_ms(&self, family: &Family) -> u64 {
        family.ends_at_ms.unwrap_or_else(|| {
            let default = self.ctx.config.refresh_absolute_lifetime.as_millis() as u64;
            family.created_at_ms.saturating_add(default)
        })
    }

    /// TTLs of a renewable family ending at `ends_at_ms`, written at
    /// `now_ms`: (its refresh token's, the family record's). The record
    /// outlives its last refresh token by the access-token lifetime, so
    /// every access token it issued can still find it.
    fn renewable_ttls(&self, now_ms: u64, ends_at_ms: u64, lifetimes: &Lifetimes) -> (u64, u64) {
        let token = (lifetimes.refresh_idle.as_millis() as u64)
            .min(ends_at_ms.saturating_sub(now_ms))
            .max(1);
        (token, token + self.short_ttl_ms(lifetimes))
    }

    pub(super) fn put_json(
        key: Key,
        value: &impl Serialize,
        ttl_ms: u64,
    ) -> Result<TxnOp, OAuthError> {
        Ok(TxnOp::Put {
            key,
            value: serde_json::to_vec(value).map_err(corrupt)?,
            ttl_ms: Some(ttl_ms),
        })
    }

    /// Writes opening a new family for `grant`, with a first refresh token
    /// when the client may use the refresh grant.
    pub(crate) fn draft_family(
        &self,
        tenant: &str,
        client: &Client,
        grant: &UserGrant,
        lifetimes: &Lifetimes,
    ) -> Result<FamilyDraft, OAuthError> {
        let fid = random_token(16);
        let now_ms = self.ctx.now_ms();
        let ends_at_ms = now_ms.saturating_add(lifetimes.refresh_absolute.as_millis() as u64);
        let mut ops = Vec::new();
        let (refresh_token, current, ttl) = if client.allows_grant(GRANT_REFRESH_TOKEN) {
            let token = Zeroizing::new(random_token(32));
            let hash = self.ctx.hash(REFRESH_LABEL, &token)?;
            let record = RefreshRecord {
                fid: fid.clone(),
                client_id: client.client_id.clone(),
                issued_at: now_ms / 1000,
            };
            let (token_ttl, family_ttl) = self.renewable_ttls(now_ms, ends_at_ms, lifetimes);
            ops.push(Self::put_json(
                refresh_key(tenant, &hash),
                &record,
                token_ttl,
            )?);
            (Some(token), Some(hash), family_ttl)
        } else {
            (None, None, self.short_ttl_ms(lifetimes))
        };
        let session = match &grant.sid {
            Some(sid) if refresh_token.is_some() && !has_scope(&grant.scope, OFFLINE_ACCESS) => {
                // As long as the family can be renewed, however idle.
                let link_ttl = (ends_at_ms - now_ms).saturating_add(self.short_ttl_ms(lifetimes));
                ops.extend(Self::session_links(
                    tenant,
                    sid,
                    &grant.user_id,
                    &fid,
                    link_ttl,
                ));
                Some(sid.clone())
            }
            _ => None,
        };
        let family = Family {
            client_id: client.client_id.clone(),
            grant: grant.clone(),
            current,
            revoked: false,
            created_at_ms: now_ms,
            ends_at_ms: Some(ends_at_ms),
            session,
        };
        ops.push(Self::put_json(family_key(tenant, &fid), &family, ttl)?);
        Ok(FamilyDraft {
            fid,
            refresh_token,
            ops,
            lifetimes: lifetimes.clone(),
        })
    }

    /// Whether a family still stands (exists and is not revoked).
    pub(crate) async fn family_active(&self, tenant: &str, fid: &str) -> Result<bool, OAuthError> {
        match self.ctx.get_confirmed(&family_key(tenant, fid)).await? {
            Some(kv) => Ok(!parse_family(&kv)?.revoked),
            None => Ok(false),
        }
    }

    /// Revoke a family: its refresh tokens stop working and its access
    /// tokens stop verifying, on every node, before this returns.
    pub async fn revoke_family(&self, tenant: &str, fid: &str) -> Result<(), OAuthError> {
        let key = family_key(tenant, fid);
        let Some(kv) = self.ctx.get_confirmed(&key).await? else {
            return Ok(());
        };
        let txn = Txn::ops(vec![self.revoked(key, parse_family(&kv)?)?]);
        let (_, index) = self.ctx.consensus.txn_indexed(txn).await?;
        self.wait_everywhere(index).await;
        tracing::info!(tenant, fid, "token family revoked");
        Ok(())
    }

    /// The write that marks `family` (stored at `key`) revoked.
    pub(super) fn revoked(&self, key: Key, mut family: Family) -> Result<TxnOp, OAuthError> {
        family.revoked = true;
        family.current = None;
        Self::put_json(key, &family, Self::longest_short_ttl_ms())
    }

    /// The refresh record of `token` and its family, read locally and
    /// confirmed by a linearizable read unless the local view already shows
    /// the token as the family's current one.
    async fn lookup_refresh(
        &self,
        tenant: &str,
        token: &str,
    ) -> Result<Option<Lookup>, OAuthError> {
        let hash = self.ctx.hash(REFRESH_LABEL, token)?;
        let Some(kv) = self.ctx.get_confirmed(&refresh_key(tenant, &hash)).await? else {
            return Ok(None);
        };
        let record: RefreshRecord = serde_json::from_slice(&kv.value).map_err(corrupt)?;
        let record_expires_at_ms = kv.expires_at_ms;
        let key = family_key(tenant, &record.fid);
        let mut fam = self.ctx.consensus.get(&key, Consistency::Local).await?.0;
        let current = |kv: &KeyValue| {
            parse_family(kv).is_ok_and(|f| !f.revoked && f.current.as_deref() == Some(&*hash))
        };
        if !fam.as_ref().is_some_and(current) {
            fam = self
                .ctx
                .consensus
                .get(&key, Consistency::Linearizable)
                .await?
                .0;
        }
        let Some(fam) = fam else {
            return Ok(None);
        };
        let family = parse_family(&fam)?;
        Ok(Some(Lookup {
            hash,
            record,
            record_expires_at_ms,
            fam_kv: fam,
            family,
        }))
    }

    /// An active refresh token, for introspection and revocation.
    pub(crate) async fn inspect_refresh(
        &self,
        tenant: &str,
        token: &str,
    ) -> Result<Option<RefreshInfo>, OAuthError> {
        let Some(Lookup {
            hash,
            record,
            record_expires_at_ms,
            family,
            ..
        }) = self.lookup_refresh(tenant, token).await?
        else {
            return Ok(None);
        };
        let ends_at_ms = self.ends_at_ms(&family);
        if family.revoked
            || family.current.as_deref() != Some(&*hash)
            || self.ctx.now_ms() >= ends_at_ms
        {
            return Ok(None);
        }
        Ok(Some(RefreshInfo {
            fid: record.fid,
            client_id: record.client_id,
            sub: family.grant.user_id,
            scope: family.grant.scope,
            iat: record.issued_at,
            exp: Some(record_expires_at_ms.unwrap_or(ends_at_ms).min(ends_at_ms) / 1000),
        }))
    }

    /// The refresh grant: rotate `token` and mint new tokens, the scope only
    /// narrowed. A token that is no longer current revokes its family.
    pub async fn refresh(
        &self,
        tenant: &str,
        client: &Client,
        token: &str,
        scope: Option<&str>,
    ) -> Result<super::TokenSet, OAuthError> {
        let Some(Lookup {
            hash,
            record,
            fam_kv,
            family,
            ..
        }) = self.lookup_refresh(tenant, token).await?
        else {
            return Err(invalid_refresh());
        };
        if record.client_id != client.client_id || family.revoked {
            return Err(invalid_refresh());
        }
        let now_ms = self.ctx.now_ms();
        let ends_at_ms = self.ends_at_ms(&family);
        if now_ms >= ends_at_ms {
            return Err(OAuthError::invalid_grant(
                "the refresh token has reached its absolute lifetime; sign in again",
            ));
        }
        if family.current.as_deref() != Some(&*hash) {
            self.revoke_family(tenant, &record.fid).await?;
            return Err(reused());
        }
        let new_scope = narrowed_scope(&family.grant.scope, scope)?;
        let new_token = Zeroizing::new(random_token(32));
        let new_hash = self.ctx.hash(REFRESH_LABEL, &new_token)?;
        let mut next = family.clone();
        next.current = Some(new_hash.clone());
        let new_record = RefreshRecord {
            fid: record.fid.clone(),
            client_id: client.client_id.clone(),
            issued_at: now_ms / 1000,
        };
        let lifetimes = self.lifetimes(tenant, client).await?;
        let (token_ttl, family_ttl) = self.renewable_ttls(now_ms, ends_at_ms, &lifetimes);
        let fkey = family_key(tenant, &record.fid);
        let txn = Txn {
            compares: vec![Compare {
                key: fkey.clone(),
                target: CompareTarget::ModRevision(CmpOp::Eq, fam_kv.mod_revision),
            }],
            success: vec![
                Self::put_json(fkey, &next, family_ttl)?,
                Self::put_json(refresh_key(tenant, &new_hash), &new_record, token_ttl)?,
            ],
            failure: vec![],
        };
        if !self.ctx.consensus.txn(txn).await?.succeeded {
            // Another request rotated (or revoked) the family first: the
            // same token was used twice.
            self.revoke_family(tenant, &record.fid).await?;
            return Err(reused());
        }
        let rotated = FamilyDraft {
            fid: record.fid,
            refresh_token: Some(new_token),
            ops: Vec::new(),
            lifetimes,
        };
        self.user_tokens(tenant, client, &family.grant, &new_scope, rotated, None)
            .await
    }
}

fn reused() -> OAuthError {
    OAuthError::invalid_grant(
        "the refresh token was already used; every token of this grant is revoked",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_stored_before_absolute_lifetimes_and_session_links_still_parses() {
        let old = serde_json::json!({
            "client_id": "web",
            "grant": {"user_id": "u1", "scope": "openid", "auth_time": 1,
                      "acr": null, "amr": ["pwd"], "sid": "s1"},
            "current": "h1",
            "revoked": false,
            "created_at_ms": 1000,
        });
        let family: Family = serde_json::from_value(old).expect("old record");
        assert_eq!(family.ends_at_ms, None);
        assert_eq!(family.session, None, "an old family is not session-bound");
        let json = serde_json::to_value(&family).expect("json");
        assert!(json.get("ends_at_ms").is_none() && json.get("session").is_none());
    }
}
