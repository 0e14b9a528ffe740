//! The SAML IdP against requests an attacker shapes, over HTTP: signed
//! requests wrapped in forged ones or altered, a signed message of one
//! kind presented as another, comments splitting a NameID, expired logout
//! requests, DEFLATE bombs and SHA-1 signatures. Each gets an error page:
//! no assertion is issued and no session ends. The refusals that need no
//! signature (unknown SP, unregistered ACS, replay, expiry, DOCTYPE) are in
//! `saml_sso::bad_requests_get_an_error_page_and_never_an_assertion`.

use crate::browser::*;
use crate::saml_sso::{
    ACS, SP, authn_request, between, env_with_sp, instant, posted_response, redirect_path, sp_key,
    sso_url,
};
use crate::support::*;

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsp_identity::saml::wire::encode_redirect;
use samael::crypto::{Crypto, CryptoProvider};
use serde_json::json;

const EVIL_ACS: &str = "https://evil.example.com/acs";

const RSA_SHA256: (&str, &str) = (
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmlenc#sha256",
);
const RSA_SHA1: (&str, &str) = (
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "http://www.w3.org/2000/09/xmldsig#sha1",
);

fn enc(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

fn slo_url() -> String {
    format!("{}/saml/slo", issuer(TENANT))
}

/// An SP that registered the certificate of `key` (so its logout requests
/// must be signed) and, when `require`, must sign its AuthnRequests too.
async fn env_with_signing_sp(require: bool) -> (Env, Vec<u8>, String) {
    let (key, cert) = sp_key();
    let pem = openssl::x509::X509::from_der(&cert)
        .and_then(|c| c.to_pem())
        .expect("pem");
    let pem = String::from_utf8(pem).expect("utf8");
    let (env, password) =
        env_with_sp(json!({"certificate_pem": pem, "require_signed_requests": require})).await;
    (env, key, password)
}

/// A Redirect-binding query to `endpoint` (`sso`, `slo`) carrying `xml`,
/// signed RSA-SHA256 with `key`.
fn redirect_signed(endpoint: &str, xml: &str, key: &[u8]) -> String {
    let query = format!(
        "SAMLRequest={}&SigAlg={}",
        enc(&encode_redirect(xml)),
        enc(RSA_SHA256.0)
    );
    let pkey = openssl::pkey::PKey::private_key_from_pkcs8(key).expect("key");
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey).expect("signer");
    signer.update(query.as_bytes()).expect("update");
    let signature = STANDARD.encode(signer.sign_to_vec().expect("sign"));
    format!(
        "/t/{TENANT}/saml/{endpoint}?{query}&Signature={}",
        enc(&signature)
    )
}

/// `xml` with an enveloped signature, placed after its first Issuer, over
/// the element whose ID is `reference`, by `key`.
fn signed(xml: &str, reference: &str, (method, digest): (&str, &str), key: &[u8]) -> String {
    let template = format!(
        concat!(
            r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>"#,
            r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r#"<ds:SignatureMethod Algorithm="{method}"/>"#,
            r##"<ds:Reference URI="#{reference}"><ds:Transforms>"##,
            r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"#,
            r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r#"</ds:Transforms><ds:DigestMethod Algorithm="{digest}"/>"#,
            r#"<ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo>"#,
            r#"<ds:SignatureValue></ds:SignatureValue></ds:Signature>"#
        ),
        method = method,
        reference = reference,
        digest = digest
    );
    let xml = xml.replacen("</saml:Issuer>", &format!("</saml:Issuer>{template}"), 1);
    let out = Crypto::sign_xml(&xml, key).expect("signs");
    match out.find("?>") {
        Some(end) if out.starts_with("<?xml") => out[end + 2..].trim().to_string(),
        _ => out.trim().to_string(),
    }
}

/// `outer` with `inner` inside an Extensions element after its Issuer.
fn wrap(outer: &str, inner: &str) -> String {
    outer.replacen(
        "</saml:Issuer>",
        &format!("</saml:Issuer><samlp:Extensions>{inner}</samlp:Extensions>"),
        1,
    )
}

fn logout(id: &str, name_id: &str, session_index: &str) -> String {
    logout_issued(id, name_id, session_index, &instant(0))
}

fn logout_issued(id: &str, name_id: &str, session_index: &str, issued: &str) -> String {
    format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{issued}" Destination="{}"><saml:Issuer>{SP}</saml:Issuer><saml:NameID>{name_id}</saml:NameID><samlp:SessionIndex>{session_index}</samlp:SessionIndex></samlp:LogoutRequest>"#,
        slo_url()
    )
}

async fn post(browser: &mut Browser, env: &Env, endpoint: &str, xml: &str) -> Reply {
    let message = STANDARD.encode(xml);
    browser
        .post(
            env,
            0,
            &format!("/t/{TENANT}/saml/{endpoint}"),
            &[("SAMLRequest", &message)],
        )
        .await
}

/// Sign `browser` in through a signed AuthnRequest; the SessionIndex of
/// its assertion.
async fn sign_in(browser: &mut Browser, env: &Env, key: &[u8], password: &str) -> String {
    let xml = authn_request("_login", None, "", "", &instant(0));
    let login = browser
        .get(env, 0, &redirect_signed("sso", &xml, key))
        .await;
    assert!(login.has_input("password"), "{}", login.html);
    let (_, response, _) = posted_response(&browser.login(env, 0, &login, "alice", password).await);
    between(&response, "SessionIndex=\"", "\"").to_string()
}

/// Whether `browser` still has its session: a signed AuthnRequest is
/// answered at once (an assertion) rather than with the login page.
async fn signed_in(browser: &mut Browser, env: &Env, key: &[u8], id: &str) -> bool {
    let xml = authn_request(id, None, "", "", &instant(0));
    let page = browser
        .get(env, 1, &redirect_signed("sso", &xml, key))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    page.field("SAMLResponse").is_some()
}

fn refused(page: &Reply, what: &str) {
    assert_eq!(
        page.status,
        StatusCode::BAD_REQUEST,
        "{what}: {}",
        page.html
    );
    assert!(!page.html.contains("SAMLResponse"), "{what}");
}

#[tokio::test]
async fn signed_authn_requests_wrapped_or_altered_get_an_error_page_and_never_an_assertion() {
    let (env, key, password) = env_with_signing_sp(true).await;
    let mut browser = Browser::default();
    sign_in(&mut browser, &env, &key, &password).await;
    let good = signed(
        &authn_request("_good", Some(ACS), "", "", &instant(0)),
        "_good",
        RSA_SHA256,
        &key,
    );
    let forged = |id: &str, acs: &str| authn_request(id, Some(acs), "", "", &instant(0));
    let detached = signed(
        &wrap(
            &forged("_forged", EVIL_ACS),
            &authn_request("_inner", Some(ACS), "", "", &instant(0)),
        ),
        "_inner",
        RSA_SHA256,
        &key,
    );
    let cases = [
        // (a) the signed request inside a forged, unsigned root.
        (
            "signed request inside a forged root",
            wrap(&forged("_forged", EVIL_ACS), &good),
        ),
        (
            "signed request inside a forged root with the registered ACS",
            wrap(&forged("_forged2", ACS), &good),
        ),
        // (b) the signed root kept, another Issuer, ACS or request added.
        (
            "second Issuer",
            good.replacen(
                "</ds:Signature>",
                "</ds:Signature><saml:Issuer>https://evil.example.com/metadata</saml:Issuer>",
                1,
            ),
        ),
        (
            "second request inside the signed one",
            good.replacen(
                "</ds:Signature>",
                &format!("</ds:Signature>{}", forged("_second", EVIL_ACS)),
                1,
            ),
        ),
        ("ACS URL changed", good.replace(ACS, EVIL_ACS)),
        // (c) the root's Signature references another element.
        ("signature over a child, not the root", detached),
        // (d) the forged root takes the signed request's ID.
        ("duplicate IDs", wrap(&forged("_good", EVIL_ACS), &good)),
    ];
    for (what, xml) in cases {
        refused(&post(&mut browser, &env, "sso", &xml).await, what);
    }
    // The signed request itself is accepted, and answered at its ACS.
    let accepted = post(&mut browser, &env, "sso", &good).await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.html);
    let next = accepted.location().expect("location");
    let page = browser
        .get(
            &env,
            0,
            &format!("{}?{}", next.path(), next.query().unwrap_or("")),
        )
        .await;
    let (action, response, _) = posted_response(&page);
    assert_eq!(action, ACS);
    assert!(response.contains(r#"InResponseTo="_good""#), "{response}");
}

#[tokio::test]
async fn signed_logout_requests_wrapped_or_altered_end_no_session() {
    let (env, key, password) = env_with_signing_sp(false).await;
    let mut browser = Browser::default();
    let index = sign_in(&mut browser, &env, &key, &password).await;
    // Signed by the SP for another session of the user's.
    let good = signed(&logout("_lo", "alice", "_other"), "_lo", RSA_SHA256, &key);
    let detached = signed(
        &wrap(
            &logout("_forged", "alice", &index),
            &logout("_inner", "alice", "_other"),
        ),
        "_inner",
        RSA_SHA256,
        &key,
    );
    let cases = [
        (
            "signed request inside a forged root",
            wrap(&logout("_forged", "alice", &index), &good),
        ),
        ("SessionIndex changed", good.replace("_other", &index)),
        (
            "second SessionIndex",
            good.replacen(
                "</ds:Signature>",
                &format!("</ds:Signature><samlp:SessionIndex>{index}</samlp:SessionIndex>"),
                1,
            ),
        ),
        ("signature over a child, not the root", detached),
        (
            "duplicate IDs",
            wrap(&logout("_lo", "alice", &index), &good),
        ),
        ("unsigned", logout("_unsigned", "alice", &index)),
    ];
    for (n, (what, xml)) in cases.into_iter().enumerate() {
        refused(&post(&mut browser, &env, "slo", &xml).await, what);
        assert!(
            signed_in(&mut browser, &env, &key, &format!("_probe{n}")).await,
            "{what} ended the session"
        );
    }
    // Signed for this session, it ends it.
    let ends = signed(&logout("_lo2", "alice", &index), "_lo2", RSA_SHA256, &key);
    let accepted = post(&mut browser, &env, "slo", &ends).await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.html);
    let next = accepted.location().expect("location");
    let out = browser
        .get(
            &env,
            0,
            &format!("{}?{}", next.path(), next.query().unwrap_or("")),
        )
        .await;
    assert_eq!(out.status, StatusCode::FOUND, "{}", out.html);
    assert!(!signed_in(&mut browser, &env, &key, "_after").await);
}

/// A signed LogoutRequest is no AuthnRequest, and a signed AuthnRequest no
/// LogoutRequest, even when neither names a Destination: the Redirect
/// binding's signature covers `SAMLRequest=...` at both endpoints alike.
#[tokio::test]
async fn a_signed_message_of_one_kind_is_not_accepted_as_another() {
    let (env, key, password) = env_with_signing_sp(true).await;
    let mut browser = Browser::default();
    let index = sign_in(&mut browser, &env, &key, &password).await;
    let no_destination =
        |xml: String, url: String| xml.replace(&format!(" Destination=\"{url}\""), "");
    let logout_xml = no_destination(logout("_lo", "alice", &index), slo_url());
    let page = browser
        .get(&env, 0, &redirect_signed("sso", &logout_xml, &key))
        .await;
    refused(&page, "a LogoutRequest at the sign-on endpoint");
    let authn_xml = no_destination(authn_request("_a", None, "", "", &instant(0)), sso_url());
    let page = browser
        .get(&env, 0, &redirect_signed("slo", &authn_xml, &key))
        .await;
    refused(&page, "an AuthnRequest at the logout endpoint");
    assert!(signed_in(&mut browser, &env, &key, "_probe").await);
}

#[tokio::test]
async fn comments_inside_a_logout_requests_name_id_or_session_index_are_refused() {
    // No certificate: unsigned logout requests are taken from this SP.
    let (env, password) = env_with_sp(json!({})).await;
    let mut browser = Browser::default();
    let login = browser
        .get(
            &env,
            0,
            &redirect_path(&authn_request("_c", None, "", "", &instant(0)), None),
        )
        .await;
    let (_, response, _) =
        posted_response(&browser.login(&env, 0, &login, "alice", &password).await);
    let index = between(&response, "SessionIndex=\"", "\"").to_string();
    let cases = [
        logout("_c1", "alice<!---->@evil.example.com", &index),
        logout("_c2", "alice", &format!("{index}<!---->")),
        logout("_c3", "alice", &format!("_x<!---->{index}")),
    ];
    for xml in cases {
        let q = format!("SAMLRequest={}", enc(&encode_redirect(&xml)));
        let page = browser
            .get(&env, 0, &format!("/t/{TENANT}/saml/slo?{q}"))
            .await;
        refused(&page, &xml);
        refused(&post(&mut browser, &env, "slo", &xml).await, &xml);
    }
    // Still signed in: answered at once.
    let page = browser
        .get(
            &env,
            0,
            &redirect_path(&authn_request("_c9", None, "", "", &instant(0)), None),
        )
        .await;
    posted_response(&page);
}

#[tokio::test]
async fn expired_or_future_logout_requests_end_no_session() {
    let (env, key, password) = env_with_signing_sp(false).await;
    let mut browser = Browser::default();
    let index = sign_in(&mut browser, &env, &key, &password).await;
    for (n, offset) in [-3600, 3600].into_iter().enumerate() {
        let xml = logout_issued(&format!("_t{n}"), "alice", &index, &instant(offset));
        let page = browser
            .get(&env, 0, &redirect_signed("slo", &xml, &key))
            .await;
        refused(&page, &format!("IssueInstant {offset} s away"));
        assert!(signed_in(&mut browser, &env, &key, &format!("_p{n}")).await);
    }
}

#[tokio::test]
async fn deflate_bombs_in_the_redirect_binding_are_refused() {
    let (env, _) = env_with_sp(json!({})).await;
    let mut browser = Browser::default();
    // 32 MB of XML in under 64 KB of query.
    let bomb = encode_redirect(&format!(
        "<samlp:AuthnRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ID=\"_b\">{}</samlp:AuthnRequest>",
        " ".repeat(32 * 1024 * 1024)
    ));
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    for endpoint in ["sso", "slo"] {
        let page = browser
            .get(
                &env,
                0,
                &format!("/t/{TENANT}/saml/{endpoint}?SAMLRequest={}", enc(&bomb)),
            )
            .await;
        refused(&page, endpoint);
        assert!(page.html.contains("size limit"), "{}", page.html);
    }
}

#[tokio::test]
async fn sha1_in_post_binding_signatures_is_refused() {
    let (env, key, password) = env_with_signing_sp(true).await;
    let mut browser = Browser::default();
    let index = sign_in(&mut browser, &env, &key, &password).await;
    for alg in [
        RSA_SHA1,
        (RSA_SHA256.0, RSA_SHA1.1),
        (RSA_SHA1.0, RSA_SHA256.1),
    ] {
        let xml = signed(
            &authn_request("_sha1", None, "", "", &instant(0)),
            "_sha1",
            alg,
            &key,
        );
        let page = post(&mut browser, &env, "sso", &xml).await;
        refused(&page, &format!("{alg:?}"));
        assert!(page.html.contains("SHA-256"), "{}", page.html);
        let xml = signed(&logout("_lo1", "alice", &index), "_lo1", alg, &key);
        refused(
            &post(&mut browser, &env, "slo", &xml).await,
            &format!("{alg:?}"),
        );
    }
    assert!(signed_in(&mut browser, &env, &key, "_probe").await);
}
