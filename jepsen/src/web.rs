//! HTTP as a browser and an OAuth client see it, for the workloads that go
//! through the OIDC endpoints (`codes`, `refresh`, `sessions`, `lockout`,
//! `create-use`).
//!
//! - [`Web`]: reqwest clients that never follow redirects and never use an
//!   environment proxy, one per source address. Every simulated browser
//!   connects from its own loopback address (`127.0.x.y`), as different
//!   users would, so the per-address login rate limit of `rsp` judges each
//!   browser by itself rather than the whole test as one abuser.
//! - [`Browser`]: a cookie jar (one tenant path, so a flat map suffices)
//!   and the login form's hidden fields.
//! - [`Sent`]: how a request ended, before a workload decides what it means:
//!   an answer, certainly not sent (no connection), or unknown (timeout,
//!   connection broken after sending).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::Digest;

/// An answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub body: String,
}

impl Reply {
    /// A query parameter of the redirect target.
    pub fn param(&self, name: &str) -> Option<String> {
        let url = url::Url::parse(self.location.as_deref()?).ok()?;
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The value of the form input named `name`.
    pub fn field(&self, name: &str) -> Option<String> {
        let needle = format!("name=\"{name}\"");
        let at = self.body.find(&needle)?;
        let open = self.body[..at].rfind('<')?;
        let close = at + self.body[at..].find('>')?;
        let tag = &self.body[open..close];
        let start = tag.find("value=\"")? + "value=\"".len();
        let len = tag[start..].find('"')?;
        Some(tag[start..start + len].to_string())
    }

    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The `error` field of a JSON error body, or `http_<status>`.
    pub fn error_code(&self) -> String {
        self.json()
            .get("error")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("http_{}", self.status))
    }
}

/// How a request ended.
#[derive(Debug, Clone)]
pub enum Sent {
    Reply(Reply),
    /// No connection could be made: the request never reached the node.
    NotSent(String),
    /// A timeout or a broken connection: it may have been processed.
    Unknown(String),
}

/// reqwest clients by source address, shared by every browser.
#[derive(Clone)]
pub struct Web {
    timeout: Duration,
    clients: Arc<Mutex<HashMap<IpAddr, reqwest::Client>>>,
}

impl Web {
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            clients: Arc::default(),
        }
    }

    /// The `n`-th loopback source address: `127.0.x.y`, never `127.0.0.1`.
    pub fn source(n: u64) -> IpAddr {
        let n = n % (200 * 250);
        IpAddr::V4(Ipv4Addr::new(
            127,
            0,
            (1 + n / 250) as u8,
            (2 + n % 250) as u8,
        ))
    }

    fn client(&self, from: IpAddr) -> Result<reqwest::Client> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(&from) {
            return Ok(c.clone());
        }
        let c = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(from)
            .connect_timeout(Duration::from_secs(2))
            .timeout(self.timeout)
            .build()
            .context("building an HTTP client")?;
        clients.insert(from, c.clone());
        Ok(c)
    }

    /// Sends `req` (built on the client for `from`) and reads the answer.
    pub async fn send(
        &self,
        from: IpAddr,
        build: impl FnOnce(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Sent {
        let client = match self.client(from) {
            Ok(c) => c,
            Err(e) => return Sent::NotSent(format!("{e:#}")),
        };
        let resp = match build(&client).send().await {
            Ok(r) => r,
            Err(e) => return classify(&e),
        };
        let status = resp.status().as_u16();
        let header = |name| {
            resp.headers()
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_string))
                .collect::<Vec<_>>()
        };
        let location = header(reqwest::header::LOCATION).into_iter().next();
        let set_cookies = header(reqwest::header::SET_COOKIE);
        match resp.text().await {
            Ok(body) => Sent::Reply(Reply {
                status,
                location,
                set_cookies,
                body,
            }),
            Err(e) => classify(&e),
        }
    }
}

fn classify(e: &reqwest::Error) -> Sent {
    if e.is_connect() {
        Sent::NotSent("connect_failed".to_string())
    } else if e.is_timeout() {
        Sent::Unknown("timeout".to_string())
    } else {
        let mut cause: &dyn std::error::Error = e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        Sent::Unknown(format!("transport: {cause}"))
    }
}

/// A form body.
pub fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A browser: its source address and cookies.
#[derive(Debug, Clone)]
pub struct Browser {
    pub from: IpAddr,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new(from: IpAddr) -> Self {
        Self {
            from,
            cookies: BTreeMap::new(),
        }
    }

    /// Takes in the `Set-Cookie`s of `reply`.
    pub fn absorb(&mut self, reply: &Reply) {
        for text in &reply.set_cookies {
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

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// `GET url` with the cookies; takes in the new ones.
    pub async fn get(&mut self, web: &Web, url: &str) -> Sent {
        let cookies = self.cookie_header();
        let sent = web
            .send(self.from, |c| {
                c.get(url).header(reqwest::header::COOKIE, cookies)
            })
            .await;
        if let Sent::Reply(r) = &sent {
            self.absorb(r);
        }
        sent
    }

    /// `POST url` with a form and the cookies; takes in the new ones.
    pub async fn post_form(&mut self, web: &Web, url: &str, body: String) -> Sent {
        let cookies = self.cookie_header();
        let sent = web
            .send(self.from, |c| {
                c.post(url)
                    .header(reqwest::header::COOKIE, cookies)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body)
            })
            .await;
        if let Sent::Reply(r) = &sent {
            self.absorb(r);
        }
        sent
    }
}

/// A PKCE pair (RFC 7636): the verifier and its S256 challenge.
pub fn pkce(rng: &mut impl Rng) -> (String, String) {
    let bytes: [u8; 32] = rng.random();
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The claims of a JWT, unverified (the test only reads `sid`).
pub fn jwt_claims(jwt: &str) -> Option<serde_json::Value> {
    let payload = jwt.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_and_redirect_params_are_read() {
        let r = Reply {
            status: 303,
            location: Some("http://127.0.0.1:9/cb?code=abc&state=s%201".into()),
            set_cookies: vec![],
            body: r#"<form><input type="hidden" name="csrf_token" value="t0k"></form>"#.into(),
        };
        assert_eq!(r.param("code").as_deref(), Some("abc"));
        assert_eq!(r.param("state").as_deref(), Some("s 1"));
        assert_eq!(r.field("csrf_token").as_deref(), Some("t0k"));
        assert_eq!(r.field("flow"), None);
    }

    #[test]
    fn cookies_are_kept_and_cleared() {
        let mut b = Browser::new(Web::source(0));
        let mut r = Reply {
            status: 200,
            location: None,
            set_cookies: vec!["a=1; Path=/t/x; HttpOnly".into(), "b=2; Path=/t/x".into()],
            body: String::new(),
        };
        b.absorb(&r);
        assert_eq!(b.cookie_header(), "a=1; b=2");
        r.set_cookies = vec!["a=; Path=/t/x; Max-Age=0".into()];
        b.absorb(&r);
        assert_eq!(b.cookie_header(), "b=2");
    }

    #[test]
    fn sources_are_loopback_but_never_the_default_address() {
        for n in [0, 1, 249, 250, 49_999, 50_000] {
            let ip = Web::source(n);
            assert!(ip.is_loopback());
            assert_ne!(ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
    }

    #[test]
    fn pkce_challenge_is_the_s256_of_the_verifier() {
        let mut rng = rand::rng();
        let (v, c) = pkce(&mut rng);
        assert_eq!(v.len(), 43);
        assert_eq!(
            c,
            URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(v.as_bytes()))
        );
    }
}
