//! The consent page of clients registered with `require_consent`: allow
//! issues a code and is remembered, deny answers `access_denied`, and
//! `prompt=none` without consent answers `consent_required`.

use crate::support;

use crate::browser;

use axum::http::StatusCode;
use browser::*;
use support::*;

const CODE: &[&str] = &["authorization_code"];

async fn setup() -> (Env, TestClient) {
    let env = start_browser(1).await;
    let app = client(&env, "shop", "client_secret_basic", CODE, true).await;
    env.user(TENANT, "alice").await;
    (env, app)
}

/// Log in; returns the browser and the consent page.
async fn to_consent(env: &Env, app: &TestClient, challenge: &str) -> (Browser, Reply) {
    let mut b = Browser::default();
    let page = b
        .get(
            env,
            0,
            &authorize_path(&app.id, &code_request(challenge, "c1")),
        )
        .await;
    let consent = b.login(env, 0, &page, "alice", PASSWORD).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.html);
    (b, consent)
}

async fn decide(b: &mut Browser, env: &Env, page: &Reply, decision: &str) -> Reply {
    let csrf = page.field("csrf_token").expect("csrf");
    let ticket = page.field("ticket").expect("ticket");
    b.post(
        env,
        0,
        &format!("/t/{TENANT}/consent"),
        &[
            ("csrf_token", &csrf),
            ("ticket", &ticket),
            ("decision", decision),
        ],
    )
    .await
}

#[tokio::test]
async fn allowing_issues_a_code_and_is_remembered() {
    let (env, app) = setup().await;
    let (verifier, challenge) = pkce();
    let (mut b, consent) = to_consent(&env, &app, &challenge).await;
    assert!(
        consent.html.contains("name=\"decision\""),
        "{}",
        consent.html
    );
    assert!(consent.html.contains("value=\"allow\"") && consent.html.contains("value=\"deny\""));
    assert!(consent.html.contains("email"), "lists the scopes");

    let done = decide(&mut b, &env, &consent, "allow").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    assert_eq!(done.param("state").as_deref(), Some("c1"));
    let code = done.param("code").expect("code");
    let tokens = env
        .form(
            TENANT,
            "/token",
            Some(&app.basic()),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);

    // Remembered: the same scopes go straight through, even silently.
    let mut again = code_request(&challenge, "c2");
    again.push(("prompt", "none"));
    let r = b.get(&env, 0, &authorize_path(&app.id, &again)).await;
    assert!(r.param("code").is_some(), "{:?} {}", r.location(), r.html);
    // A new scope asks again; prompt=consent asks even for known ones.
    let mut more = code_request(&challenge, "c3");
    more.retain(|(k, _)| *k != "scope");
    more.push(("scope", "openid phone"));
    let r = b.get(&env, 0, &authorize_path(&app.id, &more)).await;
    assert!(r.has_input("decision") || r.html.contains("name=\"decision\""));
    let mut forced = code_request(&challenge, "c4");
    forced.push(("prompt", "consent"));
    let r = b.get(&env, 0, &authorize_path(&app.id, &forced)).await;
    assert!(r.html.contains("name=\"decision\""));
}

#[tokio::test]
async fn denying_sends_access_denied_to_the_client() {
    let (env, app) = setup().await;
    let (_, challenge) = pkce();
    let (mut b, consent) = to_consent(&env, &app, &challenge).await;
    let done = decide(&mut b, &env, &consent, "deny").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.param("error").as_deref(), Some("access_denied"));
    assert_eq!(done.param("state").as_deref(), Some("c1"));
    assert_eq!(done.param("iss"), Some(issuer(TENANT)));
    assert!(done.param("code").is_none());
}

#[tokio::test]
async fn a_consent_without_the_csrf_token_is_refused() {
    let (env, app) = setup().await;
    let (_, challenge) = pkce();
    let (mut b, consent) = to_consent(&env, &app, &challenge).await;
    let ticket = consent.field("ticket").expect("ticket");
    let r = b
        .post(
            &env,
            0,
            &format!("/t/{TENANT}/consent"),
            &[("ticket", &ticket), ("decision", "allow")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.location().is_none());
}

#[tokio::test]
async fn prompt_none_without_consent_answers_consent_required() {
    let (env, app) = setup().await;
    let (_, challenge) = pkce();
    let (mut b, _) = to_consent(&env, &app, &challenge).await;
    let mut params = code_request(&challenge, "q");
    params.push(("prompt", "none"));
    let r = b.get(&env, 0, &authorize_path(&app.id, &params)).await;
    assert_eq!(r.param("error").as_deref(), Some("consent_required"));
    assert_eq!(r.param("state").as_deref(), Some("q"));
}

/// The page lists only what the user would grant: `rsp:admin` is dropped
/// from the token of a user without the right, so it is not shown either;
/// a user who holds it sees it.
#[tokio::test]
async fn the_page_does_not_offer_rsp_admin_to_a_user_who_cannot_grant_it() {
    let (env, _) = setup().await;
    let (app, _) = env
        .state()
        .identity
        .clients
        .create(
            TENANT,
            rsp_identity::clients::NewClient {
                client_id: Some("console".into()),
                client_name: Some("Console".into()),
                redirect_uris: vec![REDIRECT.into()],
                post_logout_redirect_uris: vec![],
                grant_types: vec!["authorization_code".into()],
                token_endpoint_auth_method: "client_secret_basic".into(),
                scopes: vec!["openid".into(), "rsp:admin".into()],
                require_consent: Some(true),
                jwks: None,
                id_token_signed_response_alg: None,
                access_token_signed_response_alg: None,
                refresh_token_absolute_lifetime_secs: None,
                access_token_lifetime_secs: None,
                id_token_lifetime_secs: None,
            },
            0,
        )
        .await
        .expect("client allowed rsp:admin");
    let (_, challenge) = pkce();
    let mut params = code_request(&challenge, "adm");
    params.retain(|(k, _)| *k != "scope");
    params.push(("scope", "openid rsp:admin"));
    let path = authorize_path(&app.client_id, &params);
    let mut b = Browser::default();
    let page = b.get(&env, 0, &path).await;
    assert_eq!(page.status, StatusCode::OK, "{:?}", page.location());
    let consent = b.login(&env, 0, &page, "alice", PASSWORD).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.html);
    assert!(consent.html.contains("openid"), "{}", consent.html);
    assert!(!consent.html.contains("rsp:admin"), "{}", consent.html);

    let admin = env.user(TENANT, "root").await;
    env.state()
        .identity
        .users
        .update(
            TENANT,
            &admin,
            rsp_identity::users::UserUpdate {
                attributes: Some(
                    [("rsp_admin".to_string(), serde_json::json!(true))]
                        .into_iter()
                        .collect(),
                ),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("grant");
    let mut b = Browser::default();
    let page = b.get(&env, 0, &path).await;
    let consent = b.login(&env, 0, &page, "root", PASSWORD).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.html);
    assert!(consent.html.contains("rsp:admin"), "{}", consent.html);
}
