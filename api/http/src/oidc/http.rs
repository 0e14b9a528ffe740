//! HTTP plumbing shared by the token-style endpoints: the form body (RFC 6749
//! section 3.2: `application/x-www-form-urlencoded`, no repeated
//! parameters, empty values count as absent), credentials in the
//! `Authorization` header, and JSON answers that must not be cached.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::oidc::error::OAuthError;

/// Request parameters, each at most once. `Debug` shows names only: values
/// carry secrets (client secrets, codes, tokens).
#[derive(Clone, Default)]
pub struct Params {
    map: BTreeMap<String, String>,
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.map.keys()).finish()
    }
}

impl Params {
    /// Parse a form body. A repeated name is `invalid_request`; a parameter
    /// sent without a value is treated as omitted (RFC 6749 section 3.1).
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let mut map = BTreeMap::new();
        let mut seen = std::collections::BTreeSet::new();
        for (name, value) in url::form_urlencoded::parse(body) {
            if !seen.insert(name.to_string()) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter `{name}` is repeated"
                )));
            }
            if !value.is_empty() {
                map.insert(name.into_owned(), value.into_owned());
            }
        }
        Ok(Params { map })
    }

    pub fn from_map(map: BTreeMap<String, String>) -> Self {
        Params { map }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// The parameter, or `invalid_request` naming it.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("parameter `{name}` is missing")))
    }

    pub fn map(&self) -> &BTreeMap<String, String> {
        &self.map
    }

    pub fn into_map(self) -> BTreeMap<String, String> {
        self.map
    }
}

/// Whether the body is declared as a form (parameters such as `charset`
/// allowed).
pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// A form body, refused with `invalid_request` if it is anything else.
pub struct OAuthForm(pub Params);

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = OAuthError;

    async fn from_request(req: Request, state: &S) -> Result<Self, OAuthError> {
        if !is_form(req.headers()) {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let body = Bytes::from_request(req, state).await.map_err(|r| {
            OAuthError::invalid_request("the body could not be read").with_status(r.status())
        })?;
        Ok(OAuthForm(Params::parse(&body)?))
    }
}

/// The `Authorization` header, if it is readable text.
pub fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// The credentials after `scheme ` (scheme matched case-insensitively).
pub fn credentials<'a>(authorization: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = authorization.split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// A JSON answer with `Cache-Control: no-store` (RFC 6749 section 5.1).
pub fn json_no_store(status: StatusCode, body: impl Serialize) -> Response {
    let mut resp = (status, Json(body)).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused_and_empty_ones_are_absent() {
        let p = Params::parse(b"a=1&b=&c=x%20y").expect("parse");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y"));
        assert!(Params::parse(b"a=1&a=1").is_err());
        assert!(Params::parse(b"a=&a=1").is_err());
    }

    #[test]
    fn credentials_match_the_scheme_case_insensitively() {
        assert_eq!(credentials("Bearer abc", "bearer"), Some("abc"));
        assert_eq!(credentials("basic abc", "Basic"), Some("abc"));
        assert_eq!(credentials("Bearer", "Bearer"), None);
        assert_eq!(credentials("Digest x", "Basic"), None);
    }
}
