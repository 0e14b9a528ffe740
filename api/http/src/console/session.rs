//! Who is signed in to the console, and forms that cannot be forged.
//!
//! The session cookie (`rsp_console`) is `nonce.exp.tag`: a random nonce,
//! an expiry (seconds since the epoch, [`SESSION_LIFETIME`] after sign-in)
//! and an HMAC of both under a key derived from the cluster's KEK. It is
//! not the admin token and reveals nothing about it. A sealed value rather
//! than a server-side session table: every node shares the KEK, so any node
//! behind a load balancer accepts it, and nothing is written or kept in
//! memory per sign-in. The price is that signing out clears the cookie in
//! the browser but cannot recall a copy taken before; the short lifetime
//! bounds that, and the cookie is `HttpOnly`, `SameSite=Strict`, scoped to
//! `/admin/` and `Secure` on https. Rotating the KEK's derived key (a new
//! KEK) ends every console session.
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
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::page::{self, Problem};
use crate::oidc::http::{Params, is_form};
use crate::state::AppState;
use rsp_identity::crypto::{HashKey, random_token};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

pub const SESSION_COOKIE: &str = "rsp_console";
pub const SEED_COOKIE: &str = "rsp_console_seed";
pub const CSRF_FIELD: &str = "csrf_token";
/// How long a console session lasts after sign-in (not extended by use).
pub const SESSION_LIFETIME: Duration = Duration::from_secs(3600);
const SESSION_LABEL: &str = "rsp admin console session v1";
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

/// A new session cookie's value, sealed until [`SESSION_LIFETIME`] from now.
pub(crate) fn new_session(state: &AppState) -> Result<String, Problem> {
    let nonce = random_token(32);
    let exp = state.clock().now_secs() + SESSION_LIFETIME.as_secs();
    let tag = key(state, SESSION_LABEL)?.hash(format!("{nonce}\n{exp}").as_bytes());
    Ok(format!("{nonce}.{exp}.{tag}"))
}

/// Whether `value` is a session cookie this cluster sealed and it has not
/// expired.
fn session_valid(state: &AppState, value: &str) -> Result<bool, Problem> {
    let mut parts = value.splitn(3, '.');
    let (Some(nonce), Some(exp), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
        return Ok(false);
    };
    let Some(exp) = exp.parse::<u64>().ok().filter(|_| well_formed(nonce)) else {
        return Ok(false);
    };
    Ok(
        key(state, SESSION_LABEL)?.verify(format!("{nonce}\n{exp}").as_bytes(), tag)
            && exp > state.clock().now_secs(),
    )
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

/// A signed-in operator: the request carried a valid console session.
/// Pages that take one cannot forget the check; without a session the
/// answer is a redirect to the sign-in page.
#[derive(Debug, Clone)]
pub struct Operator {
    /// The anti-forgery token of this session's forms.
    pub csrf: String,
}

impl Operator {
    /// The operator of `headers`' session, if there is a valid one.
    pub(crate) fn from_headers(
        state: &AppState,
        headers: &HeaderMap,
    ) -> Result<Option<Operator>, Problem> {
        let Some(value) = cookie(headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        if !session_valid(state, &value)? {
            return Ok(None);
        }
        Ok(Some(Operator {
            csrf: token(state, &format!("session\n{value}"))?,
        }))
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match Operator::from_headers(state, &parts.headers) {
            Ok(Some(op)) => Ok(op),
            Ok(None) => Err(page::redirect("/admin/")),
            Err(p) => Err(p.into_response()),
        }
    }
}

/// A form posted by a signed-in operator, its anti-forgery token checked
/// against the session: a form without it, or with another session's, is
/// refused (403) before anything is done.
pub struct ConsoleForm {
    pub operator: Operator,
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
        let operator = Operator::from_request_parts(&mut parts, state).await?;
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
            .is_some_and(|t| bool::from(t.as_bytes().ct_eq(operator.csrf.as_bytes())));
        if !genuine {
            return Err(Problem::forged().into_response());
        }
        Ok(ConsoleForm { operator, fields })
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
