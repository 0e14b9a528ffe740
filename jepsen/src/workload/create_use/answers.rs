//! How the `create-use` workload reads answers: which ones say "not
//! found", and what was missing (`tenant_not_found`, `user_not_found`,
//! `client_not_found`, `code_not_found`); which are indeterminate.

use anyhow::Result;
use rsp_chaos::ApiResponse;
use serde_json::{Value, json};

use crate::history::EventType;
use crate::web::{Reply, Sent};

/// What the login page says to a wrong username or password, and what the
/// authorization page says of an unknown client
/// (api/http/src/oidc/lockout.rs, authz_request.rs).
pub const BAD_CREDENTIALS: &str = "Invalid username or password.";
pub const UNKNOWN_CLIENT: &str = "is not known here";

/// How an operation ended, before it is recorded.
pub type Ended = (EventType, Value, Option<String>);

/// How an admin API write ended: 2xx ok; 404 with its code (e.g.
/// `tenant_not_found`), another 4xx, or no connection: fail; a 5xx, a
/// timeout or a connection broken after sending: info.
pub fn classify_admin(answer: &Result<ApiResponse>) -> (EventType, Option<String>) {
    match answer {
        Ok(r) if r.is_success() => (EventType::Ok, None),
        Ok(r) => {
            let code = r
                .error_code()
                .map(str::to_string)
                .unwrap_or_else(|| format!("http_{}", r.status));
            let kind = if r.status >= 500 {
                EventType::Info
            } else {
                EventType::Fail
            };
            (kind, Some(code))
        }
        Err(e) => {
            let refused = e.chain().any(|c| {
                c.downcast_ref::<reqwest::Error>()
                    .is_some_and(|r| r.is_connect())
            });
            if refused {
                (EventType::Fail, Some("connect_failed".into()))
            } else {
                (EventType::Info, Some(format!("{}", e.root_cause())))
            }
        }
    }
}

/// A token endpoint answer other than the expected ones: 404 is an unknown
/// tenant, 401 `invalid_client` an unknown client (`client_missing`).
pub fn token_answer(sent: &Sent, client_missing: &str) -> Ended {
    match sent {
        Sent::Reply(r) if r.status == 404 => (
            EventType::Fail,
            json!(r.error_code()),
            Some("tenant_not_found".into()),
        ),
        Sent::Reply(r) if r.error_code() == "invalid_client" => (
            EventType::Fail,
            json!("invalid_client"),
            Some(client_missing.into()),
        ),
        Sent::Reply(r) => {
            let (kind, error) = crate::workload::oidc::classify_oauth(sent);
            let kind = if kind == EventType::Ok {
                EventType::Fail
            } else {
                kind
            };
            (kind, json!(r.status), error)
        }
        other => unanswered(other),
    }
}

/// An authorization or login page other than the form or the redirect.
pub fn page_answer(r: &Reply) -> Ended {
    let said = json!(r.status);
    match r.status {
        404 => (EventType::Fail, said, Some("tenant_not_found".into())),
        400 if r.body.contains(UNKNOWN_CLIENT) => {
            (EventType::Fail, said, Some("client_not_found".into()))
        }
        s if s >= 500 => (EventType::Info, said, Some(format!("http_{s}"))),
        302 | 303 => (
            EventType::Fail,
            said,
            Some(r.param("error").unwrap_or_else(|| "no_code".into())),
        ),
        s => (EventType::Fail, said, Some(format!("http_{s}"))),
    }
}

/// No answer: never sent is a fail, anything else indeterminate.
pub fn unanswered(sent: &Sent) -> Ended {
    match sent {
        Sent::NotSent(e) => (EventType::Fail, Value::Null, Some(e.clone())),
        Sent::Unknown(e) => (EventType::Info, Value::Null, Some(e.clone())),
        Sent::Reply(r) => page_answer(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_name_what_was_not_found() {
        let reply = |status: u16, body: &str| Reply {
            status,
            location: None,
            set_cookies: vec![],
            body: body.into(),
        };
        let unknown = reply(400, "<p>The application (client_id) is not known here.</p>");
        assert_eq!(page_answer(&unknown).2.as_deref(), Some("client_not_found"));
        assert_eq!(
            page_answer(&reply(404, "")).2.as_deref(),
            Some("tenant_not_found")
        );
        assert_eq!(page_answer(&reply(503, "")).0, EventType::Info);
        let invalid_client = Sent::Reply(reply(401, r#"{"error":"invalid_client"}"#));
        let (kind, _, error) = token_answer(&invalid_client, "client_not_found");
        assert_eq!(
            (kind, error.as_deref()),
            (EventType::Fail, Some("client_not_found"))
        );
        let limited = Sent::Reply(reply(429, r#"{"error":"too_many_requests"}"#));
        assert_eq!(
            token_answer(&limited, "x").2.as_deref(),
            Some("too_many_requests")
        );
        assert_eq!(
            unanswered(&Sent::Unknown("timeout".into())).0,
            EventType::Info
        );
        let missing = Ok(ApiResponse {
            status: 404,
            body: json!({"error": "tenant_not_found"}),
        });
        assert_eq!(
            classify_admin(&missing),
            (EventType::Fail, Some("tenant_not_found".into()))
        );
        let unknown_outcome = Ok(ApiResponse {
            status: 504,
            body: json!({"error": "outcome_unknown"}),
        });
        assert_eq!(classify_admin(&unknown_outcome).0, EventType::Info);
    }
}
