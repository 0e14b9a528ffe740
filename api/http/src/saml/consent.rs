//! Consent for service providers registered with `require_consent`: before
//! the first assertion (and whenever the attributes released or the NameID
//! format change) the user is shown what the SP will receive, and
//! `POST {issuer}/saml/consent` answers the SP: the assertion on `allow`
//! (remembered with [`rsp_identity::consents`], as for OAuth clients), a
//! `RequestDenied` Response on `deny`.

use axum::extract::State;
use axum::http::StatusCode;
use rsp_identity::saml::providers::{NameIdFormat, ServiceProvider};
use rsp_identity::saml::request::SsoRequest;
use rsp_identity::saml::response::{STATUS_REQUEST_DENIED, STATUS_RESPONDER};
use serde::{Deserialize, Serialize};

use super::{answer, page_error};
use crate::oidc::browser_form::BrowserForm;
use crate::oidc::browser_session::{ActiveSession, Browser};
use crate::oidc::consent::session_shown_to;
use crate::oidc::csrf::{Csrf, seal, unseal};
use crate::oidc::pages::templates::{ConsentPage, ScopeLine};
use crate::oidc::pages::{Page, PageError};
use crate::state::AppState;

const CONSENT_TICKET: &str = "saml_consent";

/// What the consent form carries: the checked request, and the session it
/// was shown to.
#[derive(Serialize, Deserialize)]
struct Ticket {
    request: SsoRequest,
    sid: String,
}

/// Whether `session`'s user must still consent to `sp` for `req`.
pub async fn needed(
    state: &AppState,
    browser: &Browser,
    sp: &ServiceProvider,
    req: &SsoRequest,
    session: &ActiveSession,
) -> Result<bool, PageError> {
    if !sp.require_consent {
        return Ok(false);
    }
    let covered = state
        .identity
        .consents
        .covers(
            &browser.tenant.id,
            &session.user.id,
            &sp.consent_subject(),
            &sp.consent_scope(req.name_id_format),
        )
        .await?;
    Ok(!covered)
}

/// What the SP receives, as the page lists it.
fn released(sp: &ServiceProvider, format: NameIdFormat) -> Vec<ScopeLine> {
    let mut lines = vec![ScopeLine {
        name: "NameID".into(),
        meaning: match format {
            NameIdFormat::Email => "Your email address, as your identifier",
            NameIdFormat::Unspecified => "Your username, as your identifier",
            NameIdFormat::Transient => "A one-time identifier",
            NameIdFormat::Persistent => "An identifier for you that only this application gets",
        },
    }];
    lines.extend(sp.attributes.iter().map(|a| ScopeLine {
        name: a.name.clone(),
        meaning: match a.source.as_str() {
            "email" => "Your email address",
            "username" => "Your username",
            "id" => "Your account id",
            _ => "",
        },
    }));
    lines
}

/// The consent page for `req`, shown to `session`'s user.
pub fn page(
    state: &AppState,
    browser: &Browser,
    sp: &ServiceProvider,
    req: &SsoRequest,
    session: &ActiveSession,
) -> Result<Page, PageError> {
    let csrf = Csrf::for_page(state, browser)?;
    let ticket = seal(
        state,
        browser,
        CONSENT_TICKET,
        &Ticket {
            request: req.clone(),
            sid: session.handle(),
        },
    )?;
    let action = format!("/t/{}/saml/consent", browser.tenant.id);
    let page = Page::render(
        StatusCode::OK,
        &ConsentPage {
            action: &action,
            client_name: sp.display_name.as_deref().unwrap_or(&sp.entity_id),
            username: &session.user.username,
            scopes: released(sp, req.name_id_format),
            csrf: csrf.token(),
            ticket: &ticket,
        },
    );
    Ok(csrf.apply(page))
}

/// `POST {issuer}/saml/consent`.
pub async fn post(State(state): State<AppState>, form: BrowserForm) -> Result<Page, PageError> {
    let browser = &form.browser;
    let ticket: Ticket = unseal(&state, browser, CONSENT_TICKET, form.field("ticket"))?;
    let session = session_shown_to(&state, browser, &ticket.sid).await?;
    let req = ticket.request;
    let sp = answer::provider(&state, browser, &req).await?;
    match form.field("decision") {
        Some("allow") => {
            state
                .identity
                .consents
                .grant(
                    &browser.tenant.id,
                    &session.user.id,
                    &sp.consent_subject(),
                    &sp.consent_scope(req.name_id_format),
                )
                .await?;
            answer::success(&state, browser, &req, &session).await
        }
        Some("deny") => {
            let signing = state
                .identity
                .saml
                .signing(&browser.tenant.id)
                .await
                .map_err(page_error)?;
            answer::failure_status(
                &state,
                browser,
                &req,
                &sp,
                &signing,
                STATUS_RESPONDER,
                Some(STATUS_REQUEST_DENIED),
                "the user refused to share their account with this application",
            )
        }
        _ => Err(PageError::bad_request("Choose allow or deny.")),
    }
}
