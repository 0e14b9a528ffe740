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

use rsp_consensus::Consistency;
use rsp_consensus::kv::{CmpOp, Compare, CompareTarget, Key, KeyValue, Txn, TxnOp};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{TokenService, UserGrant};
use crate::clients::{Client, GRANT_REFRESH_TOKEN};
use crate::crypto::random_token;
use crate::oauth::claims::narrowed_scope;
use crate::oauth::context::corrupt;
use crate::oauth::error::OAuthError;
use rsp_consensus::kv::tenant_keyspace;

/// HKDF label of the key refresh tokens are hashed under.
const REFRESH_LABEL: &str = "rsp refresh tokens v1";
/// How long a family without refresh tokens, or a revoked one, is kept
/// beyond the access-token lifetime.
const GRACE_MS: u64 = 5 * 60 * 1000;

#[derive(Clone, Serialize, Deserialize)]
struct Family {
    client_id: String,
    grant: UserGrant,
    /// Keyed hash of the current refresh token.
    current: Option<String>,
    revoked: bool,
    created_at_ms: u64,
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
}

impl std::fmt::Debug for FamilyDraft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FamilyDraft")
            .field("fid", &self.fid)
            .finish_non_exhaustive()
    }
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

fn family_key(tenant: &str, fid: &str) -> Key {
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

fn parse_family(kv: &KeyValue) -> Result<Family, OAuthError> {
    serde_json::from_slice(&kv.value).map_err(corrupt)
}

fn invalid_refresh() -> OAuthError {
    OAuthError::invalid_grant("the refresh token is invalid, expired or revoked")
}

impl TokenService {
    fn refresh_ttl_ms(&self) -> u64 {
        self.ctx.config.refresh_ttl.as_millis() as u64
    }

    fn short_ttl_ms(&self) -> u64 {
        self.ctx.config.access_ttl.as_millis() as u64 + GRACE_MS
    }

    fn put_json(key: Key, value: &impl Serialize, ttl_ms: u64) -> Result<TxnOp, OAuthError> {
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
    ) -> Result<FamilyDraft, OAuthError> {
        let fid = random_token(16);
        let now_ms = self.ctx.now_ms();
        let mut ops = Vec::new();
        let (refresh_token, current, ttl) = if client.allows_grant(GRANT_REFRESH_TOKEN) {
            let token = Zeroizing::new(random_token(32));
            let hash = self.ctx.hash(REFRESH_LABEL, &token)?;
            let record = RefreshRecord {
                fid: fid.clone(),
                client_id: client.client_id.clone(),
                issued_at: now_ms / 1000,
            };
            ops.push(Self::put_json(
                refresh_key(tenant, &hash),
                &record,
                self.refresh_ttl_ms(),
            )?);
            (Some(token), Some(hash), self.refresh_ttl_ms())
        } else {
            (None, None, self.short_ttl_ms())
        };
        let family = Family {
            client_id: client.client_id.clone(),
            grant: grant.clone(),
            current,
            revoked: false,
            created_at_ms: now_ms,
        };
        ops.push(Self::put_json(family_key(tenant, &fid), &family, ttl)?);
        Ok(FamilyDraft {
            fid,
            refresh_token,
            ops,
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
        let mut family = parse_family(&kv)?;
        family.revoked = true;
        family.current = None;
        let txn = Txn::ops(vec![Self::put_json(key, &family, self.short_ttl_ms())?]);
        let (_, index) = self.ctx.consensus.txn_indexed(txn).await?;
        self.wait_everywhere(index).await;
        tracing::info!(tenant, fid, "token family revoked");
        Ok(())
    }

    /// The refresh record of `token` and its family, read locally and
    /// confirmed by a linearizable read unless the local view already shows
    /// the token as the family's current one.
    async fn lookup_refresh(
        &self,
        tenant: &str,
        token: &str,
    ) -> Result<Option<(String, RefreshRecord, KeyValue, Family)>, OAuthError> {
        let hash = self.ctx.hash(REFRESH_LABEL, token)?;
        let Some(kv) = self.ctx.get_confirmed(&refresh_key(tenant, &hash)).await? else {
            return Ok(None);
        };
        let record: RefreshRecord = serde_json::from_slice(&kv.value).map_err(corrupt)?;
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
        Ok(Some((hash, record, fam, family)))
    }

    /// An active refresh token, for introspection and revocation.
    pub(crate) async fn inspect_refresh(
        &self,
        tenant: &str,
        token: &str,
    ) -> Result<Option<RefreshInfo>, OAuthError> {
        let Some((hash, record, fam_kv, family)) = self.lookup_refresh(tenant, token).await? else {
            return Ok(None);
        };
        if family.revoked || family.current.as_deref() != Some(&*hash) {
            return Ok(None);
        }
        Ok(Some(RefreshInfo {
            fid: record.fid,
            client_id: record.client_id,
            sub: family.grant.user_id,
            scope: family.grant.scope,
            iat: record.issued_at,
            exp: fam_kv.expires_at_ms.map(|ms| ms / 1000),
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
        let Some((hash, record, fam_kv, family)) = self.lookup_refresh(tenant, token).await? else {
            return Err(invalid_refresh());
        };
        if record.client_id != client.client_id || family.revoked {
            return Err(invalid_refresh());
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
            issued_at: self.ctx.now_ms() / 1000,
        };
        let fkey = family_key(tenant, &record.fid);
        let txn = Txn {
            compares: vec![Compare {
                key: fkey.clone(),
                target: CompareTarget::ModRevision(CmpOp::Eq, fam_kv.mod_revision),
            }],
            success: vec![
                Self::put_json(fkey, &next, self.refresh_ttl_ms())?,
                Self::put_json(
                    refresh_key(tenant, &new_hash),
                    &new_record,
                    self.refresh_ttl_ms(),
                )?,
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
