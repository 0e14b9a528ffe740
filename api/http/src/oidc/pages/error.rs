//! [`PageError`]: an error answered as a page (never a redirect), and the
//! mapping of the errors the pages meet (OAuth errors, tenant actor errors,
//! consent records, consensus errors) to it. 5xx pages stay generic; the detail goes to the
//! log.

use std::time::Duration;

use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rsp_actors::ActorError;

use crate::oidc::error::{OAuthError, OAuthErrorCode, OAuthErrorResponse};
use crate::oidc::pages::Page;
use crate::oidc::pages::templates::ErrorPage;
use rsp_identity::consents::ConsentError;

/// An error shown as a page (never a redirect): unknown client, bad
/// redirect URI, forged form, unavailable service...
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    /// A stable code (the RFC 6749 one where there is one).
    pub code: &'static str,
    pub description: String,
    pub retry_after: Option<Duration>,
}

impl PageError {
    pub fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        PageError {
            status,
            code,
            description: description.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// The anti-forgery check failed.
    pub fn forged() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "invalid_csrf_token",
            "This form expired or was not sent from this site. Go back, reload the page and try again.",
        )
    }

    pub fn unavailable(description: impl Into<String>, retry_after: Option<Duration>) -> Self {
        PageError {
            retry_after: Some(retry_after.unwrap_or(Duration::from_secs(1))),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                description,
            )
        }
    }

    /// Log the detail, show a generic page.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(detail = %detail, "browser page error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "Something went wrong on our side. Try again later.",
        )
    }

    fn title(&self) -> &'static str {
        match self.status.as_u16() {
            403 => "Request refused",
            404 => "Not found",
            429 => "Too many attempts",
            500..=599 => "Service problem",
            _ => "Invalid request",
        }
    }

    pub fn page(self) -> Page {
        // Not `Page::render`: a failing error template must not recurse.
        let html = ErrorPage {
            title: self.title(),
            code: self.code,
            description: &self.description,
        }
        .render()
        .unwrap_or_else(|_| "error".to_string());
        let page = Page::html(self.status, html);
        match self.retry_after {
            Some(after) => page.retry_after(after),
            None => page,
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.page().into_response()
    }
}

impl From<OAuthErrorResponse> for PageError {
    fn from(e: OAuthErrorResponse) -> Self {
        e.0.into()
    }
}

impl From<OAuthError> for PageError {
    fn from(e: OAuthError) -> Self {
        // Server errors were logged where they were made.
        let status = StatusCode::from_u16(e.status.unwrap_or(e.code.status()))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = match (e.retry_after, e.code) {
            (Some(secs), _) => Some(Duration::from_secs(secs.max(1))),
            (None, OAuthErrorCode::TemporarilyUnavailable) => Some(Duration::from_secs(1)),
            (None, _) => None,
        };
        PageError {
            status,
            code: e.code.as_str(),
            description: e.description,
            retry_after,
        }
    }
}

impl From<ActorError> for PageError {
    fn from(e: ActorError) -> Self {
        let retry = e.retry_after();
        match e {
            ActorError::RateLimited { .. } | ActorError::Locked { .. } => PageError {
                retry_after: retry,
                ..PageError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "Too many attempts. Wait a moment and try again.",
                )
            },
            ActorError::Overloaded { .. }
            | ActorError::QuotaExceeded { .. }
            | ActorError::Degraded { .. }
            | ActorError::Restarting { .. }
            | ActorError::Timeout
            | ActorError::Unavailable(_)
            | ActorError::OutcomeUnknown
            | ActorError::Contention(_)
            | ActorError::ShuttingDown => {
                // The page says only "briefly unavailable": the log says why.
                tracing::warn!(code = e.code(), error = %e, "a browser page answered 503");
                PageError::unavailable(
                    "The service is briefly unavailable. Try again in a moment.",
                    retry,
                )
            }
            ActorError::SessionNotFound => PageError::new(
                StatusCode::UNAUTHORIZED,
                "login_required",
                "Your session ended. Start again from the application.",
            ),
            other => PageError::internal(other),
        }
    }
}

impl From<ConsentError> for PageError {
    fn from(e: ConsentError) -> Self {
        match e {
            ConsentError::Consensus(e) => e.into(),
            ConsentError::Corrupt(detail) => PageError::internal(detail),
        }
    }
}

impl From<rsp_consensus::ConsensusError> for PageError {
    fn from(e: rsp_consensus::ConsensusError) -> Self {
        OAuthError::from(e).into()
    }
}
