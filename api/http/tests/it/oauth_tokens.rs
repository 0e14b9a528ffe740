//! Checking tokens: forged and foreign tokens are refused by userinfo and
//! inactive at introspection; userinfo's three ways to present a token;
//! revocation of access and refresh tokens.

use crate::support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsp_identity::keys::SigningAlg;
use serde_json::{Value, json};
use support::*;

struct Setup {
    env: Env,
    web: TestClient,
    rs: TestClient,
    user: String,
}

async fn setup() -> Setup {
    let env = start(1).await;
    env.tenant("acme").await;
    let mut spec = ClientSpec::new(
        "web",
        "client_secret_basic",
        &["authorization_code", "refresh_token"],
    );
    spec.alg = Some("RS256");
    let web = env.client("acme", spec).await;
    let rs = env
        .client(
            "acme",
            ClientSpec::new("rs", "client_secret_basic", &["client_credentials"]),
        )
        .await;
    let user = env.user("acme", "alice").await;
    Setup { env, web, rs, user }
}

/// Tokens of a user grant with `scope`: (access, refresh).
async fn user_tokens(
    s: &Setup,
    tenant: &str,
    client: &TestClient,
    scope: &str,
) -> (String, String) {
    tokens_for(s, tenant, client, &s.user, scope).await
}

async fn tokens_for(
    s: &Setup,
    tenant: &str,
    client: &TestClient,
    user: &str,
    scope: &str,
) -> (String, String) {
    let a = exchange(s, tenant, client, user, scope).await;
    (a.str("access_token"), a.str("refresh_token"))
}

/// The token endpoint's answer to a fresh code of `user` for `client`.
async fn exchange(s: &Setup, tenant: &str, client: &TestClient, user: &str, scope: &str) -> Answer {
    let (verifier, challenge) = pkce();
    let code = s
        .env
        .code(tenant, grant(&client.id, user, scope, Some(&challenge)))
        .await;
    let a = s
        .env
        .form(
            tenant,
            "/token",
            Some(&client.basic()),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    a
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Revoke `token` as the `web` client; the endpoint must answer 200.
async fn revoke(s: &Setup, token: &str) {
    let a = s
        .env
        .form("acme", "/revoke", Some(&s.web.basic()), &[("token", token)])
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

/// Userinfo says 401 invalid_token and introspection says inactive.
async fn assert_refused(s: &Setup, token: &str, what: &str) {
    let a = s.env.userinfo_get("acme", token).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{what}: {}", a.body);
    assert_eq!(a.error(), "invalid_token", "{what}");
    let challenge = a.headers[header::WWW_AUTHENTICATE].to_str().expect("text");
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{what}: {challenge}"
    );
    let i = s.env.introspect("acme", &s.rs, token).await;
    assert_eq!(i.body, json!({"active": false}), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_can_have_its_access_tokens_signed_apart_from_its_id_tokens() {
    let s = setup().await;
    let mut spec = ClientSpec::new(
        "split",
        "client_secret_basic",
        &["authorization_code", "refresh_token"],
    );
    spec.alg = Some("RS256");
    spec.access_alg = Some("ES256");
    let split = s.env.client("acme", spec).await;
    let a = exchange(&s, "acme", &split, &s.user, "openid").await;
    let (access, id_token) = (a.str("access_token"), a.str("id_token"));
    assert_eq!(
        peek(&access).0["alg"],
        "ES256",
        "the access token's own alg"
    );
    assert_eq!(peek(&id_token).0["alg"], "RS256", "the ID token's alg");
    // Both verify against the tenant's keys, each with its own algorithm.
    let u = s.env.userinfo_get("acme", &access).await;
    assert_eq!(u.status, StatusCode::OK, "{}", u.body);
    let i = s.env.introspect("acme", &s.rs, &access).await;
    assert_eq!(i.body["active"], true, "{}", i.body);
    // The client without the setting keeps one algorithm for both.
    let (web_access, _) = user_tokens(&s, "acme", &s.web, "openid").await;
    assert_eq!(peek(&web_access).0["alg"], "RS256");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_with_alg_none_is_refused() {
    let s = setup().await;
    let (access, _) = user_tokens(&s, "acme", &s.web, "openid").await;
    let (mut header, claims) = peek(&access);
    header["alg"] = json!("none");
    let forged = format!("{}.{}.", b64(&header), b64(&claims));
    assert_refused(&s, &forged, "alg none").await;
    let unsigned = format!("{}.{}", b64(&header), b64(&claims));
    assert_refused(&s, &unsigned, "alg none without a signature part").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_signed_hs256_with_the_public_key_is_refused() {
    let s = setup().await;
    let (access, _) = user_tokens(&s, "acme", &s.web, "openid").await;
    let (header, claims) = peek(&access);
    assert_eq!(header["alg"], "RS256");
    let kid = header["kid"].as_str().expect("kid").to_string();
    let jwks = s
        .env
        .send(
            0,
            Request::get("/t/acme/jwks")
                .body(Body::empty())
                .expect("req"),
        )
        .await
        .body;
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the token's key")
        .clone();
    let modulus = URL_SAFE_NO_PAD
        .decode(jwk["n"].as_str().expect("n"))
        .expect("n");
    for secret in [jwk.to_string().into_bytes(), modulus] {
        let mut h = Header::new(Algorithm::HS256);
        h.typ = Some("at+jwt".into());
        h.kid = Some(kid.clone());
        let forged =
            jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(&secret)).expect("sign");
        assert_refused(&s, &forged, "HS256 with the public key").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refused() {
    let s = setup().await;
    let (access, _) = user_tokens(&s, "acme", &s.web, "openid").await;
    let (_, mut claims) = peek(&access);
    claims["iat"] = json!(now_secs() - 7200);
    claims["exp"] = json!(now_secs() - 3600);
    // Properly signed by the tenant's own key: only the expiry is wrong.
    let signer = s
        .env
        .state()
        .identity
        .keys
        .signer("acme", SigningAlg::RS256)
        .await
        .expect("signer");
    let mut h = Header::new(Algorithm::RS256);
    h.typ = Some("at+jwt".into());
    h.kid = Some(signer.kid.clone());
    let expired = jsonwebtoken::encode(&h, &claims, &signer.key).expect("sign");
    assert_refused(&s, &expired, "expired").await;
    // The same claims with a live exp pass, so the expiry was the reason.
    claims["exp"] = json!(now_secs() + 600);
    let live = jsonwebtoken::encode(&h, &claims, &signer.key).expect("sign");
    assert_eq!(
        s.env.userinfo_get("acme", &live).await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_from_another_tenant_is_refused() {
    let s = setup().await;
    s.env.tenant("other").await;
    let mut spec = ClientSpec::new(
        "web",
        "client_secret_basic",
        &["authorization_code", "refresh_token"],
    );
    spec.alg = Some("RS256");
    let other_web = s.env.client("other", spec).await;
    let bob = s.env.user("other", "bob").await;
    let (access, refresh_token) = tokens_for(&s, "other", &other_web, &bob, "openid").await;
    // Valid where it was issued.
    let at_home = s.env.userinfo_get("other", &access).await;
    assert_eq!(at_home.status, StatusCode::OK, "{}", at_home.body);
    assert_refused(&s, &access, "another tenant's access token").await;
    // Asked by acme's client of the same id, the only one that could see it.
    let i = s.env.introspect("acme", &s.web, &refresh_token).await;
    assert_eq!(i.body, json!({"active": false}));

    // Signed by the other tenant's key but claiming this tenant's issuer.
    let (_, mut claims) = peek(&access);
    claims["iss"] = json!(issuer("acme"));
    claims["aud"] = json!(issuer("acme"));
    let signer = s
        .env
        .state()
        .identity
        .keys
        .signer("other", SigningAlg::RS256)
        .await
        .expect("signer");
    let mut h = Header::new(Algorithm::RS256);
    h.typ = Some("at+jwt".into());
    h.kid = Some(signer.kid.clone());
    let forged = jsonwebtoken::encode(&h, &claims, &signer.key).expect("sign");
    assert_refused(&s, &forged, "other tenant's key, this issuer").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_is_not_an_access_token() {
    let s = setup().await;
    let (verifier, challenge) = pkce();
    let code = s
        .env
        .code("acme", grant("web", &s.user, "openid", Some(&challenge)))
        .await;
    let a = s
        .env
        .form(
            "acme",
            "/token",
            Some(&s.web.basic()),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_refused(&s, &a.str("id_token"), "an ID token").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_answers_a_header_a_post_header_and_a_form_parameter() {
    let s = setup().await;
    let (access, _) = user_tokens(&s, "acme", &s.web, "openid email phone").await;
    let expect = |v: &Value| {
        assert_eq!(v["sub"], s.user.as_str(), "{v}");
        assert_eq!(v["email"], "alice@example.com");
        assert_eq!(v["email_verified"], false);
        assert_eq!(v["phone_number"], "+1 555 0100");
        assert!(v.get("preferred_username").is_none(), "no profile scope");
    };
    let a = s.env.userinfo_get("acme", &access).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.headers[header::CACHE_CONTROL], "no-store");
    expect(&a.body);

    let req = Request::post("/t/acme/userinfo")
        .header(header::AUTHORIZATION, format!("Bearer {access}"))
        .body(Body::empty())
        .expect("req");
    let a = s.env.send(0, req).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    expect(&a.body);

    let a = s
        .env
        .form("acme", "/userinfo", None, &[("access_token", &access)])
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    expect(&a.body);

    let none = s
        .env
        .send(
            0,
            Request::get("/t/acme/userinfo")
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers[header::WWW_AUTHENTICATE], "Bearer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_needs_the_openid_scope() {
    let s = setup().await;
    let (access, _) = user_tokens(&s, "acme", &s.web, "profile").await;
    let a = s.env.userinfo_get("acme", &access).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.error(), "insufficient_scope");
    // Nor is a client-credentials token a user's.
    let mut spec = ClientSpec::new("svc", "client_secret_basic", &["client_credentials"]);
    spec.scopes = &["openid"];
    let svc = s.env.client("acme", spec).await;
    let cc = s.env.client_credentials("acme", &svc, "openid").await;
    let a = s.env.userinfo_get("acme", &cc.str("access_token")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_describes_an_active_token() {
    let s = setup().await;
    let (access, refresh_token) = user_tokens(&s, "acme", &s.web, "openid profile").await;
    let a = s.env.introspect("acme", &s.rs, &access).await;
    assert_eq!(a.headers[header::CACHE_CONTROL], "no-store");
    let b = &a.body;
    assert_eq!(b["active"], true, "{b}");
    assert_eq!(b["scope"], "openid profile");
    assert_eq!(b["client_id"], "web");
    assert_eq!(b["username"], "alice");
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["sub"], s.user.as_str());
    assert_eq!(b["iss"], issuer("acme"));
    assert_eq!(b["aud"], issuer("acme"));
    assert!(b["exp"].is_u64() && b["iat"].is_u64() && b["jti"].is_string());
    let r = s.env.introspect("acme", &s.web, &refresh_token).await;
    assert_eq!(r.body["active"], true, "{}", r.body);
    assert_eq!(r.body["client_id"], "web");
    assert_eq!(r.body["token_type"], "refresh_token");
    // Another client learns nothing about a refresh token, not even that
    // it is live (a resource server may introspect access tokens only).
    let foreign = s.env.introspect("acme", &s.rs, &refresh_token).await;
    assert_eq!(foreign.body, json!({"active": false}));
    // Introspection needs client authentication.
    let anon = s
        .env
        .form("acme", "/introspect", None, &[("token", &access)])
        .await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_verified_before_still_fails_once_revoked_or_its_key_retired() {
    // The second sight of a token skips its signature check (the node
    // remembers it); revocation and the key's retirement must still count.
    let s = setup().await;
    let (revoked, _) = user_tokens(&s, "acme", &s.web, "openid").await;
    let (retired, _) = user_tokens(&s, "acme", &s.web, "openid").await;
    for token in [&revoked, &retired] {
        for _ in 0..2 {
            let i = s.env.introspect("acme", &s.rs, token).await;
            assert_eq!(i.body["active"], true, "{}", i.body);
        }
    }
    revoke(&s, &revoked).await;
    assert_refused(&s, &revoked, "revoked after being verified").await;
    // A rotation without overlap retires the key that signed `retired`.
    let keys = &s.env.state().identity.keys;
    let now_ms = now_secs() * 1000;
    keys.rotate_now("acme", SigningAlg::RS256, now_ms, 0)
        .await
        .expect("rotate");
    assert_refused(&s, &retired, "its key retired after it was verified").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_an_access_token_stops_it_everywhere_but_not_its_refresh_token() {
    let s = setup().await;
    let (access, refresh_token) = user_tokens(&s, "acme", &s.web, "openid").await;
    revoke(&s, &access).await;
    assert_refused(&s, &access, "revoked access token").await;
    let i = s.env.introspect("acme", &s.web, &refresh_token).await;
    assert_eq!(i.body["active"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_refresh_token_revokes_its_family() {
    let s = setup().await;
    let (access, refresh_token) = user_tokens(&s, "acme", &s.web, "openid").await;
    let a = s
        .env
        .form(
            "acme",
            "/revoke",
            Some(&s.web.basic()),
            &[
                ("token", &refresh_token),
                ("token_type_hint", "refresh_token"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let i = s.env.introspect("acme", &s.web, &refresh_token).await;
    assert_eq!(i.body, json!({"active": false}));
    assert_refused(&s, &access, "access token of a revoked family").await;
    let r = s
        .env
        .form(
            "acme",
            "/token",
            Some(&s.web.basic()),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh_token),
            ],
        )
        .await;
    assert_eq!(r.error(), "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_answers_200_for_unknown_tokens_and_refuses_other_clients_tokens() {
    let s = setup().await;
    let a = s
        .env
        .form(
            "acme",
            "/revoke",
            Some(&s.web.basic()),
            &[("token", "no-such-token")],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let (access, _) = user_tokens(&s, "acme", &s.web, "openid").await;
    let other = s
        .env
        .client(
            "acme",
            ClientSpec::new("other", "client_secret_basic", &["authorization_code"]),
        )
        .await;
    let a = s
        .env
        .form(
            "acme",
            "/revoke",
            Some(&other.basic()),
            &[("token", &access)],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        s.env.userinfo_get("acme", &access).await.status,
        StatusCode::OK
    );
}

/// Header tricks on a token signed with the attacker's own key (ES256):
/// a `jku` or `x5u` pointing at the attacker's keys, the key embedded as
/// `jwk`, the victim's real `kid`, a path-traversal `kid`, and a `kid` with
/// no key. Keys come only from the tenant's own JWKS, by `kid`, with the
/// algorithm pinned to the key, so every one is refused (RFC 8725 3.1 and
/// 3.10; CVE classes of jku/x5u/embedded-jwk trust).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_with_jku_x5u_an_embedded_jwk_or_a_foreign_kid_is_refused() {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    let s = setup().await;
    let (access, _) = user_tokens(&s, "acme", &s.web, "openid").await;
    let (header, claims) = peek(&access);
    let real_kid = header["kid"].as_str().expect("kid").to_string();
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .expect("key");
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).expect("pair");
    let point = pair.public_key().as_ref();
    let attacker_jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(json!({
        "kty": "EC", "crv": "P-256", "kid": "attacker",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    }))
    .expect("jwk");
    let key = EncodingKey::from_ec_der(pkcs8.as_ref());
    type Trick<'a> = (&'a str, Box<dyn Fn(&mut Header) + 'a>);
    let cases: Vec<Trick> = vec![
        (
            "jku",
            Box::new(|h| h.jku = Some("https://evil.example/jwks".into())),
        ),
        (
            "x5u",
            Box::new(|h| h.x5u = Some("https://evil.example/cert.pem".into())),
        ),
        (
            "embedded jwk",
            Box::new(|h| h.jwk = Some(attacker_jwk.clone())),
        ),
        (
            "the victim's kid",
            Box::new(|h| h.kid = Some(real_kid.clone())),
        ),
        (
            "path kid",
            Box::new(|h| h.kid = Some("../../../../dev/null".into())),
        ),
        ("unknown kid", Box::new(|h| h.kid = Some("attacker".into()))),
    ];
    for (what, trick) in cases {
        let mut h = Header::new(Algorithm::ES256);
        h.typ = Some("at+jwt".into());
        h.kid = Some("attacker".into());
        trick(&mut h);
        let forged = jsonwebtoken::encode(&h, &claims, &key).expect("sign");
        assert_refused(&s, &forged, what).await;
    }
}
