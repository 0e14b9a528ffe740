//! HTML answers of the browser side: [`Page`] (a rendered page or a
//! redirect, with its cookies) and the security headers every answer
//! carries; [`templates`] (the pages' askama templates) and [`error`]
//! ([`PageError`], an error page) beside it.
//!
//! The headers: a CSP that allows no script, no framing and forms only to
//! this origin (plus, on pages whose form ends in a redirect to the client,
//! the redirect URI's origin, since browsers apply `form-action` to the
//! redirect too), `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`,
//! `Cache-Control: no-store`. The one exception to "no script": a passkey
//! page's inline script, allowed by a per-response nonce
//! ([`Page::script_nonce`]).

pub mod error;
pub mod templates;

use std::time::Duration;

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub use error::PageError;

/// A CSP source for the origin of `uri` (`scheme://host:port`, or
/// `scheme:` for private-use schemes), if it is safe in a header.
fn csp_source(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    let source = match url.scheme() {
        "http" | "https" => url.origin().ascii_serialization(),
        scheme => format!("{scheme}:"),
    };
    let safe = source
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'\''));
    (safe && source != "null").then_some(source)
}

fn security_headers(headers: &mut HeaderMap, form_targets: &[String], script_nonce: Option<&str>) {
    let mut form_action = String::from("'self'");
    for t in form_targets {
        form_action.push(' ');
        form_action.push_str(t);
    }
    let script = script_nonce
        .filter(|n| {
            n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(|n| format!("script-src 'nonce-{n}'; "))
        .unwrap_or_default();
    let csp = format!(
        "default-src 'none'; {script}style-src 'self' 'unsafe-inline'; img-src 'self'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// A page or a redirect, with the cookies to set.
#[derive(Debug)]
pub struct Page {
    status: StatusCode,
    html: String,
    location: Option<String>,
    cookies: Vec<String>,
    form_targets: Vec<String>,
    retry_after: Option<Duration>,
    /// The nonce of the page's one inline script (passkey pages).
    script_nonce: Option<String>,
}

impl Page {
    /// Render `template` with `status`; a template failure is a 500 page.
    pub fn render(status: StatusCode, template: &impl Template) -> Page {
        match template.render() {
            Ok(html) => Page::html(status, html),
            Err(e) => PageError::internal(e).page(),
        }
    }

    /// A page of already rendered `html`.
    pub(crate) fn html(status: StatusCode, html: String) -> Page {
        Page {
            status,
            html,
            location: None,
            cookies: Vec::new(),
            form_targets: Vec::new(),
            retry_after: None,
            script_nonce: None,
        }
    }

    /// A redirect: 302 after a GET, 303 after a POST (so the browser GETs
    /// the target and does not resend the form).
    pub fn redirect(location: String, after_post: bool) -> Page {
        Page {
            status: if after_post {
                StatusCode::SEE_OTHER
            } else {
                StatusCode::FOUND
            },
            html: String::new(),
            location: Some(location),
            cookies: Vec::new(),
            form_targets: Vec::new(),
            retry_after: None,
            script_nonce: None,
        }
    }

    pub fn cookie(mut self, set_cookie: String) -> Page {
        self.cookies.push(set_cookie);
        self
    }

    pub fn cookies(mut self, set_cookies: impl IntoIterator<Item = String>) -> Page {
        self.cookies.extend(set_cookies);
        self
    }

    /// Let this page's form lead (through a redirect) to `uri`'s origin.
    pub fn form_target(mut self, uri: &str) -> Page {
        if let Some(source) = csp_source(uri) {
            self.form_targets.push(source);
        }
        self
    }

    /// Allow the page's inline scripts that carry `nonce` (CSP
    /// `script-src 'nonce-...'`); every other page runs no script.
    pub fn script_nonce(mut self, nonce: &str) -> Page {
        self.script_nonce = Some(nonce.to_string());
        self
    }

    pub fn retry_after(mut self, after: Duration) -> Page {
        self.retry_after = Some(after);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut resp = if self.location.is_some() {
            self.status.into_response()
        } else {
            (
                self.status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                self.html,
            )
                .into_response()
        };
        let headers = resp.headers_mut();
        if let Some(location) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::LOCATION, location);
        }
        for c in self.cookies {
            if let Ok(v) = HeaderValue::from_str(&c) {
                headers.append(header::SET_COOKIE, v);
            }
        }
        if let Some(after) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        security_headers(headers, &self.form_targets, self.script_nonce.as_deref());
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_sources_are_origins_and_refuse_header_tricks() {
        assert_eq!(
            csp_source("http://127.0.0.1:8089/callback?x=1").as_deref(),
            Some("http://127.0.0.1:8089")
        );
        assert_eq!(
            csp_source("com.example.app:/oauth").as_deref(),
            Some("com.example.app:")
        );
        assert_eq!(csp_source("not a url"), None);
    }
}
