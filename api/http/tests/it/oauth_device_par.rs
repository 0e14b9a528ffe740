//! The device authorization grant (RFC 8628) and pushed authorization
//! requests (RFC 9126).

use crate::support;

use axum::http::StatusCode;
use support::*;

const DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn device_setup() -> (Env, TestClient, String) {
    let env = start(1).await;
    env.tenant("acme").await;
    let tv = env
        .client(
            "acme",
            ClientSpec::new("tv", "client_secret_basic", &[DEVICE, "refresh_token"]),
        )
        .await;
    let user = env.user("acme", "alice").await;
    (env, tv, user)
}

async fn poll(env: &Env, tv: &TestClient, device_code: &str) -> Answer {
    env.form(
        "acme",
        "/token",
        Some(&tv.basic()),
        &[("grant_type", DEVICE), ("device_code", device_code)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_flow_is_pending_slows_down_and_succeeds_once_after_approval() {
    let (env, tv, user) = device_setup().await;
    let start = env
        .form(
            "acme",
            "/device_authorization",
            Some(&tv.basic()),
            &[("scope", "openid profile")],
        )
        .await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.body);
    let user_code = start.str("user_code");
    assert_eq!(user_code.len(), 9);
    assert!(user_code.chars().enumerate().all(|(i, c)| if i == 4 {
        c == '-'
    } else {
        "BCDFGHJKLMNPQRSTVWXZ".contains(c)
    }));
    assert_eq!(
        start.str("verification_uri"),
        format!("{}/device", issuer("acme"))
    );
    assert_eq!(
        start.str("verification_uri_complete"),
        format!("{}/device?user_code={user_code}", issuer("acme"))
    );
    assert_eq!(start.body["expires_in"], 600);
    assert_eq!(start.body["interval"], 5);
    let device_code = start.str("device_code");

    assert_eq!(
        poll(&env, &tv, &device_code).await.error(),
        "authorization_pending"
    );
    assert_eq!(poll(&env, &tv, &device_code).await.error(), "slow_down");

    let device = &env.state().oidc.device;
    let request = device
        .lookup("acme", &user_code.to_lowercase())
        .await
        .expect("lookup")
        .expect("pending request");
    assert_eq!(
        (request.client_id.as_str(), request.scope.as_str()),
        ("tv", "openid profile")
    );
    device
        .approve(
            "acme",
            &user_code,
            &user,
            now_secs(),
            vec!["pwd".into()],
            None,
        )
        .await
        .expect("approve");
    assert!(
        device
            .lookup("acme", &user_code)
            .await
            .expect("lookup")
            .is_none()
    );

    let ok = poll(&env, &tv, &device_code).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert!(ok.body["refresh_token"].is_string());
    assert_eq!(peek(&ok.str("id_token")).1["sub"], user.as_str());
    assert_eq!(peek(&ok.str("access_token")).1["sub"], user.as_str());

    let again = poll(&env, &tv, &device_code).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.error(), "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_device_request_answers_access_denied() {
    let (env, tv, _) = device_setup().await;
    let start = env
        .form("acme", "/device_authorization", Some(&tv.basic()), &[])
        .await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.body);
    env.state()
        .oidc
        .device
        .deny("acme", &start.str("user_code"))
        .await
        .expect("deny");
    let a = poll(&env, &tv, &start.str("device_code")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.error(), "access_denied");
    assert!(
        env.state()
            .oidc
            .device
            .approve("acme", &start.str("user_code"), "u", 0, vec![], None)
            .await
            .is_err(),
        "a decided request cannot be approved afterwards"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_client_cannot_poll_a_device_code() {
    let (env, tv, _) = device_setup().await;
    let other = env
        .client(
            "acme",
            ClientSpec::new("tv2", "client_secret_basic", &[DEVICE]),
        )
        .await;
    let start = env
        .form("acme", "/device_authorization", Some(&tv.basic()), &[])
        .await;
    assert_eq!(
        poll(&env, &other, &start.str("device_code")).await.error(),
        "invalid_grant"
    );
}

async fn par_setup() -> (Env, TestClient) {
    let env = start(1).await;
    env.tenant("acme").await;
    let web = env
        .client(
            "acme",
            ClientSpec::new("web", "client_secret_basic", &["authorization_code"]),
        )
        .await;
    env.client(
        "acme",
        ClientSpec::new("spa", "none", &["authorization_code"]),
    )
    .await;
    (env, web)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_request_is_stored_and_taken_once() {
    let (env, web) = par_setup().await;
    let (_, challenge) = pkce();
    let a = env
        .form(
            "acme",
            "/par",
            Some(&web.basic()),
            &[
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("scope", "openid profile"),
                ("state", "xyz"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.body["expires_in"], 60);
    let uri = a.str("request_uri");
    assert!(uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    let par = &env.state().oidc.par;
    assert!(
        par.take("acme", "spa", &uri).await.expect("take").is_none(),
        "another client cannot take it"
    );
    let params = par
        .take("acme", "web", &uri)
        .await
        .expect("take")
        .expect("stored");
    assert_eq!(params["client_id"], "web");
    assert_eq!(params["state"], "xyz");
    assert_eq!(params["code_challenge"], challenge);
    assert_eq!(params["scope"], "openid profile");
    assert!(!params.contains_key("client_secret"));
    assert!(
        par.take("acme", "web", &uri).await.expect("take").is_none(),
        "single use"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_requests_are_validated_like_authorization_requests() {
    let (env, web) = par_setup().await;
    let (_, challenge) = pkce();
    let base = [("response_type", "code"), ("redirect_uri", REDIRECT)];
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("code_challenge", &challenge),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (vec![("code_challenge", &challenge)], "invalid_request"),
        (vec![("request", "eyJ...")], "request_not_supported"),
        (vec![("client_id", "spa")], "invalid_request"),
        (vec![("scope", "openid admin")], "invalid_scope"),
    ];
    for (extra, expected) in cases {
        let mut params = base.to_vec();
        params.extend(extra.iter().copied());
        let a = env.form("acme", "/par", Some(&web.basic()), &params).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{extra:?}: {}", a.body);
        assert_eq!(a.error(), expected, "{extra:?}");
    }
    let a = env
        .form(
            "acme",
            "/par",
            Some(&web.basic()),
            &[("response_type", "token"), ("redirect_uri", REDIRECT)],
        )
        .await;
    assert_eq!(a.error(), "unsupported_response_type");
    let a = env
        .form(
            "acme",
            "/par",
            Some(&web.basic()),
            &[
                ("response_type", "code"),
                ("redirect_uri", "https://evil.example/cb"),
            ],
        )
        .await;
    assert_eq!(a.error(), "invalid_request");
    // A public client must use PKCE.
    let a = env
        .form(
            "acme",
            "/par",
            None,
            &[
                ("client_id", "spa"),
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!(a.error(), "invalid_request");
    assert!(a.str("error_description").contains("PKCE"));
}
