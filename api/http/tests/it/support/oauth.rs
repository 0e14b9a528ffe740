//! Shared set-up of the `oauth_*` tests: in-process consensus nodes
//! (`TestCluster`), one `AppState` per node sharing one KEK, and helpers that
//! drive the HTTP app with `tower::ServiceExt::oneshot`.

#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use rsp_api::AppState;
use rsp_consensus::testing::TestCluster;
use rsp_consensus::{Clock, ManualClock};
use rsp_identity::Identity;
use rsp_identity::clients::NewClient;
use rsp_identity::crypto::{Kek, KekCell};
use rsp_identity::oauth::codes::CodeGrant;
use rsp_identity::oauth::{OidcConfig, OidcServices};
use rsp_identity::passwords::PasswordHasher;
use rsp_identity::users::NewUser;
use serde_json::Value;
use sha2::Digest;
use tower::ServiceExt;
use zeroize::Zeroizing;

pub const PUBLIC_URL: &str = "http://127.0.0.1:8080";
pub const REDIRECT: &str = "https://app.example.com/cb";

pub fn issuer(tenant: &str) -> String {
    format!("{PUBLIC_URL}/t/{tenant}")
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub struct Env {
    pub cluster: TestCluster,
    pub states: Vec<AppState>,
    pub apps: Vec<axum::Router>,
}

/// An answer: status, headers and the body as JSON (or a JSON string).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    pub fn str(&self, field: &str) -> String {
        self.body[field].as_str().unwrap_or("").to_string()
    }
}

/// A client as the tests see it.
#[derive(Clone)]
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
}

impl TestClient {
    /// `client_secret_basic` credentials.
    pub fn basic(&self) -> String {
        let secret = self.secret.as_deref().unwrap_or("");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{secret}", self.id))
        )
    }
}

pub struct ClientSpec<'a> {
    pub id: &'a str,
    pub method: &'a str,
    pub grants: &'a [&'a str],
    pub scopes: &'a [&'a str],
    pub alg: Option<&'a str>,
    pub access_alg: Option<&'a str>,
    pub jwks: Option<JwkSet>,
    pub refresh_absolute_lifetime_secs: Option<u64>,
}

impl<'a> ClientSpec<'a> {
    pub fn new(id: &'a str, method: &'a str, grants: &'a [&'a str]) -> Self {
        ClientSpec {
            id,
            method,
            grants,
            scopes: &[],
            alg: None,
            access_alg: None,
            jwks: None,
            refresh_absolute_lifetime_secs: None,
        }
    }
}

pub async fn start(nodes: usize) -> Env {
    start_with(nodes, OidcConfig::default()).await
}

pub async fn start_with(nodes: usize, config: OidcConfig) -> Env {
    let cluster = TestCluster::start(nodes).await.expect("cluster");
    env_on(cluster, config)
}

/// Like [`start_with`], every node on one manual clock that stands at the
/// present until the returned hand moves it.
pub async fn start_clocked(nodes: usize, config: OidcConfig) -> (Env, ManualClock) {
    let (clock, hand) = Clock::manual(Clock::system().now_ms());
    let cluster = TestCluster::start_with(nodes, &|c| c.clock = clock.clone())
        .await
        .expect("cluster");
    (env_on(cluster, config), hand)
}

fn env_on(cluster: TestCluster, config: OidcConfig) -> Env {
    let kek = Kek::generate();
    let hasher = PasswordHasher::with(argon2::Params::new(1024, 1, 1, None).expect("params"), 2)
        .expect("hasher");
    let mut states = Vec::new();
    for node in &cluster.nodes {
        let identity = Identity::new(
            node.consensus.clone(),
            Arc::new(KekCell::with(kek.clone())),
            hasher.clone(),
            PUBLIC_URL,
        );
        let mut state = AppState::new(
            node.consensus.clone(),
            rsp_api::AdminToken::new(Zeroizing::new("admin".to_string())),
            node.registry.clone(),
            identity.clone(),
            PUBLIC_URL,
        );
        state.oidc =
            OidcServices::new(node.consensus.clone(), identity, PUBLIC_URL, config.clone());
        states.push(state);
    }
    let apps = states.iter().cloned().map(rsp_api::app).collect();
    Env {
        cluster,
        states,
        apps,
    }
}

impl Env {
    pub fn state(&self) -> &AppState {
        &self.states[0]
    }

    /// Give every node a tenant actor runtime started with `config()` and
    /// rebuild the routers; the runtimes, by node.
    pub async fn with_runtimes(
        &mut self,
        config: impl Fn() -> rsp_actors::RuntimeConfig,
    ) -> Vec<rsp_actors::TenantRuntime> {
        let mut runtimes = Vec::new();
        for (i, node) in self.cluster.nodes.iter().enumerate() {
            let runtime =
                rsp_actors::TenantRuntime::start(node.consensus.clone(), config(), &node.registry)
                    .await
                    .expect("tenant runtime");
            self.states[i] = self.states[i].clone().with_runtime(runtime.clone());
            runtimes.push(runtime);
        }
        self.apps = self.states.iter().cloned().map(rsp_api::app).collect();
        runtimes
    }

    /// Wait until every node has applied everything written so far (the
    /// tenant extractor reads tenants locally).
    pub async fn settle(&self) {
        for node in &self.cluster.nodes {
            node.consensus
                .linearizable_barrier()
                .await
                .expect("barrier");
        }
    }

    pub async fn tenant(&self, id: &str) {
        self.state()
            .tenants
            .create(id, id, 0)
            .await
            .expect("create tenant");
    }

    pub async fn client(&self, tenant: &str, spec: ClientSpec<'_>) -> TestClient {
        let new = NewClient {
            client_id: Some(spec.id.to_string()),
            client_name: None,
            redirect_uris: vec![REDIRECT.to_string()],
            post_logout_redirect_uris: vec![],
            grant_types: spec.grants.iter().map(|g| g.to_string()).collect(),
            token_endpoint_auth_method: spec.method.to_string(),
            scopes: spec.scopes.iter().map(|s| s.to_string()).collect(),
            require_consent: Some(false),
            jwks: spec.jwks,
            id_token_signed_response_alg: spec.alg.map(str::to_string),
            access_token_signed_response_alg: spec.access_alg.map(str::to_string),
            refresh_token_absolute_lifetime_secs: spec.refresh_absolute_lifetime_secs,
            access_token_lifetime_secs: None,
            id_token_lifetime_secs: None,
        };
        let (client, secret) = self
            .state()
            .identity
            .clients
            .create(tenant, new, 0)
            .await
            .expect("create client");
        TestClient {
            id: client.client_id,
            secret: secret.map(|s| s.to_string()),
        }
    }

    /// A user with a name, email and a few profile attributes; returns its id.
    pub async fn user(&self, tenant: &str, username: &str) -> String {
        let mut attributes = serde_json::Map::new();
        attributes.insert("name".into(), Value::String(format!("{username} Doe")));
        attributes.insert("phone_number".into(), Value::String("+1 555 0100".into()));
        let new = NewUser {
            username: username.to_string(),
            password: Zeroizing::new("correct horse battery".to_string()),
            email: Some(format!("{username}@example.com")),
            attributes,
        };
        self.state()
            .identity
            .users
            .create(tenant, new, 0)
            .await
            .expect("create user")
            .id
    }

    /// Send a request to node `node` (0-based).
    pub async fn send(&self, node: usize, req: Request<Body>) -> Answer {
        let resp = self.apps[node]
            .clone()
            .oneshot(req)
            .await
            .expect("response");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
            .await
            .expect("body");
        let body = serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
        Answer {
            status,
            headers,
            body,
        }
    }

    /// POST a form to `{issuer}{path}` on node `node`, with an optional
    /// `Authorization` header.
    pub async fn form_on(
        &self,
        node: usize,
        tenant: &str,
        path: &str,
        auth: Option<&str>,
        params: &[(&str, &str)],
    ) -> Answer {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let mut req = Request::post(format!("/t/{tenant}{path}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        self.send(node, req.body(Body::from(body)).expect("request"))
            .await
    }

    pub async fn form(
        &self,
        tenant: &str,
        path: &str,
        auth: Option<&str>,
        params: &[(&str, &str)],
    ) -> Answer {
        self.form_on(0, tenant, path, auth, params).await
    }

    /// Client credentials for a `client_secret_basic` client.
    pub async fn client_credentials(&self, tenant: &str, c: &TestClient, scope: &str) -> Answer {
        let mut params = vec![("grant_type", "client_credentials")];
        if !scope.is_empty() {
            params.push(("scope", scope));
        }
        self.form(tenant, "/token", Some(&c.basic()), &params).await
    }

    /// Introspect `token` with a `client_secret_basic` client.
    pub async fn introspect(&self, tenant: &str, c: &TestClient, token: &str) -> Answer {
        self.form(tenant, "/introspect", Some(&c.basic()), &[("token", token)])
            .await
    }

    pub async fn userinfo_get(&self, tenant: &str, token: &str) -> Answer {
        let req = Request::get(format!("/t/{tenant}/userinfo"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .expect("request");
        self.send(0, req).await
    }

    /// The token endpoint's answer to a fresh code of `user` for `client`
    /// (PKCE, session `sid-1`).
    pub async fn code_tokens(
        &self,
        tenant: &str,
        client: &TestClient,
        user: &str,
        scope: &str,
    ) -> Answer {
        let (verifier, challenge) = pkce();
        let code = self
            .code(tenant, grant(&client.id, user, scope, Some(&challenge)))
            .await;
        self.form(
            tenant,
            "/token",
            Some(&client.basic()),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await
    }

    /// The refresh grant for a `client_secret_basic` client.
    pub async fn refresh(&self, tenant: &str, client: &TestClient, token: &str) -> Answer {
        self.form(
            tenant,
            "/token",
            Some(&client.basic()),
            &[("grant_type", "refresh_token"), ("refresh_token", token)],
        )
        .await
    }

    /// Issue a code the way the browser side will.
    pub async fn code(&self, tenant: &str, grant: CodeGrant) -> String {
        self.state()
            .oidc
            .codes
            .issue(tenant, grant)
            .await
            .expect("issue code")
    }
}

/// A PKCE pair: (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    let verifier = rsp_identity::crypto::random_token(32);
    let challenge = rsp_identity::crypto::b64url(&sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// A code grant for `client` and `user` with an S256 challenge.
pub fn grant(client: &str, user: &str, scope: &str, challenge: Option<&str>) -> CodeGrant {
    CodeGrant {
        client_id: client.to_string(),
        redirect_uri: REDIRECT.to_string(),
        user_id: user.to_string(),
        scope: scope.to_string(),
        nonce: Some("n-0S6_WzA2Mj".to_string()),
        code_challenge: challenge.map(str::to_string),
        code_challenge_method: challenge.map(|_| "S256".to_string()),
        auth_time: now_secs(),
        acr: Some("urn:rsp:acr:pwd".to_string()),
        amr: vec!["pwd".to_string()],
        session_id: Some("sid-1".to_string()),
    }
}

/// Decode a JWT's header and claims without checking anything.
pub fn peek(jwt: &str) -> (Value, Value) {
    let mut parts = jwt.split('.');
    let mut part = || {
        let text = parts.next().expect("jwt part");
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(text)
                .expect("base64url"),
        )
        .expect("json")
    };
    let header = part();
    let claims = part();
    (header, claims)
}
