//! The login page in a real browser: Debian's headless `chromium`, driven
//! through `chromedriver` with a few WebDriver calls over reqwest, opens the
//! authorization URL of a one-node cluster, fills the form, submits it and
//! lands on the client's callback (a tiny HTTP listener on 127.0.0.1, port
//! 0, registered as the redirect URI) with a code, which the test then
//! exchanges at the token endpoint.
//!
//! Skips, saying so, when `/usr/bin/chromium` or `/usr/bin/chromedriver` is
//! absent (`apt-get install -y chromium chromium-driver`).

#[path = "support/oidc.rs"]
mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use openidconnect::PkceCodeChallenge;
use rsp_tests::rsp_chaos::Cluster;
use rsp_tests::spec;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A WebDriver session on a chromedriver child (killed on drop).
struct Driver {
    http: reqwest::Client,
    base: String,
    session: String,
    _child: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Driver {
    async fn start() -> Result<Driver> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting chromedriver")?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = match http.get(format!("{base}/status")).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["value"]["ready"].as_bool()),
                Err(_) => None,
            };
            if ready == Some(true) {
                break;
            }
            if Instant::now() > deadline {
                bail!("chromedriver did not become ready");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir()?;
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await?
            .json()
            .await?;
        let session = answer["value"]["sessionId"]
            .as_str()
            .with_context(|| format!("no WebDriver session: {answer}"))?
            .to_string();
        Ok(Driver {
            http,
            base,
            session,
            _child: child,
            _profile: profile,
        })
    }

    /// One WebDriver command; its `value`, or the WebDriver error.
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let answer: Value = req.send().await?.json().await?;
        if answer["value"]["error"].is_string() {
            bail!("WebDriver {path}: {}", answer["value"]);
        }
        Ok(answer["value"].clone())
    }

    async fn goto(&self, url: &str) -> Result<()> {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await
            .map(|_| ())
    }

    async fn find(&self, css: &str) -> Result<String> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        v[ELEMENT]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("no element {css}"))
    }

    async fn type_into(&self, css: &str, text: &str) -> Result<()> {
        let el = self.find(css).await?;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({"text": text})),
        )
        .await
        .map(|_| ())
    }

    async fn click(&self, css: &str) -> Result<()> {
        let el = self.find(css).await?;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await
        .map(|_| ())
    }

    async fn source(&self) -> String {
        self.cmd(reqwest::Method::GET, "/source", None)
            .await
            .map(|v| v.as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    }

    async fn quit(self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
    }
}

/// A one-shot HTTP server standing in for the client: forwards the query of
/// each `GET /callback?...` it gets and answers a small page.
async fn callback_listener() -> Result<(String, mpsc::Receiver<String>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let uri = format!("http://{}/callback", listener.local_addr()?);
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = vec![0u8; 8192];
            let mut len = 0;
            while len < buf.len() {
                match conn.read(&mut buf[len..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => len += n,
                }
                if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&buf[..len]).to_string();
            let target = head.split(' ').nth(1).unwrap_or("").to_string();
            let body = "<!doctype html><title>callback</title><p>signed in</p>";
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(reply.as_bytes()).await;
            if let Some(query) = target.strip_prefix("/callback?") {
                let _ = tx.send(query.to_string()).await;
            }
        }
    });
    Ok((uri, rx))
}

#[tokio::test]
async fn chromium_fills_the_login_form_and_lands_on_the_callback_with_a_code() -> Result<()> {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        if !Path::new(tool).exists() {
            eprintln!(
                "SKIPPED browser_chromium: {tool} is not installed (apt-get install -y chromium chromium-driver)"
            );
            return Ok(());
        }
    }
    let (redirect, mut callbacks) = callback_listener().await?;
    let cluster = Cluster::start(spec(1)).await?;
    let admin = cluster.client(1)?;
    let secret = support::tenant_with_client(
        &admin,
        "web",
        "chrome-app",
        json!({
            "redirect_uris": [redirect],
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "client_secret_basic",
        }),
    )
    .await?
    .context("client secret")?;
    let base = cluster.http(1)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut authorize = url::Url::parse(&format!("{base}/t/web/authorize"))?;
    authorize
        .query_pairs_mut()
        .append_pair("client_id", "chrome-app")
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "openid profile")
        .append_pair("state", "chromium-state")
        .append_pair("nonce", "chromium-nonce")
        .append_pair("code_challenge", challenge.as_str())
        .append_pair("code_challenge_method", "S256");

    let driver = Driver::start().await?;
    let outcome = async {
        driver.goto(authorize.as_str()).await?;
        driver.type_into("input[name=username]", "erin").await?;
        driver
            .type_into("input[name=password]", support::PASSWORD)
            .await?;
        driver.click("button[type=submit]").await?;
        let query = tokio::time::timeout(Duration::from_secs(30), callbacks.recv())
            .await
            .ok()
            .flatten();
        match query {
            Some(q) => Ok(q),
            None => bail!("no callback; the browser shows:\n{}", driver.source().await),
        }
    }
    .await;
    driver.quit().await;
    let query = outcome?;
    let params: std::collections::BTreeMap<String, String> =
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
    ensure!(
        params.get("state").map(String::as_str) == Some("chromium-state"),
        "{params:?}"
    );
    let code = params.get("code").context("no code on the callback")?;

    let tokens: Value = reqwest::Client::new()
        .post(format!("{base}/t/web/token"))
        .basic_auth("chrome-app", Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "authorization_code")
                .append_pair("code", code)
                .append_pair("redirect_uri", &redirect)
                .append_pair("code_verifier", verifier.secret())
                .finish(),
        )
        .send()
        .await?
        .json()
        .await?;
    ensure!(tokens["id_token"].is_string(), "{tokens}");
    Ok(())
}
