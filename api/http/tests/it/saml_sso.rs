//! The SAML IdP in process: metadata, service-provider registration,
//! SP-initiated sign-on by Redirect and POST through the login page, single
//! sign-on without a second login, IdP-initiated sign-on, logout, and the
//! requests that must get an error page (never an assertion).

use crate::browser::*;
use crate::support::*;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use samael::crypto::{
    AllowedSignatureAlgorithm, CertificateDer, Crypto, CryptoProvider, ReduceMode,
};
use serde_json::{Value, json};

pub(crate) const SP: &str = "https://sp.example.com/metadata";
pub(crate) const ACS: &str = "https://sp.example.com/acs";
pub(crate) const SLO: &str = "https://sp.example.com/slo";

pub(crate) fn sso_url() -> String {
    format!("{}/saml/sso", issuer(TENANT))
}

async fn admin(env: &Env, method: &str, path: &str, body: Option<Value>) -> Answer {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, "Bearer admin")
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request");
    env.send(0, req).await
}

async fn register(env: &Env, body: Value) -> Answer {
    admin(
        env,
        "POST",
        &format!("/admin/v1/tenants/{TENANT}/saml/service-providers"),
        Some(body),
    )
    .await
}

pub(crate) fn instant(offset_secs: i64) -> String {
    let t = chrono::Utc::now() + chrono::Duration::seconds(offset_secs);
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub(crate) fn authn_request(
    id: &str,
    acs: Option<&str>,
    extra_attrs: &str,
    inner: &str,
    issued: &str,
) -> String {
    let acs = acs
        .map(|a| format!(r#" AssertionConsumerServiceURL="{a}""#))
        .unwrap_or_default();
    format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{issued}" Destination="{dest}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"{acs}{extra_attrs}><saml:Issuer>{SP}</saml:Issuer>{inner}</samlp:AuthnRequest>"#,
        dest = sso_url()
    )
}

pub(crate) fn redirect_path(xml: &str, relay: Option<&str>) -> String {
    let encoded = rsp_identity::saml::wire::encode_redirect(xml);
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("SAMLRequest", &encoded);
    if let Some(r) = relay {
        q.append_pair("RelayState", r);
    }
    format!("/t/{TENANT}/saml/sso?{}", q.finish())
}

fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&#43;", "+")
        .replace("&#x2b;", "+")
        .replace("&#61;", "=")
        .replace("&#x3d;", "=")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The form action and the decoded SAMLResponse of a POST-binding page.
pub(crate) fn posted_response(page: &Reply) -> (String, String, Option<String>) {
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let start = page.html.find("action=\"").expect("form action") + 8;
    let action = unescape(&page.html[start..start + page.html[start..].find('"').expect("quote")]);
    let message = unescape(&page.field("SAMLResponse").expect("SAMLResponse field"));
    let xml = String::from_utf8(STANDARD.decode(message).expect("base64")).expect("utf8");
    (action, xml, page.field("RelayState").map(|r| unescape(&r)))
}

/// The signing certificate in the IdP metadata.
async fn idp_certificate(env: &Env, node: usize) -> Vec<u8> {
    let req = Request::get(format!("/t/{TENANT}/saml/metadata"))
        .body(Body::empty())
        .expect("request");
    let resp = env.apps[node].clone().oneshot_text(req).await;
    let start = resp.find("<ds:X509Certificate>").expect("certificate") + 20;
    let end = start + resp[start..].find('<').expect("end");
    STANDARD.decode(&resp[start..end]).expect("base64")
}

trait OneshotText {
    async fn oneshot_text(self, req: Request<Body>) -> String;
}

impl OneshotText for axum::Router {
    async fn oneshot_text(self, req: Request<Body>) -> String {
        use tower::ServiceExt;
        let resp = self.oneshot(req).await.expect("response");
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

fn verified(xml: &str, cert: &[u8]) -> String {
    Crypto::reduce_xml_to_signed_with_allowed_algorithms(
        xml,
        &[CertificateDer::from(cert.to_vec())],
        ReduceMode::ValidateAndMarkNoAncestors,
        Some(&[AllowedSignatureAlgorithm::RsaSha256]),
    )
    .expect("the response's signature verifies with the metadata's certificate")
}

pub(crate) async fn env_with_sp(extra: Value) -> (Env, String) {
    let env = start_browser(2).await;
    env.user(TENANT, "alice").await;
    let mut body = json!({"entity_id": SP, "acs_url": ACS, "slo_url": SLO});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let made = register(&env, body).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    (env, "correct horse battery".to_string())
}

#[tokio::test]
async fn metadata_names_the_endpoints_and_the_same_certificate_on_every_node() {
    let env = start_browser(2).await;
    let req = Request::get(format!("/t/{TENANT}/saml/metadata"))
        .body(Body::empty())
        .expect("request");
    let xml = env.apps[0].clone().oneshot_text(req).await;
    for needle in [
        &format!(r#"entityID="{}/saml/metadata""#, issuer(TENANT)),
        "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
        "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
        &format!(r#"Location="{}""#, sso_url()),
        &format!(r#"Location="{}/saml/slo""#, issuer(TENANT)),
        "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
        r#"<md:KeyDescriptor use="signing">"#,
    ] {
        assert!(xml.contains(needle), "{needle} in {xml}");
    }
    assert_eq!(
        idp_certificate(&env, 0).await,
        idp_certificate(&env, 1).await
    );
    let cert = openssl::x509::X509::from_der(&idp_certificate(&env, 0).await).expect("x509");
    assert!(cert.public_key().expect("key").rsa().is_ok(), "an RSA key");
}

#[tokio::test]
async fn a_rotation_publishes_the_next_certificate_before_it_signs() {
    let env = start_browser(1).await;
    let before = idp_certificate(&env, 0).await;
    let rotated = admin(
        &env,
        "POST",
        &format!("/admin/v1/tenants/{TENANT}/keys/rotate"),
        Some(json!({"alg": "RS256"})),
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let req = Request::get(format!("/t/{TENANT}/saml/metadata"))
        .body(Body::empty())
        .expect("request");
    let xml = env.apps[0].clone().oneshot_text(req).await;
    assert_eq!(xml.matches("<ds:X509Certificate>").count(), 2, "{xml}");
    // The signing one is still first.
    assert_eq!(idp_certificate(&env, 0).await, before);
}

#[tokio::test]
async fn service_providers_are_registered_listed_replaced_and_deleted() {
    let env = start_browser(1).await;
    let bad = [
        json!({"entity_id": SP}),
        json!({"entity_id": SP, "acs_url": "javascript:alert(1)"}),
        json!({"entity_id": SP, "acs_url": "https://sp.example.com/acs#frag"}),
        json!({"entity_id": SP, "acs_url": ACS, "name_id_format": "x509"}),
        json!({"entity_id": SP, "acs_url": ACS, "certificate_pem": "not a certificate"}),
        json!({"entity_id": SP, "acs_url": ACS, "require_signed_requests": true}),
        json!({"entity_id": SP, "acs_url": ACS, "assertion_lifetime_secs": 1}),
        json!({"entity_id": SP, "acs_url": ACS, "attributes": [{"source": "password_hash", "name": "x"}]}),
        json!({"metadata_xml": "<!DOCTYPE x [<!ENTITY a \"b\">]><x/>"}),
        json!({"entity_id": SP, "acs_url": ACS, "colour": "blue"}),
    ];
    for body in bad {
        let a = register(&env, body.clone()).await;
        assert!(
            a.status == StatusCode::BAD_REQUEST || a.status == StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {} {}",
            a.status,
            a.body
        );
    }
    // Encryption needs a certificate to encrypt to.
    let encrypted = register(
        &env,
        json!({"entity_id": SP, "acs_url": ACS, "encrypt_assertions": true}),
    )
    .await;
    assert_eq!(
        encrypted.status,
        StatusCode::BAD_REQUEST,
        "{}",
        encrypted.body
    );

    let metadata = format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{SP}"><md:SPSSODescriptor AuthnRequestsSigned="false" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{SLO}"/><md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat><md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{ACS}" index="1" isDefault="true"/><md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact" Location="https://sp.example.com/artifact" index="2"/></md:SPSSODescriptor></md:EntityDescriptor>"#
    );
    let made = register(&env, json!({"metadata_xml": metadata})).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert_eq!(made.body["entity_id"], SP);
    let sp = &made.body["service_provider"];
    assert_eq!(sp["name_id_format"], "email");
    assert_eq!(sp["slo_url"], SLO);
    assert_eq!(
        sp["acs"],
        json!([{"index": 1, "url": ACS, "is_default": true}]),
        "only HTTP-POST services"
    );
    let again = register(&env, json!({"entity_id": SP, "acs_url": ACS})).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);

    let path = format!(
        "/admin/v1/tenants/{TENANT}/saml/service-providers/{}",
        url::form_urlencoded::byte_serialize(SP.as_bytes()).collect::<String>()
    );
    let got = admin(&env, "GET", &path, None).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    let replaced = admin(
        &env,
        "PUT",
        &path,
        Some(json!({"acs_url": "https://sp.example.com/acs2", "name_id_format": "transient"})),
    )
    .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    assert_eq!(
        replaced.body["acs"][0]["url"],
        "https://sp.example.com/acs2"
    );
    let listed = admin(
        &env,
        "GET",
        &format!("/admin/v1/tenants/{TENANT}/saml/service-providers"),
        None,
    )
    .await;
    assert_eq!(
        listed.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        listed.body
    );
    assert_eq!(
        admin(&env, "DELETE", &path, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        admin(&env, "GET", &path, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin(&env, "DELETE", &path, None).await.status,
        StatusCode::NOT_FOUND
    );
    // Unauthenticated: 401, nothing registered.
    let req = Request::post(format!("/admin/v1/tenants/{TENANT}/saml/service-providers"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"entity_id": SP, "acs_url": ACS}).to_string(),
        ))
        .expect("request");
    assert_eq!(env.send(0, req).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sp_initiated_sign_on_goes_through_the_login_page_and_answers_a_signed_assertion() {
    let (env, password) = env_with_sp(json!({})).await;
    let mut browser = Browser::default();
    let xml = authn_request("_req1", Some(ACS), "", "", &instant(0));
    let login = browser
        .get(&env, 0, &redirect_path(&xml, Some("back/to?x=1")))
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.html);
    assert!(login.has_input("password"), "a login page: {}", login.html);

    // Signed in on node 0; the answer is a page that posts to the ACS.
    let answered = browser.login(&env, 0, &login, "alice", &password).await;
    let (action, response, relay) = posted_response(&answered);
    assert_eq!(action, ACS);
    assert_eq!(relay.as_deref(), Some("back/to?x=1"));
    assert!(
        answered
            .header("content-security-policy")
            .contains("form-action 'self' https://sp.example.com")
    );
    let cert = idp_certificate(&env, 0).await;
    let signed = verified(&response, &cert);
    for needle in [
        r#"InResponseTo="_req1""#,
        &format!(r#"Recipient="{ACS}""#),
        &format!("<saml:Audience>{SP}</saml:Audience>"),
        "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
        "alice@example.com",
        ">alice<",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
    ] {
        assert!(signed.contains(needle), "{needle} in {signed}");
    }
    assert!(response.contains(&format!(r#"Destination="{ACS}""#)));
    assert!(response.contains("urn:oasis:names:tc:SAML:2.0:status:Success"));
    let name_id = between(
        &signed,
        "SPNameQualifier=\"https://sp.example.com/metadata\">",
        "</saml:NameID>",
    );
    assert_ne!(name_id, "alice", "a persistent NameID is not the username");

    // Single sign-on: a second request, on the other node, is answered at
    // once, with the same persistent NameID.
    let xml = authn_request("_req2", None, "", "", &instant(0));
    let again = browser.get(&env, 1, &redirect_path(&xml, None)).await;
    let (action, response, _) = posted_response(&again);
    assert_eq!(action, ACS, "the default ACS");
    let signed = verified(&response, &cert);
    assert!(signed.contains(&format!(">{name_id}</saml:NameID>")));
    assert!(signed.contains(r#"InResponseTo="_req2""#));

    // ForceAuthn asks for the password again.
    let xml = authn_request("_req3", None, r#" ForceAuthn="true""#, "", &instant(0));
    let forced = browser.get(&env, 0, &redirect_path(&xml, None)).await;
    assert!(forced.has_input("password"), "{}", forced.html);
}

/// Two answers to one request that both passed the local replay check
/// (a race, or two nodes): the request is spent by the first, and the
/// second is refused without recording its SP in its session.
#[tokio::test]
async fn a_request_is_spent_once_and_a_replay_records_no_participant() {
    use rsp_identity::saml::providers::NameIdFormat;
    use rsp_identity::saml::{Participant, SamlError};
    let env = start_browser(2).await;
    let participant = |index: &str| Participant {
        sp: SP.into(),
        name_id: "n".into(),
        name_id_format: NameIdFormat::Persistent,
        session_index: index.into(),
    };
    let saml = &env.states[0].identity.saml;
    saml.record_answer(TENANT, "session-a", &participant("_a"), 60_000, Some("_r"))
        .await
        .expect("the first answer");
    let again = env.states[1]
        .identity
        .saml
        .record_answer(TENANT, "session-b", &participant("_b"), 60_000, Some("_r"))
        .await;
    assert!(matches!(again, Err(SamlError::Replayed)), "{again:?}");
    let taken = |session: &'static str| async move {
        saml.take_participants(TENANT, session)
            .await
            .expect("participants")
    };
    assert!(taken("session-b").await.is_empty());
    let kept = taken("session-a").await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].session_index, "_a");
    // An unsolicited answer (IdP-initiated) has no request to spend.
    for _ in 0..2 {
        saml.record_answer(TENANT, "session-c", &participant("_c"), 60_000, None)
            .await
            .expect("unsolicited");
    }
    assert_eq!(taken("session-c").await.len(), 1);
}

pub(crate) fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let s = text.find(start).expect(start) + start.len();
    &text[s..s + text[s..].find(end).expect(end)]
}

#[tokio::test]
async fn the_post_binding_continues_by_a_redirect_that_carries_the_session() {
    let (env, password) = env_with_sp(json!({"name_id_format": "email"})).await;
    let mut browser = Browser::default();
    let xml = authn_request("_post1", Some(ACS), "", "", &instant(0));
    let posted = browser
        .post(
            &env,
            0,
            &format!("/t/{TENANT}/saml/sso"),
            &[
                ("SAMLRequest", &STANDARD.encode(&xml)),
                ("RelayState", "r1"),
            ],
        )
        .await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.html);
    let next = posted.location().expect("location");
    let login = browser
        .get(
            &env,
            1,
            &format!("{}?{}", next.path(), next.query().unwrap_or("")),
        )
        .await;
    let answered = browser.login(&env, 1, &login, "alice", &password).await;
    let (_, response, relay) = posted_response(&answered);
    assert_eq!(relay.as_deref(), Some("r1"));
    let signed = verified(&response, &idp_certificate(&env, 0).await);
    assert!(
        signed.contains(">alice@example.com</saml:NameID>"),
        "{signed}"
    );
}

#[tokio::test]
async fn bad_requests_get_an_error_page_and_never_an_assertion() {
    let (env, password) = env_with_sp(json!({})).await;
    let mut browser = Browser::default();
    // Sign in first, so any assertion would be issued at once.
    let xml = authn_request("_ok", None, "", "", &instant(0));
    let login = browser.get(&env, 0, &redirect_path(&xml, None)).await;
    posted_response(&browser.login(&env, 0, &login, "alice", &password).await);

    let other_issuer = authn_request("_x1", None, "", "", &instant(0))
        .replace(SP, "https://evil.example.com/metadata");
    let cases = [
        ("unknown SP", other_issuer),
        (
            "unregistered ACS",
            authn_request(
                "_x2",
                Some("https://evil.example.com/acs"),
                "",
                "",
                &instant(0),
            ),
        ),
        (
            "replayed request",
            authn_request("_ok", None, "", "", &instant(0)),
        ),
        (
            "expired request",
            authn_request("_x3", None, "", "", &instant(-3600)),
        ),
        (
            "request from the future",
            authn_request("_x4", None, "", "", &instant(3600)),
        ),
        (
            "another binding",
            authn_request("_x5", None, "", "", &instant(0))
                .replace("bindings:HTTP-POST", "bindings:HTTP-Artifact"),
        ),
        (
            "wrong destination",
            authn_request("_x6", None, "", "", &instant(0))
                .replace(&sso_url(), "https://elsewhere.example.com/sso"),
        ),
        (
            "doctype",
            format!(
                "<!DOCTYPE x [<!ENTITY e \"{SP}\">]>{}",
                authn_request("_x7", None, "", "", &instant(0))
            ),
        ),
        (
            "comment in the issuer",
            authn_request("_x8", None, "", "", &instant(0)).replace(SP, &format!("{SP}<!---->")),
        ),
        (
            "version 1.1",
            authn_request("_x9", None, "", "", &instant(0))
                .replace(r#"Version="2.0""#, r#"Version="1.1""#),
        ),
        ("not SAML", "<hello/>".to_string()),
    ];
    for (what, xml) in cases {
        let page = browser.get(&env, 0, &redirect_path(&xml, None)).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            page.html
        );
        assert!(!page.html.contains("SAMLResponse"), "{what}");
    }
    // Not base64, not DEFLATE, too large: refused before parsing.
    for query in ["SAMLRequest=%%%", "SAMLRequest=aGVsbG8", "RelayState=x"] {
        let page = browser
            .get(&env, 0, &format!("/t/{TENANT}/saml/sso?{query}"))
            .await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            page.html
        );
    }
    let huge = "A".repeat(70_000);
    let page = browser
        .post(
            &env,
            0,
            &format!("/t/{TENANT}/saml/sso"),
            &[("SAMLRequest", &huge)],
        )
        .await;
    assert!(
        matches!(
            page.status,
            StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE
        ),
        "{}: {}",
        page.status,
        page.html
    );
    let unknown_tenant = browser
        .get(
            &env,
            0,
            &redirect_path(&authn_request("_x10", None, "", "", &instant(0)), None)
                .replace("/t/acme/", "/t/nope/"),
        )
        .await;
    assert_eq!(unknown_tenant.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn is_passive_without_a_session_answers_no_passive() {
    let (env, _) = env_with_sp(json!({})).await;
    let mut browser = Browser::default();
    let xml = authn_request("_p1", None, r#" IsPassive="true""#, "", &instant(0));
    let page = browser.get(&env, 0, &redirect_path(&xml, None)).await;
    let (action, response, _) = posted_response(&page);
    assert_eq!(action, ACS);
    let signed = verified(&response, &idp_certificate(&env, 0).await);
    assert!(
        signed.contains("urn:oasis:names:tc:SAML:2.0:status:NoPassive"),
        "{signed}"
    );
    assert!(!signed.contains("<saml:Assertion"), "no assertion");
}

#[tokio::test]
async fn requests_must_be_signed_when_the_sp_says_so_and_never_with_sha1() {
    // Both keys before the cluster starts: generating an RSA key blocks this
    // test's one runtime thread, which the in-process nodes' heartbeats
    // share, for long enough under load that the leader went silent.
    let (pkcs8, cert) = sp_key();
    let (other_key, _) = sp_key();
    let cert_pem = String::from_utf8(
        openssl::x509::X509::from_der(&cert)
            .expect("x509")
            .to_pem()
            .expect("pem"),
    )
    .expect("pem");
    let (env, password) =
        env_with_sp(json!({"certificate_pem": cert_pem, "require_signed_requests": true})).await;
    let mut browser = Browser::default();
    let xml = authn_request("_s1", None, "", "", &instant(0));
    let unsigned = browser.get(&env, 0, &redirect_path(&xml, None)).await;
    assert_eq!(
        unsigned.status,
        StatusCode::BAD_REQUEST,
        "{}",
        unsigned.html
    );

    let signed_path = |alg: &str, digest: openssl::hash::MessageDigest, key: &[u8]| {
        let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        let query = format!(
            "SAMLRequest={}&RelayState={}&SigAlg={}",
            enc(&rsp_identity::saml::wire::encode_redirect(&xml)),
            enc("rs"),
            enc(alg)
        );
        let pkey = openssl::pkey::PKey::private_key_from_pkcs8(key).expect("key");
        let mut signer = openssl::sign::Signer::new(digest, &pkey).expect("signer");
        signer.update(query.as_bytes()).expect("update");
        let sig = STANDARD.encode(signer.sign_to_vec().expect("sign"));
        format!("/t/{TENANT}/saml/sso?{query}&Signature={}", enc(&sig))
    };
    let sha1 = browser
        .get(
            &env,
            0,
            &signed_path(
                "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
                openssl::hash::MessageDigest::sha1(),
                &pkcs8,
            ),
        )
        .await;
    assert_eq!(sha1.status, StatusCode::BAD_REQUEST, "{}", sha1.html);
    assert!(sha1.html.contains("SHA-1"), "{}", sha1.html);
    let forged = browser
        .get(
            &env,
            0,
            &signed_path(
                "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                openssl::hash::MessageDigest::sha256(),
                &other_key,
            ),
        )
        .await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST, "{}", forged.html);
    let good = browser
        .get(
            &env,
            0,
            &signed_path(
                "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                openssl::hash::MessageDigest::sha256(),
                &pkcs8,
            ),
        )
        .await;
    assert!(good.has_input("password"), "{}", good.html);
    let answered = browser.login(&env, 0, &good, "alice", &password).await;
    let (_, _, relay) = posted_response(&answered);
    assert_eq!(relay.as_deref(), Some("rs"));
}

/// An SP's RSA key (PKCS#8) and certificate (DER).
pub(crate) fn sp_key() -> (Vec<u8>, Vec<u8>) {
    let rsa = openssl::rsa::Rsa::generate(2048).expect("rsa");
    let pkey = openssl::pkey::PKey::from_rsa(rsa).expect("pkey");
    let mut builder = openssl::x509::X509::builder().expect("builder");
    let mut name = openssl::x509::X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", "sp.example.com")
        .expect("cn");
    let name = name.build();
    builder.set_subject_name(&name).expect("subject");
    builder.set_issuer_name(&name).expect("issuer");
    builder.set_pubkey(&pkey).expect("pubkey");
    builder
        .set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).expect("time"))
        .expect("nb");
    builder
        .set_not_after(&openssl::asn1::Asn1Time::days_from_now(30).expect("time"))
        .expect("na");
    builder
        .sign(&pkey, openssl::hash::MessageDigest::sha256())
        .expect("sign");
    let cert = builder.build().to_der().expect("der");
    (pkey.private_key_to_pkcs8().expect("pkcs8"), cert)
}

#[tokio::test]
async fn idp_initiated_sign_on_and_sp_initiated_logout() {
    let (env, password) = env_with_sp(json!({})).await;
    let mut browser = Browser::default();
    let sp = url::form_urlencoded::byte_serialize(SP.as_bytes()).collect::<String>();
    let login = browser
        .get(
            &env,
            0,
            &format!("/t/{TENANT}/saml/init?sp={sp}&RelayState=home"),
        )
        .await;
    let answered = browser.login(&env, 0, &login, "alice", &password).await;
    let (action, response, relay) = posted_response(&answered);
    assert_eq!((action.as_str(), relay.as_deref()), (ACS, Some("home")));
    let signed = verified(&response, &idp_certificate(&env, 0).await);
    assert!(!signed.contains("InResponseTo"), "unsolicited");
    let session_index = between(&signed, "SessionIndex=\"", "\"").to_string();

    let unknown = browser
        .get(
            &env,
            0,
            &format!("/t/{TENANT}/saml/init?sp=https%3A%2F%2Fnope"),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);

    // The SP asks to log out (no certificate registered: unsigned is
    // accepted); the rsp session ends and the SP gets a signed answer.
    let logout = format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_lo1" Version="2.0" IssueInstant="{}" Destination="{}/saml/slo"><saml:Issuer>{SP}</saml:Issuer><saml:NameID>x</saml:NameID><samlp:SessionIndex>{session_index}</samlp:SessionIndex></samlp:LogoutRequest>"#,
        instant(0),
        issuer(TENANT)
    );
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(
            "SAMLRequest",
            &rsp_identity::saml::wire::encode_redirect(&logout),
        )
        .append_pair("RelayState", "bye")
        .finish();
    let out = browser
        .get(&env, 1, &format!("/t/{TENANT}/saml/slo?{q}"))
        .await;
    assert_eq!(out.status, StatusCode::FOUND, "{}", out.html);
    let location = out.location().expect("to the SP");
    assert_eq!(
        format!(
            "{}://{}{}",
            location.scheme(),
            location.host_str().unwrap_or(""),
            location.path()
        ),
        SLO
    );
    assert_eq!(out.param("RelayState").as_deref(), Some("bye"));
    assert!(out.param("Signature").is_some() && out.param("SigAlg").is_some());
    let response = rsp_identity::saml::wire::decode_redirect(
        &out.param("SAMLResponse").expect("SAMLResponse"),
    )
    .expect("inflate");
    assert!(
        response.contains(r#"InResponseTo="_lo1""#) && response.contains("status:Success"),
        "{response}"
    );
    // Signed out: the next request shows the login page again.
    let xml = authn_request("_after", None, "", "", &instant(0));
    let page = browser.get(&env, 0, &redirect_path(&xml, None)).await;
    assert!(page.has_input("password"), "{}", page.html);
}

const SP2: &str = "https://two.example.com/metadata";
const ACS2: &str = "https://two.example.com/acs";
const SLO2: &str = "https://two.example.com/slo";

pub(crate) fn logout_request(sp: &str, id: &str, session_index: &str) -> String {
    format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{}" Destination="{}/saml/slo"><saml:Issuer>{sp}</saml:Issuer><saml:NameID>x</saml:NameID><samlp:SessionIndex>{session_index}</samlp:SessionIndex></samlp:LogoutRequest>"#,
        instant(0),
        issuer(TENANT)
    )
}

pub(crate) fn slo_path(param: &str, xml: &str, relay: &str) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(param, &rsp_identity::saml::wire::encode_redirect(xml))
        .append_pair("RelayState", relay)
        .finish();
    format!("/t/{TENANT}/saml/slo?{q}")
}

#[tokio::test]
async fn logout_from_one_sp_tells_the_other_sps_of_the_session_then_answers() {
    let (env, password) = env_with_sp(json!({})).await;
    let two = register(
        &env,
        json!({"entity_id": SP2, "acs_url": ACS2, "slo_url": SLO2}),
    )
    .await;
    assert_eq!(two.status, StatusCode::CREATED, "{}", two.body);
    let mut browser = Browser::default();
    let login = browser
        .get(
            &env,
            0,
            &redirect_path(&authn_request("_a", None, "", "", &instant(0)), None),
        )
        .await;
    let (_, first, _) = posted_response(&browser.login(&env, 0, &login, "alice", &password).await);
    let session_index = between(&first, "SessionIndex=\"", "\"").to_string();
    // Signed on to the second SP without a login.
    let to_two = authn_request("_b", None, "", "", &instant(0)).replace(SP, SP2);
    let (action, _, _) =
        posted_response(&browser.get(&env, 1, &redirect_path(&to_two, None)).await);
    assert_eq!(action, ACS2);

    // A logout request naming another session ends nothing.
    let other = browser
        .get(
            &env,
            0,
            &slo_path("SAMLRequest", &logout_request(SP, "_lo0", "_other"), "r0"),
        )
        .await;
    assert_eq!(other.status, StatusCode::FOUND, "{}", other.html);
    assert!(
        other
            .location()
            .expect("location")
            .as_str()
            .starts_with(SLO)
    );
    let still = browser
        .get(
            &env,
            0,
            &redirect_path(&authn_request("_c", None, "", "", &instant(0)), None),
        )
        .await;
    posted_response(&still);

    // The first SP logs out: the browser is sent to the second SP with a
    // signed LogoutRequest for its NameID and session index.
    let out = browser
        .get(
            &env,
            0,
            &slo_path(
                "SAMLRequest",
                &logout_request(SP, "_lo1", &session_index),
                "r1",
            ),
        )
        .await;
    assert_eq!(out.status, StatusCode::FOUND, "{}", out.html);
    let to_two = out.location().expect("location");
    assert!(to_two.as_str().starts_with(SLO2), "{to_two}");
    assert!(out.param("Signature").is_some());
    let chain = out.param("RelayState").expect("chain id");
    let request =
        rsp_identity::saml::wire::decode_redirect(&out.param("SAMLRequest").expect("request"))
            .expect("inflate");
    assert!(
        request.contains(&format!(
            "<samlp:SessionIndex>{session_index}</samlp:SessionIndex>"
        )),
        "{request}"
    );
    // Already signed out at the IdP.
    let page = browser
        .get(
            &env,
            1,
            &redirect_path(&authn_request("_d", None, "", "", &instant(0)), None),
        )
        .await;
    assert!(page.has_input("password"), "{}", page.html);

    // The second SP answers; the first SP gets its LogoutResponse.
    let answer = format!(
        r#"<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r2" Version="2.0" IssueInstant="{}" InResponseTo="x"><saml:Issuer>{SP2}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:LogoutResponse>"#,
        instant(0)
    );
    let forged = browser
        .get(
            &env,
            1,
            &slo_path("SAMLResponse", &answer.replace(SP2, SP), &chain),
        )
        .await;
    assert_eq!(
        forged.status,
        StatusCode::BAD_REQUEST,
        "only the SP that was asked"
    );
    let back = browser
        .get(&env, 1, &slo_path("SAMLResponse", &answer, &chain))
        .await;
    assert_eq!(back.status, StatusCode::FOUND, "{}", back.html);
    assert!(back.location().expect("location").as_str().starts_with(SLO));
    assert_eq!(back.param("RelayState").as_deref(), Some("r1"));
    let response =
        rsp_identity::saml::wire::decode_redirect(&back.param("SAMLResponse").expect("response"))
            .expect("inflate");
    assert!(response.contains(r#"InResponseTo="_lo1""#), "{response}");
    // The chain is spent.
    let again = browser
        .get(&env, 1, &slo_path("SAMLResponse", &answer, &chain))
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_oidc_logout_tells_the_saml_service_providers_of_the_session() {
    let (env, password) = env_with_sp(json!({})).await;
    let mut browser = Browser::default();
    let login = browser
        .get(
            &env,
            0,
            &redirect_path(&authn_request("_o1", None, "", "", &instant(0)), None),
        )
        .await;
    posted_response(&browser.login(&env, 0, &login, "alice", &password).await);
    let confirm = browser.get(&env, 0, &format!("/t/{TENANT}/logout")).await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.html);
    let out = browser
        .post(
            &env,
            1,
            &format!("/t/{TENANT}/logout"),
            &[
                ("csrf_token", &confirm.field("csrf_token").expect("csrf")),
                (
                    "ticket",
                    &unescape(&confirm.field("ticket").expect("ticket")),
                ),
            ],
        )
        .await;
    assert_eq!(out.status, StatusCode::FOUND, "{}", out.html);
    assert!(out.location().expect("location").as_str().starts_with(SLO));
    let request =
        rsp_identity::saml::wire::decode_redirect(&out.param("SAMLRequest").expect("request"))
            .expect("inflate");
    assert!(request.contains("<samlp:LogoutRequest"), "{request}");
    // The SP answers: the chain ends on the signed-out page.
    let answer = format!(
        r#"<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r" Version="2.0" IssueInstant="{}"><saml:Issuer>{SP}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:LogoutResponse>"#,
        instant(0)
    );
    let done = browser
        .get(
            &env,
            0,
            &slo_path(
                "SAMLResponse",
                &answer,
                &out.param("RelayState").expect("relay"),
            ),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.html);
    assert!(done.html.contains("signed out"), "{}", done.html);
}

/// Post the SAML consent page's form with `decision`.
async fn decide(
    browser: &mut Browser,
    env: &Env,
    node: usize,
    page: &Reply,
    decision: &str,
) -> Reply {
    assert!(
        page.html.contains("name=\"decision\""),
        "a consent page: {}",
        page.html
    );
    let csrf = page.field("csrf_token").expect("csrf");
    let ticket = page.field("ticket").expect("ticket");
    browser
        .post(
            env,
            node,
            &format!("/t/{TENANT}/saml/consent"),
            &[
                ("csrf_token", &csrf),
                ("ticket", &ticket),
                ("decision", decision),
            ],
        )
        .await
}

#[tokio::test]
async fn an_sp_that_requires_consent_gets_an_assertion_only_once_the_user_allows() {
    let (env, password) = env_with_sp(json!({
        "require_consent": true,
        "attributes": [{"source": "email", "name": "mail"}]
    }))
    .await;
    let cert = idp_certificate(&env, 0).await;
    let mut browser = Browser::default();
    let xml = authn_request("_c1", None, "", "", &instant(0));
    let login = browser.get(&env, 0, &redirect_path(&xml, None)).await;
    let consent = browser.login(&env, 0, &login, "alice", &password).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.html);
    assert!(
        consent.field("SAMLResponse").is_none(),
        "no assertion before consent"
    );
    assert!(
        consent.html.contains("mail"),
        "lists what is released: {}",
        consent.html
    );
    assert!(
        consent.html.contains("/t/acme/saml/consent") || consent.html.contains("saml&#x2f;consent")
    );

    // Refused: the SP gets RequestDenied, and no assertion.
    let denied = decide(&mut browser, &env, 0, &consent, "deny").await;
    let (action, response, _) = posted_response(&denied);
    assert_eq!(action, ACS);
    let signed = verified(&response, &cert);
    assert!(
        signed.contains("urn:oasis:names:tc:SAML:2.0:status:RequestDenied"),
        "{signed}"
    );
    assert!(!response.contains("Assertion"), "{response}");

    // Asked again (no login: the session is there), allowed on the other
    // node: the assertion.
    let xml = authn_request("_c2", None, "", "", &instant(0));
    let consent = browser.get(&env, 1, &redirect_path(&xml, None)).await;
    assert!(consent.field("SAMLResponse").is_none(), "{}", consent.html);
    let allowed = decide(&mut browser, &env, 1, &consent, "allow").await;
    let (_, response, _) = posted_response(&allowed);
    let signed = verified(&response, &cert);
    assert!(signed.contains(r#"InResponseTo="_c2""#), "{signed}");
    assert!(signed.contains("alice@example.com"), "{signed}");
    // The ticket was for `_c2`, which is spent: posting it again answers
    // nothing.
    let again = decide(&mut browser, &env, 0, &consent, "allow").await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.html);
    assert!(again.field("SAMLResponse").is_none());

    // Remembered: the next request is answered at once, on either node.
    let xml = authn_request("_c3", None, "", "", &instant(0));
    let page = browser.get(&env, 0, &redirect_path(&xml, None)).await;
    let (_, response, _) = posted_response(&page);
    assert!(verified(&response, &cert).contains(r#"InResponseTo="_c3""#));

    // A new attribute is asked for again; passively, NoPassive.
    let sp = url::form_urlencoded::byte_serialize(SP.as_bytes()).collect::<String>();
    let replaced = admin(
        &env,
        "PUT",
        &format!("/admin/v1/tenants/{TENANT}/saml/service-providers/{sp}"),
        Some(
            json!({"acs_url": ACS, "require_consent": true, "attributes": [
                {"source": "email", "name": "mail"}, {"source": "username", "name": "uid"}
            ]}),
        ),
    )
    .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    let xml = authn_request("_c4", None, r#" IsPassive="true""#, "", &instant(0));
    let passive = browser.get(&env, 1, &redirect_path(&xml, None)).await;
    let (_, response, _) = posted_response(&passive);
    assert!(
        response.contains("urn:oasis:names:tc:SAML:2.0:status:NoPassive"),
        "{response}"
    );
    let xml = authn_request("_c5", None, "", "", &instant(0));
    let consent = browser.get(&env, 0, &redirect_path(&xml, None)).await;
    assert!(consent.html.contains("uid"), "{}", consent.html);
    assert!(consent.field("SAMLResponse").is_none());

    // A forged ticket is refused.
    let forged = browser
        .post(
            &env,
            0,
            &format!("/t/{TENANT}/saml/consent"),
            &[
                ("csrf_token", &consent.field("csrf_token").expect("csrf")),
                ("ticket", "forged"),
                ("decision", "allow"),
            ],
        )
        .await;
    assert!(forged.status.is_client_error(), "{}", forged.html);
    assert!(forged.field("SAMLResponse").is_none());
}
