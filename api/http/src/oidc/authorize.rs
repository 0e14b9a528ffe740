//! The authorization endpoint, `GET|POST {issuer}/authorize` (RFC 6749
//! section 4.1, OIDC Core section 3.1.2, RFC 9126 for `request_uri`,
//! RFC 9207 for `iss`).
//!
//! 1. [`resolve`]: the client and its redirect URI are checked first; an
//!    unknown client or a redirect URI that is not exactly registered gets
//!    an error page, never a redirect. A PAR `request_uri` is resolved
//!    (once) before that. Every later error goes back to the redirect URI
//!    with `error`, `state` and `iss`.
//! 2. [`proceed`]: the browser's session against `prompt`, `max_age` and
//!    `id_token_hint` (login page, or `login_required` for `prompt=none`),
//!    then `acr_values` / the tenant's MFA policy (a password-only
//!    session signs in again with a second factor: [`crate::oidc::mfa`]),
//!    then consent ([`crate::oidc::consent`]), then a code
//!    ([`rsp_identity::oauth::codes::CodeService::issue`]) carrying the nonce,
//!    PKCE challenge, `auth_time`, `amr`, `acr` and the session.
//!
//! The validated request travels to the login and consent steps sealed in
//! their forms ([`crate::oidc::csrf::seal`]); they call back into
//! [`resolve`] and [`proceed`].

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use crate::oidc::browser_session::{ActiveSession, Browser, current_session};
use crate::oidc::consent;
use crate::oidc::csrf::{Csrf, seal};
use crate::oidc::error::{OAuthError, OAuthErrorCode};
use crate::oidc::http::{Params, is_form};
use crate::oidc::id_token_hint;
use crate::oidc::mfa::{self, ACR_MFA};
use crate::oidc::pages::templates::LoginPage;
use crate::oidc::pages::{Page, PageError};
use crate::oidc::tenant::TenantCtx;
use crate::state::AppState;
use rsp_identity::clients::{Client, ClientError};
use rsp_identity::oauth::codes::CodeGrant;
use rsp_identity::oauth::par::REQUEST_URI_PREFIX;
use rsp_identity::oauth::request::validate_authorization_request;

/// Where a login form leads once the user is signed in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Continuation {
    /// Finish this (validated) authorization request.
    Authorize { params: BTreeMap<String, String> },
    /// Show the device approval page for this user code.
    Device { user_code: String },
    /// Back to the self-service account pages (`{issuer}/account`).
    Account,
}

impl Continuation {
    /// The client's redirect URI, where the flow ends at a client.
    pub fn redirect_uri(&self) -> Option<&str> {
        match self {
            Continuation::Authorize { params } => params.get("redirect_uri").map(String::as_str),
            Continuation::Device { .. } | Continuation::Account => None,
        }
    }
}

/// Sealing purpose of the login form's `flow` field.
pub const LOGIN_FLOW: &str = "login";

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

    fn max_age(&self) -> Option<u64> {
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

    fn oauth_error(&self, t: &TenantCtx, e: OAuthError, after_post: bool) -> Page {
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

/// `GET {issuer}/authorize`.
pub async fn get(
    State(state): State<AppState>,
    b: Browser,
    RawQuery(query): RawQuery,
) -> Result<Page, PageError> {
    let params = Params::parse(query.unwrap_or_default().as_bytes())?;
    authorize(&state, &b, params.into_map(), false).await
}

/// `POST {issuer}/authorize` (a form, OIDC Core section 3.1.2.1).
pub async fn post(
    State(state): State<AppState>,
    b: Browser,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Page, PageError> {
    if !is_form(&headers) {
        return Err(PageError::bad_request(
            "The request must be a form (application/x-www-form-urlencoded).",
        ));
    }
    let params = Params::parse(&body)?;
    authorize(&state, &b, params.into_map(), true).await
}

async fn authorize(
    state: &AppState,
    b: &Browser,
    params: BTreeMap<String, String>,
    after_post: bool,
) -> Result<Page, PageError> {
    let req = match resolve(state, &b.tenant, params, true, after_post).await? {
        Ok(req) => req,
        Err(redirect) => return Ok(redirect),
    };
    let h = state.browser.tenant(&b.tenant.id).await?;
    let session = current_session(state, b, &h).await?;
    proceed(state, b, req, session, false, after_post).await
}

fn error_page(description: &str) -> PageError {
    PageError::bad_request(description.to_string())
}

/// Check the request. `Err` is an error page (client or redirect URI not
/// trustworthy); `Ok(Err(page))` an error redirect to the client.
pub async fn resolve(
    state: &AppState,
    t: &TenantCtx,
    mut params: BTreeMap<String, String>,
    allow_request_uri: bool,
    after_post: bool,
) -> Result<Result<AuthzRequest, Page>, PageError> {
    let client_id = params
        .get("client_id")
        .cloned()
        .ok_or_else(|| error_page("The request does not name a client (client_id is missing)."))?;
    let client = match state.identity.clients.get(&t.id, &client_id).await {
        Ok(c) => c,
        Err(ClientError::NotFound) => {
            return Err(error_page("The application (client_id) is not known here."));
        }
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

/// Take a resolved request on from the browser's `session`: login, consent,
/// then the code. `fresh_login`: the user just signed in for this request,
/// so `prompt=login`, `max_age` and the hint are satisfied.
pub async fn proceed(
    state: &AppState,
    b: &Browser,
    req: AuthzRequest,
    session: Option<ActiveSession>,
    fresh_login: bool,
    after_post: bool,
) -> Result<Page, PageError> {
    let t = &b.tenant;
    let prompt = req.prompt();
    let mut login_needed = session.is_none();
    if !fresh_login {
        if prompt.login {
            login_needed = true;
        }
        // max_age=0 asks for a login every time, like prompt=login.
        if let (Some(max_age), Some(s)) = (req.max_age(), &session)
            && (max_age == 0 || state.clock().now_secs().saturating_sub(s.auth_time) > max_age)
        {
            login_needed = true;
        }
        if let Some(hint) = req.get("id_token_hint") {
            match id_token_hint::verify(state, t, hint).await {
                Ok(h) => {
                    if session.as_ref().is_some_and(|s| s.user.id != h.sub) {
                        login_needed = true;
                    }
                }
                Err(e) if e.code == OAuthErrorCode::InvalidRequest => {
                    return Ok(req.oauth_error(t, e, after_post));
                }
                Err(e) => return Err(e.into()),
            }
        }
        // Step-up: a password-only session where a second factor is now
        // needed (`acr_values`, or the tenant's MFA policy) signs in again,
        // and the login then asks for the factor (or leads to enrolment).
        if let Some(s) = &session
            && !login_needed
            && s.acr.as_deref() != Some(ACR_MFA)
            && mfa::required(
                state,
                &t.id,
                &s.user.id,
                Some(&req.client.client_id),
                req.get("acr_values"),
            )
            .await?
        {
            login_needed = true;
        }
    }
    let prefill = req
        .get("login_hint")
        .map(str::to_string)
        .or_else(|| session.as_ref().map(|s| s.user.username.clone()))
        .unwrap_or_default();
    let session = match session {
        Some(s) if !login_needed => s,
        _ if prompt.none => {
            return Ok(req.error(
                t,
                OAuthErrorCode::LoginRequired,
                "the user must sign in",
                after_post,
            ));
        }
        _ => return login_page(state, b, &req, &prefill, None, StatusCode::OK),
    };
    if prompt.consent || req.client.require_consent {
        let granted =
            consent::granted(state, &t.id, &session.user.id, &req.client.client_id).await?;
        let covered = req
            .scope()
            .split(' ')
            .filter(|s| !s.is_empty())
            .all(|s| granted.iter().any(|g| g == s));
        if prompt.consent || !covered {
            if prompt.none {
                return Ok(req.error(
                    t,
                    OAuthErrorCode::ConsentRequired,
                    "the user has not granted the requested scopes",
                    after_post,
                ));
            }
            return consent::page(state, b, &req, &session);
        }
    }
    issue_code(state, b, &req, &session, after_post).await
}

/// The login page for `req`.
pub fn login_page(
    state: &AppState,
    b: &Browser,
    req: &AuthzRequest,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Page, PageError> {
    let flow = Continuation::Authorize {
        params: req.params.clone(),
    };
    render_login(
        state,
        b,
        &flow,
        Some(req.client_name()),
        Some(req.redirect_uri()),
        username,
        error,
        status,
    )
}

/// Render the login form that continues with `flow`.
#[allow(clippy::too_many_arguments)]
pub fn render_login(
    state: &AppState,
    b: &Browser,
    flow: &Continuation,
    client_name: Option<&str>,
    redirect_uri: Option<&str>,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Page, PageError> {
    let csrf = Csrf::for_page(state, b)?;
    let sealed = seal(state, b, LOGIN_FLOW, flow)?;
    let page = Page::render(
        status,
        &LoginPage {
            client_name,
            csrf: csrf.token(),
            flow: &sealed,
            username,
            error,
        },
    );
    let page = match redirect_uri {
        Some(uri) => page.form_target(uri),
        None => page,
    };
    Ok(csrf.apply(page))
}

/// Issue a code for `req` to the session's user and send the browser back.
pub async fn issue_code(
    state: &AppState,
    b: &Browser,
    req: &AuthzRequest,
    session: &ActiveSession,
    after_post: bool,
) -> Result<Page, PageError> {
    let t = &b.tenant;
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
