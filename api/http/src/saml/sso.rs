//! Single sign-on: `GET {issuer}/saml/sso` (HTTP-Redirect binding),
//! `POST {issuer}/saml/sso` (HTTP-POST binding), `GET {issuer}/saml/init`
//! (IdP-initiated).
//!
//! 1. The request is decoded within bounds, its SP looked up (a quorum
//!    read before "unknown"), its signature checked against the SP's
//!    certificates, and its fields checked ([`rsp_identity::saml`]). Any
//!    failure here is an error page: the SP cannot be answered with
//!    anything it could trust, and nothing goes to an ACS the SP did not
//!    register.
//! 2. [`proceed`]: the browser's session against `ForceAuthn` and the
//!    step-up a `RequestedAuthnContext` or the tenant's MFA policy asks
//!    for; a login page when needed (or `NoPassive` for `IsPassive`),
//!    leading back here once signed in
//!    ([`crate::oidc::signin::continue_flow`]);
//! 3. the signed Response, posted to the ACS ([`super::answer`]).
//!
//! A request by POST comes from the SP's page, cross-site, so the
//! browser's `SameSite=Lax` session cookie is not sent with it: the
//! checked request is sealed and the browser redirected to
//! `GET {issuer}/saml/sso?resume=...`, a top-level navigation that carries
//! the cookie.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use rsp_identity::saml::request::{Incoming, SsoRequest};
use rsp_identity::saml::response::{STATUS_NO_PASSIVE, STATUS_RESPONDER};

use super::{answer, page_error};
use crate::oidc::authz_request::with_query;
use crate::oidc::browser_form::PostedForm;
use crate::oidc::browser_session::{ActiveSession, Browser, current_session};
use crate::oidc::csrf::{seal, unseal};
use crate::oidc::http::Params;
use crate::oidc::login_page::{Continuation, render_login};
use crate::oidc::mfa::{self, ACR_MFA};
use crate::oidc::pages::{Page, PageError};
use crate::state::AppState;

/// Sealing purpose of a POST-binding request on its way to the GET.
const SSO_RESUME: &str = "saml sso";

/// `GET {issuer}/saml/sso`.
pub async fn get(
    State(state): State<AppState>,
    browser: Browser,
    RawQuery(query): RawQuery,
) -> Result<Page, PageError> {
    let raw = query.unwrap_or_default();
    let params = Params::parse(raw.as_bytes())?;
    if let Some(sealed) = params.get("resume") {
        let req: SsoRequest = unseal(&state, &browser, SSO_RESUME, Some(sealed))?;
        return proceed(&state, &browser, req, None).await;
    }
    let gate = state.misses.gate(browser.client_ip);
    let (_, req) = state
        .identity
        .saml
        .sso_request(
            &browser.tenant.id,
            &browser.tenant.issuer,
            &Incoming::Redirect { raw_query: &raw },
            None,
            state.clock().now_ms(),
            &gate,
        )
        .await
        .map_err(page_error)?;
    proceed(&state, &browser, req, None).await
}

/// `POST {issuer}/saml/sso`.
pub async fn post(State(state): State<AppState>, form: PostedForm) -> Result<Page, PageError> {
    let browser = &form.browser;
    let message = form
        .field("SAMLRequest")
        .ok_or_else(|| PageError::bad_request("SAMLRequest is missing."))?;
    let gate = state.misses.gate(browser.client_ip);
    let (_, req) = state
        .identity
        .saml
        .sso_request(
            &browser.tenant.id,
            &browser.tenant.issuer,
            &Incoming::Post { message },
            form.field("RelayState").map(str::to_string),
            state.clock().now_ms(),
            &gate,
        )
        .await
        .map_err(page_error)?;
    let sealed = seal(&state, browser, SSO_RESUME, &req)?;
    Ok(Page::redirect(
        with_query(
            &browser.tenant.endpoint("/saml/sso"),
            &[("resume", &sealed)],
        ),
        true,
    ))
}

/// `GET {issuer}/saml/init?sp=<entity id>[&RelayState=...]`: sign in to a
/// registered SP from the IdP's side (its default ACS, its NameID
/// format).
pub async fn idp_initiated(
    State(state): State<AppState>,
    browser: Browser,
    RawQuery(query): RawQuery,
) -> Result<Page, PageError> {
    let params = Params::parse(query.unwrap_or_default().as_bytes())?;
    let entity_id = params
        .get("sp")
        .ok_or_else(|| PageError::bad_request("Name the service provider with ?sp=<entity id>."))?;
    let relay_state = rsp_identity::saml::request::check_relay_state(
        params.get("RelayState").map(str::to_string),
    )
    .map_err(page_error)?;
    let gate = state.misses.gate(browser.client_ip);
    let sp = state
        .identity
        .saml
        .providers
        .get(&browser.tenant.id, entity_id, &gate)
        .await
        .map_err(page_error)?;
    let acs = sp.acs_for(None, None).map_err(page_error)?;
    let req = SsoRequest {
        sp: sp.entity_id.clone(),
        request_id: None,
        acs_url: acs.url.clone(),
        relay_state,
        force_authn: false,
        is_passive: false,
        name_id_format: sp.name_id_format,
        wants_mfa: false,
    };
    proceed(&state, &browser, req, None).await
}

/// `acr_values` equivalent of a request that asked for a second factor.
fn acr_values(req: &SsoRequest) -> Option<&'static str> {
    req.wants_mfa.then_some(ACR_MFA)
}

/// Take a checked request on from the browser's session, or from
/// `fresh`, the session a sign-in for this request just started.
pub async fn proceed(
    state: &AppState,
    browser: &Browser,
    req: SsoRequest,
    fresh: Option<ActiveSession>,
) -> Result<Page, PageError> {
    let t = &browser.tenant;
    let fresh_login = fresh.is_some();
    let session = match fresh {
        Some(s) => Some(s),
        None => {
            let actors = state.tenant_runtime.tenant(&t.id).await?;
            current_session(state, browser, &actors).await?
        }
    };
    let sp = answer::provider(state, browser, &req).await?;
    let mut login_needed = session.is_none();
    if !fresh_login {
        if req.force_authn {
            login_needed = true;
        }
        if let Some(s) = &session
            && !login_needed
            && s.acr.as_deref() != Some(ACR_MFA)
            && mfa::required(state, &t.id, &s.user.id, Some(&req.sp), acr_values(&req)).await?
        {
            login_needed = true;
        }
    }
    match session {
        Some(s) if !login_needed => answer::success(state, browser, &req, &s).await,
        _ if req.is_passive => {
            let signing = state
                .identity
                .saml
                .signing(&t.id)
                .await
                .map_err(page_error)?;
            answer::failure_status(
                state,
                browser,
                &req,
                &sp,
                &signing,
                STATUS_RESPONDER,
                Some(STATUS_NO_PASSIVE),
                "the user must sign in",
            )
        }
        session => {
            let prefill = session.map(|s| s.user.username).unwrap_or_default();
            let name = sp
                .display_name
                .clone()
                .unwrap_or_else(|| sp.entity_id.clone());
            let acs = req.acs_url.clone();
            render_login(
                state,
                browser,
                &Continuation::Saml { request: req },
                Some(&name),
                Some(&acs),
                &prefill,
                None,
                StatusCode::OK,
            )
        }
    }
}
