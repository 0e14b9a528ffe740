//! The `lockout` workload: failed logins for one user, spread over every
//! node at once, are checked at most as often as the lockout allows.
//!
//! One step (key `u<n>`): a fresh user is made through the admin API
//! (should that fail, the name is used anyway: unknown names are counted
//! the same way, so the login path does not reveal who exists); then
//! `attempts` browsers, each from its own address and spread over the
//! nodes, open the login form and all post a wrong password at once
//! (`attempt`). An answer is `checked` (the password was compared and
//! refused), `locked` (refused without a check), a `fail` (refused for
//! another reason, e.g. the per-address rate limit) or `info` (timeout,
//! 5xx: the attempt may have been admitted).
//!
//! `rsp` admits at most `max_failures` attempts per user and window
//! (docs/actors.md, "Brute-force lockout"; 5 per 15 minutes by default);
//! the bound travels in each invocation, so the checker
//! ([`crate::checker::lockout`]) needs no configuration.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::OpCtx;
use super::oidc::{PASSWORD, Rig, SubOp, TENANT};
use crate::history::EventType;
use crate::web::{Browser, Sent, form};

/// What the login page says to a wrong password, and to a locked account
/// (api/http/src/oidc/login.rs).
const BAD_CREDENTIALS: &str = "Invalid username or password.";
const LOCKED: &str = "is locked";

pub struct LockoutWorkload {
    bound: u32,
    attempts: usize,
    next: AtomicU64,
}

impl LockoutWorkload {
    pub fn new(bound: u32, attempts: usize) -> Self {
        Self {
            bound,
            attempts: attempts.max(1),
            next: AtomicU64::new(0),
        }
    }

    async fn attempt(&self, rig: &Rig, ctx: &OpCtx<'_>, key: &str, username: &str, node: usize) {
        let mut b = Browser::new(rig.source());
        let client = rig.client(ctx.worker).clone();
        let url = rig.authorize_url(node, &client, None, false);
        // The form first (not recorded: it changes nothing).
        let Sent::Reply(page) = b.get(&rig.web, &url).await else {
            return;
        };
        let (Some(csrf), Some(flow)) = (page.field("csrf_token"), page.field("flow")) else {
            return;
        };
        let op = SubOp::invoke(
            ctx.recorder,
            rig,
            "attempt",
            key,
            node,
            json!({"bound": self.bound}),
        );
        let wrong = format!("not {PASSWORD}");
        let body = form(&[
            ("csrf_token", &csrf),
            ("flow", &flow),
            ("username", username),
            ("password", &wrong),
        ]);
        let login = format!("{}/login", rig.issuer(node));
        let (kind, value, error) = match b.post_form(&rig.web, &login, body).await {
            Sent::Reply(r) if r.status == 200 && r.body.contains(BAD_CREDENTIALS) => {
                (EventType::Ok, json!("checked"), None)
            }
            Sent::Reply(r) if r.status == 429 && r.body.contains(LOCKED) => {
                (EventType::Ok, json!("locked"), None)
            }
            Sent::Reply(r) if r.status >= 500 => (
                EventType::Info,
                Value::Null,
                Some(format!("http_{}", r.status)),
            ),
            Sent::Reply(r) => (
                EventType::Fail,
                Value::Null,
                Some(format!("http_{}", r.status)),
            ),
            Sent::NotSent(e) => (EventType::Fail, Value::Null, Some(e)),
            Sent::Unknown(e) => (EventType::Info, Value::Null, Some(e)),
        };
        op.complete(kind, value, error);
    }

    pub async fn step(&self, rig: &Rig, ctx: &OpCtx<'_>, _rng: &mut StdRng) -> EventType {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let key = format!("u{n}");
        let username = format!("lock{n}-w{}", ctx.worker);
        let node = rig.nodes.index(ctx.client.node);
        let made = rig.nodes.admin[node]
            .post(
                &format!("/admin/v1/tenants/{TENANT}/users"),
                &json!({"username": username, "password": PASSWORD}),
            )
            .await
            .is_ok_and(|r| r.is_success());
        ctx.invoke("create-user", Some(&key), json!({"username": username}));
        ctx.complete(
            "create-user",
            Some(&key),
            &if made {
                crate::outcome::Outcome::Ok(())
            } else {
                crate::outcome::Outcome::Fail("not created; the name is used anyway".into())
            },
            |_| Value::Null,
        );
        let len = rig.nodes.len();
        let attempts = (0..self.attempts).map(|i| {
            let (key, username) = (&key, &username);
            async move {
                self.attempt(rig, ctx, key, username, (node + i) % len)
                    .await
            }
        });
        futures::future::join_all(attempts).await;
        EventType::Ok
    }
}
