//! Minting and checking tokens.
//!
//! - Access tokens are JWTs per RFC 9068 (`typ: at+jwt`; `iss`, `sub`,
//!   `aud` = the issuer, `client_id`, `scope`, `iat`, `exp`, `jti`, and
//!   `fid`, the refresh-token family, when they come from a user grant),
//!   signed with the client's `id_token_signed_response_alg` key.
//! - ID tokens (OIDC Core section 2) with `at_hash`, `kid` in the header and
//!   the claims the granted scopes release.
//! - Verification pins the algorithm to the one the `kid` was made for (the
//!   header's `alg` is never trusted, so `none`, HS256 with the public key
//!   and other substitutions fail), checks `iss`/`aud` against this
//!   tenant's issuer, `exp`, revocation by `jti` and the family's state.
//! - Refresh tokens and their families: [`family`]; families bound to a
//!   browser session and revoked when it ends: [`sessions`].
//!
//! Records (tenant keyspace): `revoked_jti/<jti>` (TTL until the token's
//! `exp`), plus the family records and their session links.

pub mod family;
pub mod sessions;
mod verified;

use family::FamilyDraft;

use std::time::Duration;

use jsonwebtoken::{Header, Validation};
use rsp_consensus::kv::{Key, Txn, TxnOp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::Digest;
use zeroize::Zeroize;

use crate::clients::Client;
use crate::crypto::{b64url, random_token};
use crate::keys::{KeyError, SigningAlg};
use crate::miss_gate::MissGate;
use crate::oauth::claims::{has_scope, user_claims, user_token_scope};
use crate::oauth::context::{OAuthContext, crypto_error};
use crate::oauth::error::OAuthError;
use crate::users::{User, UserError};
use rsp_consensus::kv::tenant_keyspace;

pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Clock skew tolerated on `exp`, in seconds.
const LEEWAY_SECS: u64 = 5;

/// What a user granted a client: carried by a code or device approval into
/// the refresh-token family, so refreshed tokens say the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserGrant {
    pub user_id: String,
    pub scope: String,
    /// Seconds since the epoch.
    pub auth_time: u64,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    pub sid: Option<String>,
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    #[serde(default)]
    pub scope: String,
    pub iat: u64,
    pub exp: u64,
    pub jti: String,
    /// The refresh-token family (user grants only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

/// A successful token response (RFC 6749 section 5.1). Secrets are wiped
/// on drop and never printed.
#[derive(Serialize)]
pub struct TokenSet {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("scope", &self.scope)
            .field("refresh_token", &self.refresh_token.is_some())
            .field("id_token", &self.id_token.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for TokenSet {
    fn drop(&mut self) {
        self.access_token.zeroize();
        self.refresh_token.zeroize();
        self.id_token.zeroize();
    }
}

fn revoked_jti_key(tenant: &str, jti: &str) -> Key {
    Key::new(
        tenant_keyspace(tenant),
        format!("revoked_jti/{jti}").into_bytes(),
    )
}

pub(crate) fn key_error(e: KeyError) -> OAuthError {
    match e {
        KeyError::Consensus(e) => e.into(),
        KeyError::Crypto(e) => crypto_error(e),
        other => OAuthError::server_error(other),
    }
}

/// `at_hash`: the left half of the access token's hash, with the hash of
/// the ID token's algorithm (SHA-512 for Ed25519).
fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    let digest: Vec<u8> = match alg {
        SigningAlg::ES256 | SigningAlg::RS256 => sha2::Sha256::digest(access_token).to_vec(),
        SigningAlg::EdDSA => sha2::Sha512::digest(access_token).to_vec(),
    };
    b64url(&digest[..digest.len() / 2])
}

/// What a token grant issues under: lifetimes and the algorithms the
/// tenant signs with ([`TokenService::lifetimes`]).
#[derive(Debug, Clone)]
pub(crate) struct Lifetimes {
    pub access: Duration,
    pub id: Duration,
    /// A refresh token unused this long ends.
    pub refresh_idle: Duration,
    /// A refresh family is renewed at most this long after its grant.
    pub refresh_absolute: Duration,
    /// `None`: every algorithm.
    pub algorithms_allowed: Option<Vec<SigningAlg>>,
}

impl Lifetimes {
    /// `alg`, if the tenant signs with it: a client registered before the
    /// tenant narrowed its algorithms gets `unauthorized_client` until its
    /// registration follows.
    pub fn allowed(&self, alg: SigningAlg) -> Result<SigningAlg, OAuthError> {
        match &self.algorithms_allowed {
            Some(algs) if !algs.contains(&alg) => Err(OAuthError::new(
                crate::oauth::error::OAuthErrorCode::UnauthorizedClient,
                format!(
                    "the client's signing algorithm {} is not allowed in this tenant",
                    alg.name()
                ),
            )),
            _ => Ok(alg),
        }
    }
}

/// The parts of an ID token besides the client and tenant.
struct IdTokenInput<'a> {
    grant: &'a UserGrant,
    user: &'a User,
    scope: &'a str,
    nonce: Option<&'a str>,
    access_token: &'a str,
}

#[derive(Clone)]
pub struct TokenService {
    ctx: OAuthContext,
    verified: verified::VerifiedTokens,
}

impl TokenService {
    pub(crate) fn new(ctx: OAuthContext) -> Self {
        TokenService {
            ctx,
            verified: verified::VerifiedTokens::default(),
        }
    }

    pub fn issuer(&self, tenant: &str) -> String {
        self.ctx.issuer(tenant)
    }

    /// The lifetimes of what `client` is issued in `tenant`: the client's
    /// own, else the tenant's settings, else the node's defaults.
    pub(crate) async fn lifetimes(
        &self,
        tenant: &str,
        client: &Client,
    ) -> Result<Lifetimes, OAuthError> {
        let settings = crate::tenants::TenantService::new(self.ctx.consensus.clone())
            .settings(tenant)
            .await
            .map_err(OAuthError::server_error)?;
        let config = &self.ctx.config;
        let secs = |client: Option<u64>, tenant: Option<u64>, default: Duration| {
            client.or(tenant).map_or(default, Duration::from_secs)
        };
        let access = secs(
            client.access_token_lifetime_secs,
            settings.access_token_lifetime_secs,
            config.access_ttl,
        );
        Ok(Lifetimes {
            access,
            id: secs(
                client.id_token_lifetime_secs,
                settings.id_token_lifetime_secs,
                access,
            ),
            refresh_idle: secs(
                None,
                settings.refresh_token_idle_lifetime_secs,
                config.refresh_ttl,
            ),
            refresh_absolute: secs(
                client.refresh_token_absolute_lifetime_secs,
                settings.refresh_token_absolute_lifetime_secs,
                config.refresh_absolute_lifetime,
            ),
            algorithms_allowed: settings.signing_algorithms.clone(),
        })
    }

    async fn sign(
        &self,
        tenant: &str,
        alg: SigningAlg,
        typ: &str,
        claims: &impl Serialize,
    ) -> Result<String, OAuthError> {
        let signer = self
            .ctx
            .identity
            .keys
            .signer(tenant, alg)
            .await
            .map_err(key_error)?;
        let mut header = Header::new(signer.alg.jwt());
        header.typ = Some(typ.to_string());
        header.kid = Some(signer.kid.clone());
        signer
            .sign_jwt(&header, claims)
            .map_err(OAuthError::server_error)
    }

    async fn access_token(
        &self,
        tenant: &str,
        client: &Client,
        sub: &str,
        scope: &str,
        user_grant: Option<(&str, &UserGrant)>,
        lifetimes: &Lifetimes,
    ) -> Result<String, OAuthError> {
        let (fid, grant) = user_grant.unzip();
        let now = self.ctx.now_secs();
        let issuer = self.issuer(tenant);
        let claims = AccessClaims {
            aud: issuer.clone(),
            iss: issuer,
            sub: sub.to_string(),
            client_id: client.client_id.clone(),
            scope: scope.to_string(),
            iat: now,
            exp: now + lifetimes.access.as_secs(),
            jti: random_token(16),
            fid: fid.map(str::to_string),
            auth_time: grant.map(|g| g.auth_time),
            acr: grant.and_then(|g| g.acr.clone()),
            amr: grant.map(|g| g.amr.clone()).unwrap_or_default(),
        };
        let alg = lifetimes.allowed(client.access_token_alg())?;
        self.sign(tenant, alg, ACCESS_TOKEN_TYP, &claims).await
    }

    /// Client credentials: `sub` is the client, no refresh or ID token.
    pub async fn client_credentials(
        &self,
        tenant: &str,
        client: &Client,
        scope: &str,
    ) -> Result<TokenSet, OAuthError> {
        let lifetimes = self.lifetimes(tenant, client).await?;
        let access_token = self
            .access_token(tenant, client, &client.client_id, scope, None, &lifetimes)
            .await?;
        Ok(TokenSet {
            access_token,
            token_type: "Bearer",
            expires_in: lifetimes.access.as_secs(),
            scope: scope.to_string(),
            refresh_token: None,
            id_token: None,
        })
    }

    /// Tokens for a user grant whose `family` was just opened or rotated
    /// (its refresh token, if any, goes into the answer); an ID token when
    /// `scope` has `openid`. `rsp:admin` is dropped from `scope` unless the
    /// user is granted it now (checked at every issue and refresh). A user
    /// that is gone or disabled gets `invalid_grant`.
    pub(crate) async fn user_tokens(
        &self,
        tenant: &str,
        client: &Client,
        grant: &UserGrant,
        scope: &str,
        family: FamilyDraft,
        nonce: Option<&str>,
    ) -> Result<TokenSet, OAuthError> {
        let user = self
            .load_user(tenant, &grant.user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or_else(|| OAuthError::invalid_grant("the user no longer exists or is disabled"))?;
        let scope = &user_token_scope(&user, scope);
        let lifetimes = &family.lifetimes;
        let access_token = self
            .access_token(
                tenant,
                client,
                &user.id,
                scope,
                Some((&family.fid, grant)),
                lifetimes,
            )
            .await?;
        let id_token = if has_scope(scope, "openid") {
            let claims = IdTokenInput {
                grant,
                user: &user,
                scope,
                nonce,
                access_token: &access_token,
            };
            Some(self.id_token(tenant, client, claims, lifetimes).await?)
        } else {
            None
        };
        Ok(TokenSet {
            access_token,
            token_type: "Bearer",
            expires_in: lifetimes.access.as_secs(),
            scope: scope.to_string(),
            refresh_token: family.refresh_token.as_ref().map(|t| t.to_string()),
            id_token,
        })
    }

    async fn id_token(
        &self,
        tenant: &str,
        client: &Client,
        input: IdTokenInput<'_>,
        lifetimes: &Lifetimes,
    ) -> Result<String, OAuthError> {
        let IdTokenInput {
            grant,
            user,
            scope,
            nonce,
            access_token,
        } = input;
        let now = self.ctx.now_secs();
        let alg = lifetimes.allowed(client.id_token_signed_response_alg)?;
        let mut claims = user_claims(user, scope);
        claims.insert("iss".into(), json!(self.issuer(tenant)));
        claims.insert("sub".into(), json!(user.id));
        claims.insert("aud".into(), json!(client.client_id));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + lifetimes.id.as_secs()));
        claims.insert("auth_time".into(), json!(grant.auth_time));
        claims.insert("at_hash".into(), json!(at_hash(alg, access_token)));
        if let Some(nonce) = nonce {
            claims.insert("nonce".into(), json!(nonce));
        }
        if let Some(acr) = &grant.acr {
            claims.insert("acr".into(), json!(acr));
        }
        if !grant.amr.is_empty() {
            claims.insert("amr".into(), json!(grant.amr));
        }
        if let Some(sid) = &grant.sid {
            claims.insert("sid".into(), json!(sid));
        }
        self.sign(tenant, alg, "JWT", &claims).await
    }

    /// A user by id: local read, confirmed before "not found" is believed.
    pub async fn load_user(&self, tenant: &str, id: &str) -> Result<Option<User>, OAuthError> {
        use rsp_consensus::Consistency::{Linearizable, Local};
        let users = &self.ctx.identity.users;
        for consistency in [Local, Linearizable] {
            match users.get(tenant, id, consistency).await {
                Ok(u) => return Ok(Some(u)),
                Err(UserError::NotFound) => {}
                Err(UserError::Consensus(e)) => return Err(e.into()),
                Err(e) => return Err(OAuthError::server_error(e)),
            }
        }
        Ok(None)
    }

    /// Check an access token of this tenant: signature with the algorithm
    /// pinned to its `kid`, `typ`, issuer and audience, expiry, revocation
    /// and its family. Anything wrong is `invalid_token`. A `kid` this node
    /// does not hold is confirmed linearizably once `gate` admits it; a
    /// refused one is `too_many_requests`.
    pub async fn verify_access_token(
        &self,
        tenant: &str,
        token: &str,
        gate: &dyn MissGate,
    ) -> Result<AccessClaims, OAuthError> {
        let invalid = || OAuthError::invalid_token("the access token is invalid or expired");
        // Fails for `alg: none` (not an algorithm jsonwebtoken knows).
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt")
        });
        let kid = header
            .kid
            .as_deref()
            .filter(|_| typ_ok)
            .ok_or_else(invalid)?;
        let keys = &self.ctx.identity.keys;
        let now_ms = self.ctx.now_ms();
        let (alg, key, key_revision) = keys
            .find_verifier(tenant, kid, now_ms, gate)
            .await
            .map_err(|e| match e {
                KeyError::Consensus(e) => e.into(),
                KeyError::Refused(r) => r.into(),
                _ => invalid(),
            })?;
        if header.alg != alg {
            return Err(invalid());
        }
        // Seen and verified before with this very key record: only expiry
        // and revocation can have changed (see `verified`).
        let digest = verified::digest(tenant, token);
        let claims = match self.verified.get(&digest) {
            Some(v) if v.key_revision == key_revision => {
                if v.claims.exp.saturating_add(LEEWAY_SECS) < now_ms / 1000 {
                    return Err(invalid());
                }
                AccessClaims::clone(&v.claims)
            }
            stale => {
                if stale.is_some() {
                    self.verified.remove(&digest);
                }
                let issuer = self.issuer(tenant);
                let mut validation = Validation::new(alg);
                validation.set_issuer(&[&issuer]);
                validation.set_audience(&[&issuer]);
                validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                validation.leeway = LEEWAY_SECS;
                let claims = jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
                    .map_err(|_| invalid())?
                    .claims;
                let entry = verified::Verified {
                    key_revision,
                    claims: std::sync::Arc::new(claims.clone()),
                };
                self.verified.insert(digest, entry);
                claims
            }
        };
        let (revoked, _) = self
            .ctx
            .consensus
            .get(
                &revoked_jti_key(tenant, &claims.jti),
                rsp_consensus::Consistency::Local,
            )
            .await?;
        if revoked.is_some() {
            return Err(OAuthError::invalid_token("the access token was revoked"));
        }
        if let Some(fid) = &claims.fid
            && !self.family_active(tenant, fid).await?
        {
            return Err(OAuthError::invalid_token("the access token was revoked"));
        }
        Ok(claims)
    }

    /// The userinfo answer for a verified token (which must carry `openid`;
    /// the handler checks).
    pub async fn userinfo(
        &self,
        tenant: &str,
        claims: &AccessClaims,
    ) -> Result<Map<String, Value>, OAuthError> {
        let user = match claims.fid {
            Some(_) => self.load_user(tenant, &claims.sub).await?,
            None => None,
        }
        .filter(|u| !u.disabled)
        .ok_or_else(|| OAuthError::invalid_token("the token does not belong to a user"))?;
        let mut out = user_claims(&user, &claims.scope);
        out.insert("sub".into(), json!(user.id));
        Ok(out)
    }

    /// RFC 7662: what a token is, or `{"active": false}` for anything not
    /// valid here (including another tenant's tokens, and a refresh token
    /// asked about by any client but its own).
    pub async fn introspect(
        &self,
        tenant: &str,
        caller: &Client,
        token: &str,
        gate: &dyn MissGate,
    ) -> Result<Value, OAuthError> {
        let inactive = json!({"active": false});
        if token.split('.').count() == 3 {
            let claims = match self.verify_access_token(tenant, token, gate).await {
                Ok(c) => c,
                Err(e) if e.code == crate::oauth::error::OAuthErrorCode::InvalidToken => {
                    return Ok(inactive);
                }
                Err(e) => return Err(e),
            };
            let mut answer = json!({
                "active": true, "scope": claims.scope, "client_id": claims.client_id,
                "token_type": "Bearer", "exp": claims.exp, "iat": claims.iat,
                "sub": claims.sub, "aud": claims.aud, "iss": claims.iss, "jti": claims.jti,
            });
            // A user's token is inactive once the user is disabled or gone.
            if claims.fid.is_some() {
                match self.load_user(tenant, &claims.sub).await? {
                    Some(user) if !user.disabled => answer["username"] = json!(user.username),
                    _ => return Ok(inactive),
                }
            }
            return Ok(answer);
        }
        let Some(info) = self.inspect_refresh(tenant, token).await? else {
            return Ok(inactive);
        };
        // A refresh token is its client's secret: another client (a
        // resource server, say) learns nothing about it, not even that it
        // is live.
        if info.client_id != caller.client_id {
            return Ok(inactive);
        }
        let mut answer = json!({
            "active": true, "scope": info.scope, "client_id": info.client_id,
            "token_type": "refresh_token", "iat": info.iat, "sub": info.sub,
            "iss": self.issuer(tenant),
        });
        if let Some(exp) = info.exp {
            answer["exp"] = json!(exp);
        }
        match self.load_user(tenant, &info.sub).await? {
            Some(user) if !user.disabled => answer["username"] = json!(user.username),
            _ => return Ok(inactive),
        }
        Ok(answer)
    }

    /// RFC 7009: revoke a refresh token (its whole family) or an access
    /// token (by `jti`), once every node has applied it. Unknown, invalid
    /// or expired tokens need nothing; another client's token is refused.
    pub async fn revoke(
        &self,
        tenant: &str,
        client: &Client,
        token: &str,
        gate: &dyn MissGate,
    ) -> Result<(), OAuthError> {
        let not_yours = || OAuthError::invalid_request("the token was not issued to this client");
        if token.split('.').count() == 3 {
            let claims = match self.verify_access_token(tenant, token, gate).await {
                Ok(c) => c,
                Err(e) if e.code == crate::oauth::error::OAuthErrorCode::InvalidToken => {
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            if claims.client_id != client.client_id {
                return Err(not_yours());
            }
            let ttl_ms = (claims.exp + LEEWAY_SECS + 1).saturating_sub(self.ctx.now_secs()) * 1000;
            let txn = Txn::ops(vec![TxnOp::Put {
                key: revoked_jti_key(tenant, &claims.jti),
                value: Vec::new(),
                ttl_ms: Some(ttl_ms.max(1000)),
            }]);
            let (_, index) = self.ctx.consensus.txn_indexed(txn).await?;
            self.wait_everywhere(index).await;
            return Ok(());
        }
        match self.inspect_refresh(tenant, token).await? {
            None => Ok(()),
            Some(info) if info.client_id != client.client_id => Err(not_yours()),
            Some(info) => self.revoke_family(tenant, &info.fid).await,
        }
    }

    /// Wait until every node has applied `index`; a node that does not
    /// confirm in time is logged (it may be partitioned or down).
    pub async fn wait_everywhere(&self, index: u64) {
        let report = self
            .ctx
            .consensus
            .wait_applied_everywhere(index, self.ctx.config.revocation_wait)
            .await;
        if !report.complete() {
            tracing::warn!(index, missing = ?report.missing, "revocation not yet confirmed by every node");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_the_algorithms_hash() {
        // OIDC Core A.3's example token and at_hash (RS256 => SHA-256).
        assert_eq!(
            at_hash(
                SigningAlg::RS256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(at_hash(SigningAlg::EdDSA, "x").len(), 43);
    }
}
