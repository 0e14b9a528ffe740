//! The `create-use` workload: what one node acknowledged making, every
//! other node finds at once.
//!
//! One step (key `c<n>`) makes everything fresh and uses each thing on
//! another node than the one that made it, as soon as it is acknowledged:
//! 1. `create-tenant` on the worker's node A (`POST /admin/v1/tenants`);
//! 2. then at once, `create-user` on a node B ≠ A (`POST
//!    /admin/v1/tenants/{t}/users`) and `create-client` on a node K ≠ A
//!    (`POST .../clients`, confidential, `client_secret_basic`): both look
//!    the new tenant up;
//! 3. once the client is acknowledged, at once: `probe-client` on a node
//!    ≠ K (the token endpoint with the new client's credentials and a code
//!    that does not exist: `invalid_grant` says the client was found,
//!    `invalid_client` that it was not), and `authorize` on a node C ≠ B
//!    and ≠ K (a fresh browser's authorization request: the tenant and the
//!    client are looked up, the answer is the login form);
//! 4. once the user is acknowledged, `login` on C: the browser posts the
//!    form with the new username and password (the user is looked up by
//!    username); the answer is a redirect with a code;
//! 5. `redeem` of that code on a node ≠ C (token endpoint).
//!
//! A "not found" answer is a `fail` whose error names what was not found:
//! `tenant_not_found` (the admin API's 404, or a 404 at a tenant's
//! endpoint), `user_not_found` (the login form refusing the username and
//! password the user was made with), `client_not_found` (`invalid_client`
//! at the token endpoint, the authorization page's unknown client) and
//! `code_not_found` (`invalid_grant` for the code just issued). Timeouts,
//! 5xx answers and broken connections are `info`; no connection, a rate
//! limit or another 4xx is a `fail` with its code. The checker is
//! [`crate::checker::create_use`].

mod answers;

use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::OpCtx;
use super::oidc::{PASSWORD, REDIRECT, Rig, SubOp};
use crate::history::EventType;
use crate::web::{Browser, Sent, form, pkce};
use answers::{BAD_CREDENTIALS, classify_admin, page_answer, token_answer, unanswered};

/// A code no one was ever given.
const NO_SUCH_CODE: &str = "jepsen-create-use-no-such-code";

/// A client made in a step.
struct Made {
    id: String,
    secret: String,
}

/// A login form as a browser holds it: its cookies and hidden fields.
struct Form {
    browser: Browser,
    csrf: String,
    flow: String,
}

pub struct CreateUseWorkload {
    /// Tenant ids are `<prefix>-<n>`: unique per run, valid tenant ids.
    prefix: String,
    next: AtomicU64,
}

impl CreateUseWorkload {
    /// `run_prefix` names the run (e.g. `jepsen/<run id>`).
    pub fn new(run_prefix: &str) -> Self {
        Self {
            prefix: tenant_prefix(run_prefix),
            next: AtomicU64::new(0),
        }
    }

    pub async fn step(&self, rig: &Rig, ctx: &OpCtx<'_>, rng: &mut StdRng) -> EventType {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let key = format!("c{n}");
        let tenant = format!("{}-{n}", self.prefix);
        let username = format!("user{n}");
        let len = rig.nodes.len();
        let a = rig.nodes.index(ctx.client.node);
        let b = other(rng, len, &[a]);
        let k = other(rng, len, &[a]);
        let probe = other(rng, len, &[k]);
        let c = other(rng, len, &[b, k]);
        let d = other(rng, len, &[c]);
        let (verifier, challenge) = pkce(rng);
        let op = Op {
            rig,
            ctx,
            key: &key,
            tenant: &tenant,
        };

        let (kind, _) = op
            .admin(
                "create-tenant",
                a,
                "/admin/v1/tenants",
                json!({"id": tenant, "display_name": "Jepsen create-use"}),
            )
            .await;
        if kind != EventType::Ok {
            return kind;
        }
        // The user's branch says when it is made; the client's branch has
        // the login form open by then and posts it at once.
        let (made_tx, made_rx) = tokio::sync::oneshot::channel();
        let users = format!("/admin/v1/tenants/{tenant}/users");
        let user = async {
            let body = json!({"username": username, "password": PASSWORD});
            let (kind, _) = op.admin("create-user", b, &users, body).await;
            let _ = made_tx.send(kind);
        };
        let client_side = async {
            let Some(client) = op.create_client(k).await else {
                return EventType::Fail;
            };
            let sign_in = async {
                let Some(form) = op.authorize(c, &client, &challenge).await else {
                    return EventType::Fail;
                };
                match made_rx.await {
                    Ok(EventType::Ok) => {}
                    Ok(kind) => return kind,
                    Err(_) => return EventType::Fail,
                }
                let Some(code) = op.login(c, form, &username).await else {
                    return EventType::Fail;
                };
                op.redeem(d, &client, &code, &verifier).await
            };
            let (_, kind) = futures::future::join(op.probe(probe, &client), sign_in).await;
            kind
        };
        let (_, kind) = futures::future::join(user, client_side).await;
        kind
    }
}

/// A run prefix as the start of tenant ids: `[a-z0-9-]`, at most 48
/// characters (the unique end kept), starting with a letter or digit.
fn tenant_prefix(run_prefix: &str) -> String {
    let clean: String = run_prefix
        .chars()
        .map(|ch| match ch {
            'a'..='z' | '0'..='9' | '-' => ch,
            'A'..='Z' => ch.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    let tail = &clean[clean.len().saturating_sub(48)..];
    let tail = tail.trim_start_matches('-');
    if tail.is_empty() {
        "cu".to_string()
    } else {
        tail.to_string()
    }
}

/// A random node that is none of `not` (any node when all are excluded).
fn other(rng: &mut StdRng, len: usize, not: &[usize]) -> usize {
    let allowed: Vec<usize> = (0..len).filter(|i| !not.contains(i)).collect();
    if allowed.is_empty() {
        rng.random_range(0..len.max(1))
    } else {
        allowed[rng.random_range(0..allowed.len())]
    }
}

/// The operations of one step.
struct Op<'a> {
    rig: &'a Rig,
    ctx: &'a OpCtx<'a>,
    key: &'a str,
    tenant: &'a str,
}

impl Op<'_> {
    fn invoke(&self, f: &'static str, node: usize, value: Value) -> SubOp<'_> {
        SubOp::invoke(self.ctx.recorder, self.rig, f, self.key, node, value)
    }

    fn issuer(&self, node: usize) -> String {
        let http = &self.rig.nodes.http[node % self.rig.nodes.len()];
        format!("{http}/t/{}", self.tenant)
    }

    /// `POST path` of the admin API on `node`, recorded as `f`; returns
    /// how it ended and, when it succeeded, the answer's body.
    async fn admin(
        &self,
        f: &'static str,
        node: usize,
        path: &str,
        body: Value,
    ) -> (EventType, Value) {
        let op = self.invoke(f, node, json!({"tenant": self.tenant}));
        let answer = self.rig.nodes.admin[node].post(path, &body).await;
        let (kind, error) = classify_admin(&answer);
        let made = match (&answer, kind) {
            (Ok(r), EventType::Ok) => r.body.clone(),
            _ => Value::Null,
        };
        // Never a client secret in the history.
        let value = made
            .get("id")
            .or(made.get("client_id"))
            .cloned()
            .unwrap_or(Value::Null);
        op.complete(kind, value, error);
        (kind, made)
    }

    async fn create_client(&self, node: usize) -> Option<Made> {
        let body = json!({
            "client_id": "app",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "client_secret_basic",
        });
        let path = format!("/admin/v1/tenants/{}/clients", self.tenant);
        let (kind, made) = self.admin("create-client", node, &path, body).await;
        let secret = made.get("client_secret").and_then(Value::as_str);
        match (kind, made.get("client_id").and_then(Value::as_str), secret) {
            (EventType::Ok, Some(id), Some(secret)) => Some(Made {
                id: id.to_string(),
                secret: secret.to_string(),
            }),
            _ => None,
        }
    }

    /// `POST {issuer}/token` on `node` as `client`, from a fresh address
    /// (an unknown client id costs the caller's look-up budget).
    async fn token(&self, node: usize, client: &Made, params: &[(&str, &str)]) -> Sent {
        let url = format!("{}/token", self.issuer(node));
        let body = form(params);
        let (id, secret) = (client.id.clone(), client.secret.clone());
        self.rig
            .web
            .send(self.rig.source(), |c| {
                c.post(url)
                    .basic_auth(id, Some(secret))
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body)
            })
            .await
    }

    /// The new client at the token endpoint with a code that does not
    /// exist: `invalid_grant` means the client was found (`ok`, `known`).
    async fn probe(&self, node: usize, client: &Made) -> EventType {
        let op = self.invoke("probe-client", node, Value::Null);
        let sent = self
            .token(
                node,
                client,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", NO_SUCH_CODE),
                    ("redirect_uri", REDIRECT),
                ],
            )
            .await;
        let (kind, value, error) = match &sent {
            Sent::Reply(r) if r.status == 400 && r.error_code() == "invalid_grant" => {
                (EventType::Ok, json!("known"), None)
            }
            Sent::Reply(r) if r.status == 200 => (
                EventType::Fail,
                Value::Null,
                Some("a code that does not exist was accepted".into()),
            ),
            _ => token_answer(&sent, "client_not_found"),
        };
        op.complete(kind, value, error)
    }

    /// A fresh browser's authorization request on `node` (the tenant and
    /// the client are looked up): the login form, recorded as `authorize`.
    async fn authorize(&self, node: usize, client: &Made, challenge: &str) -> Option<Form> {
        let op = self.invoke("authorize", node, json!({"client": client.id}));
        let mut browser = Browser::new(self.rig.source());
        let mut url = url::Url::parse(&format!("{}/authorize", self.issuer(node)))
            .expect("node URLs are valid");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", "openid")
            .append_pair("state", "jepsen")
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        let page = match browser.get(&self.rig.web, url.as_str()).await {
            Sent::Reply(r) => r,
            other => {
                let (kind, value, error) = unanswered(&other);
                op.complete(kind, value, error);
                return None;
            }
        };
        match (page.status, page.field("csrf_token"), page.field("flow")) {
            (200, Some(csrf), Some(flow)) => {
                op.complete(EventType::Ok, json!("form"), None);
                Some(Form {
                    browser,
                    csrf,
                    flow,
                })
            }
            _ => {
                let (kind, value, error) = page_answer(&page);
                op.complete(kind, value, error);
                None
            }
        }
    }

    /// Posts the login form on `node` with the new user's name and
    /// password (the user is looked up by username); the code.
    async fn login(&self, node: usize, opened: Form, username: &str) -> Option<String> {
        let op = self.invoke("login", node, json!({"username": username}));
        let Form {
            mut browser,
            csrf,
            flow,
        } = opened;
        let body = form(&[
            ("csrf_token", &csrf),
            ("flow", &flow),
            ("username", username),
            ("password", PASSWORD),
        ]);
        let url = format!("{}/login", self.issuer(node));
        let (kind, value, error) = match browser.post_form(&self.rig.web, &url, body).await {
            Sent::Reply(r) => match (r.status, r.param("code")) {
                (302 | 303, Some(code)) => (EventType::Ok, json!(code), None),
                (200, _) if r.body.contains(BAD_CREDENTIALS) => (
                    EventType::Fail,
                    json!(BAD_CREDENTIALS),
                    Some("user_not_found".into()),
                ),
                _ => page_answer(&r),
            },
            other => unanswered(&other),
        };
        let code = match &value {
            Value::String(code) if kind == EventType::Ok => Some(code.clone()),
            _ => None,
        };
        // The code itself stays out of the history.
        let shown = if code.is_some() { json!("code") } else { value };
        op.complete(kind, shown, error);
        code
    }

    /// Redeems the code the login gave.
    async fn redeem(&self, node: usize, client: &Made, code: &str, verifier: &str) -> EventType {
        let op = self.invoke("redeem", node, Value::Null);
        let sent = self
            .token(
                node,
                client,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", verifier),
                ],
            )
            .await;
        let (kind, value, error) = match &sent {
            Sent::Reply(r) if r.status == 200 => (EventType::Ok, Value::Null, None),
            Sent::Reply(r) if r.status == 400 && r.error_code() == "invalid_grant" => (
                EventType::Fail,
                json!("invalid_grant"),
                Some("code_not_found".into()),
            ),
            _ => token_answer(&sent, "client_not_found"),
        };
        op.complete(kind, value, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn tenant_ids_from_run_prefixes_are_valid_and_keep_the_unique_end() {
        let p = tenant_prefix("jepsen/1765000000-create-use-s7-4242");
        assert_eq!(p, "jepsen-1765000000-create-use-s7-4242");
        let long = tenant_prefix(&format!("Jepsen/{}-end", "x".repeat(80)));
        assert!(long.len() <= 48 && long.ends_with("-end"), "{long}");
        for p in [p, long, tenant_prefix("///")] {
            let id = format!("{p}-123456");
            assert!(id.len() <= 62, "{id}");
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            );
            assert!(id.starts_with(|c: char| c.is_ascii_alphanumeric()), "{id}");
        }
    }

    #[test]
    fn another_node_is_never_an_excluded_one_while_one_remains() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..200 {
            let n = other(&mut rng, 3, &[0, 2]);
            assert_eq!(n, 1);
            assert_ne!(other(&mut rng, 3, &[1]), 1);
            assert!(other(&mut rng, 2, &[0, 1]) < 2);
            assert_eq!(other(&mut rng, 1, &[0]), 0);
        }
    }
}
