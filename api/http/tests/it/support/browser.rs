//! Set-up shared by the `browser_*` tests: the `oauth_*` environment with a
//! tenant actor runtime on every node (sessions, lockout, rate limits), and
//! a small browser: a cookie jar that follows `Set-Cookie` and reads the
//! hidden fields of a page's form. Requests go through
//! `tower::ServiceExt::oneshot`, on any node.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use rsp_actors::{LockoutPolicy, RuntimeConfig};
use rsp_api::oidc::second_factors::SecondFactors;
use rsp_api::oidc::tenant_runtime::{BrowserConfig, TenantRuntimeServices};
use rsp_identity::clients::NewClient;
use tower::ServiceExt;

use crate::support::{Env, REDIRECT, TestClient, start};

pub const TENANT: &str = "acme";
pub const PASSWORD: &str = "correct horse battery";
pub const MAX_FAILURES: u32 = 3;
pub const LOGOUT_REDIRECT: &str = "https://app.example.com/bye";

/// An `Env` whose nodes have tenant runtimes (lockout after
/// [`MAX_FAILURES`] failures), with tenant [`TENANT`].
pub async fn start_browser(nodes: usize) -> Env {
    let mut env = start(nodes).await;
    env.with_runtimes(|| RuntimeConfig {
        lockout: LockoutPolicy {
            max_failures: MAX_FAILURES,
            window: Duration::from_secs(600),
            lockout: Duration::from_secs(600),
        },
        ..RuntimeConfig::default()
    })
    .await;
    env.tenant(TENANT).await;
    env
}

/// Rebuild the routers after changing the states.
pub fn rebuild(env: &mut Env) {
    env.apps = env.states.iter().cloned().map(rsp_api::app).collect();
}

/// Plug a second-factor implementation into every node.
pub fn with_factors(env: &mut Env, factors: Arc<dyn SecondFactors>) {
    for state in &mut env.states {
        let runtime = state.tenant_runtime.runtime().cloned();
        state.tenant_runtime =
            TenantRuntimeServices::new(runtime, factors.clone(), BrowserConfig::default());
    }
    rebuild(env);
}

/// A client with the test redirect URI, a post-logout URI and the given
/// method, grants and consent setting.
pub async fn client(
    env: &Env,
    id: &str,
    method: &str,
    grants: &[&str],
    require_consent: bool,
) -> TestClient {
    let new = NewClient {
        client_id: Some(id.to_string()),
        client_name: Some(format!("{id} app")),
        redirect_uris: vec![REDIRECT.to_string()],
        post_logout_redirect_uris: vec![LOGOUT_REDIRECT.to_string()],
        grant_types: grants.iter().map(|g| g.to_string()).collect(),
        token_endpoint_auth_method: method.to_string(),
        scopes: vec![],
        require_consent: Some(require_consent),
        jwks: None,
        id_token_signed_response_alg: None,
        access_token_signed_response_alg: None,
        refresh_token_absolute_lifetime_secs: None,
        access_token_lifetime_secs: None,
        id_token_lifetime_secs: None,
    };
    let (client, secret) = env
        .state()
        .identity
        .clients
        .create(TENANT, new, 0)
        .await
        .expect("create client");
    TestClient {
        id: client.client_id,
        secret: secret.map(|s| s.to_string()),
    }
}

/// What a browser got back.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub html: String,
}

impl Reply {
    pub fn location(&self) -> Option<url::Url> {
        self.headers
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| url::Url::parse(l).ok())
    }

    /// A query parameter of the redirect target.
    pub fn param(&self, name: &str) -> Option<String> {
        self.location()?
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The value of the form input named `name`.
    pub fn field(&self, name: &str) -> Option<String> {
        let needle = format!("name=\"{name}\"");
        let at = self.html.find(&needle)?;
        let tag_start = self.html[..at].rfind('<')?;
        let tag_end = at + self.html[at..].find('>')?;
        let tag = &self.html[tag_start..tag_end];
        let v = tag.find("value=\"")? + "value=\"".len();
        let len = tag[v..].find('"')?;
        Some(tag[v..v + len].to_string())
    }

    pub fn has_input(&self, name: &str) -> bool {
        self.html.contains(&format!("name=\"{name}\""))
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    }

    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }
}

/// A browser: cookies (one tenant path, so a flat jar suffices).
#[derive(Default, Clone)]
pub struct Browser {
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    fn absorb(&mut self, headers: &HeaderMap) {
        for v in headers.get_all(header::SET_COOKIE) {
            let Ok(text) = v.to_str() else { continue };
            let first = text.split(';').next().unwrap_or("");
            let Some((name, value)) = first.split_once('=') else {
                continue;
            };
            if value.is_empty() || text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
    }

    pub fn cookie_header(&self) -> Option<String> {
        (!self.cookies.is_empty()).then(|| {
            self.cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    pub async fn send(&mut self, env: &Env, node: usize, req: Request<Body>) -> Reply {
        let resp = env.apps[node].clone().oneshot(req).await.expect("response");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
            .await
            .expect("body");
        self.absorb(&headers);
        Reply {
            status,
            headers,
            html: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// GET a path (with its query) on node `node`.
    pub async fn get(&mut self, env: &Env, node: usize, path: &str) -> Reply {
        let mut req = Request::get(path);
        if let Some(c) = self.cookie_header() {
            req = req.header(header::COOKIE, c);
        }
        self.send(env, node, req.body(Body::empty()).expect("request"))
            .await
    }

    /// POST a form to a path on node `node`.
    pub async fn post(
        &mut self,
        env: &Env,
        node: usize,
        path: &str,
        form: &[(&str, &str)],
    ) -> Reply {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut req =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(c) = self.cookie_header() {
            req = req.header(header::COOKIE, c);
        }
        self.send(env, node, req.body(Body::from(body)).expect("request"))
            .await
    }

    /// Fill in and submit the login form of `page`.
    pub async fn login(
        &mut self,
        env: &Env,
        node: usize,
        page: &Reply,
        username: &str,
        password: &str,
    ) -> Reply {
        let csrf = page.field("csrf_token").expect("csrf field");
        let flow = page.field("flow").expect("flow field");
        self.post(
            env,
            node,
            &format!("/t/{TENANT}/login"),
            &[
                ("csrf_token", &csrf),
                ("flow", &flow),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }
}

/// `/t/acme/authorize?...` for `client` with `extra` parameters.
pub fn authorize_path(client: &str, extra: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("client_id", client);
    for (k, v) in extra {
        q.append_pair(k, v);
    }
    format!("/t/{TENANT}/authorize?{}", q.finish())
}

/// The usual parameters of a code request with PKCE.
pub fn code_request<'a>(challenge: &'a str, state: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile email"),
        ("state", state),
        ("nonce", "n-123"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
}
