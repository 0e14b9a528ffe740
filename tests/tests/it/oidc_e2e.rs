//! OpenID Connect end to end: a 3-node cluster of real `rsp` processes and
//! the `openidconnect` crate as the relying party, using discovery and
//! nothing configured by hand. Every node runs with the same public URL (as
//! behind a load balancer); the test decides which node each request
//! reaches: login on node 1, code exchange on node 2, userinfo and refresh
//! on node 3. Also client credentials, introspection and revocation, the
//! device flow, pushed authorization requests, and `rsp serve --demo`.

use crate::support;

use std::future::Future;
use std::pin::Pin;

use anyhow::{Context, Result, ensure};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreDeviceAuthorizationResponse, CoreProviderMetadata,
    CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, DeviceAuthorizationUrl,
    IntrospectionUrl, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope,
    TokenIntrospectionResponse, TokenResponse,
};
use rsp_tests::rsp_chaos::Cluster;
use rsp_tests::spec;
use serde_json::json;
use support::{WebBrowser, tenant_with_client};

/// The public URL of every node; requests are routed to a chosen node.
const PUBLIC: &str = "http://rsp.e2e.test";
const TENANT: &str = "e2e";
const REDIRECT: &str = "http://127.0.0.1:9/callback";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

#[derive(Debug)]
struct HttpError(String);

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

type HttpFuture =
    Pin<Box<dyn Future<Output = Result<openidconnect::HttpResponse, HttpError>> + Send>>;

/// The relying party's HTTP client for one node: reqwest without
/// redirects, the public URL rewritten to that node's address.
fn node_client(base: String) -> impl Fn(openidconnect::HttpRequest) -> HttpFuture {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client");
    move |req: openidconnect::HttpRequest| {
        let http = http.clone();
        let base = base.clone();
        Box::pin(async move {
            let err = |e: &dyn std::fmt::Display| HttpError(e.to_string());
            let uri = req.uri().to_string();
            let url = match uri.strip_prefix(PUBLIC) {
                Some(rest) => format!("{base}{rest}"),
                None => uri,
            };
            let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
                .map_err(|e| err(&e))?;
            let mut out = http.request(method, &url);
            for (name, value) in req.headers() {
                out = out.header(name.as_str(), value.as_bytes());
            }
            let resp = out
                .body(req.into_body())
                .send()
                .await
                .map_err(|e| err(&e))?;
            let mut builder =
                openidconnect::http::Response::builder().status(resp.status().as_u16());
            for (name, value) in resp.headers() {
                builder = builder.header(name.as_str(), value.as_bytes());
            }
            let body = resp.bytes().await.map_err(|e| err(&e))?.to_vec();
            builder.body(body).map_err(|e| err(&e))
        }) as HttpFuture
    }
}

struct Rig {
    cluster: Cluster,
    bases: Vec<String>,
    secret: String,
}

impl Rig {
    fn issuer(&self) -> String {
        format!("{PUBLIC}/t/{TENANT}")
    }

    fn base(&self, node: usize) -> &str {
        &self.bases[node - 1]
    }
}

async fn rig() -> Result<Rig> {
    let cluster = Cluster::start(spec(3).args(["--public-url", PUBLIC])).await?;
    let admin = cluster.client(1)?;
    let secret = tenant_with_client(
        &admin,
        TENANT,
        "rp",
        json!({
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token", "client_credentials", DEVICE_GRANT],
            "token_endpoint_auth_method": "client_secret_basic",
            "scopes": ["profile", "email", "api:read"],
        }),
    )
    .await?
    .context("a confidential client gets a secret")?;
    let bases = cluster
        .ids()
        .into_iter()
        .map(|id| cluster.http(id))
        .collect::<Result<Vec<_>>>()?;
    Ok(Rig {
        cluster,
        bases,
        secret,
    })
}

async fn discover(rig: &Rig, node: usize) -> Result<CoreProviderMetadata> {
    let http = node_client(rig.base(node).to_string());
    CoreProviderMetadata::discover_async(IssuerUrl::new(rig.issuer())?, &http)
        .await
        .map_err(|e| anyhow::anyhow!("discovery on node {node}: {e:?}"))
}

/// The discovery document as JSON (for the endpoints the crate does not
/// model: introspection, revocation, device authorization, PAR).
async fn endpoint(rig: &Rig, name: &str) -> Result<String> {
    let doc: serde_json::Value = reqwest::get(format!(
        "{}/t/{TENANT}/.well-known/openid-configuration",
        rig.base(1)
    ))
    .await?
    .json()
    .await?;
    doc[name]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("discovery lacks {name}"))
}

#[tokio::test]
async fn a_relying_party_logs_in_on_one_node_and_uses_the_tokens_on_the_others() -> Result<()> {
    let rig = rig().await?;
    let metadata = discover(&rig, 1).await?;
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new("rp".into()),
        Some(ClientSecret::new(rig.secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into())?)
    .set_introspection_url(IntrospectionUrl::new(
        endpoint(&rig, "introspection_endpoint").await?,
    )?);

    // Node 1: the browser logs in.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let mut browser = WebBrowser::new(PUBLIC)?;
    let back = browser
        .sign_in(url.as_str(), rig.base(1), &rig.issuer())
        .await?;
    ensure!(back.param("state").as_deref() == Some(csrf.secret().as_str()));
    ensure!(
        back.param("iss") == Some(rig.issuer()),
        "{:?}",
        back.location
    );
    let code = back.param("code").context("no code")?;

    // Node 2: the code exchange, and the ID token checked by the crate.
    let http2 = node_client(rig.base(2).to_string());
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))?
        .set_pkce_verifier(verifier)
        .request_async(&http2)
        .await
        .map_err(|e| anyhow::anyhow!("code exchange on node 2: {e:?}"))?;
    let id_token = tokens.id_token().context("no ID token")?;
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce)?;
    let hash = claims.access_token_hash().context("no at_hash")?;
    let actual = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg()?,
        id_token.signing_key(&verifier)?,
    )?;
    ensure!(*hash == actual, "at_hash");
    ensure!(claims.email().map(|e| e.as_str()) == Some("erin@example.com"));
    ensure!(claims.auth_time().is_some(), "auth_time");

    // Node 3: userinfo and refresh.
    let http3 = node_client(rig.base(3).to_string());
    let info: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )?
        .request_async(&http3)
        .await
        .map_err(|e| anyhow::anyhow!("userinfo on node 3: {e:?}"))?;
    ensure!(info.email().map(|e| e.as_str()) == Some("erin@example.com"));
    let refresh = tokens.refresh_token().context("no refresh token")?;
    let refreshed = client
        .exchange_refresh_token(refresh)?
        .request_async(&http3)
        .await
        .map_err(|e| anyhow::anyhow!("refresh on node 3: {e:?}"))?;
    ensure!(refreshed.refresh_token().is_some(), "rotated");

    // Introspection on node 2, revocation on node 1, effective on node 3.
    let fresh = refreshed.access_token();
    let active = client.introspect(fresh).request_async(&http2).await?;
    ensure!(active.active(), "fresh token is active");
    ensure!(active.sub() == Some(claims.subject().as_str()));
    // The crate sends revocations only over https (RFC 7009 asks for
    // TLS); this cluster speaks http, so the RP posts it itself.
    let revocation = endpoint(&rig, "revocation_endpoint").await?;
    let revoked = reqwest::Client::new()
        .post(revocation.replacen(PUBLIC, rig.base(1), 1))
        .basic_auth("rp", Some(&rig.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "token={}&token_type_hint=access_token",
            fresh.secret()
        ))
        .send()
        .await?;
    ensure!(
        revoked.status().as_u16() == 200,
        "revocation: {}",
        revoked.status()
    );
    let after = client.introspect(fresh).request_async(&http3).await?;
    ensure!(!after.active(), "revoked token is inactive on node 3");
    let denied: Result<CoreUserInfoClaims, _> = client
        .user_info(fresh.clone(), None)?
        .request_async(&http3)
        .await;
    ensure!(denied.is_err(), "userinfo refuses a revoked token");

    // The session made on node 1 signs in silently on node 3.
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (url, _, _) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .add_prompt(openidconnect::core::CoreAuthPrompt::None)
        .url();
    let silent = browser.get(url.as_str(), rig.base(3)).await?;
    ensure!(silent.param("code").is_some(), "{:?}", silent.location);
    drop(rig.cluster);
    Ok(())
}

#[tokio::test]
async fn client_credentials_and_the_device_flow_work_through_discovery() -> Result<()> {
    let rig = rig().await?;
    let metadata = discover(&rig, 2).await?;
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new("rp".into()),
        Some(ClientSecret::new(rig.secret.clone())),
    )
    .set_device_authorization_url(DeviceAuthorizationUrl::new(
        endpoint(&rig, "device_authorization_endpoint").await?,
    )?);
    let http2 = node_client(rig.base(2).to_string());

    let cc = client
        .exchange_client_credentials()?
        .add_scope(Scope::new("api:read".into()))
        .request_async(&http2)
        .await
        .map_err(|e| anyhow::anyhow!("client credentials: {e:?}"))?;
    ensure!(
        cc.scopes()
            .is_some_and(|s| s.iter().any(|s| s.as_str() == "api:read")),
        "{:?}",
        cc.scopes()
    );

    let details: CoreDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("profile".into()))
        .request_async(&http2)
        .await
        .map_err(|e| anyhow::anyhow!("device authorization: {e:?}"))?;
    // The person approves in a browser on node 3 while the device polls
    // node 2.
    let user_code = details.user_code().secret().clone();
    let verification = details.verification_uri().to_string();
    let base3 = rig.base(3).to_string();
    let issuer = rig.issuer();
    let approve = async move {
        let mut browser = WebBrowser::new(PUBLIC)?;
        let page = browser
            .get(&format!("{verification}?user_code={user_code}"), &base3)
            .await?;
        let csrf = page.field("csrf_token").context("csrf")?;
        let flow = page.field("flow").context("login form")?;
        let approval = browser
            .post(
                &format!("{issuer}/login"),
                &base3,
                &[
                    ("csrf_token", &csrf),
                    ("flow", &flow),
                    ("username", "erin"),
                    ("password", support::PASSWORD),
                ],
            )
            .await?;
        let csrf = approval.field("csrf_token").context("csrf")?;
        let ticket = approval.field("ticket").context("approval page")?;
        let done = browser
            .post(
                &verification,
                &base3,
                &[
                    ("csrf_token", &csrf),
                    ("ticket", &ticket),
                    ("decision", "allow"),
                ],
            )
            .await?;
        ensure!(done.status == 200, "{}", done.html);
        Ok::<(), anyhow::Error>(())
    };
    let poll = async {
        client
            .exchange_device_access_token(&details)?
            .request_async(&http2, tokio::time::sleep, None)
            .await
            .map_err(|e| anyhow::anyhow!("device token: {e:?}"))
    };
    let (approved, tokens) = tokio::join!(approve, poll);
    approved?;
    let tokens = tokens?;
    ensure!(
        tokens.id_token().is_some(),
        "openid scope gives an ID token"
    );
    Ok(())
}

#[tokio::test]
async fn a_pushed_authorization_request_is_used_through_request_uri() -> Result<()> {
    let rig = rig().await?;
    let metadata = discover(&rig, 1).await?;
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new("rp".into()),
        Some(ClientSecret::new(rig.secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into())?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();
    // Push the crate's authorization parameters on node 2.
    let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let par = reqwest::Client::new()
        .post(format!("{}/t/{TENANT}/par", rig.base(2)))
        .basic_auth("rp", Some(&rig.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&params)
                .finish(),
        )
        .send()
        .await?;
    ensure!(
        par.status().as_u16() == 201,
        "PAR answered {}",
        par.status()
    );
    let pushed: serde_json::Value = par.json().await?;
    let request_uri = pushed["request_uri"].as_str().context("request_uri")?;

    // The browser carries only client_id and request_uri, to node 1.
    let mut short = url::Url::parse(&endpoint(&rig, "authorization_endpoint").await?)?;
    short
        .query_pairs_mut()
        .append_pair("client_id", "rp")
        .append_pair("request_uri", request_uri);
    let mut browser = WebBrowser::new(PUBLIC)?;
    let back = browser
        .sign_in(short.as_str(), rig.base(1), &rig.issuer())
        .await?;
    let code = back.param("code").context("no code")?;
    let http3 = node_client(rig.base(3).to_string());
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))?
        .set_pkce_verifier(verifier)
        .request_async(&http3)
        .await
        .map_err(|e| anyhow::anyhow!("code exchange: {e:?}"))?;
    let id_token = tokens.id_token().context("no ID token")?;
    id_token.claims(&client.id_token_verifier(), &nonce)?;
    Ok(())
}

/// The value after `marker` on the first stdout line that has it.
fn printed(lines: &[String], marker: &str) -> Option<String> {
    lines
        .iter()
        .find_map(|l| l.split_once(marker).map(|(_, v)| v.trim().to_string()))
}

#[tokio::test]
async fn the_demo_tenant_is_made_once_and_its_printed_secrets_work() -> Result<()> {
    let cluster = Cluster::start(spec(1).arg("--demo")).await?;
    let lines = cluster.node(1)?.process.stdout_lines();
    let secret = printed(&lines, "`demo-client` (client_secret_basic), secret:")
        .with_context(|| format!("no client secret printed: {lines:#?}"))?;
    let password = printed(&lines, "user `alice`, password:").context("no password printed")?;
    let base = cluster.http(1)?;
    let issuer = format!("{base}/t/demo");

    // The confidential client: client credentials with its printed secret.
    let http = node_client(base.clone());
    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(issuer.clone())?, &http)
        .await
        .map_err(|e| anyhow::anyhow!("discovery: {e:?}"))?;
    let confidential = CoreClient::from_provider_metadata(
        metadata.clone(),
        ClientId::new("demo-client".into()),
        Some(ClientSecret::new(secret)),
    );
    confidential
        .exchange_client_credentials()?
        .request_async(&http)
        .await
        .map_err(|e| anyhow::anyhow!("client credentials: {e:?}"))?;

    // The public client: alice logs in with her printed password.
    let spa = CoreClient::from_provider_metadata(metadata, ClientId::new("demo-spa".into()), None)
        .set_redirect_uri(RedirectUrl::new("http://127.0.0.1:8089/callback".into())?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = spa
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();
    let mut browser = WebBrowser::new(&base)?;
    let back = browser
        .sign_in_as(url.as_str(), &base, &issuer, "alice", &password)
        .await?;
    let tokens = spa
        .exchange_code(AuthorizationCode::new(back.param("code").context("code")?))?
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .map_err(|e| anyhow::anyhow!("code exchange: {e:?}"))?;
    tokens
        .id_token()
        .context("ID token")?
        .claims(&spa.id_token_verifier(), &nonce)?;

    // A restart changes nothing and prints no new secret.
    cluster.restart(1).await?;
    let after = cluster.node(1)?.process.stdout_lines();
    let new: Vec<&String> = after[lines.len()..].iter().collect();
    ensure!(
        new.iter()
            .any(|l| l.contains("`demo-client` exists already")),
        "{new:#?}"
    );
    ensure!(
        !new.iter()
            .any(|l| l.contains("secret:") || l.contains("password:")),
        "{new:#?}"
    );
    Ok(())
}
