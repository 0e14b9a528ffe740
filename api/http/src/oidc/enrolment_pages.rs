//! The pages of setting up a second factor, shared by the account pages
//! ([`crate::account::totp`], [`crate::account::overview`]) and enrolment
//! during sign-in ([`crate::oidc::login_enrol`]): the TOTP enrolment page
//! ([`enrol_page`]: a QR code made here, the key to type and the
//! `otpauth://` URI, and the form that confirms it with a first code) and
//! a new set of recovery codes, shown once ([`codes_page`]).

use axum::http::StatusCode;
use qrcode::QrCode;
use qrcode::render::svg;

use crate::oidc::browser_session::Browser;
use crate::oidc::csrf::Csrf;
use crate::oidc::pages::templates::{RecoveryCodesPage, TotpEnrolPage};
use crate::oidc::pages::{Page, PageError};
use crate::state::AppState;
use rsp_identity::factors::TotpEnrolment;
use rsp_identity::recovery::NewCodes;

/// The QR code of `uri` as an inline SVG element (made here from the URI's
/// bits: no user text reaches the markup).
pub fn qr_svg(uri: &str) -> Result<String, PageError> {
    let code = QrCode::new(uri.as_bytes()).map_err(PageError::internal)?;
    let svg = code
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // Inline in HTML: drop the XML declaration.
    Ok(match svg.find("<svg") {
        Some(at) => svg[at..].to_string(),
        None => svg,
    })
}

/// The enrolment page for `enrolment`, its form posting to `action`.
#[allow(clippy::too_many_arguments)]
pub fn enrol_page(
    state: &AppState,
    browser: &Browser,
    enrolment: &TotpEnrolment,
    required: bool,
    action: &str,
    fields: Vec<(&str, &str)>,
    error: Option<&str>,
    back: Option<&str>,
    status: StatusCode,
) -> Result<Page, PageError> {
    let csrf = Csrf::for_page(state, browser)?;
    let qr = qr_svg(&enrolment.uri)?;
    let page = Page::render(
        status,
        &TotpEnrolPage {
            required,
            qr_svg: &qr,
            secret: &enrolment.secret_base32,
            uri: &enrolment.uri,
            action,
            csrf: csrf.token(),
            fields,
            error,
            back,
        },
    );
    Ok(csrf.apply(page))
}

/// A new set of recovery codes, shown once.
pub fn codes_page(
    state: &AppState,
    browser: &Browser,
    codes: &NewCodes,
    action: Option<&str>,
    fields: Vec<(&str, &str)>,
    back: Option<&str>,
) -> Result<Page, PageError> {
    let csrf = Csrf::for_page(state, browser)?;
    let page = Page::render(
        StatusCode::OK,
        &RecoveryCodesPage {
            codes: codes.0.iter().map(|c| c.as_str()).collect(),
            action,
            csrf: csrf.token(),
            fields,
            back,
        },
    );
    Ok(csrf.apply(page))
}
