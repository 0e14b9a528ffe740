//! The token endpoint with client credentials: the token it mints, each
//! client authentication method, and its request errors.

use crate::support;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::json;
use support::*;

const CC: &[&str] = &["client_credentials"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_credentials_token_verifies_against_the_jwks_with_its_kid_and_alg() {
    let env = start(1).await;
    env.tenant("acme").await;
    for (id, alg) in [
        ("svc-es", "ES256"),
        ("svc-rs", "RS256"),
        ("svc-ed", "EdDSA"),
    ] {
        let mut spec = ClientSpec::new(id, "client_secret_basic", CC);
        spec.scopes = &["read", "write"];
        spec.alg = Some(alg);
        let c = env.client("acme", spec).await;
        let a = env.client_credentials("acme", &c, "read").await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert_eq!(a.headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(a.body["token_type"], "Bearer");
        assert_eq!(a.body["scope"], "read");
        assert!(a.body.get("refresh_token").is_none() && a.body.get("id_token").is_none());
        let token = a.str("access_token");

        let jwks = env
            .send(
                0,
                Request::get("/t/acme/jwks")
                    .body(Body::empty())
                    .expect("req"),
            )
            .await;
        let jwks: JwkSet = serde_json::from_value(jwks.body).expect("jwks");
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        let jwk = jwks
            .find(header.kid.as_deref().expect("kid"))
            .expect("kid in the JWKS");
        assert_eq!(format!("{:?}", header.alg), alg);
        assert_eq!(
            jwk.common.key_algorithm.map(|a| a.to_string()).as_deref(),
            Some(alg)
        );
        let mut v = Validation::new(header.alg);
        v.set_audience(&[issuer("acme")]);
        v.set_issuer(&[issuer("acme")]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_jwk(jwk).expect("key"),
            &v,
        )
        .expect("verifies")
        .claims;
        assert_eq!(claims["sub"], id);
        assert_eq!(claims["client_id"], id);
        assert_eq!(claims["scope"], "read");
        assert!(claims["jti"].is_string() && claims.get("fid").is_none());
        let ttl = claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat");
        assert_eq!(ttl, 600);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_are_limited_to_the_registered_ones_and_default_to_all_of_them() {
    let env = start(1).await;
    env.tenant("acme").await;
    let mut spec = ClientSpec::new("svc", "client_secret_basic", CC);
    spec.scopes = &["read", "write"];
    let c = env.client("acme", spec).await;
    let a = env.client_credentials("acme", &c, "read admin").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.error(), "invalid_scope");
    let a = env.client_credentials("acme", &c, "").await;
    assert_eq!(a.body["scope"], "read write", "{}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_post_authenticates_with_the_secret_in_the_body() {
    let env = start(1).await;
    env.tenant("acme").await;
    let c = env
        .client("acme", ClientSpec::new("svc", "client_secret_post", CC))
        .await;
    let secret = c.secret.clone().expect("secret");
    let a = env
        .form(
            "acme",
            "/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &c.id),
                ("client_secret", &secret),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // The registered method is the only one accepted.
    let a = env
        .form(
            "acme",
            "/token",
            Some(&c.basic()),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error(), "invalid_client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_invalid_client_with_a_basic_challenge() {
    let env = start(1).await;
    env.tenant("acme").await;
    let mut c = env
        .client("acme", ClientSpec::new("svc", "client_secret_basic", CC))
        .await;
    c.secret = Some("not-the-secret".into());
    let a = env.client_credentials("acme", &c, "").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error(), "invalid_client");
    let challenge = a.headers[header::WWW_AUTHENTICATE].to_str().expect("text");
    assert!(challenge.starts_with("Basic"), "{challenge}");
    // An unknown client looks the same.
    c.id = "nobody".into();
    let b = env.client_credentials("acme", &c, "").await;
    assert_eq!((b.status, b.body.clone()), (a.status, a.body));
}

fn es256_key(kid: &str) -> (EncodingKey, JwkSet) {
    let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("generate");
    let key = EncodingKey::from_ec_der(kp.to_pkcs8v1().expect("pkcs8").as_ref());
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).expect("jwk");
    jwk.common.key_id = Some(kid.to_string());
    (key, JwkSet { keys: vec![jwk] })
}

fn assertion(key: &EncodingKey, kid: &str, client: &str, aud: &str, jti: &str) -> String {
    let claims = json!({
        "iss": client, "sub": client, "aud": aud, "jti": jti,
        "iat": now_secs(), "exp": now_secs() + 60,
    });
    signed(key, kid, &claims)
}

fn signed(key: &EncodingKey, kid: &str, claims: &serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

async fn with_assertion(env: &Env, jwt: &str) -> Answer {
    env.form(
        "acme",
        "/token",
        None,
        &[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", jwt),
        ],
    )
    .await
}

/// Tenant `acme` with the `private_key_jwt` client `svc-jwt`, whose one
/// key `k1` is returned.
async fn jwt_client() -> (Env, EncodingKey) {
    let env = start(1).await;
    env.tenant("acme").await;
    let (key, jwks) = es256_key("k1");
    let mut spec = ClientSpec::new("svc-jwt", "private_key_jwt", CC);
    spec.jwks = Some(jwks);
    env.client("acme", spec).await;
    (env, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt_authenticates_once_per_assertion() {
    let (env, key) = jwt_client().await;
    let jwt = assertion(&key, "k1", "svc-jwt", &issuer("acme"), "jti-1");
    let a = with_assertion(&env, &jwt).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(peek(&a.str("access_token")).1["sub"], "svc-jwt");

    let replay = with_assertion(&env, &jwt).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{}", replay.body);
    assert_eq!(replay.error(), "invalid_client");

    // The issuer alone is the audience: not the token endpoint, not
    // another server, not the issuer among others.
    let token_endpoint = format!("{}/token", issuer("acme"));
    for (what, aud, jti) in [
        ("the token endpoint", json!(token_endpoint), "jti-2"),
        ("another server", json!("https://elsewhere"), "jti-3"),
        (
            "the issuer among others",
            json!([issuer("acme"), "https://elsewhere"]),
            "jti-4",
        ),
    ] {
        let claims = json!({
            "iss": "svc-jwt", "sub": "svc-jwt", "aud": aud, "jti": jti,
            "iat": now_secs(), "exp": now_secs() + 60,
        });
        let bad = with_assertion(&env, &signed(&key, "k1", &claims)).await;
        assert_eq!(bad.error(), "invalid_client", "{what}: {}", bad.body);
    }
    let claims = json!({
        "iss": "svc-jwt", "sub": "svc-jwt", "aud": [issuer("acme")], "jti": "jti-5",
        "iat": now_secs(), "exp": now_secs() + 60,
    });
    let ok = with_assertion(&env, &signed(&key, "k1", &claims)).await;
    assert_eq!(
        ok.status,
        StatusCode::OK,
        "an array of the issuer alone: {}",
        ok.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt_needs_iat_and_honours_nbf() {
    let (env, key) = jwt_client().await;
    let aud = issuer("acme");
    let base = json!({"iss": "svc-jwt", "sub": "svc-jwt", "aud": aud, "exp": now_secs() + 60});
    let with = |extra: serde_json::Value, jti: &str| {
        let mut claims = base.clone();
        claims["jti"] = json!(jti);
        for (k, v) in extra.as_object().expect("object") {
            claims[k] = v.clone();
        }
        signed(&key, "k1", &claims)
    };
    let cases = [
        ("no iat", json!({}), "j-no-iat"),
        (
            "iat in the future",
            json!({"iat": now_secs() + 600}),
            "j-late",
        ),
        (
            "nbf in the future",
            json!({"iat": now_secs(), "nbf": now_secs() + 600}),
            "j-nbf",
        ),
    ];
    for (what, extra, jti) in cases {
        let a = with_assertion(&env, &with(extra, jti)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{what}: {}", a.body);
        assert_eq!(a.error(), "invalid_client", "{what}");
    }
    // The same with iat now and nbf passed is accepted.
    let ok = with_assertion(
        &env,
        &with(json!({"iat": now_secs(), "nbf": now_secs() - 1}), "j-ok"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt_refuses_a_key_the_client_did_not_register() {
    let env = start(1).await;
    env.tenant("acme").await;
    let (_, jwks) = es256_key("k1");
    let mut spec = ClientSpec::new("svc-jwt", "private_key_jwt", CC);
    spec.jwks = Some(jwks);
    env.client("acme", spec).await;
    let (other, _) = es256_key("k1");
    let aud = issuer("acme");
    let a = with_assertion(&env, &assertion(&other, "k1", "svc-jwt", &aud, "j")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error(), "invalid_client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_client_is_known_by_its_id_but_refused_at_introspection() {
    let env = start(1).await;
    env.tenant("acme").await;
    env.client(
        "acme",
        ClientSpec::new(
            "spa",
            "none",
            &["urn:ietf:params:oauth:grant-type:device_code"],
        ),
    )
    .await;
    let a = env
        .form(
            "acme",
            "/device_authorization",
            None,
            &[("client_id", "spa")],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = env
        .form(
            "acme",
            "/introspect",
            None,
            &[("client_id", "spa"), ("token", "x")],
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error(), "invalid_client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_takes_only_forms_with_each_parameter_once() {
    let env = start(1).await;
    env.tenant("acme").await;
    let c = env
        .client("acme", ClientSpec::new("svc", "client_secret_basic", CC))
        .await;
    let json_body = Request::post("/t/acme/token")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, c.basic())
        .body(Body::from(r#"{"grant_type":"client_credentials"}"#))
        .expect("req");
    let a = env.send(0, json_body).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.error(), "invalid_request");
    let a = env
        .form(
            "acme",
            "/token",
            Some(&c.basic()),
            &[
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.error(), "invalid_request");
    assert!(a.str("error_description").contains("grant_type"));
    let a = env.form("acme", "/token", Some(&c.basic()), &[]).await;
    assert_eq!(a.error(), "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_unregistered_grants_have_their_own_errors() {
    let env = start(1).await;
    env.tenant("acme").await;
    let c = env
        .client("acme", ClientSpec::new("svc", "client_secret_basic", CC))
        .await;
    let a = env
        .form(
            "acme",
            "/token",
            Some(&c.basic()),
            &[("grant_type", "password")],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.error(), "unsupported_grant_type");
    let a = env
        .form(
            "acme",
            "/token",
            Some(&c.basic()),
            &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.error(), "unauthorized_client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_tenant_is_404() {
    let env = start(1).await;
    let a = env
        .form(
            "nope",
            "/token",
            None,
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}
