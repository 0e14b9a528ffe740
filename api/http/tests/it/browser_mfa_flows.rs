//! Multi-factor flows in the browser, with the nodes' own factor stores:
//! self-service TOTP enrolment (the secret scraped from the page, codes made
//! by a hand-written RFC 6238 implementation), recovery codes (once, on any
//! node), the tenant MFA policy (required for all, or for a Cedar-decided
//! set) forcing enrolment, `acr_values` step-up, the `amr` / `acr` claims,
//! and the admin reset.

use crate::support;

use crate::browser;

use aws_lc_rs::hmac;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use browser::*;
use serde_json::{Value, json};
use support::*;

/// RFC 4648 base32 (no padding) decoding, for the scraped secret.
pub(crate) fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut buffer, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base32") as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            out.push((buffer >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    out
}

/// RFC 6238 with HMAC-SHA1 and 6 digits, 30 s steps, written here (not
/// totp-rs).
pub(crate) fn totp_at(seed: &[u8], unix_secs: u64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, seed);
    let mac = hmac::sign(&key, &(unix_secs / 30).to_be_bytes());
    let mac = mac.as_ref();
    let offset = (mac[mac.len() - 1] & 0x0f) as usize;
    let binary = (u32::from(mac[offset] & 0x7f) << 24)
        | (u32::from(mac[offset + 1]) << 16)
        | (u32::from(mac[offset + 2]) << 8)
        | u32::from(mac[offset + 3]);
    format!("{:06}", binary % 1_000_000)
}

#[test]
fn the_reference_totp_matches_rfc_6238_and_base32_decodes() {
    assert_eq!(
        base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
        b"12345678901234567890"
    );
    // RFC 6238 appendix B, SHA1, T = 59: 94287082 (last six digits).
    assert_eq!(totp_at(b"12345678901234567890", 59), "287082");
}

/// The text of the element with `id`.
pub(crate) fn text_of(html: &str, id: &str) -> Option<String> {
    let needle = format!("id=\"{id}\">");
    let at = html.find(&needle)? + needle.len();
    let len = html[at..].find('<')?;
    Some(html[at..at + len].to_string())
}

/// The recovery codes shown on a page.
fn recovery_codes(html: &str) -> Vec<String> {
    html.split("class=\"recovery-code\">")
        .skip(1)
        .filter_map(|s| s.split('<').next().map(str::to_string))
        .collect()
}

async fn setup(nodes: usize) -> (Env, TestClient) {
    let env = start_browser(nodes).await;
    let web = client(
        &env,
        "web",
        "client_secret_basic",
        &["authorization_code"],
        false,
    )
    .await;
    (env, web)
}

/// Start an authorization request on `node` with `extra` parameters.
async fn authorize(
    env: &Env,
    b: &mut Browser,
    node: usize,
    web: &TestClient,
    challenge: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let mut params = code_request(challenge, "s");
    params.extend_from_slice(extra);
    b.get(env, node, &authorize_path(&web.id, &params)).await
}

/// Redeem the code of a redirect and return the ID token's claims.
async fn id_claims(env: &Env, web: &TestClient, done: &Reply, verifier: &str) -> Value {
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    let code = done.param("code").expect("code in the redirect");
    let tokens = env
        .form(
            TENANT,
            "/token",
            Some(&web.basic()),
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

/// Post a second-factor form (`ticket`) with `field` = `value`.
async fn second_factor(
    env: &Env,
    b: &mut Browser,
    node: usize,
    form: &Reply,
    field: &str,
    value: &str,
) -> Reply {
    let csrf = form.field("csrf_token").expect("csrf");
    let ticket = form.field("ticket").expect("ticket");
    b.post(
        env,
        node,
        &format!("/t/{TENANT}/login"),
        &[("csrf_token", &csrf), ("ticket", &ticket), (field, value)],
    )
    .await
}

async fn admin(env: &Env, method: &str, path: &str, body: Option<Value>) -> Answer {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, "Bearer admin")
        .header(header::CONTENT_TYPE, "application/json");
    let body = body.map_or(Body::empty(), |b| Body::from(b.to_string()));
    env.send(0, req.body(body).expect("request")).await
}

/// Enrol TOTP on the account page of a signed-in browser; returns the seed,
/// the recovery codes shown and the time of the confirming code.
pub(crate) async fn enrol_on_account_page(
    env: &Env,
    b: &mut Browser,
) -> (Vec<u8>, Vec<String>, u64) {
    let page = b
        .get(env, 0, &format!("/t/{TENANT}/account/mfa/totp"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("<svg"), "a QR code image: {}", page.html);
    let uri = page.html.contains("otpauth://totp/");
    assert!(uri, "the otpauth URI: {}", page.html);
    let seed = base32_decode(&text_of(&page.html, "secret").expect("secret on the page"));
    assert_eq!(seed.len(), 20);

    let csrf = page.field("csrf_token").expect("csrf");
    let enrolment = page.field("enrolment").expect("enrolment ticket");
    let path = format!("/t/{TENANT}/account/mfa/totp");
    let wrong = b
        .post(
            env,
            0,
            &path,
            &[
                ("csrf_token", &csrf),
                ("enrolment", &enrolment),
                ("totp", "000000"),
            ],
        )
        .await;
    assert!(
        wrong.html.contains("not valid") && wrong.has_input("totp"),
        "a wrong first code keeps the factor pending: {}",
        wrong.html
    );
    let at = now_secs();
    let code = totp_at(&seed, at);
    let done = b
        .post(
            env,
            0,
            &path,
            &[
                ("csrf_token", &csrf),
                ("enrolment", &enrolment),
                ("totp", &code),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.html);
    let codes = recovery_codes(&done.html);
    assert_eq!(codes.len(), 10, "{}", done.html);
    (seed, codes, at)
}

/// Sign in through the authorization endpoint with the password only.
async fn password_login(env: &Env, b: &mut Browser, web: &TestClient, user: &str) -> Reply {
    let (_, challenge) = pkce();
    let page = authorize(env, b, 0, web, &challenge, &[]).await;
    b.login(env, 0, &page, user, PASSWORD).await
}

#[tokio::test]
async fn totp_enrolled_on_the_account_page_is_asked_for_at_the_next_login() {
    let (env, web) = setup(1).await;
    let alice = env.user(TENANT, "alice").await;
    let mut b = Browser::default();
    let first = password_login(&env, &mut b, &web, "alice").await;
    assert!(
        first.param("code").is_some(),
        "no factor yet: {}",
        first.html
    );

    let (seed, _, at) = enrol_on_account_page(&env, &mut b).await;
    let listed = admin(
        &env,
        "GET",
        &format!("/admin/v1/tenants/{TENANT}/users/{alice}/factors"),
        None,
    )
    .await;
    assert_eq!(
        listed.body.as_array().map(Vec::len),
        Some(1),
        "{}",
        listed.body
    );

    // A new browser: the password now leads to the TOTP form.
    let mut other = Browser::default();
    let (verifier, challenge) = pkce();
    let page = authorize(&env, &mut other, 0, &web, &challenge, &[]).await;
    let form = other.login(&env, 0, &page, "alice", PASSWORD).await;
    assert!(form.has_input("totp"), "{}", form.html);
    // The code that confirmed the enrolment cannot sign in.
    let replay = second_factor(&env, &mut other, 0, &form, "totp", &totp_at(&seed, at)).await;
    assert!(replay.location().is_none(), "{}", replay.html);
    let next = totp_at(&seed, at + 30);
    let done = second_factor(&env, &mut other, 0, &replay, "totp", &next).await;
    let claims = id_claims(&env, &web, &done, &verifier).await;
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    assert_eq!(claims["acr"], "urn:rsp:acr:mfa");
}

#[tokio::test]
async fn a_password_only_login_says_pwd_in_amr_and_acr() {
    let (env, web) = setup(1).await;
    env.user(TENANT, "bob").await;
    let mut b = Browser::default();
    let (verifier, challenge) = pkce();
    let page = authorize(&env, &mut b, 0, &web, &challenge, &[]).await;
    let done = b.login(&env, 0, &page, "bob", PASSWORD).await;
    let claims = id_claims(&env, &web, &done, &verifier).await;
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert_eq!(claims["acr"], "urn:rsp:acr:pwd");
}

#[tokio::test]
async fn a_recovery_code_works_once_on_any_node_and_says_mfa_in_amr() {
    let (env, web) = setup(2).await;
    env.user(TENANT, "alice").await;
    let mut b = Browser::default();
    password_login(&env, &mut b, &web, "alice").await;
    let (_, codes, _) = enrol_on_account_page(&env, &mut b).await;

    // Typed loosely (upper case, spaces for dashes) on node 1.
    let mut one = Browser::default();
    let (verifier, challenge) = pkce();
    let page = authorize(&env, &mut one, 1, &web, &challenge, &[]).await;
    let form = one.login(&env, 1, &page, "alice", PASSWORD).await;
    assert!(form.has_input("recovery_code"), "{}", form.html);
    let typed = codes[3].to_uppercase().replace('-', " ");
    let done = second_factor(&env, &mut one, 1, &form, "recovery_code", &typed).await;
    let claims = id_claims(&env, &web, &done, &verifier).await;
    assert_eq!(claims["amr"], json!(["pwd", "mfa"]));
    assert_eq!(claims["acr"], "urn:rsp:acr:mfa");

    // The same code again, on node 0 and on node 1: refused.
    for node in [0, 1] {
        let mut again = Browser::default();
        let (_, challenge) = pkce();
        let page = authorize(&env, &mut again, node, &web, &challenge, &[]).await;
        let form = again.login(&env, node, &page, "alice", PASSWORD).await;
        let r = second_factor(&env, &mut again, node, &form, "recovery_code", &codes[3]).await;
        assert!(r.location().is_none(), "node {node}: {}", r.html);
        assert!(r.html.contains("already used"), "{}", r.html);
    }
    // Another code of the set still works.
    let mut other = Browser::default();
    let (_, challenge) = pkce();
    let page = authorize(&env, &mut other, 0, &web, &challenge, &[]).await;
    let form = other.login(&env, 0, &page, "alice", PASSWORD).await;
    let r = second_factor(&env, &mut other, 0, &form, "recovery_code", &codes[4]).await;
    assert!(r.param("code").is_some(), "{}", r.html);
}

/// Finish a forced enrolment shown after the password: returns the reply
/// after the recovery codes page's "continue".
async fn finish_forced_enrolment(env: &Env, b: &mut Browser, page: &Reply) -> Reply {
    assert!(page.has_input("enrolment"), "{}", page.html);
    assert!(
        !page
            .set_cookies()
            .iter()
            .any(|c| c.starts_with("rsp_session=")),
        "no session before the factor is set up"
    );
    let seed = base32_decode(&text_of(&page.html, "secret").expect("secret"));
    let csrf = page.field("csrf_token").expect("csrf");
    let enrolment = page.field("enrolment").expect("enrolment");
    let codes = b
        .post(
            env,
            0,
            &format!("/t/{TENANT}/login"),
            &[
                ("csrf_token", &csrf),
                ("enrolment", &enrolment),
                ("totp", &totp_at(&seed, now_secs())),
            ],
        )
        .await;
    assert_eq!(codes.status, StatusCode::OK, "{}", codes.html);
    assert_eq!(recovery_codes(&codes.html).len(), 10);
    let csrf = codes.field("csrf_token").expect("csrf");
    let resume = codes.field("resume").expect("resume");
    b.post(
        env,
        0,
        &format!("/t/{TENANT}/login"),
        &[("csrf_token", &csrf), ("resume", &resume)],
    )
    .await
}

#[tokio::test]
async fn an_mfa_required_policy_leads_users_without_a_factor_to_enrolment() {
    let (env, web) = setup(1).await;
    env.user(TENANT, "carol").await;
    let path = format!("/admin/v1/tenants/{TENANT}/mfa-policy");
    let got = admin(&env, "GET", &path, None).await;
    assert_eq!(got.body, json!({"mode": "optional"}), "the default");
    let put = admin(&env, "PUT", &path, Some(json!({"mode": "required"}))).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let bad = admin(&env, "PUT", &path, Some(json!({"mode": "sometimes"}))).await;
    assert!(bad.status.is_client_error(), "{}", bad.body);

    let mut b = Browser::default();
    let (verifier, challenge) = pkce();
    let page = authorize(&env, &mut b, 0, &web, &challenge, &[]).await;
    let enrol = b.login(&env, 0, &page, "carol", PASSWORD).await;
    let done = finish_forced_enrolment(&env, &mut b, &enrol).await;
    let claims = id_claims(&env, &web, &done, &verifier).await;
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    assert_eq!(claims["acr"], "urn:rsp:acr:mfa");
}

#[tokio::test]
async fn a_cedar_mfa_policy_requires_a_factor_only_for_the_users_it_names() {
    let (env, web) = setup(1).await;
    let dave = env.user(TENANT, "dave").await;
    env.user(TENANT, "erin").await;
    let policies = format!(
        "permit(principal == User::\"{dave}\", action == Action::\"mfa_required\", resource == Client::\"web\");"
    );
    let put = admin(
        &env,
        "PUT",
        &format!("/admin/v1/tenants/{TENANT}/policies"),
        Some(json!({ "policies": policies })),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let put = admin(
        &env,
        "PUT",
        &format!("/admin/v1/tenants/{TENANT}/mfa-policy"),
        Some(json!({"mode": "cedar"})),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);

    let mut b = Browser::default();
    let erin = password_login(&env, &mut b, &web, "erin").await;
    assert!(
        erin.param("code").is_some(),
        "erin is not named: {}",
        erin.html
    );
    let mut b = Browser::default();
    let dave_page = password_login(&env, &mut b, &web, "dave").await;
    assert!(dave_page.has_input("enrolment"), "{}", dave_page.html);
}

#[tokio::test]
async fn acr_values_mfa_steps_a_password_session_up_and_is_met_by_an_mfa_session() {
    let (env, web) = setup(1).await;
    env.user(TENANT, "frank").await;
    let mut b = Browser::default();
    let first = password_login(&env, &mut b, &web, "frank").await;
    assert!(first.param("code").is_some());

    // The password-only session does not satisfy urn:rsp:acr:mfa ...
    let (_, challenge) = pkce();
    let mfa = [("acr_values", "urn:rsp:acr:mfa")];
    let none = [("acr_values", "urn:rsp:acr:mfa"), ("prompt", "none")];
    let silent = authorize(&env, &mut b, 0, &web, &challenge, &none).await;
    assert_eq!(silent.param("error").as_deref(), Some("login_required"));
    // ... so the user signs in again and, having no factor, sets one up.
    let (verifier, challenge) = pkce();
    let page = authorize(&env, &mut b, 0, &web, &challenge, &mfa).await;
    assert!(page.has_input("password"), "{}", page.html);
    let enrol = b.login(&env, 0, &page, "frank", PASSWORD).await;
    let done = finish_forced_enrolment(&env, &mut b, &enrol).await;
    let claims = id_claims(&env, &web, &done, &verifier).await;
    assert_eq!(claims["acr"], "urn:rsp:acr:mfa");

    // The MFA session now meets the request without a login.
    let (verifier, challenge) = pkce();
    let again = authorize(&env, &mut b, 0, &web, &challenge, &mfa).await;
    assert_eq!(again.status, StatusCode::FOUND, "{}", again.html);
    let claims = id_claims_found(&env, &web, &again, &verifier).await;
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
}

/// [`id_claims`] for a redirect after a GET (302).
async fn id_claims_found(env: &Env, web: &TestClient, done: &Reply, verifier: &str) -> Value {
    let as_post = Reply {
        status: StatusCode::SEE_OTHER,
        headers: done.headers.clone(),
        html: done.html.clone(),
    };
    id_claims(env, web, &as_post, verifier).await
}

#[tokio::test]
async fn an_admin_reset_removes_every_factor_and_the_recovery_codes() {
    let (env, web) = setup(1).await;
    let alice = env.user(TENANT, "alice").await;
    let mut b = Browser::default();
    password_login(&env, &mut b, &web, "alice").await;
    let (_, codes, _) = enrol_on_account_page(&env, &mut b).await;
    let path = format!("/admin/v1/tenants/{TENANT}/users/{alice}/factors");
    let reset = admin(&env, "DELETE", &path, None).await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT, "{}", reset.body);
    let listed = admin(&env, "GET", &path, None).await;
    assert_eq!(listed.body, json!([]));
    assert_eq!(
        env.state()
            .identity
            .recovery
            .remaining(TENANT, &alice)
            .await
            .expect("remaining"),
        0
    );
    assert!(
        !env.state()
            .identity
            .recovery
            .redeem(TENANT, &alice, &codes[0])
            .await
            .expect("redeem")
    );
    let mut other = Browser::default();
    let r = password_login(&env, &mut other, &web, "alice").await;
    assert!(r.param("code").is_some(), "no factor asked for: {}", r.html);
    let unknown = admin(
        &env,
        "DELETE",
        &format!("/admin/v1/tenants/{TENANT}/users/nobody/factors"),
        None,
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn account_pages_need_a_session_and_their_forms_need_the_csrf_token() {
    let (env, _web) = setup(1).await;
    let gina = env.user(TENANT, "gina").await;
    let mut b = Browser::default();
    let page = b.get(&env, 0, &format!("/t/{TENANT}/account")).await;
    assert!(page.has_input("password"), "the login form: {}", page.html);
    let back = b.login(&env, 0, &page, "gina", PASSWORD).await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.html);
    assert_eq!(
        back.location().map(|l| l.path().to_string()),
        Some(format!("/t/{TENANT}/account"))
    );
    let account = b.get(&env, 0, &format!("/t/{TENANT}/account")).await;
    assert!(account.html.contains("gina"), "{}", account.html);
    // The login form posts to the tenant's endpoints wherever it is shown:
    // a relative `login` on a deeper account page would miss them.
    let deep = Browser::default()
        .get(&env, 0, &format!("/t/{TENANT}/account/mfa/totp"))
        .await;
    for action in ["login", "passkey/login"] {
        let attr = format!("action=\"/t/{TENANT}/{action}\"");
        assert!(deep.html.contains(&attr), "{attr}: {}", deep.html);
    }

    let (_, old_codes, _) = enrol_on_account_page(&env, &mut b).await;
    let forged = b
        .post(
            &env,
            0,
            &format!("/t/{TENANT}/account/mfa/recovery"),
            &[("csrf_token", "forged")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // New codes replace the old ones.
    let account = b.get(&env, 0, &format!("/t/{TENANT}/account")).await;
    assert!(account.html.contains("10 unused"), "{}", account.html);
    let csrf = account.field("csrf_token").expect("csrf");
    let fresh = b
        .post(
            &env,
            0,
            &format!("/t/{TENANT}/account/mfa/recovery"),
            &[("csrf_token", &csrf)],
        )
        .await;
    let new_codes = recovery_codes(&fresh.html);
    assert_eq!(new_codes.len(), 10, "{}", fresh.html);
    let recovery = &env.state().identity.recovery;
    assert!(
        !recovery
            .redeem(TENANT, &gina, &old_codes[0])
            .await
            .expect("redeem")
    );
    assert!(
        recovery
            .redeem(TENANT, &gina, &new_codes[0])
            .await
            .expect("redeem")
    );

    // Removing the only factor removes the recovery codes too.
    let factor = account.field("factor_id").expect("a factor to remove");
    let removed = b
        .post(
            &env,
            0,
            &format!("/t/{TENANT}/account/mfa/remove"),
            &[("csrf_token", &csrf), ("factor_id", &factor)],
        )
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.html);
    let factors = env
        .state()
        .identity
        .factors
        .list(TENANT, &gina)
        .await
        .expect("list");
    assert!(factors.is_empty());
    assert_eq!(
        recovery.remaining(TENANT, &gina).await.expect("remaining"),
        0
    );
}

/// A browser holding a session of `user` signed in an hour ago with `amr`
/// (space-separated) and `acr`, and that session.
async fn hour_old_session(
    env: &Env,
    user: &str,
    amr: &str,
    acr: &str,
) -> (Browser, rsp_actors::Session) {
    let h = env
        .state()
        .tenant_runtime
        .runtime()
        .expect("runtime")
        .tenant(TENANT)
        .await
        .expect("tenant actors");
    let attrs = std::collections::BTreeMap::from([
        ("auth_time".to_string(), (now_secs() - 3600).to_string()),
        ("amr".to_string(), amr.to_string()),
        ("acr".to_string(), acr.to_string()),
    ]);
    let hour = std::time::Duration::from_secs(3600);
    let session = h
        .sessions()
        .create(user, attrs, hour, hour * 10)
        .await
        .expect("session");
    let mut b = Browser::default();
    b.cookies
        .insert("rsp_session".into(), session.id.expose().to_string());
    (b, session)
}

#[tokio::test]
async fn changes_on_an_old_session_ask_for_the_password_again() {
    let (env, _web) = setup(1).await;
    let hana = env.user(TENANT, "hana").await;
    // A session signed in an hour ago (older than the 15 minutes allowed).
    let (mut b, old) = hour_old_session(&env, &hana, "pwd", "urn:rsp:acr:pwd").await;

    let account = b.get(&env, 0, &format!("/t/{TENANT}/account")).await;
    assert!(account.html.contains("hana"), "viewing needs no password");
    let page = b
        .get(&env, 0, &format!("/t/{TENANT}/account/mfa/totp"))
        .await;
    assert!(page.has_input("password"), "{}", page.html);
    assert!(!page.has_input("enrolment"), "no seed before the password");
    let csrf = page.field("csrf_token").expect("csrf");
    let regenerate = b
        .post(
            &env,
            0,
            &format!("/t/{TENANT}/account/mfa/recovery"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert!(
        regenerate.has_input("password") && recovery_codes(&regenerate.html).is_empty(),
        "{}",
        regenerate.html
    );

    let reauth = format!("/t/{TENANT}/account/reauth");
    let next = page.field("next").expect("next");
    let forged = b
        .post(
            &env,
            0,
            &reauth,
            &[("csrf_token", "x"), ("next", &next), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let wrong = b
        .post(
            &env,
            0,
            &reauth,
            &[("csrf_token", &csrf), ("next", &next), ("password", "nope")],
        )
        .await;
    assert!(wrong.html.contains("Invalid"), "{}", wrong.html);
    assert!(wrong.location().is_none());
    let ok = b
        .post(
            &env,
            0,
            &reauth,
            &[
                ("csrf_token", &csrf),
                ("next", &next),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.html);
    let to = ok.location().expect("location");
    assert_eq!(to.path(), format!("/t/{TENANT}/account/mfa/totp"));
    assert_ne!(
        b.cookies.get("rsp_session").map(String::as_str),
        Some(old.id.expose()),
        "a renewed session"
    );
    let enrol = b.get(&env, 0, to.path()).await;
    assert!(enrol.has_input("enrolment"), "{}", enrol.html);
}

#[tokio::test]
async fn a_password_reauthentication_does_not_keep_the_mfa_acr() {
    let (env, web) = setup(1).await;
    let jin = env.user(TENANT, "jin").await;
    // A session established with a second factor an hour ago.
    let (mut b, _) = hour_old_session(&env, &jin, "pwd otp", "urn:rsp:acr:mfa").await;
    let mfa_silently = [("acr_values", "urn:rsp:acr:mfa"), ("prompt", "none")];
    let (_, challenge) = pkce();
    let before = authorize(&env, &mut b, 0, &web, &challenge, &mfa_silently).await;
    assert!(
        before.param("code").is_some(),
        "the MFA session meets mfa: {}",
        before.html
    );

    // Re-entering the password renews the session as a password session.
    let page = b
        .get(&env, 0, &format!("/t/{TENANT}/account/mfa/totp"))
        .await;
    assert!(page.has_input("password"), "{}", page.html);
    let csrf = page.field("csrf_token").expect("csrf");
    let next = page.field("next").expect("next");
    let ok = b
        .post(
            &env,
            0,
            &format!("/t/{TENANT}/account/reauth"),
            &[
                ("csrf_token", &csrf),
                ("next", &next),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.html);
    let (_, challenge) = pkce();
    let after = authorize(&env, &mut b, 0, &web, &challenge, &mfa_silently).await;
    assert_eq!(
        after.param("error").as_deref(),
        Some("login_required"),
        "a fresh auth_time must not come with acr=mfa: {}",
        after.html
    );
}

#[tokio::test]
async fn a_password_session_cannot_approve_a_device_once_the_policy_requires_mfa() {
    let (env, web) = setup(1).await;
    env.user(TENANT, "ivan").await;
    client(
        &env,
        "tv",
        "none",
        &["urn:ietf:params:oauth:grant-type:device_code"],
        false,
    )
    .await;
    let mut b = Browser::default();
    let first = password_login(&env, &mut b, &web, "ivan").await;
    assert!(first.param("code").is_some(), "{}", first.html);
    let put = admin(
        &env,
        "PUT",
        &format!("/admin/v1/tenants/{TENANT}/mfa-policy"),
        Some(json!({"mode": "required"})),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);

    let start = env
        .form(
            TENANT,
            "/device_authorization",
            None,
            &[("client_id", "tv"), ("scope", "openid")],
        )
        .await;
    let user_code = start.str("user_code");
    let page = b
        .get(
            &env,
            0,
            &format!("/t/{TENANT}/device?user_code={user_code}"),
        )
        .await;
    assert!(
        page.has_input("password") && !page.has_input("decision"),
        "sign in again rather than approve: {}",
        page.html
    );
    let enrol = b.login(&env, 0, &page, "ivan", PASSWORD).await;
    assert!(enrol.has_input("enrolment"), "{}", enrol.html);

    // The authorization endpoint steps the same session up too.
    let (_, challenge) = pkce();
    let again = authorize(&env, &mut b, 0, &web, &challenge, &[]).await;
    assert!(again.has_input("password"), "{}", again.html);
}

#[tokio::test]
async fn an_undecidable_cedar_mfa_policy_requires_the_factor() {
    let (env, web) = setup(1).await;
    env.user(TENANT, "judy").await;
    // A schema without Action::"mfa_required": the question cannot be asked.
    let schema = json!({"": {
        "entityTypes": {"User": {}, "Client": {}},
        "actions": {"view": {"appliesTo": {
            "principalTypes": ["User"], "resourceTypes": ["Client"]
        }}}
    }});
    let put = admin(
        &env,
        "PUT",
        &format!("/admin/v1/tenants/{TENANT}/policies"),
        Some(json!({
            "policies": "permit(principal, action == Action::\"view\", resource);",
            "schema": schema,
        })),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let put = admin(
        &env,
        "PUT",
        &format!("/admin/v1/tenants/{TENANT}/mfa-policy"),
        Some(json!({"mode": "cedar"})),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let mut b = Browser::default();
    let page = password_login(&env, &mut b, &web, "judy").await;
    assert!(page.has_input("enrolment"), "fails closed: {}", page.html);
}
