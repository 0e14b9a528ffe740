//! What the OIDC workloads share: the tenant, clients and users they make
//! through the admin API before the clients start ([`Rig::prepare`]), a
//! browser login that ends in an authorization code ([`Rig::code`]), the
//! token endpoint ([`Rig::token`]), and sub-operations ([`SubOp`]) for the
//! concurrent requests one step makes.
//!
//! Each worker has its own confidential client (the token endpoint's rate
//! limit is per client) and its own user; every browser connects from its
//! own loopback address (the login form's rate limit is per address).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::Rng;
use rsp_chaos::AdminClient;
use serde_json::{Value, json};

use super::OpCtx;
use crate::history::{EventType, Process, Record, Recorder};
use crate::outcome::Outcome;
use crate::web::{Browser, Reply, Sent, Web, form, pkce};

pub const TENANT: &str = "jepsen";
pub const REDIRECT: &str = "http://127.0.0.1:9/cb";
pub const PASSWORD: &str = "jepsen password 1234";
/// Process ids of sub-operations start here (workers use small ones).
const SUB_PROCESS_BASE: u64 = 1 << 32;

/// The nodes a workload may talk to: ids, HTTP bases and admin clients, in
/// the same order.
#[derive(Clone)]
pub struct Nodes {
    pub ids: Vec<u64>,
    pub http: Vec<String>,
    pub admin: Vec<AdminClient>,
}

impl Nodes {
    /// The index of node `id` (0 when unknown).
    pub fn index(&self, id: u64) -> usize {
        self.ids.iter().position(|n| *n == id).unwrap_or(0)
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// A worker's confidential client.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub id: String,
    pub secret: String,
}

/// A worker's user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
}

/// Everything made before the run.
pub struct Rig {
    pub nodes: Nodes,
    pub web: Web,
    pub clients: Vec<OAuthClient>,
    pub users: Vec<User>,
    next_process: AtomicU64,
    next_source: AtomicU64,
}

/// Tries `f` on each node in turn until it succeeds or `deadline` passes.
pub async fn on_any_node<T, F, Fut>(nodes: &Nodes, deadline: Instant, what: &str, f: F) -> Result<T>
where
    F: Fn(AdminClient) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut turn = 0usize;
    loop {
        let admin = nodes.admin[turn % nodes.len()].clone();
        turn += 1;
        match f(admin).await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => return Err(e.context(what.to_string())),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

impl Rig {
    /// Makes the tenant, one client and one user per worker.
    pub async fn prepare(
        nodes: Nodes,
        workers: usize,
        op_timeout: Duration,
        grants: &[&str],
    ) -> Result<Rig> {
        anyhow::ensure!(!nodes.is_empty(), "no nodes");
        let deadline = Instant::now() + Duration::from_secs(60);
        on_any_node(
            &nodes,
            deadline,
            "creating the tenant",
            |admin| async move {
                let r = admin.create_tenant(TENANT, "Jepsen").await?;
                if r.status == 409 {
                    return Ok(());
                }
                r.success().map(|_| ())
            },
        )
        .await?;
        let attempt = AtomicU64::new(0);
        let mut clients = Vec::new();
        let mut users = Vec::new();
        for w in 0..workers {
            let client = on_any_node(&nodes, deadline, "creating a client", |admin| {
                // A fresh id per attempt: an attempt whose answer was lost
                // may have created its client, whose secret we never saw.
                let id = format!("w{w}-{}", attempt.fetch_add(1, Ordering::Relaxed));
                async move {
                    let body = json!({
                        "client_id": id,
                        "client_name": format!("jepsen worker {w}"),
                        "redirect_uris": [REDIRECT],
                        "grant_types": grants,
                        "token_endpoint_auth_method": "client_secret_basic",
                    });
                    let made = admin
                        .post(&format!("/admin/v1/tenants/{TENANT}/clients"), &body)
                        .await?
                        .success()?;
                    let secret = made.body["client_secret"]
                        .as_str()
                        .context("no client_secret")?
                        .to_string();
                    Ok(OAuthClient { id, secret })
                }
            })
            .await?;
            clients.push(client);
            let user = on_any_node(&nodes, deadline, "creating a user", |admin| {
                let username = format!("user{w}-{}", attempt.fetch_add(1, Ordering::Relaxed));
                async move {
                    let made = admin
                        .post(
                            &format!("/admin/v1/tenants/{TENANT}/users"),
                            &json!({"username": username, "password": PASSWORD}),
                        )
                        .await?
                        .success()?;
                    let id = made.body["id"].as_str().context("no user id")?.to_string();
                    Ok(User { id, username })
                }
            })
            .await?;
            users.push(user);
        }
        Ok(Rig {
            clients,
            users,
            ..Rig::bare(nodes, op_timeout)
        })
    }

    /// A rig that makes nothing: the nodes, the browsers' HTTP clients and
    /// the sub-operations' process ids, for a workload that makes its own
    /// tenant, client and user in each step (`create-use`). It has no
    /// worker clients or users: [`Rig::client`] and [`Rig::user`] are not
    /// for it.
    pub fn bare(nodes: Nodes, op_timeout: Duration) -> Rig {
        Rig {
            nodes,
            web: Web::new(op_timeout),
            clients: Vec::new(),
            users: Vec::new(),
            next_process: AtomicU64::new(SUB_PROCESS_BASE),
            next_source: AtomicU64::new(0),
        }
    }

    /// A process id no one else uses.
    pub fn process(&self) -> Process {
        Process::Client(self.next_process.fetch_add(1, Ordering::Relaxed))
    }

    /// A source address for a new browser (cycling through many).
    pub fn source(&self) -> IpAddr {
        Web::source(self.next_source.fetch_add(1, Ordering::Relaxed))
    }

    pub fn client(&self, worker: usize) -> &OAuthClient {
        &self.clients[worker % self.clients.len()]
    }

    pub fn user(&self, worker: usize) -> &User {
        &self.users[worker % self.users.len()]
    }

    /// `http://node/t/jepsen`.
    pub fn issuer(&self, node: usize) -> String {
        format!("{}/t/{TENANT}", self.nodes.http[node % self.nodes.len()])
    }

    /// An authorization request URL (PKCE S256 when `challenge` is given).
    pub fn authorize_url(
        &self,
        node: usize,
        client: &OAuthClient,
        challenge: Option<&str>,
        prompt_none: bool,
    ) -> String {
        let mut url = url::Url::parse(&format!("{}/authorize", self.issuer(node)))
            .expect("node URLs are valid");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &client.id)
                .append_pair("redirect_uri", REDIRECT)
                .append_pair("scope", "openid")
                .append_pair("state", "jepsen");
            if let Some(c) = challenge {
                q.append_pair("code_challenge", c)
                    .append_pair("code_challenge_method", "S256");
            }
            if prompt_none {
                q.append_pair("prompt", "none");
            }
        }
        url.into()
    }

    /// An authorization code through the browser on `node`: the
    /// authorization request, then (without a live session) the login form
    /// with its CSRF field and cookie, username and password, and the
    /// redirect back with the code. Returns the code and its PKCE verifier.
    pub async fn code(
        &self,
        browser: &mut Browser,
        node: usize,
        worker: usize,
        rng: &mut impl Rng,
    ) -> Result<(String, String)> {
        let (verifier, challenge) = pkce(rng);
        let client = self.client(worker);
        let url = self.authorize_url(node, client, Some(&challenge), false);
        let page = reply(browser.get(&self.web, &url).await, "authorize")?;
        let done = match page.status {
            302 | 303 => page,
            200 => {
                let csrf = page.field("csrf_token").context("no csrf_token field")?;
                let flow = page.field("flow").context("no flow field")?;
                let user = self.user(worker);
                let body = form(&[
                    ("csrf_token", &csrf),
                    ("flow", &flow),
                    ("username", &user.username),
                    ("password", PASSWORD),
                ]);
                let login = format!("{}/login", self.issuer(node));
                reply(browser.post_form(&self.web, &login, body).await, "login")?
            }
            s => bail!("authorize answered {s}"),
        };
        match done.param("code") {
            Some(code) if matches!(done.status, 302 | 303) => Ok((code, verifier)),
            _ => bail!(
                "no code: {} {}",
                done.status,
                done.param("error").unwrap_or_default()
            ),
        }
    }

    /// [`Rig::code`] recorded as the operation `authorize` of the worker's
    /// process (not judged by the checkers; its latency is reported).
    pub async fn code_op(
        &self,
        ctx: &OpCtx<'_>,
        key: &str,
        browser: &mut Browser,
        rng: &mut impl Rng,
    ) -> Option<(String, String)> {
        let node = self.nodes.index(ctx.client.node);
        let fresh = browser.cookies.is_empty();
        ctx.invoke("authorize", Some(key), json!({"login": fresh}));
        let got = self.code(browser, node, ctx.worker, rng).await;
        let outcome = match &got {
            Ok(_) => Outcome::Ok(()),
            Err(e) => Outcome::Fail(format!("{e:#}")),
        };
        ctx.complete("authorize", Some(key), &outcome, |_| Value::Null);
        got.ok()
    }

    /// Redeems `code` on `node` (grant `authorization_code`, PKCE).
    pub async fn redeem(&self, node: usize, worker: usize, code: &str, verifier: &str) -> Sent {
        self.token(
            node,
            worker,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await
    }

    /// `POST {issuer}/token` on `node` as the worker's client.
    pub async fn token(&self, node: usize, worker: usize, params: &[(&str, &str)]) -> Sent {
        let client = self.client(worker).clone();
        let url = format!("{}/token", self.issuer(node));
        let body = form(params);
        // Token requests come from one address per node (the token
        // endpoint limits per client, not per address).
        let from = Web::source(10_000 + node as u64);
        self.web
            .send(from, |c| {
                c.post(url)
                    .basic_auth(&client.id, Some(&client.secret))
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body)
            })
            .await
    }
}

fn reply(sent: Sent, what: &str) -> Result<Reply> {
    match sent {
        Sent::Reply(r) => Ok(r),
        Sent::NotSent(e) | Sent::Unknown(e) => bail!("{what}: {e}"),
    }
}

/// How a state-changing OAuth request ended, for the history: 200 is ok;
/// any other 4xx is a refusal (fail, with the OAuth `error`); a 5xx, a
/// timeout or a broken connection is indeterminate (info); no connection
/// is a fail.
pub fn classify_oauth(sent: &Sent) -> (EventType, Option<String>) {
    match sent {
        Sent::Reply(r) if r.status == 200 => (EventType::Ok, None),
        Sent::Reply(r) if r.status >= 500 => (EventType::Info, Some(r.error_code())),
        Sent::Reply(r) => (EventType::Fail, Some(r.error_code())),
        Sent::NotSent(e) => (EventType::Fail, Some(e.clone())),
        Sent::Unknown(e) => (EventType::Info, Some(e.clone())),
    }
}

/// One operation of a step, under its own process.
pub struct SubOp<'a> {
    recorder: &'a Recorder,
    process: Process,
    f: &'static str,
    key: String,
    node: u64,
}

impl<'a> SubOp<'a> {
    /// Records the invocation.
    pub fn invoke(
        recorder: &'a Recorder,
        rig: &Rig,
        f: &'static str,
        key: &str,
        node: usize,
        value: Value,
    ) -> Self {
        let op = SubOp {
            recorder,
            process: rig.process(),
            f,
            key: key.to_string(),
            node: rig.nodes.ids[node % rig.nodes.len()],
        };
        recorder.record(
            Record::new(op.process.clone(), EventType::Invoke, f)
                .key(key)
                .value(value)
                .node(op.node),
        );
        op
    }

    /// Records the completion.
    pub fn complete(self, kind: EventType, value: Value, error: Option<String>) -> EventType {
        let mut r = Record::new(self.process, kind, self.f)
            .key(self.key)
            .value(value)
            .node(self.node);
        r.error = error;
        self.recorder.record(r);
        kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(status: u16, body: &str) -> Sent {
        Sent::Reply(Reply {
            status,
            location: None,
            set_cookies: vec![],
            body: body.to_string(),
        })
    }

    #[test]
    fn oauth_answers_are_classified() {
        assert_eq!(classify_oauth(&r(200, "{}")).0, EventType::Ok);
        assert_eq!(
            classify_oauth(&r(400, r#"{"error":"invalid_grant"}"#)),
            (EventType::Fail, Some("invalid_grant".into()))
        );
        assert_eq!(classify_oauth(&r(503, "")).0, EventType::Info);
        assert_eq!(classify_oauth(&r(504, "")).0, EventType::Info);
        assert_eq!(
            classify_oauth(&Sent::NotSent("connect_failed".into())).0,
            EventType::Fail
        );
        assert_eq!(
            classify_oauth(&Sent::Unknown("timeout".into())).0,
            EventType::Info
        );
    }
}
