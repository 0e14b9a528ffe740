//! The askama templates of the browser pages (under `api/http/templates/`,
//! HTML-escaped by default) and what they show ([`ScopeLine`]). Each
//! struct is one page's fields; [`crate::oidc::pages::Page::render`] turns
//! one into an answer.

use askama::Template;

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
    /// `/t/{tenant}`: the forms post to paths under it, so the page works
    /// wherever it is shown (the authorization endpoint or an account page).
    pub tenant_path: &'a str,
    pub client_name: Option<&'a str>,
    pub csrf: &'a str,
    pub flow: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "totp.html")]
pub struct TotpPage<'a> {
    /// `/t/{tenant}`, as in [`LoginPage`].
    pub tenant_path: &'a str,
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
    /// Where the form posts (relative to the page, or a path).
    pub action: &'a str,
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

/// The SAML HTTP-POST binding: a form to the service provider that
/// submits itself (a small script under the page's nonce) and works
/// without it (a button).
#[derive(Template)]
#[template(path = "saml_post.html")]
pub struct SamlPostPage<'a> {
    pub action: &'a str,
    /// `SAMLResponse` or `SAMLRequest`.
    pub field: &'a str,
    pub message: &'a str,
    pub relay_state: Option<&'a str>,
    pub destination_name: &'a str,
    pub nonce: &'a str,
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

/// The page that runs a WebAuthn ceremony in the browser.
#[derive(Template)]
#[template(path = "passkey.html")]
pub struct PasskeyPage<'a> {
    pub title: &'a str,
    pub intro: &'a str,
    pub button: &'a str,
    /// `create` (registration) or `get` (assertion).
    pub mode: &'a str,
    pub action: &'a str,
    /// The options for `navigator.credentials`, JSON.
    pub options: &'a str,
    pub csrf: &'a str,
    pub ceremony: &'a str,
    /// Hidden fields carried to the next step (`flow`, `ticket`).
    pub fields: Vec<(&'a str, &'a str)>,
    pub error: Option<&'a str>,
    /// A sealed TOTP ticket: the page also offers the TOTP form...
    pub totp_ticket: Option<&'a str>,
    /// ... posted to the login endpoint (`/t/{tenant}/login`).
    pub login_action: &'a str,
    /// A link back (the account page).
    pub back: Option<&'a str>,
    pub nonce: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_escape_what_they_show() {
        let html = LoginPage {
            tenant_path: "/t/acme",
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
