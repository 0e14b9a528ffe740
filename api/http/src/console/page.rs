//! The console's answers: pages and redirects with its security headers,
//! [`Problem`] (an error shown as a page) and the stylesheet.
//!
//! The headers are stricter than the sign-in pages': `default-src 'none'`,
//! styles only from the served stylesheet (`style-src 'self'`, no inline
//! style), no script at all, forms only to this origin, no framing
//! (`frame-ancestors 'none'`, `X-Frame-Options: DENY`), `no-store`, no
//! referrer, `nosniff`.

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::templates::ProblemPage;

pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
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

/// Render `template` with `status` and the console's headers, setting
/// `cookies`.
pub fn render(status: StatusCode, template: &impl Template, cookies: &[String]) -> Response {
    match template.render() {
        Ok(html) => {
            let mut resp = (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response();
            for c in cookies {
                if let Ok(v) = HeaderValue::from_str(c) {
                    resp.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            security_headers(resp.headers_mut());
            resp
        }
        Err(e) => Problem::internal(e).into_response(),
    }
}

/// 303 to `location` (a GET of it, whatever the method was).
pub fn redirect(location: &str) -> Response {
    redirect_setting(location, &[])
}

pub fn redirect_setting(location: &str, cookies: &[String]) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, v);
    }
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    security_headers(headers);
    resp
}

/// An error shown as a page of its own.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub message: String,
}

impl Problem {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Problem {
            status,
            message: message.into(),
        }
    }

    /// The anti-forgery check failed.
    pub fn forged() -> Self {
        Problem::new(
            StatusCode::FORBIDDEN,
            "This form expired or was not sent from the console. Go back, reload the page and try again.",
        )
    }

    /// Log the detail, show a generic page.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(detail = %detail, "console page error");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side. Try again later.",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let page = ProblemPage {
            status: self.status.as_u16(),
            message: self.message,
        };
        match page.render() {
            Ok(html) => {
                let mut resp = (
                    self.status,
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    html,
                )
                    .into_response();
                security_headers(resp.headers_mut());
                resp
            }
            Err(_) => self.status.into_response(),
        }
    }
}

const STYLESHEET: &str = include_str!("../../templates/console/console.css");

/// `GET /admin/assets/console.css`: the console's one stylesheet.
pub async fn stylesheet() -> Response {
    let mut resp = (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response();
    resp.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}
