//! Passkeys (WebAuthn) end to end through the browser pages, with a
//! software authenticator written here: a P-256 key (aws-lc-rs), the
//! authenticator data, COSE key and `none` attestation encoded by hand
//! (CBOR), signatures over `authData || SHA-256(clientDataJSON)`.
//!
//! Proves: several passkeys per user; passwordless sign-in (`amr` has
//! `hwk`) and the second factor after the password (`pwd` + `hwk`); a
//! challenge answers one ceremony only; passwordless refuses an assertion
//! without user verification; a cloned authenticator with a stale counter
//! is refused on the other node; a ceremony is bound to the browser that
//! started it; wrong answers after the password count towards the lockout,
//! and the right password between them does not clear it; a second
//! factor's ticket is spent when its sign-in finishes;
//! a security key is a second factor only; the admin factors list shows
//! the passkeys and deleting them there removes them.

use crate::support;

use crate::browser;

use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use axum::http::StatusCode;
use browser::*;
use rsp_identity::crypto::{b64url, b64url_decode};
use rsp_identity::oauth::{OidcConfig, OidcServices};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::*;

/// WebAuthn needs a domain: these tests serve the tenant at `localhost`.
const ORIGIN: &str = "http://localhost:8080";
const RP_ID: &str = "localhost";

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

// --- a little CBOR (RFC 8949): what an authenticator sends ----------------

fn cbor_head(major: u8, n: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend([m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 26);
            out.extend((n as u32).to_be_bytes());
        }
    }
}

fn cbor_int(v: i64, out: &mut Vec<u8>) {
    if v >= 0 {
        cbor_head(0, v as u64, out);
    } else {
        cbor_head(1, (-1 - v) as u64, out);
    }
}

fn cbor_bytes(b: &[u8], out: &mut Vec<u8>) {
    cbor_head(2, b.len() as u64, out);
    out.extend_from_slice(b);
}

fn cbor_text(t: &str, out: &mut Vec<u8>) {
    cbor_head(3, t.len() as u64, out);
    out.extend_from_slice(t.as_bytes());
}

// --- the software authenticator -------------------------------------------

struct SoftKey {
    id: Vec<u8>,
    key: EcdsaKeyPair,
    user_handle: Vec<u8>,
    counter: u32,
}

impl SoftKey {
    fn new(user_handle: &[u8]) -> SoftKey {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("generate");
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).expect("key");
        SoftKey {
            id: rsp_identity::crypto::random_token(16).into_bytes(),
            key,
            user_handle: user_handle.to_vec(),
            counter: 0,
        }
    }

    /// The COSE_Key of the public key (EC2, ES256, P-256).
    fn cose(&self) -> Vec<u8> {
        let point = self.key.public_key().as_ref();
        assert_eq!(point.len(), 65, "uncompressed P-256 point");
        let mut out = Vec::new();
        cbor_head(5, 5, &mut out);
        cbor_int(1, &mut out);
        cbor_int(2, &mut out); // kty: EC2
        cbor_int(3, &mut out);
        cbor_int(-7, &mut out); // alg: ES256
        cbor_int(-1, &mut out);
        cbor_int(1, &mut out); // crv: P-256
        cbor_int(-2, &mut out);
        cbor_bytes(&point[1..33], &mut out);
        cbor_int(-3, &mut out);
        cbor_bytes(&point[33..65], &mut out);
        out
    }

    fn auth_data(&self, flags: u8, attested: bool) -> Vec<u8> {
        let mut d = Sha256::digest(RP_ID.as_bytes()).to_vec();
        d.push(flags | if attested { AT } else { 0 });
        d.extend(self.counter.to_be_bytes());
        if attested {
            d.extend([0u8; 16]); // AAGUID
            d.extend((self.id.len() as u16).to_be_bytes());
            d.extend(&self.id);
            d.extend(self.cose());
        }
        d
    }

    /// The answer to `navigator.credentials.create(options)`.
    fn register(&self, options: &Value, flags: u8) -> String {
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .expect("challenge");
        let client_data = json!({
            "type": "webauthn.create",
            "challenge": challenge,
            "origin": ORIGIN,
            "crossOrigin": false,
        })
        .to_string();
        let mut att = Vec::new();
        cbor_head(5, 3, &mut att);
        cbor_text("fmt", &mut att);
        cbor_text("none", &mut att);
        cbor_text("attStmt", &mut att);
        cbor_head(5, 0, &mut att);
        cbor_text("authData", &mut att);
        cbor_bytes(&self.auth_data(flags, true), &mut att);
        json!({
            "id": b64url(&self.id),
            "rawId": b64url(&self.id),
            "type": "public-key",
            "response": {
                "attestationObject": b64url(&att),
                "clientDataJSON": b64url(client_data.as_bytes()),
            },
            "extensions": {},
        })
        .to_string()
    }

    /// The answer to `navigator.credentials.get(options)`, after bumping
    /// the counter by `step` (0: a clone replaying an old counter).
    fn assert(&mut self, options: &Value, flags: u8, step: u32) -> String {
        self.counter += step;
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .expect("challenge");
        let client_data = json!({
            "type": "webauthn.get",
            "challenge": challenge,
            "origin": ORIGIN,
            "crossOrigin": false,
        })
        .to_string();
        let auth_data = self.auth_data(flags, false);
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(client_data.as_bytes()));
        let sig = self.key.sign(&SystemRandom::new(), &signed).expect("sign");
        json!({
            "id": b64url(&self.id),
            "rawId": b64url(&self.id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64url(&auth_data),
                "clientDataJSON": b64url(client_data.as_bytes()),
                "signature": b64url(sig.as_ref()),
                "userHandle": b64url(&self.user_handle),
            },
            "extensions": {},
        })
        .to_string()
    }
}

// --- pages ------------------------------------------------------------------

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#x22;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// The WebAuthn options a passkey page carries.
fn options(page: &Reply) -> Value {
    let start = page
        .html
        .find("data-options=\"")
        .unwrap_or_else(|| panic!("no passkey options: {}", page.html))
        + "data-options=\"".len();
    let len = page.html[start..].find('"').expect("attribute end");
    serde_json::from_str(&unescape(&page.html[start..start + len])).expect("options JSON")
}

struct Setup {
    env: Env,
    web: TestClient,
    alice: String,
}

/// Nodes serving the tenant at `localhost` (a domain, as WebAuthn needs).
async fn setup(nodes: usize) -> Setup {
    let mut env = start_browser(nodes).await;
    for (i, node) in env.cluster.nodes.iter().enumerate() {
        let state = &mut env.states[i];
        state.public_url = Arc::from(ORIGIN);
        state.oidc = OidcServices::new(
            node.consensus.clone(),
            state.identity.clone(),
            ORIGIN,
            OidcConfig::default(),
        );
    }
    rebuild(&mut env);
    let web = client(
        &env,
        "web",
        "client_secret_basic",
        &["authorization_code"],
        false,
    )
    .await;
    let alice = env.user(TENANT, "alice").await;
    Setup { env, web, alice }
}

impl Setup {
    /// A browser signed in with alice's password.
    async fn signed_in(&self) -> Browser {
        let mut b = Browser::default();
        let (_, challenge) = pkce();
        let page = b
            .get(
                &self.env,
                0,
                &authorize_path(&self.web.id, &code_request(&challenge, "s")),
            )
            .await;
        let done = b.login(&self.env, 0, &page, "alice", PASSWORD).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
        b
    }

    /// Register a new software passkey named `name` for alice.
    async fn register(&self, b: &mut Browser, name: &str) -> SoftKey {
        self.register_kind(b, name, "passkey", UP | UV).await
    }

    /// Register a software authenticator as `kind` (`passkey` or
    /// `security_key`), its registration flags `flags`.
    async fn register_kind(&self, b: &mut Browser, name: &str, kind: &str, flags: u8) -> SoftKey {
        let path = format!("/t/{TENANT}/account/passkeys");
        let list = b.get(&self.env, 0, &path).await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.html);
        let csrf = list.field("csrf_token").expect("csrf");
        let page = b
            .post(
                &self.env,
                0,
                &path,
                &[
                    ("csrf_token", &csrf),
                    ("action", "add"),
                    ("name", name),
                    ("kind", kind),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.html);
        assert!(
            page.header("content-security-policy")
                .contains("script-src 'nonce-"),
            "the ceremony page allows its own script only"
        );
        let opts = options(&page);
        assert_eq!(opts["publicKey"]["rp"]["id"], RP_ID);
        if kind == "passkey" {
            assert_eq!(
                opts["publicKey"]["authenticatorSelection"]["residentKey"],
                "required"
            );
        }
        let handle = b64url_decode(opts["publicKey"]["user"]["id"].as_str().expect("user id"))
            .expect("user handle");
        let key = SoftKey::new(&handle);
        let done = b
            .post(
                &self.env,
                0,
                &path,
                &[
                    ("csrf_token", &page.field("csrf_token").expect("csrf")),
                    ("action", "finish"),
                    ("ceremony", &page.field("ceremony").expect("ceremony")),
                    ("credential", &key.register(&opts, flags)),
                ],
            )
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.html);
        assert!(done.html.contains("added"), "{}", done.html);
        key
    }

    /// The passwordless page of a fresh browser on node `node`, and the
    /// PKCE verifier of its authorization request.
    async fn passwordless_page(&self, node: usize) -> (Browser, Reply, String) {
        let mut b = Browser::default();
        let (verifier, challenge) = pkce();
        let login = b
            .get(
                &self.env,
                node,
                &authorize_path(&self.web.id, &code_request(&challenge, "p")),
            )
            .await;
        assert!(login.html.contains("passkey/login"), "{}", login.html);
        let page = b
            .post(
                &self.env,
                node,
                &format!("/t/{TENANT}/passkey/login"),
                &[
                    ("csrf_token", &login.field("csrf_token").expect("csrf")),
                    ("flow", &login.field("flow").expect("flow")),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.html);
        (b, page, verifier)
    }

    /// Answer a passkey page (passwordless or second factor) on `node`.
    async fn answer(&self, b: &mut Browser, node: usize, page: &Reply, credential: &str) -> Reply {
        let action = if page.has_input("ticket") {
            "passkey/verify"
        } else {
            "passkey/login"
        };
        let mut form = vec![
            ("csrf_token", page.field("csrf_token").expect("csrf")),
            ("ceremony", page.field("ceremony").expect("ceremony")),
            ("credential", credential.to_string()),
        ];
        for extra in ["flow", "ticket"] {
            if let Some(v) = page.field(extra) {
                form.push((extra, v));
            }
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        b.post(&self.env, node, &format!("/t/{TENANT}/{action}"), &form)
            .await
    }

    /// The ID token's claims for the code in a redirect.
    async fn id_token(&self, done: &Reply, verifier: &str) -> Value {
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
        let code = done.param("code").expect("code");
        let tokens = self
            .env
            .form(
                TENANT,
                "/token",
                Some(&self.web.basic()),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", verifier),
                ],
            )
            .await;
        assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
        peek(&tokens.str("id_token")).1
    }
}

fn refused(r: &Reply) {
    assert!(r.location().is_none(), "signed in: {:?}", r.location());
    assert!(
        !r.set_cookies()
            .iter()
            .any(|c| c.starts_with("rsp_session=")),
        "no session"
    );
}

#[tokio::test]
async fn passkeys_several_per_user_sign_in_without_a_password_with_hwk() {
    let s = setup(1).await;
    let mut b = s.signed_in().await;
    let mut laptop = s.register(&mut b, "Laptop").await;
    let _phone = s.register(&mut b, "Phone").await;
    let list = b
        .get(&s.env, 0, &format!("/t/{TENANT}/account/passkeys"))
        .await;
    assert!(
        list.html.contains("Laptop") && list.html.contains("Phone"),
        "{}",
        list.html
    );

    let (mut fresh, page, verifier) = s.passwordless_page(0).await;
    let opts = options(&page);
    assert_eq!(opts["publicKey"]["userVerification"], "required");
    assert!(
        opts["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "discoverable: no credential list"
    );
    let credential = laptop.assert(&opts, UP | UV, 1);
    let done = s.answer(&mut fresh, 0, &page, &credential).await;
    let claims = s.id_token(&done, &verifier).await;
    assert_eq!(claims["sub"], s.alice.as_str());
    assert_eq!(claims["amr"], json!(["hwk", "user"]));
    assert_eq!(claims["acr"], "urn:rsp:acr:mfa");
}

#[tokio::test]
async fn passkey_challenges_are_single_use_and_passwordless_requires_user_verification() {
    let s = setup(1).await;
    let mut b = s.signed_in().await;
    let mut key = s.register(&mut b, "Laptop").await;

    // Without user verification: refused (passwordless needs it).
    let (mut other, page, _) = s.passwordless_page(0).await;
    let no_uv = key.assert(&options(&page), UP, 1);
    let r = s.answer(&mut other, 0, &page, &no_uv).await;
    refused(&r);
    assert!(r.html.contains("could not be verified"), "{}", r.html);

    // A valid answer signs in once; the same answer again is refused.
    let (mut fresh, page, _) = s.passwordless_page(0).await;
    let good = key.assert(&options(&page), UP | UV, 1);
    let done = s.answer(&mut fresh, 0, &page, &good).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    let replay = s.answer(&mut fresh, 0, &page, &good).await;
    refused(&replay);
    assert!(replay.html.contains("expired"), "{}", replay.html);

    // A ceremony is bound to the browser that started it.
    let (mut victim, page, _) = s.passwordless_page(0).await;
    let stolen = key.assert(&options(&page), UP | UV, 1);
    let mut thief = Browser::default();
    let login = thief
        .get(
            &s.env,
            0,
            &authorize_path(&s.web.id, &code_request(&pkce().1, "t")),
        )
        .await;
    let mut form = page.html.clone();
    // The thief posts the victim's ceremony with its own anti-forgery token.
    form = form.replace(
        &page.field("csrf_token").expect("csrf"),
        &login.field("csrf_token").expect("csrf"),
    );
    let forged = Reply {
        status: page.status,
        headers: page.headers.clone(),
        html: form,
    };
    let r = s.answer(&mut thief, 0, &forged, &stolen).await;
    refused(&r);
    assert!(r.html.contains("expired"), "{}", r.html);
    // ... and the ceremony is still there for the browser it belongs to.
    let done = s.answer(&mut victim, 0, &page, &stolen).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
}

#[tokio::test]
async fn a_cloned_passkey_with_a_stale_counter_is_refused_on_the_other_node() {
    let s = setup(2).await;
    let mut b = s.signed_in().await;
    let mut key = s.register(&mut b, "Security key").await;

    let (mut first, page, _) = s.passwordless_page(0).await;
    let answer = key.assert(&options(&page), UP | UV, 5);
    let done = s.answer(&mut first, 0, &page, &answer).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);

    // A clone of the key, still at the same counter, on node 2: refused.
    let (mut clone, page, _) = s.passwordless_page(1).await;
    let stale = key.assert(&options(&page), UP | UV, 0);
    let r = s.answer(&mut clone, 1, &page, &stale).await;
    refused(&r);
    assert!(r.html.contains("refused"), "{}", r.html);

    // The genuine key moves on and still works there.
    let (mut next, page, _) = s.passwordless_page(1).await;
    let fresh = key.assert(&options(&page), UP | UV, 1);
    let done = s.answer(&mut next, 1, &page, &fresh).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
}

#[tokio::test]
async fn a_passkey_as_second_factor_gives_pwd_and_hwk_and_admin_sees_and_resets_it() {
    let s = setup(1).await;
    let mut b = s.signed_in().await;
    let _laptop = s.register(&mut b, "Laptop").await;
    // A security key without a PIN: registered for user presence only.
    let mut yubikey = s
        .register_kind(&mut b, "Security key", "security_key", UP)
        .await;

    // The password now leads to the passkey page, not to a session.
    let mut other = Browser::default();
    let (verifier, challenge) = pkce();
    let login = other
        .get(
            &s.env,
            0,
            &authorize_path(&s.web.id, &code_request(&challenge, "m")),
        )
        .await;
    let page = other.login(&s.env, 0, &login, "alice", PASSWORD).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    refused(&page);
    let opts = options(&page);
    assert_eq!(opts["publicKey"]["userVerification"], "preferred");
    assert_eq!(
        opts["publicKey"]["allowCredentials"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "both passkeys are offered"
    );
    // A security key without a PIN: user presence only, accepted here.
    let credential = yubikey.assert(&opts, UP, 1);
    let done = s.answer(&mut other, 0, &page, &credential).await;
    let claims = s.id_token(&done, &verifier).await;
    assert_eq!(claims["amr"], json!(["pwd", "hwk"]));
    assert_eq!(claims["acr"], "urn:rsp:acr:mfa");

    // The admin API lists both (no key material) and deletes them.
    let path = format!("/admin/v1/tenants/{TENANT}/users/{}/factors", s.alice);
    let list = s
        .env
        .send(
            0,
            axum::http::Request::get(&path)
                .header("authorization", "Bearer admin")
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let items = list.body.as_array().expect("array").clone();
    let passkeys: Vec<&Value> = items.iter().filter(|f| f["type"] == "webauthn").collect();
    assert_eq!(passkeys.len(), 2, "{}", list.body);
    assert!(!list.body.to_string().contains("cred"), "{}", list.body);
    for p in passkeys {
        let id = p["id"].as_str().expect("id");
        let del = s
            .env
            .send(
                0,
                axum::http::Request::delete(format!("{path}/{id}"))
                    .header("authorization", "Bearer admin")
                    .body(axum::body::Body::empty())
                    .expect("request"),
            )
            .await;
        assert_eq!(del.status, StatusCode::NO_CONTENT, "{}", del.body);
    }
    // No passkey left: the password alone signs in again.
    let mut third = Browser::default();
    let login = third
        .get(
            &s.env,
            0,
            &authorize_path(&s.web.id, &code_request(&challenge, "n")),
        )
        .await;
    let done = third.login(&s.env, 0, &login, "alice", PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
}

#[tokio::test]
async fn wrong_passkey_answers_after_the_password_lock_the_account_and_security_keys_are_not_passwordless()
 {
    let s = setup(1).await;
    let mut b = s.signed_in().await;
    let mut key = s
        .register_kind(&mut b, "Security key", "security_key", UP)
        .await;

    // A security key is a second factor only: it cannot sign in alone,
    // even with user verification.
    let (mut alone, page, _) = s.passwordless_page(0).await;
    let answer = key.assert(&options(&page), UP | UV, 1);
    let r = s.answer(&mut alone, 0, &page, &answer).await;
    refused(&r);
    assert!(r.html.contains("not registered"), "{}", r.html);

    // An impostor (same credential id, another private key) after the
    // password: each bad signature counts towards the lockout.
    let mut other = Browser::default();
    let login = other
        .get(
            &s.env,
            0,
            &authorize_path(&s.web.id, &code_request(&pkce().1, "l")),
        )
        .await;
    let mut page = other.login(&s.env, 0, &login, "alice", PASSWORD).await;
    for _ in 0..MAX_FAILURES {
        let mut impostor = SoftKey::new(&key.user_handle);
        impostor.id = key.id.clone();
        let bad = impostor.assert(&options(&page), UP, 1);
        page = s.answer(&mut other, 0, &page, &bad).await;
        refused(&page);
        assert!(page.html.contains("could not be verified"), "{}", page.html);
    }
    // Locked now: even the right password is refused.
    let mut late = Browser::default();
    let login = late
        .get(
            &s.env,
            0,
            &authorize_path(&s.web.id, &code_request(&pkce().1, "z")),
        )
        .await;
    let r = late.login(&s.env, 0, &login, "alice", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.html);
}

/// RFC 6238 (HMAC-SHA1, 6 digits, 30 s) for the TOTP fallback.
fn totp_now(seed: &[u8]) -> String {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, seed);
    let mac = hmac::sign(&key, &(now_secs() / 30).to_be_bytes());
    let mac = mac.as_ref();
    let at = (mac[mac.len() - 1] & 0x0f) as usize;
    let n = u32::from_be_bytes([mac[at] & 0x7f, mac[at + 1], mac[at + 2], mac[at + 3]]);
    format!("{:06}", n % 1_000_000)
}

#[tokio::test]
async fn a_user_with_a_passkey_and_totp_may_use_either_after_the_password() {
    let s = setup(1).await;
    let mut b = s.signed_in().await;
    let _key = s.register(&mut b, "Laptop").await;
    s.env
        .state()
        .identity
        .factors
        .import_totp(
            TENANT,
            &s.alice,
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
            None,
            None,
            0,
        )
        .await
        .expect("import");

    // Without a session the passkey page sends the browser to the account
    // page (whose login form leads back there).
    let anonymous = Browser::default()
        .get(&s.env, 0, &format!("/t/{TENANT}/account/passkeys"))
        .await;
    assert_eq!(anonymous.status, StatusCode::FOUND);
    assert!(
        anonymous.header("location").ends_with("/t/acme/account"),
        "{}",
        anonymous.header("location")
    );

    let mut other = Browser::default();
    let (verifier, challenge) = pkce();
    let login = other
        .get(
            &s.env,
            0,
            &authorize_path(&s.web.id, &code_request(&challenge, "both")),
        )
        .await;
    let page = other.login(&s.env, 0, &login, "alice", PASSWORD).await;
    assert!(page.html.contains("data-options"), "{}", page.html);
    // A wrong passkey answer: the page comes back, still with the code form
    // aimed at the login endpoint.
    let page = s.answer(&mut other, 0, &page, "{}").await;
    assert!(page.html.contains("could not be verified"), "{}", page.html);
    assert!(
        page.html.contains(&format!("action=\"/t/{TENANT}/login\"")),
        "{}",
        page.html
    );
    // The code form is the second form (its own `ticket`).
    let at = page
        .html
        .find(&format!("action=\"/t/{TENANT}/login\""))
        .expect("code form");
    let code_form = Reply {
        status: page.status,
        headers: page.headers.clone(),
        html: page.html[at..].to_string(),
    };
    let done = other
        .post(
            &s.env,
            0,
            &format!("/t/{TENANT}/login"),
            &[
                ("csrf_token", &code_form.field("csrf_token").expect("csrf")),
                ("ticket", &code_form.field("ticket").expect("ticket")),
                ("totp", &totp_now(b"12345678901234567890")),
            ],
        )
        .await;
    let claims = s.id_token(&done, &verifier).await;
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
}

#[tokio::test]
async fn right_passwords_with_wrong_passkey_answers_lock_the_account_and_a_spent_ticket_is_refused()
{
    let s = setup(1).await;
    let mut b = s.signed_in().await;
    let mut key = s.register(&mut b, "Laptop").await;

    // A finished second factor spends its ticket: posted again from a
    // copy of the browser (binding cookie included), it does not even
    // start a new ceremony.
    let mut first = Browser::default();
    let (verifier, challenge) = pkce();
    let page = first
        .get(
            &s.env,
            0,
            &authorize_path(&s.web.id, &code_request(&challenge, "m")),
        )
        .await;
    let page = first.login(&s.env, 0, &page, "alice", PASSWORD).await;
    assert!(page.html.contains("data-options"), "{}", page.html);
    let mut copy = first.clone();
    let good = key.assert(&options(&page), UP | UV, 1);
    let done = s.answer(&mut first, 0, &page, &good).await;
    s.id_token(&done, &verifier).await;
    let again = copy
        .post(
            &s.env,
            0,
            &format!("/t/{TENANT}/passkey/verify"),
            &[
                ("csrf_token", &page.field("csrf_token").expect("csrf")),
                ("ticket", &page.field("ticket").expect("ticket")),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.html);
    refused(&again);
    assert!(again.html.contains("already completed"), "{}", again.html);

    // Rounds of the right password and a wrong answer, each in a new
    // browser: the password never clears what the answers counted.
    for _ in 0..MAX_FAILURES {
        let mut round = Browser::default();
        let page = round
            .get(
                &s.env,
                0,
                &authorize_path(&s.web.id, &code_request(&pkce().1, "r")),
            )
            .await;
        let page = round.login(&s.env, 0, &page, "alice", PASSWORD).await;
        assert!(page.html.contains("data-options"), "{}", page.html);
        let mut impostor = SoftKey::new(&key.user_handle);
        impostor.id = key.id.clone();
        let bad = impostor.assert(&options(&page), UP, 1);
        let r = s.answer(&mut round, 0, &page, &bad).await;
        refused(&r);
        assert!(r.html.contains("could not be verified"), "{}", r.html);
    }
    let mut late = Browser::default();
    let page = late
        .get(
            &s.env,
            0,
            &authorize_path(&s.web.id, &code_request(&pkce().1, "z")),
        )
        .await;
    let r = late.login(&s.env, 0, &page, "alice", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.html);
}
