//! OAuth 2.0 / OpenID Connect errors in the protocols' own format (RFC 6749
//! section 5.2, RFC 6750 section 3, OIDC Core section 3.1.2.6):
//! `{"error": "<code>", "error_description": "<text>"}` with the status the
//! RFCs give, `WWW-Authenticate` where they ask for it, and no caching.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The error codes rsp answers with (RFC 6749, 6750, 7009, 8628, 9126, OIDC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    UnsupportedResponseType,
    ServerError,
    TemporarilyUnavailable,
    InvalidToken,
    InsufficientScope,
    UnsupportedTokenType,
    AuthorizationPending,
    SlowDown,
    ExpiredToken,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    InvalidRequestUri,
    /// A rate limit or quota was hit (429, as Auth0 answers it).
    TooManyRequests,
}

impl OAuthErrorCode {
    pub fn as_str(self) -> &'static str {
        use OAuthErrorCode::*;
        match self {
            InvalidRequest => "invalid_request",
            InvalidClient => "invalid_client",
            InvalidGrant => "invalid_grant",
            UnauthorizedClient => "unauthorized_client",
            UnsupportedGrantType => "unsupported_grant_type",
            InvalidScope => "invalid_scope",
            AccessDenied => "access_denied",
            UnsupportedResponseType => "unsupported_response_type",
            ServerError => "server_error",
            TemporarilyUnavailable => "temporarily_unavailable",
            InvalidToken => "invalid_token",
            InsufficientScope => "insufficient_scope",
            UnsupportedTokenType => "unsupported_token_type",
            AuthorizationPending => "authorization_pending",
            SlowDown => "slow_down",
            ExpiredToken => "expired_token",
            LoginRequired => "login_required",
            ConsentRequired => "consent_required",
            InteractionRequired => "interaction_required",
            RequestNotSupported => "request_not_supported",
            RequestUriNotSupported => "request_uri_not_supported",
            InvalidRequestUri => "invalid_request_uri",
            TooManyRequests => "too_many_requests",
        }
    }

    /// The HTTP status for this error at the token-style endpoints.
    pub fn status(self) -> StatusCode {
        use OAuthErrorCode::*;
        match self {
            InvalidClient | InvalidToken => StatusCode::UNAUTHORIZED,
            InsufficientScope | AccessDenied => StatusCode::FORBIDDEN,
            ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// An error answered as JSON at a token-style endpoint.
#[derive(Debug)]
pub struct OAuthError {
    pub code: OAuthErrorCode,
    pub description: String,
    /// `WWW-Authenticate` scheme for 401s: `Basic` at the token endpoint
    /// when the client tried HTTP Basic, `Bearer` at resource endpoints.
    pub challenge: Option<&'static str>,
    /// A status other than the code's usual one (e.g. 404 for an unknown
    /// tenant).
    pub status: Option<StatusCode>,
    /// Seconds for `Retry-After` (429 and 503 answers).
    pub retry_after: Option<u64>,
}

impl OAuthError {
    pub fn new(code: OAuthErrorCode, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: description.into(),
            challenge: None,
            status: None,
            retry_after: None,
        }
    }

    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidRequest, d)
    }

    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidClient, d)
    }

    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidGrant, d)
    }

    pub fn invalid_token(d: impl Into<String>) -> Self {
        OAuthError {
            challenge: Some("Bearer"),
            ..Self::new(OAuthErrorCode::InvalidToken, d)
        }
    }

    /// Log the detail, answer generically.
    pub fn server_error(detail: impl std::fmt::Display) -> Self {
        tracing::error!(detail = %detail, "oauth server error");
        Self::new(OAuthErrorCode::ServerError, "internal error")
    }

    pub fn unavailable(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::TemporarilyUnavailable, d)
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_challenge(mut self, scheme: &'static str) -> Self {
        self.challenge = Some(scheme);
        self
    }
}

impl From<rsp_actors::ActorError> for OAuthError {
    fn from(e: rsp_actors::ActorError) -> Self {
        use rsp_actors::ActorError as A;
        let retry_after = e.retry_after_secs();
        let mut err = match &e {
            A::RateLimited { .. } => OAuthError::new(
                OAuthErrorCode::TooManyRequests,
                "too many requests from this client; retry later",
            ),
            A::QuotaExceeded { .. } => {
                OAuthError::new(OAuthErrorCode::TooManyRequests, e.to_string())
            }
            A::Overloaded { .. } | A::Degraded { .. } | A::Restarting { .. } | A::Timeout => {
                OAuthError::unavailable("the service is briefly unavailable; retry")
            }
            A::InvalidTenant(_) => {
                OAuthError::invalid_request("unknown tenant").with_status(StatusCode::NOT_FOUND)
            }
            _ => OAuthError::server_error(&e),
        };
        err.retry_after = retry_after;
        err
    }
}

impl From<rsp_consensus::ConsensusError> for OAuthError {
    fn from(e: rsp_consensus::ConsensusError) -> Self {
        use rsp_consensus::ConsensusError as C;
        match e {
            C::Unavailable(_) | C::Timeout | C::ShuttingDown => {
                OAuthError::unavailable("the service is briefly unavailable; retry")
            }
            C::BadRequest(m) => OAuthError::invalid_request(m),
            other => OAuthError::server_error(other),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = self.status.unwrap_or(self.code.status());
        let body = json!({"error": self.code.as_str(), "error_description": self.description});
        let mut resp = (status, Json(body)).into_response();
        let headers = resp.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if status == StatusCode::UNAUTHORIZED || self.code == OAuthErrorCode::InsufficientScope {
            let scheme = self.challenge.unwrap_or("Bearer");
            let value = format!(
                "{scheme} error=\"{}\", error_description=\"{}\"",
                self.code.as_str(),
                self.description.replace(['"', '\\'], "'")
            );
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            let secs = self.retry_after.unwrap_or(1).max(1);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

pub type OAuthResult<T> = Result<T, OAuthError>;
