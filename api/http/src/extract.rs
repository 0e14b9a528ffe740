//! Extractors that answer bad input in the API's own error format: JSON
//! bodies, path segments and queries. Who the caller is, is
//! `crate::authz::caller`'s.

use std::marker::PhantomData;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `axum::Json`, but a malformed body is answered in the error format `E`
/// of the API it serves (the admin API's [`ApiError`] by default; the
/// policy endpoints' `AuthzError` adds a diagnostic). The one JSON body
/// extractor of this crate.
pub struct ApiJson<T, E = ApiError>(pub T, pub PhantomData<E>);

/// Why a JSON body was refused: the status axum chose (400 for bad
/// syntax, 422 for the wrong shape, 413, 415) and its explanation.
#[derive(Debug)]
pub struct BodyRejection {
    pub status: StatusCode,
    pub message: String,
}

impl BodyRejection {
    /// `payload_too_large`, `unsupported_media_type` or `invalid_request`.
    pub fn code(&self) -> &'static str {
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            "payload_too_large"
        } else if self.status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            "unsupported_media_type"
        } else {
            "invalid_request"
        }
    }
}

impl From<BodyRejection> for ApiError {
    fn from(r: BodyRejection) -> Self {
        ApiError::new(r.status, r.code(), r.message)
    }
}

impl<T, E, S> FromRequest<S> for ApiJson<T, E>
where
    T: DeserializeOwned,
    E: From<BodyRejection> + IntoResponse,
    S: Send + Sync,
{
    type Rejection = E;

    async fn from_request(req: Request, state: &S) -> Result<Self, E> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v, PhantomData)),
            Err(rejection) => Err(E::from(BodyRejection {
                status: rejection.status(),
                message: rejection.body_text(),
            })),
        }
    }
}

/// `axum::extract::Path`, but a bad segment gives `{"error": "invalid_request"}`.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(rejection) => Err(ApiError::new(
                rejection.status(),
                "invalid_request",
                rejection.body_text(),
            )),
        }
    }
}

/// `axum::extract::Query`, but a bad query gives `{"error": "invalid_request"}`.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(rejection) => Err(ApiError::new(
                rejection.status(),
                "invalid_request",
                rejection.body_text(),
            )),
        }
    }
}
