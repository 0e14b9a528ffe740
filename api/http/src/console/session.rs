//! Who is signed in to the console, and forms that cannot be forged.
//!
//! The session cookie (`rsp_console`) is `nonce.exp.who.tag`: a random
//! nonce, an expiry (seconds since the epoch, [`SESSION_LIFETIME`] after
//! sign-in), who signed in ([`Principal`]: `op` for the operator, or a
//! tenant administrator's tenant, user id and username, base64url) and an
//! HMAC of the three under a key derived from the cluster's KEK. It is not
//! the admin token or any OAuth token and reveals nothing about them. A
//! sealed value rather than a server-side session table: every node shares
//! the KEK, so any node behind a load balancer accepts it, and nothing is
//! written or kept in memory per sign-in. The price is that signing out
//! clears the cookie in the browser but cannot recall a copy taken before;
//! the short lifetime bounds that, and the cookie is `HttpOnly`,
//! `SameSite=Strict`, scoped to `/admin/` and `Secure` on https. Rotating
//! the KEK's derived key (a new KEK) ends every console session. A tenant
//! administrator's user is read again (linearizably) on every request, so
//! disabling them or taking `rsp_admin` away ends their console access at
//! once, whatever the cookie says.
//!
//! Every page and form of a signed-in session is authorized as the admin
//! API would authorize the call it stands for ([`super::access`]); the
//! [`SignedIn`] extractor does both checks, so a page cannot forget them.
//!
//! Anti-forgery: every form carries `csrf_token`, an HMAC (another derived
//! key) of the session cookie's value, checked in constant time before a
//! handler runs ([`ConsoleForm`]). Another site can neither read the cookie
//! nor make the token. The sign-in form, before there is a session, binds
//! its token to a random `rsp_console_seed` cookie in the same way. A
//! request with two cookies of one name (one planted) is refused.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::access;
use super::page::{self, Problem};
use crate::authz::caller::{AdminCaller, require_user_admin};
use crate::oidc::http::{Params, is_form};
use crate::state::AppState;
use rsp_identity::crypto::{HashKey, b64url, random_token};
use rsp_policies::AdminPrincipal;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

pub const SESSION_COOKIE: &str = "rsp_console";
pub const SEED_COOKIE: &str = "rsp_console_seed";
pub const CSRF_FIELD: &str = "csrf_token";
/// How long a console session lasts after sign-in (not extended by use).
pub const SESSION_LIFETIME: Duration = Duration::from_secs(3600);
const SESSION_LABEL: &str = "rsp admin console session v2";
const CSRF_LABEL: &str = "rsp admin console csrf v1";
/// Random nonces: 32 bytes, base64url.
const NONCE_CHARS: usize = 43;

fn key(state: &AppState, label: &str) -> Result<HashKey, Problem> {
    crate::oidc::csrf::key(state, label).map_err(|e| Problem::new(e.status, e.description))
}

/// The value of cookie `name` if the request carries exactly one.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = Vec::new();
    for v in headers.get_all(header::COOKIE) {
        let Ok(text) = v.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((k, value)) = pair.trim().split_once('=')
                && k == name
            {
                found.push(value.trim().to_string());
            }
        }
    }
    match found.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// A `Set-Cookie` value for the console's cookie `name`.
pub(crate) fn set_cookie(state: &AppState, name: &str, value: &str, max_age: u64) -> String {
    cookie_line(
        state.public_url.starts_with("https://"),
        name,
        value,
        max_age,
    )
}

/// `HttpOnly`, `SameSite=Strict`, `Path=/admin/`, and `Secure` when the
/// public URL is https.
fn cookie_line(secure: bool, name: &str, value: &str, max_age: u64) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/admin/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

fn well_formed(nonce: &str) -> bool {
    nonce.len() == NONCE_CHARS
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Who a console session is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Signed in with the admin token.
    Operator,
    /// Signed in through their tenant's own login as a user holding
    /// `rsp_admin`.
    TenantAdmin {
        tenant: String,
        /// The user's id (the tokens' `sub`).
        user: String,
        username: String,
    },
}

impl Principal {
    /// The cookie's `who` part.
    fn encode(&self) -> String {
        match self {
            Principal::Operator => "op".to_string(),
            Principal::TenantAdmin {
                tenant,
                user,
                username,
            } => format!(
                "ta{}",
                b64url(format!("{tenant}\n{user}\n{username}").as_bytes())
            ),
        }
    }

    fn decode(who: &str) -> Option<Principal> {
        if who == "op" {
            return Some(Principal::Operator);
        }
        let bytes = rsp_consensus::encoding::b64url_decode(who.strip_prefix("ta")?)?;
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(3, '\n');
        let (tenant, user, username) = (parts.next()?, parts.next()?, parts.next()?);
        Some(Principal::TenantAdmin {
            tenant: tenant.to_string(),
            user: user.to_string(),
            username: username.to_string(),
        })
    }
}

/// A new session cookie's value for `who`, sealed until
/// [`SESSION_LIFETIME`] from now.
pub(crate) fn new_session(state: &AppState, who: &Principal) -> Result<String, Problem> {
    let nonce = random_token(32);
    let exp = state.clock().now_secs() + SESSION_LIFETIME.as_secs();
    let who = who.encode();
    let tag = key(state, SESSION_LABEL)?.hash(format!("{nonce}\n{exp}\n{who}").as_bytes());
    Ok(format!("{nonce}.{exp}.{who}.{tag}"))
}

/// Who `value` is a session for, if it is a session cookie this cluster
/// sealed and it has not expired.
fn session_principal(state: &AppState, value: &str) -> Result<Option<Principal>, Problem> {
    let mut parts = value.splitn(4, '.');
    let (Some(nonce), Some(exp), Some(who), Some(tag)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Ok(None);
    };
    let Some(exp) = exp.parse::<u64>().ok().filter(|_| well_formed(nonce)) else {
        return Ok(None);
    };
    let sealed =
        key(state, SESSION_LABEL)?.verify(format!("{nonce}\n{exp}\n{who}").as_bytes(), tag);
    if !sealed || exp <= state.clock().now_secs() {
        return Ok(None);
    }
    Ok(Principal::decode(who))
}

/// A new sign-in seed (a random nonce).
pub(crate) fn new_seed() -> String {
    random_token(32)
}

/// The anti-forgery token of forms bound to `binding` (`session\n...` or
/// `seed\n...`).
fn token(state: &AppState, binding: &str) -> Result<String, Problem> {
    Ok(key(state, CSRF_LABEL)?.hash(binding.as_bytes()))
}

fn token_matches(
    state: &AppState,
    binding: &str,
    presented: Option<&str>,
) -> Result<bool, Problem> {
    let Some(presented) = presented else {
        return Ok(false);
    };
    Ok(key(state, CSRF_LABEL)?.verify(binding.as_bytes(), presented))
}

/// The sign-in form's token for `seed`.
pub(crate) fn seed_token(state: &AppState, seed: &str) -> Result<String, Problem> {
    token(state, &format!("seed\n{seed}"))
}

/// Whether a sign-in form's token matches the browser's seed cookie.
pub(crate) fn seed_form_ok(
    state: &AppState,
    headers: &HeaderMap,
    presented: Option<&str>,
) -> Result<bool, Problem> {
    match cookie(headers, SEED_COOKIE).filter(|s| well_formed(s)) {
        Some(seed) => token_matches(state, &format!("seed\n{seed}"), presented),
        None => Ok(false),
    }
}

/// A signed-in console session, checked: its cookie is sealed and
/// unexpired, a tenant administrator is still one (read linearizably), and
/// the page or form asked for is one the admin API would let this
/// principal call (`access::authorize`). Pages that take one cannot
/// forget the checks; without a session the answer is a redirect to the
/// sign-in page, a refused page is 403.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The anti-forgery token of this session's forms.
    pub csrf: String,
    pub principal: Principal,
}

impl SignedIn {
    /// The session of `headers`, if there is a valid one (its cookie only:
    /// not yet authorized for anything).
    pub(crate) fn from_headers(
        state: &AppState,
        headers: &HeaderMap,
    ) -> Result<Option<SignedIn>, Problem> {
        let Some(value) = cookie(headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        let Some(principal) = session_principal(state, &value)? else {
            return Ok(None);
        };
        Ok(Some(SignedIn {
            csrf: token(state, &format!("session\n{value}"))?,
            principal,
        }))
    }

    /// The admin API caller this session acts as.
    pub fn caller(&self) -> AdminCaller {
        AdminCaller {
            principal: match &self.principal {
                Principal::Operator => AdminPrincipal::Operator,
                Principal::TenantAdmin { tenant, user, .. } => AdminPrincipal::TenantAdmin {
                    tenant: tenant.clone(),
                    subject: user.clone(),
                },
            },
        }
    }

    pub fn is_operator(&self) -> bool {
        self.principal == Principal::Operator
    }

    /// Where this session starts: the tenants for the operator, their own
    /// tenant for a tenant administrator.
    pub fn home(&self) -> String {
        match &self.principal {
            Principal::Operator => "/admin/tenants".to_string(),
            Principal::TenantAdmin { tenant, .. } => {
                format!("/admin/tenants/{}", super::calls::seg(tenant))
            }
        }
    }

    /// A tenant administrator must still be one now (the admin API's own
    /// check of a user's token, [`require_user_admin`]): otherwise the
    /// session ends here (403, the cookie cleared).
    async fn still_admin(&self, state: &AppState) -> Result<(), Response> {
        let Principal::TenantAdmin { tenant, user, .. } = &self.principal else {
            return Ok(());
        };
        match require_user_admin(state, tenant, user).await {
            Ok(()) => Ok(()),
            Err(e) if e.status == StatusCode::FORBIDDEN => {
                tracing::info!(tenant = %tenant, "console session of a former tenant administrator ended");
                let mut resp = Problem::new(
                    StatusCode::FORBIDDEN,
                    format!("You are no longer an administrator of tenant {tenant}; your console session has ended."),
                )
                .into_response();
                if let Ok(v) = HeaderValue::from_str(&set_cookie(state, SESSION_COOKIE, "", 0)) {
                    resp.headers_mut().append(header::SET_COOKIE, v);
                }
                Err(resp)
            }
            Err(e) => Err(Problem::new(
                e.status,
                "The console cannot check your session right now. Try again.",
            )
            .into_response()),
        }
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let signed = match SignedIn::from_headers(state, &parts.headers) {
            Ok(Some(signed)) => signed,
            Ok(None) => return Err(page::redirect("/admin/")),
            Err(p) => return Err(p.into_response()),
        };
        signed.still_admin(state).await?;
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_string())
            .unwrap_or_default();
        let tenant = match RawPathParams::from_request_parts(parts, state).await {
            Ok(params) => params
                .iter()
                .find(|(name, _)| *name == "tenant")
                .map(|(_, v)| v.to_string()),
            Err(_) => None,
        };
        access::authorize(state, &signed, &parts.method, &route, tenant)
            .map_err(IntoResponse::into_response)?;
        Ok(signed)
    }
}

/// A form posted in a signed-in session (checked as [`SignedIn`] is), its
/// anti-forgery token checked against the session: a form without it, or
/// with another session's, is refused (403) before anything is done.
pub struct ConsoleForm {
    pub signed: SignedIn,
    pub fields: BTreeMap<String, String>,
}

impl ConsoleForm {
    /// The field `name`, if sent and not empty.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// The field `name`, or "".
    pub fn text(&self, name: &str) -> &str {
        self.field(name).unwrap_or("")
    }
}

/// Posted values can be passwords: wiped when the form is dropped.
impl Drop for ConsoleForm {
    fn drop(&mut self) {
        for v in self.fields.values_mut() {
            v.zeroize();
        }
    }
}

impl FromRequest<AppState> for ConsoleForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let signed = SignedIn::from_request_parts(&mut parts, state).await?;
        let form = is_form(&parts.headers);
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        if !form {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "The request must be a form (application/x-www-form-urlencoded).",
            )
            .into_response());
        }
        let fields = Params::parse(&body)
            .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, e.description).into_response())?
            .into_map();
        let genuine = fields
            .get(CSRF_FIELD)
            .is_some_and(|t| bool::from(t.as_bytes().ct_eq(signed.csrf.as_bytes())));
        if !genuine {
            return Err(Problem::forged().into_response());
        }
        Ok(ConsoleForm { signed, fields })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_strict_http_only_under_admin_and_secure_on_https() {
        assert_eq!(
            cookie_line(true, SESSION_COOKIE, "v", 3600),
            "rsp_console=v; Path=/admin/; HttpOnly; SameSite=Strict; Max-Age=3600; Secure"
        );
        assert!(!cookie_line(false, SESSION_COOKIE, "v", 0).contains("Secure"));
    }

    #[test]
    fn principals_survive_the_cookie_and_nothing_else_decodes() {
        for p in [
            Principal::Operator,
            Principal::TenantAdmin {
                tenant: "acme".into(),
                user: "u-1".into(),
                username: "ann.o'hara".into(),
            },
        ] {
            let who = p.encode();
            assert!(!who.contains('.'), "{who}");
            assert_eq!(Principal::decode(&who), Some(p));
        }
        assert_eq!(Principal::decode("operator"), None);
        assert_eq!(Principal::decode("ta!!"), None);
        assert_eq!(Principal::decode(&format!("ta{}", b64url(b"acme"))), None);
    }

    #[test]
    fn only_a_single_cookie_of_a_name_counts() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            "a=1; rsp_console=x".parse().expect("header"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("x"));
        headers.append(header::COOKIE, "rsp_console=y".parse().expect("header"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), None);
    }
}
