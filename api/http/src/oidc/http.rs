//! HTTP plumbing shared by the token-style endpoints: the form body (RFC 6749
//! section 3.2: `application/x-www-form-urlencoded`, parsed into
//! [`Params`]), the `Authorization` header, and JSON answers that must not
//! be cached.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub use rsp_identity::oauth::params::Params;
use rsp_identity::oauth::params::credentials;

use crate::oidc::error::{OAuthError, OAuthErrorResponse};

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
    type Rejection = OAuthErrorResponse;

    async fn from_request(req: Request, state: &S) -> Result<Self, OAuthErrorResponse> {
        if !is_form(req.headers()) {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            )
            .into());
        }
        let body = Bytes::from_request(req, state).await.map_err(|r| {
            OAuthError::invalid_request("the body could not be read")
                .with_status(r.status().as_u16())
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

/// The token of an `Authorization: Bearer <token>` header (the scheme in
/// any case), if there is a non-empty one: the one bearer parser of the
/// HTTP surface.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    authorization(headers)
        .and_then(|a| credentials(a, "Bearer"))
        .filter(|t| !t.is_empty())
}

/// A JSON answer with `Cache-Control: no-store` (RFC 6749 section 5.1).
pub fn json_no_store(status: StatusCode, body: impl Serialize) -> Response {
    let mut resp = (status, Json(body)).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}
