//! The `refresh` workload: refresh-token rotation with reuse detection
//! never lets two holders keep a family alive.
//!
//! One step opens a family (key `f<n>`): a code through the browser, then
//! its redemption (`open`, which hands out the first refresh token). Then:
//! 1. zero to two plain rotations from one node at a time (`rotate`);
//! 2. a race: the current token presented at once from several nodes, as
//!    a thief and the rightful client would (`rotate`, `race: true`): at
//!    most one may succeed, and the others detect the reuse and revoke the
//!    family;
//! 3. a probe: the newest token any rotation handed out, presented once
//!    more (`rotate`, `probe: true`); after a reuse was detected it must be
//!    refused.
//!
//! Every token the workload holds has a label (`f<n>.t<k>`); a rotation's
//! invocation names the token presented and its `ok` the token issued.
//! The checker is [`crate::checker::refresh`].

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::OpCtx;
use super::oidc::{Rig, SubOp, classify_oauth};
use crate::history::EventType;
use crate::web::{Browser, Sent};

pub struct RefreshWorkload {
    redeemers: usize,
    next: AtomicU64,
}

/// The tokens of one family, labelled.
struct Family {
    key: String,
    tokens: Mutex<Vec<(String, String)>>,
}

impl Family {
    /// Keeps `token`; returns its label.
    fn hold(&self, token: String) -> String {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let label = format!("{}.t{}", self.key, tokens.len());
        tokens.push((label.clone(), token));
        label
    }

    fn newest(&self) -> Option<(String, String)> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.last().cloned()
    }
}

fn refresh_token(sent: &Sent) -> Option<String> {
    match sent {
        Sent::Reply(r) if r.status == 200 => r
            .json()
            .get("refresh_token")
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

impl RefreshWorkload {
    pub fn new(redeemers: usize) -> Self {
        Self {
            redeemers: redeemers.max(2),
            next: AtomicU64::new(0),
        }
    }

    /// Presents `(label, token)` on `node`; records the rotation.
    async fn rotate(
        &self,
        rig: &Rig,
        ctx: &OpCtx<'_>,
        family: &Family,
        node: usize,
        presented: &(String, String),
        how: Value,
    ) -> (EventType, Option<String>) {
        let mut input = json!({"presented": presented.0});
        if let (Some(i), Some(h)) = (input.as_object_mut(), how.as_object()) {
            i.extend(h.clone());
        }
        let op = SubOp::invoke(ctx.recorder, rig, "rotate", &family.key, node, input);
        let sent = rig
            .token(
                node,
                ctx.worker,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &presented.1),
                ],
            )
            .await;
        let (kind, error) = classify_oauth(&sent);
        let issued = refresh_token(&sent);
        let (kind, error) = match (kind, &issued) {
            (EventType::Ok, None) => (EventType::Info, Some("no refresh_token".to_string())),
            other => (other.0, error),
        };
        let value = match issued {
            Some(t) if kind == EventType::Ok => json!({"issued": family.hold(t)}),
            _ => Value::Null,
        };
        let label = value
            .get("issued")
            .and_then(Value::as_str)
            .map(str::to_string);
        op.complete(kind, value, error);
        (kind, label)
    }

    pub async fn step(&self, rig: &Rig, ctx: &OpCtx<'_>, rng: &mut StdRng) -> EventType {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let family = Family {
            key: format!("f{n}"),
            tokens: Mutex::default(),
        };
        let mut browser = Browser::new(rig.source());
        let Some((code, verifier)) = rig.code_op(ctx, &family.key, &mut browser, rng).await else {
            return EventType::Fail;
        };
        let node = rig.nodes.index(ctx.client.node);
        let op = SubOp::invoke(ctx.recorder, rig, "open", &family.key, node, Value::Null);
        let sent = rig.redeem(node, ctx.worker, &code, &verifier).await;
        let (kind, error) = classify_oauth(&sent);
        let Some(first) = refresh_token(&sent).filter(|_| kind == EventType::Ok) else {
            op.complete(
                if kind == EventType::Ok {
                    EventType::Info
                } else {
                    kind
                },
                Value::Null,
                error,
            );
            return EventType::Fail;
        };
        let label = family.hold(first);
        op.complete(EventType::Ok, json!({"issued": label}), None);

        let len = rig.nodes.len();
        for _ in 0..rng.random_range(0..=2) {
            let Some(current) = family.newest() else {
                break;
            };
            let target = rng.random_range(0..len);
            if self
                .rotate(rig, ctx, &family, target, &current, json!({}))
                .await
                .0
                != EventType::Ok
            {
                return EventType::Fail;
            }
        }
        let Some(current) = family.newest() else {
            return EventType::Fail;
        };
        let first = rng.random_range(0..len);
        let racers = self.redeemers.min(len.max(2));
        let race = (0..racers).map(|i| {
            let (family, current) = (&family, &current);
            async move {
                self.rotate(
                    rig,
                    ctx,
                    family,
                    (first + i) % len,
                    current,
                    json!({"race": true}),
                )
                .await
            }
        });
        futures::future::join_all(race).await;
        if let Some(newest) = family.newest() {
            let target = rng.random_range(0..len);
            self.rotate(rig, ctx, &family, target, &newest, json!({"probe": true}))
                .await;
        }
        EventType::Ok
    }
}
