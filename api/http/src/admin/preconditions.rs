//! `ETag` and `If-Match` on admin records, so two administrators cannot
//! overwrite each other's changes blindly.
//!
//! A record's entity tag is its replicated modification revision, quoted
//! (`"1234"`): it changes with every write of the record, on every node
//! alike. `GET` answers it in `ETag`; `PATCH`, `PUT` and `DELETE` with
//! `If-Match` change the record only while it is still that revision, and
//! answer 412 `precondition_failed` otherwise. `If-Match: *` asks only that
//! the record exists. Without `If-Match` the change applies to the current
//! record (last writer wins, as before).

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{ApiError, ApiResult};

/// What `If-Match` asks of the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMatch {
    /// No header: any current revision.
    Any,
    /// `If-Match: *`: the record exists.
    Exists,
    /// The record is still at this revision.
    Revision(u64),
}

impl IfMatch {
    /// Read `If-Match`; a header that is not one strong tag of ours (or
    /// `*`) is refused with 400 `invalid_etag`. A list of tags is refused
    /// too: our records have one current revision.
    pub fn from_headers(headers: &HeaderMap) -> ApiResult<IfMatch> {
        let mut values = headers.get_all(header::IF_MATCH).iter();
        let Some(value) = values.next() else {
            return Ok(IfMatch::Any);
        };
        let bad = || {
            ApiError::bad_request(
                "invalid_etag",
                "If-Match must be one entity tag this API gave (\"<digits>\") or *",
            )
        };
        if values.next().is_some() {
            return Err(bad());
        }
        let value = value.to_str().map_err(|_| bad())?.trim();
        if value == "*" {
            return Ok(IfMatch::Exists);
        }
        let digits = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .filter(|d| !d.is_empty() && d.len() <= 20 && d.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(bad)?;
        digits.parse().map(IfMatch::Revision).map_err(|_| bad())
    }

    /// The revision a compare-and-set must see, if any.
    pub fn revision(self) -> Option<u64> {
        match self {
            IfMatch::Revision(r) => Some(r),
            _ => None,
        }
    }
}

/// The `ETag` of a record at `mod_revision`.
pub fn etag(mod_revision: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{mod_revision}\""))
        .unwrap_or(HeaderValue::from_static("\"0\""))
}

/// `body` as JSON with the `ETag` of `revision`.
pub fn with_etag(body: impl Serialize, revision: u64) -> Response {
    ([(header::ETAG, etag(revision))], Json(body)).into_response()
}

/// The answer when the record moved on since the caller read it.
pub fn precondition_failed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
        "the record changed since that ETag was read; read it again and retry",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::IF_MATCH, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn if_match_takes_our_strong_tags_and_star_and_refuses_the_rest() {
        assert_eq!(IfMatch::from_headers(&with(&[])).unwrap(), IfMatch::Any);
        assert_eq!(
            IfMatch::from_headers(&with(&["*"])).unwrap(),
            IfMatch::Exists
        );
        assert_eq!(
            IfMatch::from_headers(&with(&["\"42\""])).unwrap(),
            IfMatch::Revision(42)
        );
        for bad in [
            "42",
            "W/\"42\"",
            "\"\"",
            "\"4x\"",
            "\"1\", \"2\"",
            "\"99999999999999999999999\"",
        ] {
            let e = IfMatch::from_headers(&with(&[bad])).unwrap_err();
            assert_eq!(e.code, "invalid_etag", "{bad}");
        }
        assert_eq!(
            IfMatch::from_headers(&with(&["\"1\"", "\"2\""]))
                .unwrap_err()
                .code,
            "invalid_etag"
        );
        assert_eq!(etag(7), HeaderValue::from_static("\"7\""));
    }
}
