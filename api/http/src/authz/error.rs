//! Errors of the authorization and policy endpoints:
//! `{"error": "<stable_code>", "message": "<text>", "diagnostics"?: [...]}`,
//! the admin API's format plus Cedar's diagnostics where Cedar refused the
//! input. 5xx bodies stay generic (via [`ApiError::internal`]).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rsp_policies::{Diagnostic, PolicyError};
use serde_json::json;

use crate::error::ApiError;
use crate::oidc::error::{OAuthError, OAuthErrorCode};

#[derive(Debug)]
pub struct AuthzError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub diagnostics: Option<Vec<Diagnostic>>,
    pub retry_after: Option<u64>,
}

impl AuthzError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AuthzError {
            status,
            code,
            message: message.into(),
            diagnostics: None,
            retry_after: None,
        }
    }

    /// 400 `invalid_request` with one diagnostic saying `message`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        let message = message.into();
        AuthzError {
            diagnostics: Some(vec![Diagnostic::message(message.clone())]),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
        }
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// Prefix the message (e.g. with the index of a batch item).
    pub fn context(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl From<ApiError> for AuthzError {
    fn from(e: ApiError) -> Self {
        AuthzError {
            status: e.status,
            code: e.code,
            message: e.message,
            diagnostics: None,
            retry_after: e.retry_after,
        }
    }
}

/// A malformed JSON body: 400 (413, 415) with a diagnostic.
impl From<crate::extract::BodyRejection> for AuthzError {
    fn from(r: crate::extract::BodyRejection) -> Self {
        let mut e = AuthzError::invalid_request(r.message.clone());
        e.code = r.code();
        e.status = if e.code == "invalid_request" {
            StatusCode::BAD_REQUEST
        } else {
            r.status
        };
        e
    }
}

impl From<rsp_consensus::ConsensusError> for AuthzError {
    fn from(e: rsp_consensus::ConsensusError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<PolicyError> for AuthzError {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::Invalid {
                code,
                message,
                diagnostics,
            } => AuthzError {
                diagnostics: Some(diagnostics),
                ..AuthzError::new(StatusCode::BAD_REQUEST, code, message)
            },
            PolicyError::NotFound(m) => AuthzError::new(StatusCode::NOT_FOUND, "not_found", m),
            PolicyError::Conflict => AuthzError {
                retry_after: Some(1),
                ..AuthzError::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    PolicyError::Conflict.to_string(),
                )
            },
            PolicyError::Consensus(c) => c.into(),
            PolicyError::Corrupt(detail) => ApiError::internal(detail).into(),
        }
    }
}

impl From<OAuthError> for AuthzError {
    /// Token verification errors, in this API's format.
    fn from(e: OAuthError) -> Self {
        match e.code {
            OAuthErrorCode::InvalidToken => {
                AuthzError::unauthorized("invalid_token", e.description)
            }
            OAuthErrorCode::TemporarilyUnavailable => ApiError::unavailable(e.description).into(),
            OAuthErrorCode::ServerError => AuthzError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "internal error",
            ),
            _ => AuthzError::new(StatusCode::BAD_REQUEST, "invalid_request", e.description),
        }
    }
}

impl IntoResponse for AuthzError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.code, "message": self.message});
        if let Some(d) = &self.diagnostics {
            body["diagnostics"] = json!(d);
        }
        let mut resp = (self.status, Json(body)).into_response();
        let headers = resp.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED || self.status == StatusCode::FORBIDDEN {
            let value = format!(
                "Bearer error=\"{}\", error_description=\"{}\"",
                self.code,
                self.message.replace(['"', '\\'], "'")
            );
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

pub type AuthzResult<T> = Result<T, AuthzError>;
