//! The console's one road to the operations: it calls the admin API's own
//! handlers (`crate::admin`) as the signed-in principal
//! ([`super::session::SignedIn::caller`], already authorized for the admin
//! route by [`super::access`]), with the bodies the API
//! would have parsed, and reads their answers. So each operation has one
//! code path: the same checks, the same writes (disabling a user signs
//! them out on every node, a rotation answers once every node refuses the
//! old secret), the same error messages, which the pages show.

use std::marker::PhantomData;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::extract::ApiJson;

/// Largest answer read back from a handler.
const MAX_ANSWER: usize = 16 << 20;

/// A refused operation, as the admin API explained it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: StatusCode,
    pub message: String,
    /// Cedar's diagnostics, for policy writes.
    pub diagnostics: Vec<DiagnosticLine>,
}

/// One of Cedar's diagnostics, as shown.
#[derive(Debug, Clone)]
pub struct DiagnosticLine {
    pub message: String,
    pub policy_id: String,
    pub help: String,
    /// Where in the submitted text (a byte offset), when Cedar says.
    pub offset: Option<usize>,
    /// That place as `line L, column C`, once the text is known.
    pub at: String,
}

/// `line L, column C` (1-based; columns in characters) of byte `offset`
/// in `text`, or "" when it is not in it.
pub fn line_and_column(text: &str, offset: usize) -> String {
    let Some(before) = text.get(..offset) else {
        return String::new();
    };
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    format!("line {line}, column {column}")
}

impl Failure {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
            diagnostics: Vec::new(),
        }
    }

    fn from_body(status: StatusCode, body: &Value) -> Self {
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let message = match text(body, "message") {
            m if m.is_empty() => status.canonical_reason().unwrap_or("refused").to_string(),
            m => m,
        };
        let diagnostics = body
            .get("diagnostics")
            .and_then(Value::as_array)
            .map(|ds| {
                ds.iter()
                    .map(|d| DiagnosticLine {
                        message: text(d, "message"),
                        policy_id: text(d, "policy_id"),
                        help: text(d, "help"),
                        offset: d["source_ranges"][0]["start"]
                            .as_u64()
                            .and_then(|o| usize::try_from(o).ok()),
                        at: String::new(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Failure {
            status,
            message,
            diagnostics,
        }
    }
}

/// The JSON a handler answered, or why it refused.
pub async fn answer(outcome: impl IntoResponse) -> Result<Value, Failure> {
    let resp = outcome.into_response();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), MAX_ANSWER)
        .await
        .map_err(|e| Failure::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    if status.is_success() {
        Ok(body)
    } else {
        Err(Failure::from_body(status, &body))
    }
}

/// A handler's body (or query) from the fields a form gave.
pub fn body<T: DeserializeOwned>(v: Value) -> Result<T, Failure> {
    serde_json::from_value(v).map_err(|e| Failure::new(StatusCode::BAD_REQUEST, e.to_string()))
}

/// [`body`], as the JSON extractor the handler takes.
pub fn json<T: DeserializeOwned, E>(v: Value) -> Result<ApiJson<T, E>, Failure> {
    Ok(ApiJson(body(v)?, PhantomData))
}

/// The string field `k` of `v`, or "".
pub fn text(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The string items of the array field `k` of `v`.
pub fn list(v: &Value, k: &str) -> Vec<String> {
    v.get(k)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A path segment, percent-encoded for a link.
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A time in milliseconds since the epoch, as UTC text.
pub fn time_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a (year, month, day) (Howard Hinnant's
/// algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_segments_read_as_expected() {
        assert_eq!(time_ms(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(time_ms(1_709_251_199_000), "2024-02-29 23:59:59 UTC");
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
        assert_eq!(line_and_column("ab\ncdé f", 8), "line 2, column 5");
        assert_eq!(line_and_column("ab", 9), "");
    }
}
