//! `id_token_hint` (OIDC Core section 3.1.2.1, RP-Initiated Logout 1.0):
//! an ID token this tenant issued, presented back by a client to say which
//! user it expects.
//!
//! The signature is checked with the algorithm pinned to the token's `kid`
//! (the header's `alg` is never trusted, so `none` and key-confusion
//! tricks fail), `iss` must be this tenant's issuer and the token must not
//! be an access token. An unknown `kid` is confirmed linearizably within
//! the browser's address budget ([`crate::miss_limit`]), else
//! `too_many_requests`. Expiry is not checked: a hint names a user, it
//! grants nothing, and logout specifically expects expired ID tokens.

use jsonwebtoken::Validation;
use serde::Deserialize;

use crate::oidc::browser_session::Browser;
use crate::oidc::error::OAuthError;
use crate::state::AppState;
use rsp_identity::keys::KeyError;
use rsp_identity::oauth::tokens::ACCESS_TOKEN_TYP;

/// What a valid hint says.
#[derive(Debug, Clone)]
pub struct Hint {
    pub sub: String,
    /// The clients it was issued to.
    pub aud: Vec<String>,
    /// The session it was issued in (its handle), if any.
    pub sid: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Aud {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct HintClaims {
    sub: String,
    aud: Aud,
    #[serde(default)]
    sid: Option<String>,
}

/// Check `token` as an ID token of the browser's tenant; anything wrong is
/// `invalid_request`.
pub async fn verify(state: &AppState, browser: &Browser, token: &str) -> Result<Hint, OAuthError> {
    let t = &browser.tenant;
    let invalid = || OAuthError::invalid_request("id_token_hint is not a valid ID token");
    let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
    if header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.contains("at+jwt"))
    {
        return Err(invalid());
    }
    let kid = header.kid.as_deref().ok_or_else(invalid)?;
    let keys = &state.identity.keys;
    let now_ms = state.clock().now_ms();
    let gate = state.misses.gate(browser.client_ip);
    let (alg, key, _) = keys
        .find_verifier(&t.id, kid, now_ms, &gate)
        .await
        .map_err(|e| match e {
            KeyError::Consensus(e) => e.into(),
            KeyError::Refused(r) => r.into(),
            _ => invalid(),
        })?;
    if header.alg != alg {
        return Err(invalid());
    }
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[&t.issuer]);
    validation.validate_aud = false;
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["iss", "sub", "aud"]);
    let claims = jsonwebtoken::decode::<HintClaims>(token, &key, &validation)
        .map_err(|_| invalid())?
        .claims;
    Ok(Hint {
        sub: claims.sub,
        aud: match claims.aud {
            Aud::One(a) => vec![a],
            Aud::Many(a) => a,
        },
        sid: claims.sid,
    })
}
