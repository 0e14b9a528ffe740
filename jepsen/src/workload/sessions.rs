//! The `sessions` workload: a revoked session is never accepted after the
//! revoke was acknowledged.
//!
//! One step (key `s<n>`): a browser signs in as the worker's user through
//! the login form and redeems the code on its node; the ID token's `sid`
//! names the session (`login`). An administrator lists the user's sessions
//! on some node (`list`: the new one must be there, whichever node it was
//! made through). Then, at once:
//! - one validator per node presents the session cookie again and again
//!   (`validate`): `GET authorize?prompt=none`, which answers with a code
//!   while the session lives and `login_required` once it does not: the
//!   way a relying party checks a session silently;
//! - after a short random delay an administrator ends the session through
//!   the admin API on some node (`revoke`): by its `sid`, or by signing the
//!   user out everywhere.
//!
//! Validators stop a little after the revoke answered. A validation is a
//! read: `ok` only when the answer says accepted or rejected, `fail`
//! otherwise. The checker is [`crate::checker::sessions`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::OpCtx;
use super::oidc::{Rig, SubOp, TENANT, classify_oauth};
use crate::history::EventType;
use crate::web::{Browser, Sent, jwt_claims};

/// How long validators go on after the revoke answered.
const AFTER_REVOKE: Duration = Duration::from_millis(400);

pub struct SessionsWorkload {
    next: AtomicU64,
}

impl SessionsWorkload {
    pub fn new() -> Self {
        Self {
            next: AtomicU64::new(0),
        }
    }

    /// Signs in and learns the session's `sid`; recorded as `login`.
    async fn login(
        &self,
        rig: &Rig,
        ctx: &OpCtx<'_>,
        key: &str,
        browser: &mut Browser,
        rng: &mut StdRng,
    ) -> Option<String> {
        let (code, verifier) = rig.code_op(ctx, key, browser, rng).await?;
        let node = rig.nodes.index(ctx.client.node);
        let op = SubOp::invoke(ctx.recorder, rig, "login", key, node, Value::Null);
        let sent = rig.redeem(node, ctx.worker, &code, &verifier).await;
        let (kind, error) = classify_oauth(&sent);
        let sid = match &sent {
            Sent::Reply(r) if kind == EventType::Ok => r
                .json()
                .get("id_token")
                .and_then(Value::as_str)
                .and_then(jwt_claims)
                .and_then(|c| c.get("sid").and_then(Value::as_str).map(str::to_string)),
            _ => None,
        };
        match &sid {
            Some(sid) => op.complete(EventType::Ok, json!({"sid": sid}), None),
            None if kind == EventType::Ok => {
                op.complete(EventType::Fail, Value::Null, Some("no sid".into()))
            }
            None => op.complete(kind, Value::Null, error),
        };
        sid
    }

    async fn validate(rig: &Rig, ctx: &OpCtx<'_>, key: &str, node: usize, browser: &Browser) {
        let mut b = browser.clone();
        let client = rig.client(ctx.worker).clone();
        let url = rig.authorize_url(node, &client, None, true);
        let op = SubOp::invoke(ctx.recorder, rig, "validate", key, node, Value::Null);
        let sent = b.get(&rig.web, &url).await;
        let (kind, value, error) = match &sent {
            Sent::Reply(r) if matches!(r.status, 302 | 303) => {
                match (r.param("code"), r.param("error")) {
                    (Some(_), _) => (EventType::Ok, json!("accepted"), None),
                    (None, Some(e)) if e == "login_required" => {
                        (EventType::Ok, json!("rejected"), None)
                    }
                    (None, e) => (EventType::Fail, Value::Null, e),
                }
            }
            Sent::Reply(r) => (
                EventType::Fail,
                Value::Null,
                Some(format!("http_{}", r.status)),
            ),
            Sent::NotSent(e) | Sent::Unknown(e) => (EventType::Fail, Value::Null, Some(e.clone())),
        };
        op.complete(kind, value, error);
    }

    /// `GET /admin/v1/tenants/{t}/users/{id}/sessions` on `node`: whether
    /// the new session is listed (a read; `ok` value `true` / `false`).
    async fn list(rig: &Rig, ctx: &OpCtx<'_>, key: &str, sid: &str, node: usize) {
        let path = format!(
            "/admin/v1/tenants/{TENANT}/users/{}/sessions",
            rig.user(ctx.worker).id
        );
        let op = SubOp::invoke(ctx.recorder, rig, "list", key, node, Value::Null);
        let (kind, value, error) = match rig.nodes.admin[node].get(&path).await {
            Ok(r) if r.status == 200 => match r.body.as_array() {
                Some(list) => {
                    let found = list.iter().any(|s| s["id"].as_str() == Some(sid));
                    (EventType::Ok, json!(found), None)
                }
                None => (EventType::Fail, Value::Null, Some("not a list".into())),
            },
            Ok(r) => (
                EventType::Fail,
                Value::Null,
                Some(format!("http_{}", r.status)),
            ),
            Err(e) => (
                EventType::Fail,
                Value::Null,
                Some(format!("{}", e.root_cause())),
            ),
        };
        op.complete(kind, value, error);
    }

    async fn revoke(rig: &Rig, ctx: &OpCtx<'_>, key: &str, sid: &str, node: usize, all: bool) {
        let path = if all {
            format!(
                "/admin/v1/tenants/{TENANT}/users/{}/sessions",
                rig.user(ctx.worker).id
            )
        } else {
            format!("/admin/v1/tenants/{TENANT}/sessions/{sid}")
        };
        let how = if all { "user" } else { "sid" };
        let op = SubOp::invoke(ctx.recorder, rig, "revoke", key, node, json!({"by": how}));
        let (kind, error) = match rig.nodes.admin[node].delete(&path).await {
            Ok(r) if r.status == 200 => (EventType::Ok, None),
            Ok(r) if r.status >= 500 => (
                EventType::Info,
                Some(r.error_code().unwrap_or("http_5xx").to_string()),
            ),
            Ok(r) => (
                EventType::Fail,
                Some(
                    r.error_code()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("http_{}", r.status)),
                ),
            ),
            Err(e) => {
                let sent = e.chain().any(|c| {
                    c.downcast_ref::<reqwest::Error>()
                        .is_some_and(|r| r.is_connect())
                });
                if sent {
                    (EventType::Fail, Some("connect_failed".into()))
                } else {
                    (EventType::Info, Some(format!("{}", e.root_cause())))
                }
            }
        };
        op.complete(kind, Value::Null, error);
    }

    pub async fn step(&self, rig: &Rig, ctx: &OpCtx<'_>, rng: &mut StdRng) -> EventType {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let key = format!("s{n}");
        let mut browser = Browser::new(rig.source());
        let Some(sid) = self.login(rig, ctx, &key, &mut browser, rng).await else {
            return EventType::Fail;
        };
        let len = rig.nodes.len();
        Self::list(rig, ctx, &key, &sid, rng.random_range(0..len)).await;
        let done = AtomicBool::new(false);
        let delay = Duration::from_millis(rng.random_range(50..400));
        let target = rng.random_range(0..len);
        let all = rng.random_bool(0.3);
        let seeds: Vec<u64> = (0..len).map(|_| rng.random()).collect();
        let validators = (0..len).map(|node| {
            let (browser, key, done) = (&browser, &key, &done);
            let mut pace = StdRng::seed_from_u64(seeds[node]);
            async move {
                while !done.load(Ordering::Relaxed) {
                    Self::validate(rig, ctx, key, node, browser).await;
                    tokio::time::sleep(Duration::from_millis(pace.random_range(5..40))).await;
                }
            }
        });
        let revoker = async {
            tokio::time::sleep(delay).await;
            Self::revoke(rig, ctx, &key, &sid, target, all).await;
            tokio::time::sleep(AFTER_REVOKE).await;
            done.store(true, Ordering::Relaxed);
        };
        futures::future::join(futures::future::join_all(validators), revoker).await;
        EventType::Ok
    }
}

impl Default for SessionsWorkload {
    fn default() -> Self {
        Self::new()
    }
}
