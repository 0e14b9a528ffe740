//! A few W3C WebDriver calls over reqwest against Debian's `chromedriver`
//! driving headless `chromium`, plus the WebAuthn extension of WebDriver
//! (a virtual authenticator and its credentials), and a stand-in for a
//! client's redirect URI. Shared by `browser_chromium.rs` and
//! `browser_passkeys.rs`.

#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Whether chromium and chromedriver are installed; says so when not.
pub fn browser_available(test: &str) -> bool {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        if !Path::new(tool).exists() {
            eprintln!(
                "SKIPPED {test}: {tool} is not installed (apt-get install -y chromium chromium-driver)"
            );
            return false;
        }
    }
    true
}

/// A WebDriver session on a chromedriver child (killed on drop).
pub struct Driver {
    http: reqwest::Client,
    base: String,
    session: String,
    _child: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Driver {
    pub async fn start() -> Result<Driver> {
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
    pub async fn cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
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

    pub async fn goto(&self, url: &str) -> Result<()> {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await
            .map(|_| ())
    }

    pub async fn find(&self, css: &str) -> Result<String> {
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

    /// Wait until an element matching `css` is on the page.
    pub async fn wait_for(&self, css: &str, within: Duration) -> Result<String> {
        let deadline = Instant::now() + within;
        loop {
            match self.find(css).await {
                Ok(el) => return Ok(el),
                Err(e) if Instant::now() > deadline => {
                    bail!("{e}; the browser shows:\n{}", self.source().await)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) -> Result<()> {
        let el = self.find(css).await?;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({"text": text})),
        )
        .await
        .map(|_| ())
    }

    pub async fn click(&self, css: &str) -> Result<()> {
        let el = self.find(css).await?;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await
        .map(|_| ())
    }

    pub async fn source(&self) -> String {
        self.cmd(reqwest::Method::GET, "/source", None)
            .await
            .map(|v| v.as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    }

    pub async fn delete_cookies(&self) -> Result<()> {
        self.cmd(reqwest::Method::DELETE, "/cookie", None)
            .await
            .map(|_| ())
    }

    /// Add a virtual CTAP2 platform authenticator that holds discoverable
    /// credentials and verifies the user (WebDriver WebAuthn extension).
    pub async fn add_virtual_authenticator(&self) -> Result<String> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/webauthn/authenticator",
                Some(json!({
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": true,
                    "hasUserVerification": true,
                    "isUserConsenting": true,
                    "isUserVerified": true,
                })),
            )
            .await?;
        v.as_str()
            .map(str::to_string)
            .with_context(|| format!("no authenticator id: {v}"))
    }

    /// The credentials a virtual authenticator holds.
    pub async fn credentials(&self, authenticator: &str) -> Result<Vec<Value>> {
        let v = self
            .cmd(
                reqwest::Method::GET,
                &format!("/webauthn/authenticator/{authenticator}/credentials"),
                None,
            )
            .await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    pub async fn quit(self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
    }
}

/// The client's last step after the browser landed on its callback with
/// `query`: check `state`, then redeem the code at `token_url` with the PKCE
/// `verifier` and HTTP Basic client authentication; the token response.
pub async fn redeem_callback(
    query: &str,
    state: &str,
    token_url: &str,
    (client_id, secret): (&str, &str),
    redirect: &str,
    verifier: &str,
) -> Result<Value> {
    let params: std::collections::BTreeMap<String, String> =
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
    anyhow::ensure!(
        params.get("state").map(String::as_str) == Some(state),
        "{params:?}"
    );
    let code = params.get("code").context("no code on the callback")?;
    Ok(reqwest::Client::new()
        .post(token_url)
        .basic_auth(client_id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "authorization_code")
                .append_pair("code", code)
                .append_pair("redirect_uri", redirect)
                .append_pair("code_verifier", verifier)
                .finish(),
        )
        .send()
        .await?
        .json()
        .await?)
}

/// A stand-in for the client: forwards the query of each
/// `GET /callback?...` it gets and answers a small page.
pub async fn callback_listener() -> Result<(String, mpsc::Receiver<String>)> {
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
