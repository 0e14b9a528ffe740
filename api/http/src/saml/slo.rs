//! Single logout started by a service provider: `GET {issuer}/saml/slo`
//! (HTTP-Redirect) and `POST {issuer}/saml/slo` (HTTP-POST; continued by
//! a redirect to the GET, as for sign-on, so the session cookie comes
//! along).
//!
//! The LogoutRequest is checked (signed with the SP's certificate when it
//! registered one: an unsigned request would let any page sign users
//! out), the browser's rsp session is ended everywhere with its
//! session-bound refresh tokens (as OIDC logout does), and the SP gets a
//! signed LogoutResponse at its logout URL by HTTP-Redirect (a page that
//! says the user is signed out when it registered none).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use rsp_identity::miss_gate::MissGate;
use rsp_identity::saml::metadata::IdpEndpoints;
use rsp_identity::saml::providers::ServiceProvider;
use rsp_identity::saml::request::{self, Incoming, SloRequest};
use rsp_identity::saml::response::{self, Answer, STATUS_SUCCESS};
use serde::{Deserialize, Serialize};

use super::{answer, page_error};
use crate::oidc::authz_request::with_query;
use crate::oidc::browser_form::PostedForm;
use crate::oidc::browser_session::{Browser, SESSION_COOKIE, current_session};
use crate::oidc::csrf::{seal, unseal};
use crate::oidc::http::Params;
use crate::oidc::pages::templates::SignedOutPage;
use crate::oidc::pages::{Page, PageError};
use crate::state::AppState;

const SLO_RESUME: &str = "saml slo";

/// A checked LogoutRequest on its way from the POST to the GET.
#[derive(Serialize, Deserialize)]
struct Resume {
    sp: String,
    request_id: String,
    session_index: Option<String>,
    relay_state: Option<String>,
}

/// `GET {issuer}/saml/slo`.
pub async fn get(
    State(state): State<AppState>,
    browser: Browser,
    RawQuery(query): RawQuery,
) -> Result<Page, PageError> {
    let raw = query.unwrap_or_default();
    let params = Params::parse(raw.as_bytes())?;
    if let Some(sealed) = params.get("resume") {
        let resume: Resume = unseal(&state, &browser, SLO_RESUME, Some(sealed))?;
        return sign_out(&state, &browser, resume).await;
    }
    if params.get("SAMLResponse").is_some() {
        return Err(PageError::bad_request(
            "This IdP sent no logout request that this response could answer.",
        ));
    }
    let gate = state.misses.gate(browser.client_ip);
    let checked = check(
        &state,
        &browser,
        &Incoming::Redirect { raw_query: &raw },
        None,
        &gate,
    )
    .await?;
    sign_out(&state, &browser, checked).await
}

/// `POST {issuer}/saml/slo`.
pub async fn post(State(state): State<AppState>, form: PostedForm) -> Result<Page, PageError> {
    let browser = &form.browser;
    let message = form
        .field("SAMLRequest")
        .ok_or_else(|| PageError::bad_request("SAMLRequest is missing."))?;
    let gate = state.misses.gate(browser.client_ip);
    let checked = check(
        &state,
        browser,
        &Incoming::Post { message },
        form.field("RelayState").map(str::to_string),
        &gate,
    )
    .await?;
    let sealed = seal(&state, browser, SLO_RESUME, &checked)?;
    Ok(Page::redirect(
        with_query(
            &browser.tenant.endpoint("/saml/slo"),
            &[("resume", &sealed)],
        ),
        true,
    ))
}

async fn check(
    state: &AppState,
    browser: &Browser,
    incoming: &Incoming<'_>,
    post_relay_state: Option<String>,
    gate: &dyn MissGate,
) -> Result<Resume, PageError> {
    let t = &browser.tenant;
    let saml = &state.identity.saml;
    let xml = request::peek(incoming, "SAMLRequest").map_err(page_error)?;
    let sp_id = request::issuer_of_logout_request(&xml).map_err(page_error)?;
    let sp = saml
        .providers
        .get(&t.id, &sp_id, gate)
        .await
        .map_err(page_error)?;
    let decoded =
        request::verify(incoming, "SAMLRequest", post_relay_state, &sp).map_err(page_error)?;
    let SloRequest {
        request_id,
        session_index,
        relay_state,
        ..
    } = request::check_logout_request(
        &decoded,
        &sp,
        &IdpEndpoints::of(&t.issuer).slo,
        state.clock().now_ms(),
    )
    .map_err(page_error)?;
    Ok(Resume {
        sp: sp.entity_id,
        request_id,
        session_index,
        relay_state,
    })
}

/// End the browser's session (when the request names it, or names no
/// session) and answer the SP.
async fn sign_out(state: &AppState, browser: &Browser, resume: Resume) -> Result<Page, PageError> {
    let t = &browser.tenant;
    let saml = &state.identity.saml;
    let actors = state.tenant_runtime.tenant(&t.id).await?;
    if let Some(s) = current_session(state, browser, &actors).await? {
        let index = saml.session_index(&s.handle()).map_err(page_error)?;
        if resume.session_index.as_deref().is_none_or(|i| i == index) {
            state
                .oidc
                .tokens
                .revoke_session_families(&t.id, &s.handle())
                .await?;
            actors.sessions().revoke(&s.id).await?;
        }
    }
    let clear = browser.clear_cookie(SESSION_COOKIE);
    let sp = saml
        .providers
        .get(&t.id, &resume.sp, &rsp_identity::miss_gate::Ungated)
        .await
        .map_err(page_error)?;
    let page = match &sp.slo_url {
        Some(url) => Page::redirect(
            logout_response(state, browser, &sp, url, &resume).await?,
            false,
        ),
        None => Page::render(StatusCode::OK, &SignedOutPage),
    };
    Ok(page.cookie(clear))
}

async fn logout_response(
    state: &AppState,
    browser: &Browser,
    sp: &ServiceProvider,
    slo_url: &str,
    resume: &Resume,
) -> Result<String, PageError> {
    let signing = state
        .identity
        .saml
        .signing(&browser.tenant.id)
        .await
        .map_err(page_error)?;
    let idp = IdpEndpoints::of(&browser.tenant.issuer);
    let answer = Answer {
        idp: &idp,
        sp,
        in_response_to: Some(&resume.request_id),
        destination: slo_url,
        now_ms: state.clock().now_ms(),
    };
    let xml = response::logout_response(&answer, STATUS_SUCCESS, None).map_err(page_error)?;
    answer::redirect_url(
        slo_url,
        "SAMLResponse",
        &xml,
        resume.relay_state.as_deref(),
        &signing,
    )
}
