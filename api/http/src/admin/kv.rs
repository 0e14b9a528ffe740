//! The operator key-value API on the replicated store (`/admin/v1/kv`), in
//! its own keyspace `kv`, apart from tenant data. It exposes the consensus
//! layer's transactions, both read paths and watches, for operators' tools,
//! benchmarks and the Jepsen harness.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rsp_consensus::kv::{
    CmpOp, Compare, CompareTarget, EventKind, Key, KeyValue, OpResult, Txn, TxnOp,
};
use rsp_consensus::{Consistency, ReadInfo};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::openapi::shapes::{self, ErrorBody};
use crate::authz::caller::AdminCaller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

pub const KV_KEYSPACE: &str = "kv";
const MAX_KEY_LEN: usize = 1024;
const MAX_WATCH_MS: u64 = 300_000;

fn key(k: &str) -> ApiResult<Key> {
    if k.is_empty() || k.len() > MAX_KEY_LEN {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("keys are 1 to {MAX_KEY_LEN} bytes"),
        ));
    }
    Ok(Key::new(KV_KEYSPACE, k.as_bytes().to_vec()))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[derive(Serialize, ToSchema)]
pub struct KvOut {
    key: String,
    value: String,
    version: u64,
    create_revision: u64,
    mod_revision: u64,
    expires_at_ms: Option<u64>,
}

impl From<KeyValue> for KvOut {
    fn from(kv: KeyValue) -> Self {
        KvOut {
            key: text(&kv.key.key),
            value: text(&kv.value),
            version: kv.version,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            expires_at_ms: kv.expires_at_ms,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutBody {
    value: String,
    ttl_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    consistency: Option<String>,
}

fn consistency(q: &ReadQuery) -> ApiResult<Consistency> {
    match q.consistency.as_deref() {
        None | Some("linearizable") => Ok(Consistency::Linearizable),
        Some("local") => Ok(Consistency::Local),
        Some(other) => Err(ApiError::bad_request(
            "invalid_request",
            format!("consistency must be `linearizable` or `local`, not `{other}`"),
        )),
    }
}

#[utoipa::path(
    put,
    path = "/admin/v1/kv/{key}",
    operation_id = "kv_put",
    tag = "kv",
    params(("key" = String, Path, description = "The key (UTF-8)")),
    request_body = PutBody,
    responses(
        (status = 200, description = "Written", body = shapes::KvWritten),
        (status = 400, description = "`invalid_request`: a bad key or body", body = ErrorBody),
    ),
)]
pub async fn put(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(k): ApiPath<String>,
    ApiJson(body, _): ApiJson<PutBody>,
) -> ApiResult<impl IntoResponse> {
    let key = key(&k)?;
    let resp = state
        .consensus
        .txn(Txn::ops(vec![TxnOp::Put {
            key,
            value: body.value.into_bytes(),
            ttl_ms: body.ttl_ms,
        }]))
        .await?;
    let version = match resp.results.first() {
        Some(OpResult::Put { prev }) => prev.as_ref().map_or(1, |p| p.version + 1),
        _ => 1,
    };
    Ok(Json(json!({"revision": resp.revision, "version": version})))
}

#[utoipa::path(
    get,
    path = "/admin/v1/kv/{key}",
    operation_id = "kv_get",
    tag = "kv",
    params(("key" = String, Path, description = "The key (UTF-8)"), ("consistency" = Option<String>, Query, description = "`linearizable` (default) or `local`")),
    responses(
        (status = 200, description = "The key and how it was read", body = shapes::KvRead),
        (status = 400, description = "`invalid_request`: a bad key or consistency", body = ErrorBody),
        (status = 404, description = "`key_not_found`, with how it was read", body = shapes::KvMissing),
    ),
)]
pub async fn get(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(k): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReadQuery>,
) -> ApiResult<Response> {
    let key = key(&k)?;
    let (kv, info): (Option<KeyValue>, ReadInfo) =
        state.consensus.get(&key, consistency(&q)?).await?;
    match kv {
        Some(kv) => {
            let mut out = serde_json::to_value(KvOut::from(kv)).map_err(ApiError::internal)?;
            out["read"] = serde_json::to_value(&info).map_err(ApiError::internal)?;
            Ok(Json(out).into_response())
        }
        None => Ok((
            StatusCode::NOT_FOUND,
            Json(
                json!({"error": "key_not_found", "message": format!("no key `{k}`"), "read": info}),
            ),
        )
            .into_response()),
    }
}

#[utoipa::path(
    delete,
    path = "/admin/v1/kv/{key}",
    operation_id = "kv_delete",
    tag = "kv",
    params(("key" = String, Path, description = "The key (UTF-8)")),
    responses(
        (status = 200, description = "Deleted (or absent)", body = shapes::KvDeleted),
        (status = 400, description = "`invalid_request`: a bad key", body = ErrorBody),
    ),
)]
pub async fn delete(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(k): ApiPath<String>,
) -> ApiResult<impl IntoResponse> {
    let key = key(&k)?;
    let resp = state
        .consensus
        .txn(Txn::ops(vec![TxnOp::Delete { key }]))
        .await?;
    let deleted = match resp.results.first() {
        Some(OpResult::Delete { deleted }) => *deleted,
        _ => 0,
    };
    Ok(Json(json!({"revision": resp.revision, "deleted": deleted})))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareIn {
    key: String,
    /// `value`, `version`, `mod_revision` or `exists`.
    target: String,
    /// `eq` (default), `ne`, `lt` or `gt`.
    #[serde(default)]
    op: Option<String>,
    value: Value,
}

#[derive(Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum OpIn {
    Put {
        key: String,
        value: String,
        ttl_ms: Option<u64>,
    },
    Delete {
        key: String,
    },
    Get {
        key: String,
    },
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TxnIn {
    #[serde(default)]
    compare: Vec<CompareIn>,
    #[serde(default)]
    success: Vec<OpIn>,
    #[serde(default)]
    failure: Vec<OpIn>,
}

impl TxnIn {
    /// The transaction, every compare and operation checked.
    pub(crate) fn into_txn(self) -> ApiResult<Txn> {
        Ok(Txn {
            compares: self
                .compare
                .into_iter()
                .map(compare)
                .collect::<ApiResult<_>>()?,
            success: self.success.into_iter().map(op).collect::<ApiResult<_>>()?,
            failure: self.failure.into_iter().map(op).collect::<ApiResult<_>>()?,
        })
    }
}

fn cmp_op(op: Option<&str>) -> ApiResult<CmpOp> {
    match op.unwrap_or("eq") {
        "eq" => Ok(CmpOp::Eq),
        "ne" => Ok(CmpOp::Ne),
        "lt" => Ok(CmpOp::Lt),
        "gt" => Ok(CmpOp::Gt),
        other => Err(ApiError::bad_request(
            "invalid_request",
            format!("unknown compare op `{other}`"),
        )),
    }
}

fn compare(c: CompareIn) -> ApiResult<Compare> {
    let bad = |what: &str| {
        ApiError::bad_request(
            "invalid_request",
            format!(
                "compare on {what} needs {}",
                match what {
                    "value" => "a string value",
                    "exists" => "a boolean value",
                    _ => "an integer value",
                }
            ),
        )
    };
    let op = cmp_op(c.op.as_deref())?;
    let target = match c.target.as_str() {
        "value" => CompareTarget::Value(
            op,
            c.value
                .as_str()
                .ok_or_else(|| bad("value"))?
                .as_bytes()
                .to_vec(),
        ),
        "version" => CompareTarget::Version(op, c.value.as_u64().ok_or_else(|| bad("version"))?),
        "mod_revision" => {
            CompareTarget::ModRevision(op, c.value.as_u64().ok_or_else(|| bad("mod_revision"))?)
        }
        "exists" => CompareTarget::Exists(c.value.as_bool().ok_or_else(|| bad("exists"))?),
        other => {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("unknown compare target `{other}`"),
            ));
        }
    };
    Ok(Compare {
        key: key(&c.key)?,
        target,
    })
}

fn op(o: OpIn) -> ApiResult<TxnOp> {
    Ok(match o {
        OpIn::Put {
            key: k,
            value,
            ttl_ms,
        } => TxnOp::Put {
            key: key(&k)?,
            value: value.into_bytes(),
            ttl_ms,
        },
        OpIn::Delete { key: k } => TxnOp::Delete { key: key(&k)? },
        OpIn::Get { key: k } => TxnOp::Get { key: key(&k)? },
    })
}

fn result_json(r: OpResult) -> Value {
    match r {
        OpResult::Put { prev } => json!({"op": "put", "prev": prev.map(KvOut::from)}),
        OpResult::Delete { deleted } => json!({"op": "delete", "deleted": deleted}),
        OpResult::Get { kv } => json!({"op": "get", "kv": kv.map(KvOut::from)}),
        OpResult::Range { kvs } => {
            json!({"op": "range", "kvs": kvs.into_iter().map(KvOut::from).collect::<Vec<_>>()})
        }
    }
}

#[utoipa::path(
    post,
    path = "/admin/v1/kv/txn",
    operation_id = "kv_txn",
    tag = "kv",
    request_body = TxnIn,
    responses(
        (status = 200, description = "Applied: `success` when every compare held, else `failure`", body = shapes::TxnResult),
        (status = 400, description = "`invalid_request`: a bad compare or operation", body = ErrorBody),
    ),
)]
pub async fn txn(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiJson(body, _): ApiJson<TxnIn>,
) -> ApiResult<impl IntoResponse> {
    let resp = state.consensus.txn(body.into_txn()?).await?;
    Ok(Json(json!({
        "succeeded": resp.succeeded,
        "revision": resp.revision,
        "results": resp.results.into_iter().map(result_json).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchQuery {
    #[serde(default)]
    prefix: String,
    timeout_ms: Option<u64>,
}

/// Streams changes applied on this node, one JSON object per line, until
/// `timeout_ms` (default 30 s, at most 300 s) runs out.
#[utoipa::path(
    get,
    path = "/admin/v1/kv/watch",
    operation_id = "kv_watch",
    tag = "kv",
    params(("prefix" = Option<String>, Query, description = "Only keys starting with this"), ("timeout_ms" = Option<u64>, Query, description = "When the stream ends (default 30000, at most 300000)")),
    responses(
        (status = 200, description = "NDJSON, one line per change this node applies after the call", body = shapes::WatchEvent, content_type = "application/x-ndjson"),
        (status = 400, description = "`invalid_request`: an unknown query parameter", body = ErrorBody),
    ),
)]
pub async fn watch(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<WatchQuery>,
) -> Response {
    let timeout = Duration::from_millis(q.timeout_ms.unwrap_or(30_000).min(MAX_WATCH_MS));
    let mut rx = state.consensus.watch();
    let prefix = q.prefix.into_bytes();
    let (tx, body_rx) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(64);
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let event = tokio::select! {
                e = rx.recv() => e,
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tx.closed() => return,
            };
            let line = match event {
                Ok(ev) if ev.key.keyspace == KV_KEYSPACE && ev.key.key.starts_with(&prefix) => {
                    let kind = match ev.kind {
                        EventKind::Put => "put",
                        EventKind::Delete => "delete",
                        EventKind::Expire => "expire",
                    };
                    json!({"revision": ev.revision, "key": text(&ev.key.key), "kind": kind,
                           "value": ev.value.as_deref().map(text)})
                }
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    json!({"error": "lagged", "message": format!("{n} events were dropped; re-read and watch again")})
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            if tx.send(Ok(format!("{line}\n"))).await.is_err() {
                return;
            }
        }
    });
    let stream = futures::stream::unfold(body_rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|e| ApiError::internal(e).into_response())
}
