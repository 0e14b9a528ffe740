//! A small async client for one node's admin API (bearer token, JSON).
//!
//! Every call returns the HTTP status with the parsed body ([`ApiResponse`])
//! so tests can assert error codes; typed helpers parse the success bodies.
//! A transport error (timeout, connection refused or closed) is an `Err`: for
//! a write that means the outcome is unknown, and callers must treat it as
//! indeterminate. Every request has a timeout.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Default time a request may take, connect included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Status and body of one answer. Non-JSON bodies are kept as a JSON string;
/// an empty body is `null`.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
}

impl ApiResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The stable `error` code of an error body.
    pub fn error_code(&self) -> Option<&str> {
        self.body.get("error").and_then(Value::as_str)
    }

    /// Parses the body as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.body.clone())
            .with_context(|| format!("unexpected body (status {}): {}", self.status, self.body))
    }

    /// `Ok(self)` for a 2xx answer, else an error naming status and body.
    pub fn success(self) -> Result<Self> {
        if self.is_success() {
            Ok(self)
        } else {
            bail!("HTTP {}: {}", self.status, self.body)
        }
    }
}

/// `GET /admin/v1/cluster`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ClusterInfo {
    pub leader: Option<u64>,
    pub term: u64,
    pub this_node: u64,
    #[serde(default)]
    pub last_applied: Option<u64>,
    pub members: Vec<Member>,
}

impl ClusterInfo {
    pub fn member(&self, id: u64) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    pub fn member_ids(&self) -> Vec<u64> {
        self.members.iter().map(|m| m.id).collect()
    }

    /// True when this node reports itself as the leader.
    pub fn is_leader(&self) -> bool {
        self.leader == Some(self.this_node)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Member {
    pub id: u64,
    pub peer_addr: String,
    #[serde(default)]
    pub http_addr: Option<String>,
    #[serde(default)]
    pub zone: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    /// `leader`, `follower` or `learner`.
    pub role: String,
}

/// `POST /admin/v1/cluster/nodes`.
#[derive(Debug, Clone, Serialize)]
pub struct AddNode {
    pub id: u64,
    pub peer_addr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub voter: bool,
}

/// Read consistency of `GET /admin/v1/kv/{key}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    Linearizable,
    Local,
}

impl Consistency {
    pub fn as_str(self) -> &'static str {
        match self {
            Consistency::Linearizable => "linearizable",
            Consistency::Local => "local",
        }
    }
}

/// `PUT /admin/v1/kv/{key}` answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct KvWrite {
    pub revision: u64,
    #[serde(default)]
    pub version: u64,
}

/// `GET /admin/v1/kv/{key}` answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct KvRead {
    pub key: String,
    pub value: String,
    pub version: u64,
    pub create_revision: u64,
    pub mod_revision: u64,
    #[serde(default)]
    pub expires_at_ms: Option<u64>,
    pub read: ReadMeta,
}

/// How a read was served.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReadMeta {
    pub consistency: String,
    pub node_id: u64,
    #[serde(default)]
    pub applied_index: Option<u64>,
    #[serde(default)]
    pub revision: Option<u64>,
    #[serde(default)]
    pub leader: Option<u64>,
}

/// One line of `GET /admin/v1/kv/watch`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WatchEvent {
    pub revision: u64,
    pub key: String,
    /// `put`, `delete` or `expire`.
    pub kind: String,
    #[serde(default)]
    pub value: Option<String>,
}

/// Percent-encodes a key as one path segment (so `/` in keys survives).
pub fn encode_segment(s: &str) -> String {
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

/// A client for one node. Cloning is cheap; `for_node` shares the
/// connection pool.
#[derive(Clone)]
pub struct AdminClient {
    base: String,
    token: String,
    http: reqwest::Client,
    timeout: Duration,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: never printed.
        f.debug_struct("AdminClient")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl AdminClient {
    /// `base` is `http://host:port`.
    pub fn new(base: impl Into<String>, token: impl Into<String>) -> Result<Self> {
        // Nodes are on loopback: never route through an HTTP(S)_PROXY from
        // the environment.
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(DEFAULT_TIMEOUT)
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            base: base.into().trim_end_matches('/').to_string(),
            token: token.into(),
            http,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same client aimed at another node.
    pub fn for_node(&self, base: impl Into<String>) -> Self {
        Self {
            base: base.into().trim_end_matches('/').to_string(),
            ..self.clone()
        }
    }

    /// The same client with another per-request timeout.
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        Self {
            timeout,
            ..self.clone()
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Any request; `path` starts with `/`.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<ApiResponse> {
        let url = format!("{}{}", self.base, path);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.token)
            .timeout(self.timeout);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .with_context(|| format!("{method} {url}: reading body"))?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok(ApiResponse { status, body })
    }

    pub async fn get(&self, path: &str) -> Result<ApiResponse> {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<ApiResponse> {
        self.request(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<ApiResponse> {
        self.request(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<ApiResponse> {
        self.request(Method::DELETE, path, None).await
    }

    // --- cluster -------------------------------------------------------

    pub async fn cluster(&self) -> Result<ApiResponse> {
        self.get("/admin/v1/cluster").await
    }

    /// The cluster view of this node; an error unless 200.
    pub async fn cluster_info(&self) -> Result<ClusterInfo> {
        self.cluster().await?.success()?.json()
    }

    pub async fn add_node(&self, node: &AddNode) -> Result<ApiResponse> {
        let body = serde_json::to_value(node)?;
        self.post("/admin/v1/cluster/nodes", &body).await
    }

    pub async fn remove_node(&self, id: u64) -> Result<ApiResponse> {
        self.delete(&format!("/admin/v1/cluster/nodes/{id}")).await
    }

    // --- tenants -------------------------------------------------------

    pub async fn create_tenant(&self, id: &str, display_name: &str) -> Result<ApiResponse> {
        self.post(
            "/admin/v1/tenants",
            &json!({"id": id, "display_name": display_name}),
        )
        .await
    }

    pub async fn get_tenant(&self, id: &str) -> Result<ApiResponse> {
        self.get(&format!("/admin/v1/tenants/{}", encode_segment(id)))
            .await
    }

    pub async fn delete_tenant(&self, id: &str) -> Result<ApiResponse> {
        self.delete(&format!("/admin/v1/tenants/{}", encode_segment(id)))
            .await
    }

    // --- key-value -----------------------------------------------------

    pub async fn kv_put(&self, key: &str, value: &str, ttl_ms: Option<u64>) -> Result<ApiResponse> {
        let mut body = json!({"value": value});
        if let Some(ttl) = ttl_ms {
            body["ttl_ms"] = json!(ttl);
        }
        self.put(&format!("/admin/v1/kv/{}", encode_segment(key)), &body)
            .await
    }

    pub async fn kv_get(&self, key: &str, consistency: Consistency) -> Result<ApiResponse> {
        self.get(&format!(
            "/admin/v1/kv/{}?consistency={}",
            encode_segment(key),
            consistency.as_str()
        ))
        .await
    }

    /// The value of `key`: `Ok(None)` on 404, an error on any other non-200.
    pub async fn kv_value(&self, key: &str, consistency: Consistency) -> Result<Option<KvRead>> {
        let resp = self.kv_get(key, consistency).await?;
        match resp.status {
            200 => resp.json().map(Some),
            404 => Ok(None),
            _ => bail!("GET {key}: HTTP {}: {}", resp.status, resp.body),
        }
    }

    pub async fn kv_delete(&self, key: &str) -> Result<ApiResponse> {
        self.delete(&format!("/admin/v1/kv/{}", encode_segment(key)))
            .await
    }

    /// `POST /admin/v1/kv/txn` with a body built by the caller.
    pub async fn kv_txn(&self, txn: &Value) -> Result<ApiResponse> {
        self.post("/admin/v1/kv/txn", txn).await
    }

    /// Opens a watch. Returns once the node has answered with its headers,
    /// i.e. once the watch is registered; events then stream until
    /// `timeout` has passed.
    pub async fn kv_watch(&self, prefix: &str, timeout: Duration) -> Result<WatchStream> {
        let url = format!(
            "{}/admin/v1/kv/watch?prefix={}&timeout_ms={}",
            self.base,
            encode_segment(prefix),
            timeout.as_millis()
        );
        let overall = timeout + self.timeout;
        let resp = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .timeout(overall)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = resp.status().as_u16();
        if status != 200 {
            let text = tokio::time::timeout(self.timeout, resp.text())
                .await
                .map(|r| r.unwrap_or_default())
                .unwrap_or_default();
            bail!("GET {url}: HTTP {status}: {text}");
        }
        Ok(WatchStream {
            resp,
            pending: Vec::new(),
            deadline: tokio::time::Instant::now() + overall,
            done: false,
        })
    }

    // --- operations ----------------------------------------------------

    /// Status of `GET /healthz`.
    pub async fn healthz(&self) -> Result<u16> {
        Ok(self.get("/healthz").await?.status)
    }

    /// Status of `GET /readyz`.
    pub async fn readyz(&self) -> Result<u16> {
        Ok(self.get("/readyz").await?.status)
    }

    /// The Prometheus text of `GET /metrics`.
    pub async fn metrics(&self) -> Result<String> {
        let resp = self.get("/metrics").await?.success()?;
        match resp.body {
            Value::String(s) => Ok(s),
            other => Ok(other.to_string()),
        }
    }
}

/// An open watch: NDJSON events until the node ends the stream.
pub struct WatchStream {
    resp: reqwest::Response,
    pending: Vec<u8>,
    deadline: tokio::time::Instant,
    done: bool,
}

impl WatchStream {
    /// The next event, or `None` once the stream has ended.
    pub async fn next(&mut self) -> Result<Option<WatchEvent>> {
        loop {
            if let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=pos).collect();
                if let Some(event) = parse_event(&line)? {
                    return Ok(Some(event));
                }
                continue;
            }
            if self.done {
                let rest = std::mem::take(&mut self.pending);
                return parse_event(&rest);
            }
            let chunk = tokio::time::timeout_at(self.deadline, self.resp.chunk())
                .await
                .map_err(|_| anyhow!("watch stream did not end in time"))?
                .context("reading the watch stream")?;
            match chunk {
                Some(bytes) => self.pending.extend_from_slice(&bytes),
                None => self.done = true,
            }
        }
    }

    /// Every event until the stream ends.
    pub async fn collect(mut self) -> Result<Vec<WatchEvent>> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await? {
            events.push(event);
        }
        Ok(events)
    }
}

fn parse_event(line: &[u8]) -> Result<Option<WatchEvent>> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    serde_json::from_str(text)
        .map(Some)
        .with_context(|| format!("bad watch line: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_path_segment() {
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(encode_segment("plain-key_1.x~"), "plain-key_1.x~");
    }

    #[test]
    fn cluster_info_parses_the_documented_shape() {
        let body = json!({"leader": 1, "term": 3, "this_node": 2, "last_applied": 10,
            "members": [{"id": 1, "peer_addr": "127.0.0.1:1", "http_addr": "127.0.0.1:2",
                          "zone": "a", "region": null, "role": "leader"}]});
        let info: ClusterInfo = ApiResponse { status: 200, body }.json().expect("parses");
        assert_eq!(info.member_ids(), vec![1]);
        assert!(!info.is_leader());
        assert_eq!(info.member(1).map(|m| m.role.as_str()), Some("leader"));
    }

    #[test]
    fn error_code_is_read_from_the_body() {
        let r = ApiResponse {
            status: 404,
            body: json!({"error": "key_not_found", "message": "no such key"}),
        };
        assert_eq!(r.error_code(), Some("key_not_found"));
        assert!(r.success().is_err());
    }

    #[test]
    fn watch_lines_parse() {
        let e = parse_event(br#"{"revision":5,"key":"k","kind":"expire"}"#)
            .expect("ok")
            .expect("event");
        assert_eq!(e.kind, "expire");
        assert_eq!(e.value, None);
        assert!(parse_event(b"  \n").expect("ok").is_none());
    }
}
