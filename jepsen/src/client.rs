//! A client of one node's KV API that classifies every answer the way the
//! history needs it: `ok`, `fail` (certainly not applied) or `info`
//! (indeterminate).
//!
//! For operations that change state:
//! - 200: ok;
//! - 503 `unavailable` and other 4xx: fail (the admin API promises nothing
//!   was applied);
//! - 504 `outcome_unknown`, any other 5xx: info;
//! - no connection could be made: fail (the request was never sent);
//! - a timeout, or a connection that broke after sending: info.
//!
//! Reads never change state, so every read that did not answer is a fail.

use std::time::Duration;

use anyhow::Error;
use rsp_chaos::{AdminClient, ApiResponse, Consistency};
use serde_json::{Value, json};

use crate::etcd_client::EtcdClient;
use crate::outcome::Outcome;

/// A KV client bound to one node.
#[derive(Debug, Clone)]
pub struct KvClient {
    pub node: u64,
    admin: AdminClient,
    /// Set when the node is an etcd member (the sanity check of the
    /// checker, see `etcd`).
    etcd: Option<EtcdClient>,
}

/// True when the request was certainly never sent (no connection).
fn never_sent(e: &Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<reqwest::Error>()
            .is_some_and(|r| r.is_connect())
    })
}

fn describe(e: &Error) -> String {
    let timed_out = e.chain().any(|cause| {
        cause
            .downcast_ref::<reqwest::Error>()
            .is_some_and(|r| r.is_timeout())
    });
    if timed_out {
        "timeout".to_string()
    } else if never_sent(e) {
        "connect_failed".to_string()
    } else {
        format!("transport: {}", e.root_cause())
    }
}

fn error_code(resp: &ApiResponse) -> String {
    resp.error_code()
        .map(str::to_string)
        .unwrap_or_else(|| format!("http_{}", resp.status))
}

/// Classifies the answer to a state-changing request.
fn classify_write(result: anyhow::Result<ApiResponse>) -> Outcome<Value> {
    match result {
        Ok(resp) if resp.status == 200 => Outcome::Ok(resp.body),
        Ok(resp) if resp.status == 504 || resp.status >= 500 && resp.status != 503 => {
            Outcome::Info(error_code(&resp))
        }
        Ok(resp) => Outcome::Fail(error_code(&resp)),
        Err(e) if never_sent(&e) => Outcome::Fail(describe(&e)),
        Err(e) => Outcome::Info(describe(&e)),
    }
}

impl KvClient {
    pub fn new(node: u64, admin: AdminClient, timeout: Duration) -> Self {
        Self {
            node,
            admin: admin.with_timeout(timeout),
            etcd: None,
        }
    }

    /// A client of an etcd member (`register` only: reads, writes, CAS).
    pub fn etcd(node: u64, etcd: EtcdClient) -> anyhow::Result<Self> {
        Ok(Self {
            node,
            admin: AdminClient::new("http://127.0.0.1:9", "unused")?,
            etcd: Some(etcd),
        })
    }

    /// `GET /admin/v1/kv/{key}?consistency=linearizable`: the value, or
    /// `None` when the key does not exist.
    pub async fn read(&self, key: &str) -> Outcome<Option<String>> {
        if let Some(etcd) = &self.etcd {
            return etcd.read(key).await;
        }
        match self.admin.kv_get(key, Consistency::Linearizable).await {
            Ok(resp) if resp.status == 200 => {
                match resp.body.get("value").and_then(Value::as_str) {
                    Some(v) => Outcome::Ok(Some(v.to_string())),
                    None => Outcome::Fail(format!("unexpected body: {}", resp.body)),
                }
            }
            Ok(resp) if resp.status == 404 && resp.error_code() == Some("key_not_found") => {
                Outcome::Ok(None)
            }
            Ok(resp) => Outcome::Fail(error_code(&resp)),
            Err(e) => Outcome::Fail(describe(&e)),
        }
    }

    /// `PUT /admin/v1/kv/{key}`.
    pub async fn write(&self, key: &str, value: &str) -> Outcome<()> {
        if let Some(etcd) = &self.etcd {
            return etcd.write(key, value).await;
        }
        match classify_write(self.admin.kv_put(key, value, None).await) {
            Outcome::Ok(_) => Outcome::Ok(()),
            Outcome::Fail(e) => Outcome::Fail(e),
            Outcome::Info(e) => Outcome::Info(e),
        }
    }

    /// A compare-and-set in one transaction: `Ok(true)` when the value was
    /// `from` and is now `to`, `Ok(false)` when the compare did not hold.
    pub async fn cas(&self, key: &str, from: &str, to: &str) -> Outcome<bool> {
        if let Some(etcd) = &self.etcd {
            return etcd.cas(key, from, to).await;
        }
        let txn = json!({
            "compare": [{"key": key, "target": "value", "op": "eq", "value": from}],
            "success": [{"op": "put", "key": key, "value": to}],
            "failure": [],
        });
        match classify_write(self.admin.kv_txn(&txn).await) {
            Outcome::Ok(body) => match body.get("succeeded").and_then(Value::as_bool) {
                Some(ok) => Outcome::Ok(ok),
                // Applied, but we cannot tell how: indeterminate.
                None => Outcome::Info(format!("unexpected body: {body}")),
            },
            Outcome::Fail(e) => Outcome::Fail(e),
            Outcome::Info(e) => Outcome::Info(e),
        }
    }

    /// Reads several keys atomically with one transaction of `get`s (a
    /// linearizable read through the log). `None` for absent keys.
    pub async fn get_many(&self, keys: &[String]) -> Outcome<Vec<Option<String>>> {
        if self.etcd.is_some() {
            return Outcome::Fail("not supported against etcd".to_string());
        }
        let ops: Vec<Value> = keys
            .iter()
            .map(|k| json!({"op": "get", "key": k}))
            .collect();
        let txn = json!({"compare": [], "success": ops, "failure": []});
        match self.admin.kv_txn(&txn).await {
            Ok(resp) if resp.status == 200 => {
                let Some(results) = resp.body.get("results").and_then(Value::as_array) else {
                    return Outcome::Fail(format!("unexpected body: {}", resp.body));
                };
                if results.len() != keys.len() {
                    return Outcome::Fail(format!(
                        "{} results for {} gets",
                        results.len(),
                        keys.len()
                    ));
                }
                Outcome::Ok(
                    results
                        .iter()
                        .map(|r| {
                            r.get("kv")
                                .and_then(|kv| kv.get("value"))
                                .and_then(Value::as_str)
                                .map(str::to_string)
                        })
                        .collect(),
                )
            }
            Ok(resp) => Outcome::Fail(error_code(&resp)),
            Err(e) => Outcome::Fail(describe(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, code: &str) -> anyhow::Result<ApiResponse> {
        Ok(ApiResponse {
            status,
            body: json!({"error": code, "message": "x"}),
        })
    }

    #[test]
    fn write_answers_are_classified_by_the_admin_api_contract() {
        assert_eq!(
            classify_write(resp(503, "unavailable")),
            Outcome::Fail("unavailable".into())
        );
        assert_eq!(
            classify_write(resp(504, "outcome_unknown")),
            Outcome::Info("outcome_unknown".into())
        );
        assert_eq!(
            classify_write(resp(500, "internal_error")),
            Outcome::Info("internal_error".into())
        );
        assert_eq!(
            classify_write(resp(400, "invalid_request")),
            Outcome::Fail("invalid_request".into())
        );
        assert!(matches!(
            classify_write(Err(anyhow::anyhow!("something broke"))),
            Outcome::Info(_)
        ));
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_failure_not_an_unknown() {
        // A port nobody listens on: bind, learn it, close.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let admin = AdminClient::new(format!("http://127.0.0.1:{port}"), "t").expect("client");
        let client = KvClient::new(1, admin, Duration::from_secs(2));
        assert_eq!(
            client.write("k", "v").await,
            Outcome::Fail("connect_failed".into())
        );
    }
}
