//! A checked authorization request ([`AuthzRequest`], RFC 6749 section
//! 4.1.1, OIDC Core section 3.1.2.1): [`resolve`] checks the client and
//! its redirect URI first (an unknown client or a redirect URI that is not
//! exactly registered gets an error page, never a redirect), resolves a
//! PAR `request_uri` (once, RFC 9126), then validates the rest; every
//! later error goes back to the redirect URI with `error`, `state` and
//! `iss` (RFC 9207). [`issue_code`] ends a request with a code.
//!
//! The authorization endpoint, the login steps and the consent page all
//! resolve the request they carry through here, so each step checks it
//! again.

use std::collections::BTreeMap;

use axum::http::StatusCode;

use crate::oidc::browser_session::{ActiveSession, Browser};
use crate::oidc::error::{OAuthError, OAuthErrorCode};
use crate::oidc::pages::{Page, PageError};
use crate::oidc::tenant::TenantCtx;
use crate::state::AppState;
use rsp_identity::clients::{Client, ClientError};
use rsp_identity::oauth::codes::CodeGrant;
use rsp_identity::oauth::par::REQUEST_URI_PREFIX;
use rsp_identity::oauth::request::validate_authorization_request;

/// A validated authorization request: its client and complete parameters
/// (`client_id`, a registered `redirect_uri`, a normalized `scope`).
pub struct AuthzRequest {
    pub client: Client,
    pub params: BTreeMap<String, String>,
}

/// `prompt` (OIDC Core section 3.1.2.1).
#[derive(Debug, Default, Clone, Copy)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

impl Prompt {
    fn parse(value: Option<&str>) -> Result<Prompt, &'static str> {
        let mut p = Prompt::default();
        let mut any_other = false;
        for v in value.unwrap_or("").split(' ').filter(|v| !v.is_empty()) {
            match v {
                "none" => p.none = true,
                "login" => p.login = true,
                "consent" => p.consent = true,
                // select_account and unknown values: nothing to do here.
                _ => any_other = true,
            }
        }
        if p.none && (p.login || p.consent || any_other) {
            return Err("prompt=none cannot be combined with other values");
        }
        Ok(p)
    }
}

impl AuthzRequest {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    pub fn redirect_uri(&self) -> &str {
        self.get("redirect_uri").unwrap_or_default()
    }

    pub fn scope(&self) -> &str {
        self.get("scope").unwrap_or_default()
    }

    pub fn client_name(&self) -> &str {
        self.client
            .client_name
            .as_deref()
            .unwrap_or(&self.client.client_id)
    }

    pub fn prompt(&self) -> Prompt {
        // Checked in `resolve`.
        Prompt::parse(self.get("prompt")).unwrap_or_default()
    }

    pub fn max_age(&self) -> Option<u64> {
        self.get("max_age").and_then(|m| m.parse().ok())
    }

    /// The error `code` sent back to the client (RFC 6749 section 4.1.2.1).
    pub fn error(
        &self,
        t: &TenantCtx,
        code: OAuthErrorCode,
        description: &str,
        after_post: bool,
    ) -> Page {
        let mut pairs = vec![("error", code.as_str()), ("error_description", description)];
        if let Some(state) = self.get("state") {
            pairs.push(("state", state));
        }
        pairs.push(("iss", &t.issuer));
        Page::redirect(with_query(self.redirect_uri(), &pairs), after_post)
    }

    pub fn oauth_error(&self, t: &TenantCtx, e: OAuthError, after_post: bool) -> Page {
        self.error(t, e.code, &e.description, after_post)
    }
}

/// `uri` with `pairs` added to its query.
pub fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(pairs);
            url.to_string()
        }
        Err(_) => uri.to_string(),
    }
}

fn error_page(description: &str) -> PageError {
    PageError::bad_request(description.to_string())
}

/// Check the request. `Err` is an error page (client or redirect URI not
/// trustworthy); `Ok(Err(page))` an error redirect to the client. An
/// unknown client id is confirmed linearizably within the browser's
/// address budget ([`crate::miss_limit`]), else a 429 page.
pub async fn resolve(
    state: &AppState,
    browser: &Browser,
    mut params: BTreeMap<String, String>,
    allow_request_uri: bool,
    after_post: bool,
) -> Result<Result<AuthzRequest, Page>, PageError> {
    let t = &browser.tenant;
    let client_id = params
        .get("client_id")
        .cloned()
        .ok_or_else(|| error_page("The request does not name a client (client_id is missing)."))?;
    let gate = state.misses.gate(browser.client_ip);
    let client = match state.identity.clients.find(&t.id, &client_id, &gate).await {
        Ok(c) => c,
        Err(ClientError::NotFound) => {
            return Err(error_page("The application (client_id) is not known here."));
        }
        Err(ClientError::Refused(r)) => return Err(OAuthError::from(r).into()),
        Err(ClientError::Consensus(e)) => return Err(e.into()),
        Err(e) => return Err(PageError::internal(e)),
    };
    if let Some(uri) = params.get("request_uri").cloned()
        && uri.starts_with(REQUEST_URI_PREFIX)
    {
        if !allow_request_uri {
            return Err(error_page("request_uri cannot be used here."));
        }
        match state.oidc.par.take(&t.id, &client.client_id, &uri).await? {
            Some(pushed) => params = pushed,
            None => {
                return Err(PageError::new(
                    StatusCode::BAD_REQUEST,
                    OAuthErrorCode::InvalidRequestUri.as_str(),
                    "The pushed request (request_uri) is unknown, expired or already used. Start again from the application.",
                ));
            }
        }
    }
    match params.get("redirect_uri") {
        Some(uri) if client.has_redirect_uri(uri) => {}
        Some(_) => {
            return Err(error_page(
                "The redirect_uri is not registered for this application, so you cannot be sent back to it.",
            ));
        }
        None if client.redirect_uris.len() == 1 => {
            params.insert("redirect_uri".into(), client.redirect_uris[0].clone());
        }
        None => return Err(error_page("The request has no redirect_uri.")),
    }
    let mut req = AuthzRequest { client, params };
    if req.params.contains_key("request_uri") {
        return Ok(Err(req.error(
            t,
            OAuthErrorCode::RequestUriNotSupported,
            "only request_uri values from the pushed authorization request endpoint are supported",
            after_post,
        )));
    }
    if let Err(e) = validate_authorization_request(&req.client, &mut req.params) {
        return Ok(Err(req.oauth_error(t, e, after_post)));
    }
    if let Err(d) = Prompt::parse(req.get("prompt")) {
        return Ok(Err(req.error(
            t,
            OAuthErrorCode::InvalidRequest,
            d,
            after_post,
        )));
    }
    if req
        .get("max_age")
        .is_some_and(|m| m.parse::<u64>().is_err())
    {
        return Ok(Err(req.error(
            t,
            OAuthErrorCode::InvalidRequest,
            "max_age must be a number of seconds",
            after_post,
        )));
    }
    Ok(Ok(req))
}

/// Issue a code for `req` to the session's user and send the browser back.
pub async fn issue_code(
    state: &AppState,
    browser: &Browser,
    req: &AuthzRequest,
    session: &ActiveSession,
    after_post: bool,
) -> Result<Page, PageError> {
    let t = &browser.tenant;
    let grant = CodeGrant {
        client_id: req.client.client_id.clone(),
        redirect_uri: req.redirect_uri().to_string(),
        user_id: session.user.id.clone(),
        scope: req.scope().to_string(),
        nonce: req.get("nonce").map(str::to_string),
        code_challenge: req.get("code_challenge").map(str::to_string),
        code_challenge_method: req.get("code_challenge_method").map(str::to_string),
        auth_time: session.auth_time,
        acr: session.acr.clone(),
        amr: session.amr.clone(),
        session_id: Some(session.handle()),
    };
    let code = match state.oidc.codes.issue(&t.id, grant).await {
        Ok(code) => code,
        Err(e) => return Ok(req.oauth_error(t, e, after_post)),
    };
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = req.get("state") {
        pairs.push(("state", s));
    }
    pairs.push(("iss", &t.issuer));
    Ok(Page::redirect(
        with_query(req.redirect_uri(), &pairs),
        after_post,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_none_stands_alone() {
        assert!(Prompt::parse(Some("none")).expect("none").none);
        assert!(Prompt::parse(Some("none login")).is_err());
        let p = Prompt::parse(Some("login consent select_account")).expect("parse");
        assert!(p.login && p.consent && !p.none);
    }

    #[test]
    fn error_parameters_are_appended_to_the_existing_query() {
        assert_eq!(
            with_query("https://a.example/cb?x=1", &[("code", "c d")]),
            "https://a.example/cb?x=1&code=c+d"
        );
    }
}
