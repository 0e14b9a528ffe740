//! The API's one error type, mapped to HTTP once, here.
//!
//! Admin and operational errors answer `{"error": "<stable_code>", "message":
//! "<human text>"}`. 5xx bodies stay generic; the detail goes to the log.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rsp_consensus::ConsensusError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError {
            retry_after: Some(1),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
        }
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(detail = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error",
        )
    }
}

impl From<rsp_identity::miss_gate::MissRefused> for ApiError {
    fn from(r: rsp_identity::miss_gate::MissRefused) -> Self {
        ApiError {
            retry_after: Some(r.0.as_secs().max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                r.to_string(),
            )
        }
    }
}

impl From<ConsensusError> for ApiError {
    fn from(e: ConsensusError) -> Self {
        match e {
            ConsensusError::Unavailable(m) => ApiError::unavailable(m),
            ConsensusError::Timeout => ApiError {
                retry_after: Some(1),
                ..ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "outcome_unknown",
                    "the write was sent but no answer came in time; it may or may not have been applied",
                )
            },
            ConsensusError::ShuttingDown => ApiError::unavailable("this node is shutting down"),
            ConsensusError::BadRequest(m) => ApiError::bad_request("invalid_request", m),
            ConsensusError::UnknownNode(id) => {
                ApiError::not_found("node_not_found", format!("node {id} is not a member"))
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.code, "message": self.message});
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<rsp_actors::ActorError> for ApiError {
    fn from(e: rsp_actors::ActorError) -> Self {
        use rsp_actors::ActorError as A;
        let retry_after = e.retry_after_secs();
        let status = match &e {
            A::RateLimited { .. } | A::QuotaExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
            A::Locked { .. } => StatusCode::LOCKED,
            A::SessionNotFound => StatusCode::UNAUTHORIZED,
            A::InvalidTenant(_) | A::InvalidInput(_) => StatusCode::BAD_REQUEST,
            A::Timeout | A::OutcomeUnknown => StatusCode::GATEWAY_TIMEOUT,
            A::Internal(detail) => return ApiError::internal(detail),
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError {
            retry_after,
            ..ApiError::new(status, e.code(), e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::response::IntoResponse;
    use rsp_actors::ActorError;

    use super::*;

    #[test]
    fn actor_errors_map_to_429_423_503_with_retry_after() {
        let cases = [
            (
                ActorError::RateLimited {
                    kind: "login".into(),
                    retry_after: Duration::from_secs(3),
                },
                StatusCode::TOO_MANY_REQUESTS,
            ),
            (ActorError::Locked { until_ms: 0 }, StatusCode::LOCKED),
            (
                ActorError::Restarting {
                    retry_after: Duration::from_millis(200),
                },
                StatusCode::SERVICE_UNAVAILABLE,
            ),
        ];
        for (err, status) in cases {
            let code = err.code();
            let resp = ApiError::from(err).into_response();
            assert_eq!(resp.status(), status, "{code}");
            if status != StatusCode::LOCKED {
                assert!(
                    resp.headers().get(header::RETRY_AFTER).is_some(),
                    "{code} needs Retry-After"
                );
            }
        }
        assert_eq!(
            ApiError::from(ActorError::Timeout).into_response().status(),
            StatusCode::GATEWAY_TIMEOUT
        );
    }
}
