//! The `codes` workload: each OAuth authorization code is redeemed at most
//! once, through the real token endpoint.
//!
//! One step: the worker's browser gets a code on its node through the
//! authorization endpoint (every [`LOGIN_EVERY`]-th code through the full
//! login form; the others ride the browser's session), then the code is
//! redeemed at once from several nodes (`redeem`, key `c<n>`), each
//! redemption its own process. The checker ([`crate::checker::codes`])
//! counts the successful redemptions of every code.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::OpCtx;
use super::oidc::{Rig, SubOp, classify_oauth};
use crate::history::EventType;
use crate::web::{Browser, Sent};

/// One code in this many starts from an empty cookie jar (a full login).
pub const LOGIN_EVERY: u64 = 3;

pub struct CodesWorkload {
    redeemers: usize,
    next: AtomicU64,
    browsers: Mutex<HashMap<usize, Browser>>,
}

impl CodesWorkload {
    pub fn new(redeemers: usize) -> Self {
        Self {
            redeemers: redeemers.max(1),
            next: AtomicU64::new(0),
            browsers: Mutex::default(),
        }
    }

    fn browsers(&self) -> std::sync::MutexGuard<'_, HashMap<usize, Browser>> {
        self.browsers.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub async fn step(&self, rig: &Rig, ctx: &OpCtx<'_>, rng: &mut StdRng) -> EventType {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let key = format!("c{n}");
        let mut browser = self
            .browsers()
            .remove(&ctx.worker)
            .unwrap_or_else(|| Browser::new(rig.source()));
        if n.is_multiple_of(LOGIN_EVERY) {
            browser.cookies.clear();
        }
        let got = rig.code_op(ctx, &key, &mut browser, rng).await;
        self.browsers().insert(ctx.worker, browser);
        let Some((code, verifier)) = got else {
            return EventType::Fail;
        };
        let first = rng.random_range(0..rig.nodes.len());
        let redeemers = self.redeemers.min(rig.nodes.len().max(1)).max(1);
        let redemptions = (0..redeemers).map(|i| {
            let target = (first + i) % rig.nodes.len();
            let (code, verifier, key) = (&code, &verifier, &key);
            async move {
                let op = SubOp::invoke(ctx.recorder, rig, "redeem", key, target, Value::Null);
                let sent = rig.redeem(target, ctx.worker, code, verifier).await;
                let (kind, error) = classify_oauth(&sent);
                let value = match (&sent, kind) {
                    (Sent::Reply(r), EventType::Ok) => {
                        json!({"access_token": r.json().get("access_token").is_some()})
                    }
                    _ => Value::Null,
                };
                op.complete(kind, value, error)
            }
        });
        let kinds = futures::future::join_all(redemptions).await;
        if kinds.contains(&EventType::Ok) {
            EventType::Ok
        } else {
            EventType::Fail
        }
    }
}
