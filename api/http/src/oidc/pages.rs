//! HTML answers of the browser side: the templates (askama, under
//! `api/http/templates/`, HTML-escaped by default), [`Page`] (a rendered page or
//! a redirect, with its cookies) and [`PageError`] (an error page).
//!
//! Every answer carries the same security headers: a CSP that allows no
//! script, no framing and forms only to this origin (plus, on pages whose
//! form ends in a redirect to the client, the redirect URI's origin, since
//! browsers apply `form-action` to the redirect too), `X-Frame-Options:
//! DENY`, `Referrer-Policy: no-referrer`, `Cache-Control: no-store`. The
//! one exception to "no script": a passkey page's inline script, allowed by
//! a per-response nonce ([`Page::script_nonce`]).

use std::time::Duration;

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rsp_actors::ActorError;

use crate::oidc::error::{OAuthError, OAuthErrorCode, OAuthErrorResponse};

/// One line of a consent or device page: a scope and what it means.
pub struct ScopeLine {
    pub name: String,
    pub meaning: &'static str,
}

impl ScopeLine {
    pub fn list(scope: &str) -> Vec<ScopeLine> {
        scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(|s| ScopeLine {
                name: s.to_string(),
                meaning: match s {
                    "openid" => "Sign you in with your account",
                    "profile" => "Your name and profile details",
                    "email" => "Your email address",
                    "address" => "Your postal address",
                    "phone" => "Your phone number",
                    "offline_access" => "Stay connected when you are not using it",
                    _ => "",
                },
            })
            .collect()
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub client_name: Option<&'a str>,
    pub csrf: &'a str,
    pub flow: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "totp.html")]
pub struct TotpPage<'a> {
    pub csrf: &'a str,
    pub ticket: &'a str,
    pub error: Option<&'a str>,
}

/// Setting up a TOTP factor: the QR code (inline SVG made here, not user
/// input), the key to type by hand and the `otpauth://` URI, and the form
/// that confirms it with a first code (posted to `action` with `fields`).
#[derive(Template)]
#[template(path = "totp_enrol.html")]
pub struct TotpEnrolPage<'a> {
    pub required: bool,
    pub qr_svg: &'a str,
    pub secret: &'a str,
    pub uri: &'a str,
    pub action: &'a str,
    pub csrf: &'a str,
    pub fields: Vec<(&'a str, &'a str)>,
    pub error: Option<&'a str>,
    pub back: Option<&'a str>,
}

/// A new set of recovery codes, shown once; then a form that continues
/// (`action` with `fields`) or a link back.
#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryCodesPage<'a> {
    pub codes: Vec<&'a str>,
    pub action: Option<&'a str>,
    pub csrf: &'a str,
    pub fields: Vec<(&'a str, &'a str)>,
    pub back: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub client_name: &'a str,
    pub username: &'a str,
    pub scopes: Vec<ScopeLine>,
    pub csrf: &'a str,
    pub ticket: &'a str,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub code: &'a str,
    pub description: &'a str,
}

#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutPage;

#[derive(Template)]
#[template(path = "logout_confirm.html")]
pub struct LogoutConfirmPage<'a> {
    pub username: &'a str,
    pub csrf: &'a str,
    pub ticket: &'a str,
}

#[derive(Template)]
#[template(path = "device.html")]
pub struct DeviceCodePage<'a> {
    pub csrf: &'a str,
    pub user_code: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "device_confirm.html")]
pub struct DeviceConfirmPage<'a> {
    pub client_name: &'a str,
    pub username: &'a str,
    pub user_code: &'a str,
    pub scopes: Vec<ScopeLine>,
    pub csrf: &'a str,
    pub ticket: &'a str,
}

#[derive(Template)]
#[template(path = "device_done.html")]
pub struct DeviceDonePage {
    pub approved: bool,
}

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
            Ok(html) => Page {
                status,
                html,
                location: None,
                cookies: Vec::new(),
                form_targets: Vec::new(),
                retry_after: None,
                script_nonce: None,
            },
            Err(e) => PageError::internal(e).page(),
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

/// An error shown as a page (never a redirect): unknown client, bad
/// redirect URI, forged form, unavailable service...
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    /// A stable code (the RFC 6749 one where there is one).
    pub code: &'static str,
    pub description: String,
    pub retry_after: Option<Duration>,
}

impl PageError {
    pub fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        PageError {
            status,
            code,
            description: description.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// The anti-forgery check failed.
    pub fn forged() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "invalid_csrf_token",
            "This form expired or was not sent from this site. Go back, reload the page and try again.",
        )
    }

    pub fn unavailable(description: impl Into<String>, retry_after: Option<Duration>) -> Self {
        PageError {
            retry_after: Some(retry_after.unwrap_or(Duration::from_secs(1))),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                description,
            )
        }
    }

    /// Log the detail, show a generic page.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(detail = %detail, "browser page error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "Something went wrong on our side. Try again later.",
        )
    }

    fn title(&self) -> &'static str {
        match self.status.as_u16() {
            403 => "Request refused",
            404 => "Not found",
            429 => "Too many attempts",
            500..=599 => "Service problem",
            _ => "Invalid request",
        }
    }

    pub fn page(self) -> Page {
        let html = ErrorPage {
            title: self.title(),
            code: self.code,
            description: &self.description,
        }
        .render()
        .unwrap_or_else(|_| "error".to_string());
        Page {
            status: self.status,
            html,
            location: None,
            cookies: Vec::new(),
            form_targets: Vec::new(),
            retry_after: self.retry_after,
            script_nonce: None,
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.page().into_response()
    }
}

impl From<OAuthErrorResponse> for PageError {
    fn from(e: OAuthErrorResponse) -> Self {
        e.0.into()
    }
}

impl From<OAuthError> for PageError {
    fn from(e: OAuthError) -> Self {
        // Server errors were logged where they were made.
        let status = StatusCode::from_u16(e.status.unwrap_or(e.code.status()))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after =
            (e.code == OAuthErrorCode::TemporarilyUnavailable).then_some(Duration::from_secs(1));
        PageError {
            status,
            code: e.code.as_str(),
            description: e.description,
            retry_after,
        }
    }
}

impl From<ActorError> for PageError {
    fn from(e: ActorError) -> Self {
        let retry = e.retry_after();
        match e {
            ActorError::RateLimited { .. } | ActorError::Locked { .. } => PageError {
                retry_after: retry,
                ..PageError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "Too many attempts. Wait a moment and try again.",
                )
            },
            ActorError::Overloaded { .. }
            | ActorError::QuotaExceeded { .. }
            | ActorError::Degraded { .. }
            | ActorError::Restarting { .. }
            | ActorError::Timeout
            | ActorError::Unavailable(_)
            | ActorError::OutcomeUnknown
            | ActorError::Contention(_)
            | ActorError::ShuttingDown => PageError::unavailable(
                "The service is briefly unavailable. Try again in a moment.",
                retry,
            ),
            ActorError::SessionNotFound => PageError::new(
                StatusCode::UNAUTHORIZED,
                "login_required",
                "Your session ended. Start again from the application.",
            ),
            other => PageError::internal(other),
        }
    }
}

impl From<rsp_consensus::ConsensusError> for PageError {
    fn from(e: rsp_consensus::ConsensusError) -> Self {
        OAuthError::from(e).into()
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

    #[test]
    fn templates_escape_what_they_show() {
        let html = LoginPage {
            client_name: Some("<script>x</script>"),
            csrf: "c",
            flow: "f",
            username: "\"><b>",
            error: None,
        }
        .render()
        .expect("render");
        assert!(!html.contains("<script>x"), "{html}");
        assert!(!html.contains("\"><b>"), "{html}");
    }
}
