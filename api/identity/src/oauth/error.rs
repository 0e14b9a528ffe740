//! OAuth 2.0 / OpenID Connect errors as data, named as the protocols name
//! them (RFC 6749 section 5.2, RFC 6750 section 3, RFC 7009, RFC 8628,
//! RFC 9126, OIDC Core section 3.1.2.6), with the HTTP status the RFCs give.
//! `rsp-api` turns them into `{"error", "error_description"}` answers with
//! `WWW-Authenticate` where the RFCs ask for it.

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
    pub fn status(self) -> u16 {
        use OAuthErrorCode::*;
        match self {
            InvalidClient | InvalidToken => 401,
            InsufficientScope | AccessDenied => 403,
            ServerError => 500,
            TemporarilyUnavailable => 503,
            TooManyRequests => 429,
            _ => 400,
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
    pub status: Option<u16>,
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

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_challenge(mut self, scheme: &'static str) -> Self {
        self.challenge = Some(scheme);
        self
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

pub type OAuthResult<T> = Result<T, OAuthError>;
