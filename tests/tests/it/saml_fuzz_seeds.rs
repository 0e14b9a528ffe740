//! The seeds of the SAML fuzz targets (`tests/fuzz/corpus/saml_redirect/`
//! and `saml_post/`): requests as service providers send them, unsigned
//! and signed with the test SP's key (`tests/fuzz/saml-sp.key`) at
//! `SAML_NOW_MS`, and the attacks on them (wrapping, SHA-1, DOCTYPE,
//! comments, a DEFLATE bomb, truncation). They are kept as files, for
//! libFuzzer; `write_saml_fuzz_seeds` rewrites them (by hand:
//! `cargo test -p rsp-tests --test it saml_fuzz_seeds -- --ignored`), and
//! the other test proves the signed ones still reach the checks past the
//! signature, so the targets keep exercising them.

use std::path::PathBuf;

use rsp_identity::saml::providers::Registration;
use rsp_identity::saml::request::{self, Incoming};
use rsp_identity::saml::wire;
use rsp_tests::fuzz::{
    SAML_NOW_MS, SAML_SLO, SAML_SP, SAML_SP_CERTIFICATE, SAML_SSO, saml_post, saml_redirect,
};
use samael::crypto::{Crypto, CryptoProvider};

const ISSUED: &str = "2030-01-01T00:00:00Z";
const RSA_SHA256: (&str, &str) = (
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmlenc#sha256",
);
const RSA_SHA1: (&str, &str) = (
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "http://www.w3.org/2000/09/xmldsig#sha1",
);

fn key() -> openssl::pkey::PKey<openssl::pkey::Private> {
    openssl::pkey::PKey::private_key_from_pem(include_bytes!("../../fuzz/saml-sp.key"))
        .expect("the test SP's key")
}

fn authn(id: &str) -> String {
    format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{ISSUED}" Destination="{SAML_SSO}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" AssertionConsumerServiceURL="https://sp.fuzz.test/acs" ForceAuthn="false"><saml:Issuer>{SAML_SP}</saml:Issuer><samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" AllowCreate="true"/><samlp:RequestedAuthnContext Comparison="exact"><saml:AuthnContextClassRef>https://refeds.org/profile/mfa</saml:AuthnContextClassRef></samlp:RequestedAuthnContext></samlp:AuthnRequest>"#
    )
}

fn logout(id: &str, name_id: &str) -> String {
    format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{ISSUED}" Destination="{SAML_SLO}"><saml:Issuer>{SAML_SP}</saml:Issuer><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">{name_id}</saml:NameID><samlp:SessionIndex>_s1</samlp:SessionIndex></samlp:LogoutRequest>"#
    )
}

fn enc(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// A Redirect-binding query for `xml`, signed with `digest` under `alg`
/// when given.
fn query(xml: &str, sign: Option<(&str, openssl::hash::MessageDigest)>) -> String {
    let mut query = format!(
        "SAMLRequest={}&RelayState={}",
        enc(&wire::encode_redirect(xml)),
        enc("https://sp.fuzz.test/after?x=1")
    );
    if let Some((alg, digest)) = sign {
        query.push_str(&format!("&SigAlg={}", enc(alg)));
        let key = key();
        let mut signer = openssl::sign::Signer::new(digest, &key).expect("signer");
        signer.update(query.as_bytes()).expect("update");
        let signature = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            signer.sign_to_vec().expect("sign"),
        );
        query.push_str(&format!("&Signature={}", enc(&signature)));
    }
    query
}

/// `xml` with an enveloped signature over the element with ID `reference`.
fn signed(xml: &str, reference: &str, (method, digest): (&str, &str)) -> String {
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
    let pkcs8 = key().private_key_to_pkcs8().expect("pkcs8");
    let out = Crypto::sign_xml(&xml, &pkcs8).expect("signs");
    match out.find("?>") {
        Some(end) if out.starts_with("<?xml") => out[end + 2..].trim().to_string(),
        _ => out.trim().to_string(),
    }
}

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

const BILLION_LAUGHS: &str = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY x SYSTEM "file:///etc/passwd">]>"#;

#[test]
#[ignore = "rewrites the kept seeds; run by hand"]
fn write_saml_fuzz_seeds() {
    use openssl::hash::MessageDigest;
    let sha256 = Some((RSA_SHA256.0, MessageDigest::sha256()));
    let sha1 = Some((RSA_SHA1.0, MessageDigest::sha1()));
    let signed_authn = signed(&authn("_a1"), "_a1", RSA_SHA256);
    let signed_logout = signed(&logout("_l1", "opaque-id"), "_l1", RSA_SHA256);
    let wrapped = authn("_forged").replacen(
        "</saml:Issuer>",
        &format!("</saml:Issuer><samlp:Extensions>{signed_authn}</samlp:Extensions>"),
        1,
    );
    let doctype = format!(
        "{BILLION_LAUGHS}{}",
        authn("_d1").replace(SAML_SP, "&c;&x;")
    );
    let comment = logout("_c1", "alice<!---->@evil.example.com");
    let bomb = format!(
        "SAMLRequest={}",
        enc(&wire::encode_redirect(&" ".repeat(30 * 1024 * 1024)))
    );
    let full = query(&authn("_t1"), None);
    let truncated = full[..full.find("&RelayState").expect("relay") - 40].to_string();

    let redirect: &[(&str, String)] = &[
        ("authn-unsigned", query(&authn("_a1"), None)),
        ("authn-signed", query(&authn("_a1"), sha256)),
        ("authn-signed-sha1", query(&authn("_a1"), sha1)),
        ("logout-unsigned", query(&logout("_l1", "opaque-id"), None)),
        ("logout-signed", query(&logout("_l1", "opaque-id"), sha256)),
        ("logout-comment-in-nameid", query(&comment, None)),
        ("doctype-entities", query(&doctype, None)),
        ("deflate-bomb", bomb),
        ("truncated", truncated),
        // The second mode: the bytes are the XML.
        ("xml-authn", authn("_x1")),
        ("xml-logout", logout("_x2", "opaque-id")),
    ];
    let post: &[(&str, String)] = &[
        ("authn-unsigned", wire::encode_post(&authn("_a1"))),
        ("authn-signed", wire::encode_post(&signed_authn)),
        (
            "logout-unsigned",
            wire::encode_post(&logout("_l1", "opaque-id")),
        ),
        ("logout-signed", wire::encode_post(&signed_logout)),
        ("authn-wrapped", wire::encode_post(&wrapped)),
        (
            "authn-signed-sha1",
            wire::encode_post(&signed(&authn("_a2"), "_a2", RSA_SHA1)),
        ),
        ("doctype-entities", wire::encode_post(&doctype)),
        ("logout-comment-in-nameid", wire::encode_post(&comment)),
        (
            "truncated",
            wire::encode_post(&signed_authn)[..600].to_string(),
        ),
        ("oversized", "PD94".repeat(16 * 1024 + 1)),
        // The second mode: the bytes are the XML.
        ("xml-authn-signed", signed_authn.clone()),
        ("xml-logout-signed", signed_logout.clone()),
    ];
    for (target, seeds) in [("saml_redirect", redirect), ("saml_post", post)] {
        std::fs::create_dir_all(corpus(target)).expect("corpus dir");
        for (name, seed) in seeds {
            std::fs::write(corpus(target).join(name), seed).expect("write seed");
        }
    }
}

#[test]
fn the_kept_signed_seeds_reach_the_checks_past_the_signature() {
    let sp = Registration {
        entity_id: Some(SAML_SP.into()),
        acs_url: Some("https://sp.fuzz.test/acs".into()),
        certificate_pem: Some(SAML_SP_CERTIFICATE.into()),
        ..Registration::default()
    }
    .into_provider(0)
    .expect("sp");
    let read = |target: &str, name: &str| {
        std::fs::read_to_string(corpus(target).join(name)).expect("a kept seed")
    };
    for (target, name, authn) in [
        ("saml_redirect", "authn-signed", true),
        ("saml_redirect", "logout-signed", false),
        ("saml_post", "authn-signed", true),
        ("saml_post", "logout-signed", false),
    ] {
        let seed = read(target, name);
        let incoming = match target {
            "saml_redirect" => Incoming::Redirect { raw_query: &seed },
            _ => Incoming::Post { message: &seed },
        };
        let decoded = request::verify(&incoming, "SAMLRequest", None, &sp).expect(name);
        assert!(decoded.signed, "{target}/{name}");
        if authn {
            request::check_authn_request(&decoded, &sp, SAML_SSO, SAML_NOW_MS).expect(name);
        } else {
            request::check_logout_request(&decoded, &sp, SAML_SLO, SAML_NOW_MS).expect(name);
        }
        // And through the targets, which must not panic on them.
        saml_redirect(seed.as_bytes());
        saml_post(seed.as_bytes());
    }
}
