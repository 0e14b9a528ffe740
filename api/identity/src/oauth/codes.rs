//! Authorization codes (RFC 6749 section 4.1, PKCE per RFC 7636).
//!
//! The browser side issues a code with [`CodeService::issue`] once the user
//! has logged in and consented; the token endpoint redeems it with
//! [`CodeService::redeem`].
//!
//! - A code is a random 256-bit value, stored as `code/<keyed hash>` with a
//!   TTL of 60 s; the record also carries its own expiry, checked on
//!   redemption.
//! - Redemption is single use across the cluster: a compare-and-swap on the
//!   record's modification revision marks it redeemed and opens the token
//!   family in the same transaction. Of two concurrent redemptions (on any
//!   nodes) exactly one succeeds.
//! - A second redemption, or the loser of a race, gets `invalid_grant` and
//!   revokes the family the first one opened (RFC 6749 section 4.1.2), so
//!   its refresh and access tokens die too. Redeemed records are kept for
//!   the access-token lifetime so a replay can still find the family.
//! - A local read that misses is confirmed with a linearizable read before
//!   the code is refused: it may have been issued on another node a moment
//!   ago.

use rsp_consensus::kv::{CmpOp, Compare, CompareTarget, Key, OpResult, Txn, TxnOp};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::clients::Client;
use crate::crypto::{b64url, ct_eq, random_token};
use crate::oauth::context::{OAuthContext, corrupt};
use crate::oauth::error::OAuthError;
use crate::oauth::tokens::family::FamilyDraft;
use crate::oauth::tokens::{TokenService, UserGrant};
use rsp_consensus::kv::tenant_keyspace;

/// HKDF label of the key codes are hashed under.
const CODE_LABEL: &str = "rsp authorization codes v1";
/// How long a redeemed code is remembered beyond the access-token lifetime.
const REDEEMED_GRACE_MS: u64 = 5 * 60 * 1000;

/// What the user authorized, as the browser side hands it over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub user_id: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    /// Seconds since the epoch.
    pub auth_time: u64,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    pub session_id: Option<String>,
}

impl CodeGrant {
    pub fn user_grant(&self) -> UserGrant {
        UserGrant {
            user_id: self.user_id.clone(),
            scope: self.scope.clone(),
            auth_time: self.auth_time,
            acr: self.acr.clone(),
            amr: self.amr.clone(),
            sid: self.session_id.clone(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CodeRecord {
    grant: CodeGrant,
    expires_at_ms: u64,
    /// Set when redeemed: the family the redemption opened.
    redeemed_fid: Option<String>,
}

/// A successful redemption: the grant and the family opened for it.
#[derive(Debug)]
pub struct Redeemed {
    pub grant: CodeGrant,
    pub family: FamilyDraft,
}

fn code_key(tenant: &str, hash: &str) -> Key {
    Key::new(tenant_keyspace(tenant), format!("code/{hash}").into_bytes())
}

/// RFC 7636 section 4.1: 43 to 128 unreserved characters (a S256 challenge
/// has the same shape).
fn pkce_shaped(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Check a code challenge as sent with an authorization request: only
/// S256 (a challenge without a method would mean `plain`, refused too).
pub fn check_code_challenge(
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<(), OAuthError> {
    match (challenge, method) {
        (None, None) => Ok(()),
        (Some(c), Some("S256")) if pkce_shaped(c) => Ok(()),
        (Some(_), Some("S256")) => Err(OAuthError::invalid_request(
            "code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
        )),
        (None, Some(_)) => Err(OAuthError::invalid_request(
            "code_challenge_method without code_challenge",
        )),
        _ => Err(OAuthError::invalid_request(
            "only code_challenge_method=S256 is supported",
        )),
    }
}

/// PKCE at the token endpoint; mandatory for public clients.
pub fn verify_pkce(
    grant: &CodeGrant,
    verifier: Option<&str>,
    public_client: bool,
) -> Result<(), OAuthError> {
    match (grant.code_challenge.as_deref(), verifier) {
        (Some(challenge), Some(verifier)) => {
            if grant.code_challenge_method.as_deref() != Some("S256") {
                return Err(OAuthError::invalid_grant("only S256 PKCE is supported"));
            }
            if !pkce_shaped(verifier) {
                return Err(OAuthError::invalid_grant("code_verifier is malformed"));
            }
            let computed = b64url(&sha2::Sha256::digest(verifier.as_bytes()));
            if ct_eq(computed.as_bytes(), challenge.as_bytes()) {
                Ok(())
            } else {
                Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ))
            }
        }
        (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier is missing")),
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "no code_challenge was sent with the authorization request",
        )),
        (None, None) if public_client => Err(OAuthError::invalid_grant(
            "PKCE is required for public clients",
        )),
        (None, None) => Ok(()),
    }
}

#[derive(Clone)]
pub struct CodeService {
    ctx: OAuthContext,
    tokens: TokenService,
}

impl CodeService {
    pub(crate) fn new(ctx: OAuthContext, tokens: TokenService) -> Self {
        CodeService { ctx, tokens }
    }

    /// Store `grant` and return a new code for it (valid 60 s, one use).
    pub async fn issue(&self, tenant: &str, grant: CodeGrant) -> Result<String, OAuthError> {
        check_code_challenge(
            grant.code_challenge.as_deref(),
            grant.code_challenge_method.as_deref(),
        )?;
        let code = random_token(32);
        let key = code_key(tenant, &self.ctx.hash(CODE_LABEL, &code)?);
        let ttl_ms = self.ctx.config.code_ttl.as_millis() as u64;
        let record = CodeRecord {
            grant,
            expires_at_ms: self.ctx.now_ms() + ttl_ms,
            redeemed_fid: None,
        };
        let txn = Txn::ops(vec![TxnOp::Put {
            key,
            value: serde_json::to_vec(&record).map_err(corrupt)?,
            ttl_ms: Some(ttl_ms),
        }]);
        self.ctx.consensus.txn(txn).await?;
        Ok(code)
    }

    /// Redeem `code` for `client`: checks expiry, client, `redirect_uri`
    /// and PKCE, then consumes the code and opens its token family. A
    /// replay revokes that family and answers `invalid_grant`.
    pub async fn redeem(
        &self,
        tenant: &str,
        code: &str,
        client: &Client,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
    ) -> Result<Redeemed, OAuthError> {
        let invalid = || OAuthError::invalid_grant("the code is invalid or expired");
        let key = code_key(tenant, &self.ctx.hash(CODE_LABEL, code)?);
        let Some(kv) = self.ctx.get_confirmed(&key).await? else {
            return Err(invalid());
        };
        let mut record: CodeRecord = serde_json::from_slice(&kv.value).map_err(corrupt)?;
        // Injected bug (`RSP_INJECT_BUGS=double-redeem-codes`, for proving
        // the Jepsen `codes` checker): no single-use check and no compare,
        // so a code can be redeemed more than once.
        let double_redeem = self.ctx.config.bugs.double_redeem_codes();
        if let Some(fid) = &record.redeemed_fid
            && !double_redeem
        {
            return Err(self.replayed(tenant, fid).await);
        }
        if self.ctx.now_ms() >= record.expires_at_ms {
            return Err(invalid());
        }
        if record.grant.client_id != client.client_id {
            return Err(OAuthError::invalid_grant(
                "the code was issued to another client",
            ));
        }
        match redirect_uri {
            None => return Err(OAuthError::invalid_request("redirect_uri is missing")),
            Some(r) if r != record.grant.redirect_uri => {
                return Err(OAuthError::invalid_grant(
                    "redirect_uri differs from the authorization request's",
                ));
            }
            Some(_) => {}
        }
        verify_pkce(&record.grant, code_verifier, client.is_public())?;
        let lifetimes = self.tokens.lifetimes(tenant, client).await?;
        let family =
            self.tokens
                .draft_family(tenant, client, &record.grant.user_grant(), &lifetimes)?;
        record.redeemed_fid = Some(family.fid.clone());
        let keep_ms = lifetimes.access.as_millis() as u64 + REDEEMED_GRACE_MS;
        let mut success = vec![TxnOp::Put {
            key: key.clone(),
            value: serde_json::to_vec(&record).map_err(corrupt)?,
            ttl_ms: Some(keep_ms),
        }];
        success.extend(family.ops.iter().cloned());
        let compares = if double_redeem {
            Vec::new()
        } else {
            vec![Compare {
                key: key.clone(),
                target: CompareTarget::ModRevision(CmpOp::Eq, kv.mod_revision),
            }]
        };
        let txn = Txn {
            compares,
            success,
            failure: vec![TxnOp::Get { key }],
        };
        let resp = self.ctx.consensus.txn(txn).await?;
        if resp.succeeded {
            return Ok(Redeemed {
                grant: record.grant,
                family,
            });
        }
        // Lost a race: the winner's record says which family to revoke.
        if let Some(OpResult::Get { kv: Some(now) }) = resp.results.first()
            && let Ok(CodeRecord {
                redeemed_fid: Some(fid),
                ..
            }) = serde_json::from_slice(&now.value)
        {
            return Err(self.replayed(tenant, &fid).await);
        }
        Err(invalid())
    }

    async fn replayed(&self, tenant: &str, fid: &str) -> OAuthError {
        tracing::warn!(
            tenant,
            fid,
            "authorization code replayed; revoking its tokens"
        );
        match self.tokens.revoke_family(tenant, fid).await {
            Ok(()) => OAuthError::invalid_grant(
                "the code was already used; the tokens issued for it are revoked",
            ),
            Err(e) => e,
        }
    }
}
