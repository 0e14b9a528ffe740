//! Single logout started by a service provider: `GET {issuer}/saml/slo`
//! (HTTP-Redirect) and `POST {issuer}/saml/slo` (HTTP-POST; continued by
//! a redirect to the GET, as for sign-on, so the session cookie comes
//! along).
//!
//! The LogoutRequest is checked (signed with the SP's certificate when it
//! registered one: an unsigned request would let any page sign users
//! out), the browser's rsp session is ended everywhere with its
//! session-bound refresh tokens (as OIDC logout does), then every other SP
//! that received an assertion in that session is told in turn
//! (front-channel: a signed LogoutRequest by HTTP-Redirect, its
//! LogoutResponse back here, the chain's state kept through Raft under the
//! RelayState), and last the SP that asked gets a signed LogoutResponse at
//! its logout URL (a page that says the user is signed out when it
//! registered none). An OIDC logout runs the same chain
//! ([`tell_participants`]).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use rsp_identity::miss_gate::{MissGate, Ungated};
use rsp_identity::saml::metadata::IdpEndpoints;
use rsp_identity::saml::providers::ServiceProvider;
use rsp_identity::saml::request::{self, Incoming, SloRequest};
use rsp_identity::saml::response::{self, Answer, STATUS_SUCCESS};
use rsp_identity::saml::{LogoutChain, LogoutOrigin, Participant, SamlError};
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
        let relay = params.get("RelayState").map(str::to_string);
        return chain_answered(
            &state,
            &browser,
            &Incoming::Redirect { raw_query: &raw },
            relay,
        )
        .await;
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
    if let Some(message) = form.field("SAMLResponse") {
        let relay = form.field("RelayState").map(str::to_string);
        return chain_answered(&state, browser, &Incoming::Post { message }, relay).await;
    }
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
/// session), tell the session's other SPs, and answer the SP that asked.
async fn sign_out(state: &AppState, browser: &Browser, resume: Resume) -> Result<Page, PageError> {
    let t = &browser.tenant;
    let saml = &state.identity.saml;
    let actors = state.tenant_runtime.tenant(&t.id).await?;
    let mut pending = Vec::new();
    let mut ended = false;
    if let Some(s) = current_session(state, browser, &actors).await? {
        let index = saml.session_index(&s.handle()).map_err(page_error)?;
        if resume.session_index.as_deref().is_none_or(|i| i == index) {
            pending = saml
                .take_participants(&t.id, &s.handle())
                .await
                .map_err(page_error)?;
            state
                .oidc
                .tokens
                .revoke_session_families(&t.id, &s.handle())
                .await?;
            actors.sessions().revoke(&s.id).await?;
            ended = true;
        }
    }
    pending.retain(|p| p.sp != resume.sp);
    let chain = LogoutChain {
        pending,
        origin: Some(LogoutOrigin {
            sp: resume.sp,
            request_id: resume.request_id,
            relay_state: resume.relay_state,
        }),
        done_url: None,
        awaiting: None,
    };
    let page = drive(state, browser, None, chain).await?;
    Ok(if ended {
        page.cookie(browser.clear_cookie(SESSION_COOKIE))
    } else {
        page
    })
}

/// After an OIDC logout ended a session in which `participants` received
/// assertions: tell each of them, then go to `done_url` (or the
/// signed-out page). `None` when there is nobody to tell.
pub async fn tell_participants(
    state: &AppState,
    browser: &Browser,
    participants: Vec<Participant>,
    done_url: Option<String>,
) -> Result<Option<Page>, PageError> {
    if participants.is_empty() {
        return Ok(None);
    }
    let chain = LogoutChain {
        pending: participants,
        origin: None,
        done_url,
        awaiting: None,
    };
    Ok(Some(drive(state, browser, None, chain).await?))
}

/// The next step of a logout chain: a LogoutRequest to the next SP that
/// has a logout URL, or, when none is left, the answer to the SP that
/// started it (or the page the chain ends on).
async fn drive(
    state: &AppState,
    browser: &Browser,
    id: Option<String>,
    mut chain: LogoutChain,
) -> Result<Page, PageError> {
    let t = &browser.tenant;
    let saml = &state.identity.saml;
    while !chain.pending.is_empty() {
        let next = chain.pending.remove(0);
        let sp = match saml.providers.get(&t.id, &next.sp, &Ungated).await {
            Ok(sp) => sp,
            Err(SamlError::UnknownProvider) => continue,
            Err(e) => return Err(page_error(e)),
        };
        let Some(slo_url) = sp.slo_url.clone() else {
            continue;
        };
        chain.awaiting = Some(sp.entity_id.clone());
        let chain_id = saml
            .save_chain(&t.id, id.as_deref(), &chain)
            .await
            .map_err(page_error)?;
        let signing = saml.signing(&t.id).await.map_err(page_error)?;
        let idp = IdpEndpoints::of(&t.issuer);
        let answer = Answer {
            idp: &idp,
            sp: &sp,
            in_response_to: None,
            destination: &slo_url,
            now_ms: state.clock().now_ms(),
        };
        let xml = response::logout_request(
            &answer,
            &next.name_id,
            next.name_id_format,
            &next.session_index,
        );
        let url = answer::redirect_url(&slo_url, "SAMLRequest", &xml, Some(&chain_id), &signing)?;
        return Ok(Page::redirect(url, false));
    }
    if let Some(id) = &id {
        saml.end_chain(&t.id, id).await.map_err(page_error)?;
    }
    match chain.origin {
        Some(origin) => {
            let sp = saml
                .providers
                .get(&t.id, &origin.sp, &Ungated)
                .await
                .map_err(page_error)?;
            Ok(match &sp.slo_url {
                Some(url) => Page::redirect(
                    logout_response(state, browser, &sp, url, &origin).await?,
                    false,
                ),
                None => Page::render(StatusCode::OK, &SignedOutPage),
            })
        }
        None => Ok(match chain.done_url {
            Some(url) => Page::redirect(url, false),
            None => Page::render(StatusCode::OK, &SignedOutPage),
        }),
    }
}

/// An SP's LogoutResponse to the chain's LogoutRequest: checked (its
/// signature when it carries one), then on to the next step.
async fn chain_answered(
    state: &AppState,
    browser: &Browser,
    incoming: &Incoming<'_>,
    relay_state: Option<String>,
) -> Result<Page, PageError> {
    let t = &browser.tenant;
    let saml = &state.identity.saml;
    let expired =
        || PageError::bad_request("This logout is over or expired; you are signed out here.");
    let id = relay_state.ok_or_else(expired)?;
    let chain = saml
        .chain(&t.id, &id)
        .await
        .map_err(page_error)?
        .ok_or_else(expired)?;
    let awaiting = chain.awaiting.clone().ok_or_else(expired)?;
    let sp = saml
        .providers
        .get(&t.id, &awaiting, &Ungated)
        .await
        .map_err(page_error)?;
    let decoded = request::verify(incoming, "SAMLResponse", None, &sp).map_err(page_error)?;
    let issuer = request::issuer_of_logout_response(&decoded.xml).map_err(page_error)?;
    if issuer != sp.entity_id {
        return Err(PageError::bad_request(
            "The logout response does not come from the service provider that was asked.",
        ));
    }
    drive(state, browser, Some(id), chain).await
}

async fn logout_response(
    state: &AppState,
    browser: &Browser,
    sp: &ServiceProvider,
    slo_url: &str,
    origin: &LogoutOrigin,
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
        in_response_to: Some(&origin.request_id),
        destination: slo_url,
        now_ms: state.clock().now_ms(),
    };
    let xml = response::logout_response(&answer, STATUS_SUCCESS, None).map_err(page_error)?;
    answer::redirect_url(
        slo_url,
        "SAMLResponse",
        &xml,
        origin.relay_state.as_deref(),
        &signing,
    )
}
