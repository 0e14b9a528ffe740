//! OAuth 2.0 / OpenID Connect errors as HTTP answers (RFC 6749 section 5.2,
//! RFC 6750 section 3, OIDC Core section 3.1.2.6):
//! `{"error": "<code>", "error_description": "<text>"}` with the status the
//! RFCs give, `WWW-Authenticate` where they ask for it, and no caching. The
//! errors themselves are data in [`rsp_identity::oauth::error`].

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub use rsp_identity::oauth::error::{OAuthError, OAuthErrorCode};

/// An [`OAuthError`] on its way out as an HTTP answer.
#[derive(Debug)]
pub struct OAuthErrorResponse(pub OAuthError);

pub type OAuthResult<T> = Result<T, OAuthErrorResponse>;

impl From<OAuthError> for OAuthErrorResponse {
    fn from(e: OAuthError) -> Self {
        OAuthErrorResponse(e)
    }
}

impl From<rsp_consensus::ConsensusError> for OAuthErrorResponse {
    fn from(e: rsp_consensus::ConsensusError) -> Self {
        OAuthErrorResponse(e.into())
    }
}

impl From<rsp_actors::ActorError> for OAuthErrorResponse {
    fn from(e: rsp_actors::ActorError) -> Self {
        OAuthErrorResponse(actor_error(e))
    }
}

/// What a tenant actor's refusal means to an OAuth client: 429 for rate
/// limits and quotas, 503 while the actor is busy or restarting, 404 for
/// an unknown tenant.
pub fn actor_error(e: rsp_actors::ActorError) -> OAuthError {
    use rsp_actors::ActorError as A;
    let retry_after = e.retry_after_secs();
    let mut err = match &e {
        A::RateLimited { .. } => OAuthError::new(
            OAuthErrorCode::TooManyRequests,
            "too many requests from this client; retry later",
        ),
        A::QuotaExceeded { .. } => OAuthError::new(OAuthErrorCode::TooManyRequests, e.to_string()),
        A::Overloaded { .. } | A::Degraded { .. } | A::Restarting { .. } | A::Timeout => {
            OAuthError::unavailable("the service is briefly unavailable; retry")
        }
        A::InvalidTenant(_) => OAuthError::invalid_request("unknown tenant").with_status(404),
        _ => OAuthError::server_error(&e),
    };
    err.retry_after = retry_after;
    err
}

/// 429 for an address past its look-up budget
/// ([`crate::miss_limit`]), retry after `wait`.
pub fn too_many_misses(wait: std::time::Duration) -> OAuthError {
    rsp_identity::miss_gate::MissRefused(wait).into()
}

impl IntoResponse for OAuthErrorResponse {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = StatusCode::from_u16(e.status.unwrap_or(e.code.status()))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({"error": e.code.as_str(), "error_description": e.description});
        let mut resp = (status, Json(body)).into_response();
        let headers = resp.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if status == StatusCode::UNAUTHORIZED || e.code == OAuthErrorCode::InsufficientScope {
            let scheme = e.challenge.unwrap_or("Bearer");
            let value = format!(
                "{scheme} error=\"{}\", error_description=\"{}\"",
                e.code.as_str(),
                e.description.replace(['"', '\\'], "'")
            );
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            let secs = e.retry_after.unwrap_or(1).max(1);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
