//! [`EtcdClient`]: a KV client over etcd's v3 JSON gateway
//! (`/v3/kv/range`, `/v3/kv/put`, `/v3/kv/txn`, keys and values base64),
//! for the `register` workload against etcd (see `etcd`).

use std::time::Duration;

use anyhow::Result;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::outcome::Outcome;

/// A KV client of one etcd member, answering like the `KvClient` of rsp:
/// writes that got no definite answer are `info`, reads that got none `fail`.
#[derive(Debug, Clone)]
pub struct EtcdClient {
    base: String,
    http: reqwest::Client,
}

impl EtcdClient {
    pub fn new(base: String, timeout: Duration) -> Result<Self> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(1))
            .timeout(timeout)
            .build()?;
        Ok(Self { base, http })
    }

    async fn call(&self, path: &str, body: &Value) -> Result<(u16, Value), reqwest::Error> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    fn write_outcome(result: Result<(u16, Value), reqwest::Error>) -> Outcome<Value> {
        match result {
            Ok((200, body)) => Outcome::Ok(body),
            Ok((status, body)) => Outcome::Info(format!(
                "http_{status}: {}",
                body.get("error").and_then(Value::as_str).unwrap_or("")
            )),
            Err(e) if e.is_connect() => Outcome::Fail("connect_failed".into()),
            Err(e) if e.is_timeout() => Outcome::Info("timeout".into()),
            Err(e) => Outcome::Info(format!("transport: {e}")),
        }
    }

    /// A linearizable range read of one key.
    pub async fn read(&self, key: &str) -> Outcome<Option<String>> {
        match self
            .call("/v3/kv/range", &json!({"key": B64.encode(key)}))
            .await
        {
            Ok((200, body)) => {
                let value = body
                    .get("kvs")
                    .and_then(|k| k.get(0))
                    .and_then(|kv| kv.get("value"))
                    .and_then(Value::as_str)
                    .and_then(|v| B64.decode(v).ok())
                    .map(|v| String::from_utf8_lossy(&v).into_owned());
                Outcome::Ok(value)
            }
            Ok((status, _)) => Outcome::Fail(format!("http_{status}")),
            Err(e) => Outcome::Fail(if e.is_timeout() {
                "timeout".into()
            } else {
                "transport".into()
            }),
        }
    }

    pub async fn write(&self, key: &str, value: &str) -> Outcome<()> {
        let body = json!({"key": B64.encode(key), "value": B64.encode(value)});
        match Self::write_outcome(self.call("/v3/kv/put", &body).await) {
            Outcome::Ok(_) => Outcome::Ok(()),
            Outcome::Fail(e) => Outcome::Fail(e),
            Outcome::Info(e) => Outcome::Info(e),
        }
    }

    pub async fn cas(&self, key: &str, from: &str, to: &str) -> Outcome<bool> {
        let k = B64.encode(key);
        let body = json!({
            "compare": [{"key": k, "target": "VALUE", "result": "EQUAL", "value": B64.encode(from)}],
            "success": [{"request_put": {"key": k, "value": B64.encode(to)}}],
        });
        match Self::write_outcome(self.call("/v3/kv/txn", &body).await) {
            Outcome::Ok(body) if body.get("header").is_some() => Outcome::Ok(
                body.get("succeeded")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            ),
            Outcome::Ok(body) => Outcome::Info(format!("unexpected body: {body}")),
            Outcome::Fail(e) => Outcome::Fail(e),
            Outcome::Info(e) => Outcome::Info(e),
        }
    }
}
