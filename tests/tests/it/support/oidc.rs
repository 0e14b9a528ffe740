//! Shared by the OIDC process tests: a tenant with a client and a user made
//! through the admin API, and a minimal browser (reqwest without
//! redirects, a cookie jar, the hidden fields of a form) that can be
//! pointed at any node while the URLs it follows name the cluster's one
//! public URL.

#![allow(dead_code)]

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use rsp_tests::rsp_chaos::AdminClient;
use serde_json::{Value, json};

pub const PASSWORD: &str = "e2e password 1234";

/// Create tenant `tenant`, user `erin` and client `client` (with `body`
/// merged into its registration); returns the client secret, if any.
pub async fn tenant_with_client(
    admin: &AdminClient,
    tenant: &str,
    client: &str,
    registration: Value,
) -> Result<Option<String>> {
    admin.create_tenant(tenant, tenant).await?.success()?;
    admin
        .post(
            &format!("/admin/v1/tenants/{tenant}/users"),
            &json!({"username": "erin", "password": PASSWORD, "email": "erin@example.com",
                    "attributes": {"name": "Erin Example"}}),
        )
        .await?
        .success()?;
    let mut body = registration;
    body["client_id"] = json!(client);
    let made = admin
        .post(&format!("/admin/v1/tenants/{tenant}/clients"), &body)
        .await?
        .success()?;
    Ok(made.body["client_secret"].as_str().map(str::to_string))
}

/// What a page request answered.
pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
    pub html: String,
}

impl Reply {
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

    /// A query parameter of the redirect target.
    pub fn param(&self, name: &str) -> Option<String> {
        let url = url::Url::parse(self.location.as_deref()?).ok()?;
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// A browser that does not follow redirects and keeps cookies by name.
pub struct WebBrowser {
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
    /// The public URL every node was started with.
    public: String,
}

impl WebBrowser {
    pub fn new(public: &str) -> Result<Self> {
        Ok(WebBrowser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            cookies: BTreeMap::new(),
            public: public.to_string(),
        })
    }

    /// `url` (under the public URL) sent to the node at `base`.
    fn route(&self, url: &str, base: &str) -> String {
        match url.strip_prefix(&self.public) {
            Some(rest) => format!("{base}{rest}"),
            None => url.to_string(),
        }
    }

    async fn finish(&mut self, resp: reqwest::Response) -> Result<Reply> {
        let status = resp.status().as_u16();
        for v in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            let text = v.to_str().unwrap_or("");
            let first = text.split(';').next().unwrap_or("");
            if let Some((name, value)) = first.split_once('=') {
                if value.is_empty() || text.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_string);
        let html = resp.text().await?;
        Ok(Reply {
            status,
            location,
            html,
        })
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn get(&mut self, url: &str, base: &str) -> Result<Reply> {
        let resp = self
            .http
            .get(self.route(url, base))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        self.finish(resp).await
    }

    pub async fn post(&mut self, url: &str, base: &str, form: &[(&str, &str)]) -> Result<Reply> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let resp = self
            .http
            .post(self.route(url, base))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        self.finish(resp).await
    }

    /// Open an authorization URL on `base` and sign in as erin; returns the
    /// redirect to the client.
    pub async fn sign_in(
        &mut self,
        authorize_url: &str,
        base: &str,
        issuer: &str,
    ) -> Result<Reply> {
        self.sign_in_as(authorize_url, base, issuer, "erin", PASSWORD)
            .await
    }

    /// [`WebBrowser::sign_in`] as another user.
    pub async fn sign_in_as(
        &mut self,
        authorize_url: &str,
        base: &str,
        issuer: &str,
        username: &str,
        password: &str,
    ) -> Result<Reply> {
        let page = self.get(authorize_url, base).await?;
        if page.status != 200 {
            bail!("authorize answered {}: {}", page.status, page.html);
        }
        let csrf = page.field("csrf_token").context("no csrf_token")?;
        let flow = page.field("flow").context("no flow")?;
        let done = self
            .post(
                &format!("{issuer}/login"),
                base,
                &[
                    ("csrf_token", &csrf),
                    ("flow", &flow),
                    ("username", username),
                    ("password", password),
                ],
            )
            .await?;
        if done.status != 303 {
            bail!("login answered {}: {}", done.status, done.html);
        }
        Ok(done)
    }
}
