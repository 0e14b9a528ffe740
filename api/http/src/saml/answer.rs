//! What the IdP sends back: a signed Response to the SP's registered ACS
//! by the HTTP-POST binding (a form that submits itself), an error
//! Response the same way (`NoPassive`, `InvalidNameIDPolicy`), and
//! messages by the HTTP-Redirect binding (a signed query, for logout).

use axum::http::StatusCode;
use rsp_identity::crypto::random_token;
use rsp_identity::miss_gate::Ungated;
use rsp_identity::saml::metadata::IdpEndpoints;
use rsp_identity::saml::providers::ServiceProvider;
use rsp_identity::saml::request::SsoRequest;
use rsp_identity::saml::response::{self, Answer, Subject};
use rsp_identity::saml::{Participant, SamlError, Signing, wire};

use super::page_error;
use crate::oidc::browser_session::{ActiveSession, Browser};
use crate::oidc::mfa::ACR_MFA;
use crate::oidc::pages::templates::SamlPostPage;
use crate::oidc::pages::{Page, PageError};
use crate::state::AppState;

/// The SP `req` is for, still registered, with `req`'s ACS still one of
/// its own.
pub async fn provider(
    state: &AppState,
    browser: &Browser,
    req: &SsoRequest,
) -> Result<ServiceProvider, PageError> {
    let sp = state
        .identity
        .saml
        .providers
        .get(&browser.tenant.id, &req.sp, &Ungated)
        .await
        .map_err(page_error)?;
    sp.acs_for(Some(&req.acs_url), None).map_err(page_error)?;
    Ok(sp)
}

/// The signed Response that signs `session`'s user in to the SP of `req`,
/// as a page that posts it to the SP's ACS (or, for an SP that asks for
/// consent the user has not given, the consent page). The page is given
/// only once the request's ID is spent, in the one Raft write that also
/// records the SP in the session: a request answered once is never
/// answered again.
pub async fn success(
    state: &AppState,
    browser: &Browser,
    req: &SsoRequest,
    session: &ActiveSession,
) -> Result<Page, PageError> {
    let t = &browser.tenant;
    let saml = &state.identity.saml;
    let sp = provider(state, browser, req).await?;
    let signing = saml.signing(&t.id).await.map_err(page_error)?;
    if super::consent::needed(state, browser, &sp, req, session).await? {
        if req.is_passive {
            return failure_status(
                state,
                browser,
                req,
                &sp,
                &signing,
                response::STATUS_RESPONDER,
                Some(response::STATUS_NO_PASSIVE),
                "the user must consent",
            );
        }
        return super::consent::page(state, browser, &sp, req, session);
    }
    let user = &session.user;
    let name_id = match saml.name_id(
        &t.id,
        &sp.entity_id,
        &user.id,
        &user.username,
        user.email.as_deref(),
        req.name_id_format,
    ) {
        Ok(n) => n,
        Err(e @ SamlError::InvalidNameIdPolicy(_)) => {
            return failure(state, browser, req, &sp, &signing, &e);
        }
        Err(e) => return Err(page_error(e)),
    };
    let session_index = saml.session_index(&session.handle()).map_err(page_error)?;
    let idp = IdpEndpoints::of(&t.issuer);
    let answer = Answer {
        idp: &idp,
        sp: &sp,
        in_response_to: req.request_id.as_deref(),
        destination: &req.acs_url,
        now_ms: state.clock().now_ms(),
    };
    let subject = Subject {
        name_id: &name_id,
        name_id_format: req.name_id_format,
        user_id: &user.id,
        username: &user.username,
        email: user.email.as_deref(),
        attributes: &user.attributes,
        authn_instant_ms: session.auth_time * 1000,
        session_index: &session_index,
        mfa: session.acr.as_deref() == Some(ACR_MFA),
    };
    let message = response::success(&answer, &subject, &signing.material()).map_err(page_error)?;
    // Told when the session ends (single logout).
    let participant = Participant {
        sp: sp.entity_id.clone(),
        name_id: name_id.clone(),
        name_id_format: req.name_id_format,
        session_index: session_index.clone(),
    };
    let ttl = session
        .info
        .absolute_expires_ms
        .saturating_sub(answer.now_ms);
    saml.record_answer(
        &t.id,
        &session.handle(),
        &participant,
        ttl,
        req.request_id.as_deref(),
    )
    .await
    .map_err(page_error)?;
    state.metrics.saml_response(&t.id, true);
    Ok(post_page(
        &sp,
        &req.acs_url,
        "SAMLResponse",
        &message,
        req.relay_state.as_deref(),
    ))
}

/// An error Response (no assertion) for `req`, posted to its ACS.
pub fn failure(
    state: &AppState,
    browser: &Browser,
    req: &SsoRequest,
    sp: &ServiceProvider,
    signing: &Signing,
    error: &SamlError,
) -> Result<Page, PageError> {
    let (status, second) = error.status();
    failure_status(
        state,
        browser,
        req,
        sp,
        signing,
        status,
        second,
        &error.to_string(),
    )
}

/// An error Response with this status for `req`, posted to its ACS.
#[allow(clippy::too_many_arguments)]
pub fn failure_status(
    state: &AppState,
    browser: &Browser,
    req: &SsoRequest,
    sp: &ServiceProvider,
    signing: &Signing,
    status: &str,
    second: Option<&str>,
    message: &str,
) -> Result<Page, PageError> {
    let idp = IdpEndpoints::of(&browser.tenant.issuer);
    let answer = Answer {
        idp: &idp,
        sp,
        in_response_to: req.request_id.as_deref(),
        destination: &req.acs_url,
        now_ms: state.clock().now_ms(),
    };
    let encoded = response::failure(&answer, status, second, message, &signing.material())
        .map_err(page_error)?;
    state.metrics.saml_response(&browser.tenant.id, false);
    Ok(post_page(
        sp,
        &req.acs_url,
        "SAMLResponse",
        &encoded,
        req.relay_state.as_deref(),
    ))
}

/// The HTTP-POST binding page: `field` = `message` (base64) and the relay
/// state, to `action`.
pub fn post_page(
    sp: &ServiceProvider,
    action: &str,
    field: &str,
    message: &str,
    relay_state: Option<&str>,
) -> Page {
    let nonce = random_token(16);
    Page::render(
        StatusCode::OK,
        &SamlPostPage {
            action,
            field,
            message,
            relay_state,
            destination_name: sp.display_name.as_deref().unwrap_or(&sp.entity_id),
            nonce: &nonce,
        },
    )
    .form_target(action)
    .script_nonce(&nonce)
}

/// `base` with a message by the HTTP-Redirect binding: `param` =
/// DEFLATE+base64 of `xml`, the relay state, and an RSA-SHA256 signature
/// over the three (`SigAlg`, `Signature`).
pub fn redirect_url(
    base: &str,
    param: &str,
    xml: &str,
    relay_state: Option<&str>,
    signing: &Signing,
) -> Result<String, PageError> {
    let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let mut signed = format!("{param}={}", enc(&wire::encode_redirect(xml)));
    if let Some(relay) = relay_state {
        signed.push_str(&format!("&RelayState={}", enc(relay)));
    }
    signed.push_str(&format!(
        "&SigAlg={}",
        enc("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
    ));
    // An RS256 key: RSASSA-PKCS1-v1_5 with SHA-256.
    let signature = signing
        .signer
        .sign(signed.as_bytes())
        .map_err(|e| PageError::internal(format!("signing: {e}")))?;
    use base64::Engine;
    let signature = base64::engine::general_purpose::STANDARD.encode(signature);
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{sep}{signed}&Signature={}", enc(&signature)))
}
