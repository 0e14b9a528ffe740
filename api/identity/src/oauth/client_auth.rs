//! Client authentication at the token, introspection, revocation, PAR and
//! device-authorization endpoints (RFC 6749 section 2.3, RFC 7523, OIDC
//! Core section 9):
//!
//! - `client_secret_basic`: `Authorization: Basic`, id and secret each
//!   form-urlencoded before joining (RFC 6749 section 2.3.1);
//! - `client_secret_post`: `client_id` and `client_secret` in the body;
//! - `private_key_jwt`: a `client_assertion` of type jwt-bearer, signed by
//!   a key in the client's registered `jwks` with the algorithm pinned to
//!   that key; `iss` = `sub` = client id, `aud` the issuer alone (a string,
//!   or an array of exactly it), `exp` required
//!   and near, `iat` required and not in the future, `nbf` (if present)
//!   passed, `jti` single use across the cluster
//!   (`assertion_jti/<client>/<keyed hash>` until `exp`);
//! - `none`: public clients, `client_id` only.
//!
//! The method used must be the client's registered one, and only one may be
//! used per request. A client id this node does not hold is confirmed
//! with a linearizable read once the caller's [`MissGate`] admits it. Secrets are compared in constant time by
//! `ClientService`. Failures are `invalid_client` (401, with a `Basic`
//! challenge) without saying whether the client exists.

use std::str::FromStr;

use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rsp_consensus::kv::{Key, Txn};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::clients::{AuthMethod, Client, ClientError};
use crate::miss_gate::MissGate;
use crate::oauth::context::OAuthContext;
use crate::oauth::error::OAuthError;
use crate::oauth::params::{Params, credentials};
use rsp_consensus::kv::tenant_keyspace;

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// HKDF label of the key assertion ids are hashed under.
const JTI_LABEL: &str = "rsp client assertion jti v1";
const LEEWAY_SECS: u64 = 5;

/// Whether an endpoint serves public clients (auth method `none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Public {
    Allowed,
    Refused,
}

fn failed() -> OAuthError {
    OAuthError::invalid_client("client authentication failed").with_challenge("Basic")
}

fn wrong_method() -> OAuthError {
    OAuthError::invalid_client("the client is registered for another token_endpoint_auth_method")
        .with_challenge("Basic")
}

/// `application/x-www-form-urlencoded` decoding of one component.
fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`.
fn parse_basic(creds: &str) -> Option<(String, Zeroizing<String>)> {
    let raw = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(creds.trim())
            .ok()?,
    );
    let text = std::str::from_utf8(&raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((form_decode(id)?, Zeroizing::new(form_decode(secret)?)))
}

/// The algorithm a client key verifies with: its registered `alg` if it
/// fits the key type, else the key type's usual one. Symmetric and unknown
/// keys verify nothing.
fn pinned_alg(jwk: &Jwk) -> Option<Algorithm> {
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(by_type),
        Some(registered) => {
            let alg = Algorithm::from_str(&registered.to_string()).ok()?;
            let fits = alg.family() == by_type.family()
                && (by_type.family() != jsonwebtoken::AlgorithmFamily::Ec || alg == by_type);
            fits.then_some(alg)
        }
    }
}

/// The client-independent checks of a `private_key_jwt` assertion: the key
/// named by `kid` (or the only key) in the client's `jwks`, the algorithm
/// pinned to that key, the signature, `iss` = `sub` = the client id, `aud`
/// the issuer alone (a string or a one-element array), `exp`, `nbf` and the
/// presence of `iat`. What needs the clock or the store (iat not in the
/// future, lifetime, single use of `jti`) is the caller's.
pub fn verify_assertion_signature(
    assertion: &str,
    client_id: &str,
    jwks: &JwkSet,
    issuer: &str,
) -> Result<AssertionClaims, OAuthError> {
    let invalid = || OAuthError::invalid_client("the client assertion is invalid");
    // Fails for `alg: none`.
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| invalid())?;
    let jwk = match header.kid.as_deref() {
        Some(kid) => jwks.find(kid),
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    }
    .ok_or_else(invalid)?;
    let alg = pinned_alg(jwk).ok_or_else(invalid)?;
    if header.alg != alg {
        return Err(invalid());
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| invalid())?;
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[client_id]);
    validation.sub = Some(client_id.to_string());
    validation.set_audience(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "sub", "aud"]);
    validation.validate_nbf = true;
    validation.leeway = LEEWAY_SECS;
    let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation)
        .map_err(|_| invalid())?
        .claims;
    if claims.aud.as_array().is_some_and(|a| a.len() != 1) {
        return Err(OAuthError::invalid_client(
            "the client assertion's aud must be the issuer alone",
        ));
    }
    Ok(claims)
}

/// The claims of an assertion whose signature and audience were checked.
#[derive(Deserialize)]
pub struct AssertionClaims {
    pub exp: u64,
    pub iat: u64,
    pub jti: Option<String>,
    /// Checked against the issuer by `jsonwebtoken`; here only its shape:
    /// a string, or an array holding exactly one.
    aud: serde_json::Value,
}

#[derive(Deserialize)]
struct UnverifiedSubject {
    sub: Option<String>,
}

#[derive(Clone)]
pub struct ClientAuthService {
    ctx: OAuthContext,
}

impl ClientAuthService {
    pub(crate) fn new(ctx: OAuthContext) -> Self {
        ClientAuthService { ctx }
    }

    /// Authenticate the client of a request. A private key JWT must name
    /// the tenant's issuer, and nothing else, as its audience (a token
    /// endpoint or other URL as audience lets an assertion meant for one
    /// server be replayed at another that shares the URL's shape). `gate`
    /// is asked before an unknown client id costs a quorum read.
    pub async fn authenticate(
        &self,
        tenant: &str,
        authorization: Option<&str>,
        params: &Params,
        public: Public,
        gate: &dyn MissGate,
    ) -> Result<Client, OAuthError> {
        let basic = match authorization.and_then(|a| credentials(a, "Basic")) {
            Some(c) => Some(parse_basic(c).ok_or_else(failed)?),
            None => None,
        };
        let secret = params.get("client_secret");
        let assertion = params.get("client_assertion");
        let assertion_type = params.get("client_assertion_type");
        let used = [
            basic.is_some(),
            secret.is_some(),
            assertion.is_some() || assertion_type.is_some(),
        ];
        if used.iter().filter(|u| **u).count() > 1 {
            return Err(OAuthError::invalid_request(
                "use exactly one client authentication method",
            ));
        }
        let param_id = params.get("client_id");
        if let Some((id, secret)) = basic {
            if param_id.is_some_and(|p| p != id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the authenticated client",
                ));
            }
            return self
                .with_secret(tenant, &id, &secret, AuthMethod::ClientSecretBasic, gate)
                .await;
        }
        if let Some(secret) = secret {
            let id = param_id.ok_or_else(failed)?;
            return self
                .with_secret(tenant, id, secret, AuthMethod::ClientSecretPost, gate)
                .await;
        }
        if let Some(assertion) = assertion {
            if assertion_type != Some(JWT_BEARER) {
                return Err(OAuthError::invalid_client(
                    "client_assertion_type must be jwt-bearer",
                ));
            }
            let issuer = self.ctx.issuer(tenant);
            return self
                .with_assertion(tenant, assertion, param_id, &issuer, gate)
                .await;
        }
        if assertion_type.is_some() {
            return Err(OAuthError::invalid_request("client_assertion is missing"));
        }
        let id = param_id.ok_or_else(|| {
            OAuthError::invalid_client("client authentication is required").with_challenge("Basic")
        })?;
        let client = self.client(tenant, id, gate).await?.ok_or_else(failed)?;
        if client.token_endpoint_auth_method != AuthMethod::None {
            return Err(
                OAuthError::invalid_client("client authentication is required")
                    .with_challenge("Basic"),
            );
        }
        if public == Public::Refused {
            return Err(OAuthError::invalid_client(
                "public clients cannot use this endpoint",
            ));
        }
        Ok(client)
    }

    /// A client by id; a miss is confirmed linearizably once `gate` admits
    /// it ([`crate::clients::ClientService::find`]).
    async fn client(
        &self,
        tenant: &str,
        id: &str,
        gate: &dyn MissGate,
    ) -> Result<Option<Client>, OAuthError> {
        match self.ctx.identity.clients.find(tenant, id, gate).await {
            Ok(c) => Ok(Some(c)),
            Err(ClientError::NotFound) => Ok(None),
            Err(ClientError::Refused(r)) => Err(r.into()),
            Err(ClientError::Consensus(e)) => Err(e.into()),
            Err(e) => Err(OAuthError::server_error(e)),
        }
    }

    async fn with_secret(
        &self,
        tenant: &str,
        id: &str,
        secret: &str,
        method: AuthMethod,
        gate: &dyn MissGate,
    ) -> Result<Client, OAuthError> {
        let client = self.client(tenant, id, gate).await?.ok_or_else(failed)?;
        if !self
            .ctx
            .identity
            .clients
            .secret_matches(&client, secret, self.ctx.now_ms())
        {
            return Err(failed());
        }
        if client.token_endpoint_auth_method != method {
            return Err(wrong_method());
        }
        Ok(client)
    }

    async fn with_assertion(
        &self,
        tenant: &str,
        assertion: &str,
        param_id: Option<&str>,
        issuer: &str,
        gate: &dyn MissGate,
    ) -> Result<Client, OAuthError> {
        let invalid = || OAuthError::invalid_client("the client assertion is invalid");
        // Refuse what is not a JWS (`alg: none` included) before any read.
        jsonwebtoken::decode_header(assertion).map_err(|_| invalid())?;
        let id = match param_id {
            Some(id) => id.to_string(),
            None => jsonwebtoken::dangerous::insecure_decode_claims::<UnverifiedSubject>(assertion)
                .ok()
                .and_then(|c| c.sub)
                .ok_or_else(invalid)?,
        };
        let client = self.client(tenant, &id, gate).await?.ok_or_else(invalid)?;
        if client.token_endpoint_auth_method != AuthMethod::PrivateKeyJwt {
            return Err(wrong_method());
        }
        let jwks = client.jwks.as_ref().ok_or_else(invalid)?;
        let claims = verify_assertion_signature(assertion, &id, jwks, issuer)?;
        let now = self.ctx.now_secs();
        if claims.iat > now + LEEWAY_SECS {
            return Err(OAuthError::invalid_client(
                "the client assertion's iat is in the future",
            ));
        }
        if claims.exp > now + self.ctx.config.max_assertion_lifetime.as_secs() {
            return Err(OAuthError::invalid_client(
                "the client assertion's exp is too far in the future",
            ));
        }
        let jti = claims
            .jti
            .filter(|j| !j.is_empty() && j.len() <= 256)
            .ok_or_else(|| OAuthError::invalid_client("the client assertion needs a jti"))?;
        let key = Key::new(
            tenant_keyspace(tenant),
            format!("assertion_jti/{id}/{}", self.ctx.hash(JTI_LABEL, &jti)?).into_bytes(),
        );
        let ttl_ms = (claims.exp + LEEWAY_SECS + 1).saturating_sub(now) * 1000;
        let txn = Txn::put_if_absent(key, Vec::new(), Some(ttl_ms.max(1000)));
        if !self.ctx.consensus.txn(txn).await?.succeeded {
            return Err(OAuthError::invalid_client(
                "the client assertion was already used",
            ));
        }
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let enc = base64::engine::general_purpose::STANDARD.encode("my%3Aapp:s%2Bc+r%25t");
        let (id, secret) = parse_basic(&enc).expect("parse");
        assert_eq!(id, "my:app");
        assert_eq!(secret.as_str(), "s+c r%t");
        assert!(parse_basic("not base64!").is_none());
        let bad = base64::engine::general_purpose::STANDARD.encode("no-colon");
        assert!(parse_basic(&bad).is_none());
    }
}
