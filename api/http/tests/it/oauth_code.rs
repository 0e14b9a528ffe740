//! The authorization code grant: codes issued through `CodeService::issue`
//! (as the browser side does) and exchanged at the token endpoint, PKCE,
//! single use with replay revocation, and refresh-token rotation.

use crate::support;

use std::time::Duration;

use axum::http::StatusCode;
use rsp_identity::oauth::OidcConfig;
use support::*;

const CODE_REFRESH: &[&str] = &["authorization_code", "refresh_token"];

struct Setup {
    env: Env,
    web: TestClient,
    user: String,
}

async fn setup_with(config: OidcConfig) -> Setup {
    let env = start_with(1, config).await;
    env.tenant("acme").await;
    let web = env
        .client(
            "acme",
            ClientSpec::new("web", "client_secret_basic", CODE_REFRESH),
        )
        .await;
    let user = env.user("acme", "alice").await;
    Setup { env, web, user }
}

async fn setup() -> Setup {
    setup_with(OidcConfig::default()).await
}

async fn exchange(s: &Setup, code: &str, verifier: Option<&str>, redirect: &str) -> Answer {
    let mut params = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect),
    ];
    if let Some(v) = verifier {
        params.push(("code_verifier", v));
    }
    s.env
        .form("acme", "/token", Some(&s.web.basic()), &params)
        .await
}

async fn refresh(s: &Setup, token: &str) -> Answer {
    s.env
        .form(
            "acme",
            "/token",
            Some(&s.web.basic()),
            &[("grant_type", "refresh_token"), ("refresh_token", token)],
        )
        .await
}

/// Whether `token`, issued to `web`, is active, asked by `web` (a refresh
/// token is inactive to any other client).
async fn active(s: &Setup, token: &str) -> bool {
    let a = s.env.introspect("acme", &s.web, token).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    a.body["active"] == true
}

/// A successful exchange: (access token, refresh token).
async fn tokens(s: &Setup) -> (String, String) {
    let (verifier, challenge) = pkce();
    let code = s
        .env
        .code(
            "acme",
            grant("web", &s.user, "openid profile", Some(&challenge)),
        )
        .await;
    let a = exchange(s, &code, Some(&verifier), REDIRECT).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    (a.str("access_token"), a.str("refresh_token"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_with_pkce_exchanges_for_access_refresh_and_id_tokens() {
    let s = setup().await;
    let (verifier, challenge) = pkce();
    let code = s
        .env
        .code(
            "acme",
            grant("web", &s.user, "openid profile email", Some(&challenge)),
        )
        .await;
    let a = exchange(&s, &code, Some(&verifier), REDIRECT).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["scope"], "openid profile email");
    assert!(a.body["refresh_token"].is_string());
    let (header, id) = peek(&a.str("id_token"));
    assert!(header["kid"].is_string());
    assert_eq!(header["alg"], "ES256");
    assert_eq!(id["iss"], issuer("acme"));
    assert_eq!(id["aud"], "web");
    assert_eq!(id["sub"], s.user);
    assert_eq!(id["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(id["acr"], "urn:rsp:acr:pwd");
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    assert_eq!(id["sid"], "sid-1");
    assert!(id["auth_time"].is_u64() && id["at_hash"].is_string());
    assert_eq!(id["preferred_username"], "alice");
    assert_eq!(id["name"], "alice Doe");
    assert_eq!(id["email"], "alice@example.com");
    assert!(
        id.get("phone_number").is_none(),
        "phone was not asked for: {id}"
    );
    let (_, at) = peek(&a.str("access_token"));
    assert!(at["fid"].is_string());
    assert!(active(&s, &a.str("access_token")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pkce_mismatch_is_invalid_grant() {
    let s = setup().await;
    let (_, challenge) = pkce();
    let (other_verifier, _) = pkce();
    let code = s
        .env
        .code("acme", grant("web", &s.user, "openid", Some(&challenge)))
        .await;
    let a = exchange(&s, &code, Some(&other_verifier), REDIRECT).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.error(), "invalid_grant");
    let a = exchange(&s, &code, None, REDIRECT).await;
    assert_eq!(a.error(), "invalid_grant", "a missing verifier too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_pkce_is_refused_when_the_code_is_issued() {
    let s = setup().await;
    let mut g = grant("web", &s.user, "openid", Some("x".repeat(43).as_str()));
    g.code_challenge_method = Some("plain".into());
    let err = s
        .env
        .state()
        .oidc
        .codes
        .issue("acme", g.clone())
        .await
        .expect_err("plain refused");
    assert_eq!(err.code.as_str(), "invalid_request");
    g.code_challenge_method = None;
    assert!(
        s.env.state().oidc.codes.issue("acme", g).await.is_err(),
        "a challenge without a method means plain"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_client_without_pkce_is_refused() {
    let s = setup().await;
    s.env
        .client(
            "acme",
            ClientSpec::new("spa", "none", &["authorization_code"]),
        )
        .await;
    let code = s
        .env
        .code("acme", grant("spa", &s.user, "openid", None))
        .await;
    let a = s
        .env
        .form(
            "acme",
            "/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "spa"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert_eq!(a.error(), "invalid_grant");
    assert!(a.str("error_description").contains("PKCE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_client_with_pkce_gets_tokens_with_its_client_id_only() {
    let s = setup().await;
    s.env
        .client(
            "acme",
            ClientSpec::new("spa", "none", &["authorization_code"]),
        )
        .await;
    let (verifier, challenge) = pkce();
    let code = s
        .env
        .code("acme", grant("spa", &s.user, "openid", Some(&challenge)))
        .await;
    let a = s
        .env
        .form(
            "acme",
            "/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "spa"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(
        a.body.get("refresh_token").is_none(),
        "spa did not register the refresh grant"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_uri_mismatch_is_invalid_grant() {
    let s = setup().await;
    let (verifier, challenge) = pkce();
    let code = s
        .env
        .code("acme", grant("web", &s.user, "openid", Some(&challenge)))
        .await;
    let a = exchange(&s, &code, Some(&verifier), "https://app.example.com/other").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.error(), "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_issued_to_another_client_is_invalid_grant() {
    let s = setup().await;
    let (verifier, challenge) = pkce();
    let code = s
        .env
        .code("acme", grant("other", &s.user, "openid", Some(&challenge)))
        .await;
    let a = exchange(&s, &code, Some(&verifier), REDIRECT).await;
    assert_eq!(a.error(), "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_code_is_invalid_grant() {
    let s = setup_with(OidcConfig {
        code_ttl: Duration::from_millis(600),
        ..OidcConfig::default()
    })
    .await;
    let (verifier, challenge) = pkce();
    let code = s
        .env
        .code("acme", grant("web", &s.user, "openid", Some(&challenge)))
        .await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    let a = exchange(&s, &code, Some(&verifier), REDIRECT).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert_eq!(a.error(), "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_code_is_invalid_grant_and_kills_the_first_exchanges_tokens() {
    let s = setup().await;
    let (verifier, challenge) = pkce();
    let code = s
        .env
        .code("acme", grant("web", &s.user, "openid", Some(&challenge)))
        .await;
    let first = exchange(&s, &code, Some(&verifier), REDIRECT).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let (access, refresh_token) = (first.str("access_token"), first.str("refresh_token"));
    assert!(active(&s, &access).await && active(&s, &refresh_token).await);

    let second = exchange(&s, &code, Some(&verifier), REDIRECT).await;
    assert_eq!(second.status, StatusCode::BAD_REQUEST);
    assert_eq!(second.error(), "invalid_grant");

    assert!(!active(&s, &access).await, "access token survived a replay");
    assert!(
        !active(&s, &refresh_token).await,
        "refresh token survived a replay"
    );
    assert_eq!(refresh(&s, &refresh_token).await.error(), "invalid_grant");
    assert_eq!(
        s.env.userinfo_get("acme", &access).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_the_token_and_keeps_the_grant() {
    let s = setup().await;
    let (_, first) = tokens(&s).await;
    let a = refresh(&s, &first).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let second = a.str("refresh_token");
    assert!(!second.is_empty() && second != first);
    assert_eq!(a.body["scope"], "openid profile");
    assert_eq!(peek(&a.str("id_token")).1["sub"], s.user);
    assert!(
        !active(&s, &first).await,
        "a rotated token is no longer active"
    );
    assert!(active(&s, &second).await);
    let b = refresh(&s, &second).await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_family() {
    let s = setup().await;
    let (first_access, first) = tokens(&s).await;
    let a = refresh(&s, &first).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let (second_access, second) = (a.str("access_token"), a.str("refresh_token"));

    let reuse = refresh(&s, &first).await;
    assert_eq!(reuse.status, StatusCode::BAD_REQUEST);
    assert_eq!(reuse.error(), "invalid_grant");

    assert_eq!(
        refresh(&s, &second).await.error(),
        "invalid_grant",
        "the newest refresh token must die with its family"
    );
    assert!(!active(&s, &second).await);
    assert!(!active(&s, &first_access).await);
    assert!(!active(&s, &second_access).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_may_narrow_the_scope_but_not_widen_it() {
    let s = setup().await;
    let (_, rt) = tokens(&s).await;
    let wide = s
        .env
        .form(
            "acme",
            "/token",
            Some(&s.web.basic()),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("scope", "openid profile email"),
            ],
        )
        .await;
    assert_eq!(wide.error(), "invalid_scope");
    let narrow = s
        .env
        .form(
            "acme",
            "/token",
            Some(&s.web.basic()),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("scope", "profile"),
            ],
        )
        .await;
    assert_eq!(narrow.status, StatusCode::OK, "{}", narrow.body);
    assert_eq!(narrow.body["scope"], "profile");
    assert!(
        narrow.body.get("id_token").is_none(),
        "no openid, no ID token"
    );
    // The family keeps the original grant.
    let again = refresh(&s, &narrow.str("refresh_token")).await;
    assert_eq!(again.body["scope"], "openid profile", "{}", again.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_clients_refresh_token_is_invalid_grant() {
    let s = setup().await;
    let (_, rt) = tokens(&s).await;
    let other = s
        .env
        .client(
            "acme",
            ClientSpec::new("web2", "client_secret_basic", CODE_REFRESH),
        )
        .await;
    let a = s
        .env
        .form(
            "acme",
            "/token",
            Some(&other.basic()),
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        )
        .await;
    assert_eq!(a.error(), "invalid_grant");
    assert!(
        active(&s, &rt).await,
        "a foreign client cannot burn the token"
    );
}
