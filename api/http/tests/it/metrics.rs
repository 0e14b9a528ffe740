//! `GET /metrics` after real traffic: a failed and a successful sign-in, a
//! code exchanged at the token endpoint, an account locked and refused,
//! SAML answers with and without an assertion, and a path no route serves
//! move the HTTP, sign-in, token and SAML families by exactly what was
//! done, labelled by route template (never the raw path).

use crate::browser;
use crate::support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use browser::*;
use support::*;

const CODE: &[&str] = &["authorization_code", "refresh_token"];

/// The node's `/metrics` text, as a scraper reads it.
async fn scrape(env: &Env) -> String {
    let req = Request::get("/metrics")
        .body(Body::empty())
        .expect("request");
    let answer = env.send(0, req).await;
    assert_eq!(answer.status, StatusCode::OK);
    answer.body.as_str().expect("text").to_string()
}

/// The value of the sample `name{labels}` (label order as registered), 0
/// when the series does not exist yet.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    let series = format!("{name}{{{}}} ", labels.join(","));
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0.0, |v| v.parse().expect("sample value"))
}

/// How much each of `series` moved between two scrapes.
fn moved(before: &str, after: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(after, name, labels) - sample(before, name, labels)
}

#[tokio::test]
async fn sign_ins_and_tokens_move_their_counters_by_route_template() {
    let env = start_browser(1).await;
    let web = client(&env, "web", "client_secret_basic", CODE, false).await;
    env.user(TENANT, "alice").await;
    let before = scrape(&env).await;

    let (verifier, challenge) = pkce();
    let mut b = Browser::default();
    let path = authorize_path(&web.id, &code_request(&challenge, "st-1"));
    let page = b.get(&env, 0, &path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let wrong = b.login(&env, 0, &page, "alice", "not the password").await;
    assert_eq!(wrong.status, StatusCode::OK);
    assert!(wrong.html.contains(rsp_api::oidc::lockout::BAD_CREDENTIALS));
    let done = b.login(&env, 0, &wrong, "alice", PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    let code = done.param("code").expect("code");
    let tokens = env
        .form(
            TENANT,
            "/token",
            Some(&web.basic()),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(tokens.status, StatusCode::OK, "{:?}", tokens.body);

    let after = scrape(&env).await;
    let logins = |result| {
        moved(
            &before,
            &after,
            "rsp_logins_total",
            &[("result", result), ("tenant", TENANT)],
        )
    };
    assert_eq!(logins("bad_password"), 1.0, "{after}");
    assert_eq!(logins("success"), 1.0, "{after}");
    assert_eq!(logins("locked"), 0.0);
    let by_factor = |factor| {
        moved(
            &before,
            &after,
            "rsp_logins_by_factor_total",
            &[("factor", factor), ("tenant", TENANT)],
        )
    };
    assert_eq!(by_factor("password"), 1.0, "{after}");
    assert_eq!(by_factor("totp"), 0.0);
    let issued = [
        ("client_type", "confidential"),
        ("grant_type", "authorization_code"),
        ("tenant", TENANT),
    ];
    assert_eq!(
        moved(&before, &after, "rsp_tokens_issued_total", &issued),
        1.0,
        "{after}"
    );
    let requests = |route, status| {
        moved(
            &before,
            &after,
            "rsp_http_requests_total",
            &[("method", "POST"), ("route", route), ("status", status)],
        )
    };
    assert_eq!(requests("/t/{tenant}/token", "200"), 1.0, "{after}");
    assert_eq!(requests("/t/{tenant}/login", "200"), 1.0, "{after}");
    assert_eq!(requests("/t/{tenant}/login", "303"), 1.0, "{after}");
    let timed = [("method", "POST"), ("route", "/t/{tenant}/token")];
    assert_eq!(
        moved(
            &before,
            &after,
            "rsp_http_request_duration_seconds_count",
            &timed
        ),
        1.0,
        "{after}"
    );
    // Never the raw path, which names the tenant (and could carry input).
    assert!(!after.contains("route=\"/t/acme"), "{after}");
}

#[tokio::test]
async fn a_locked_account_counts_as_locked() {
    let env = start_browser(1).await;
    let web = client(&env, "web", "client_secret_basic", CODE, false).await;
    env.user(TENANT, "alice").await;
    let (_, challenge) = pkce();
    let mut b = Browser::default();
    let path = authorize_path(&web.id, &code_request(&challenge, "st-1"));
    let mut page = b.get(&env, 0, &path).await;
    let start = scrape(&env).await;
    for _ in 0..MAX_FAILURES {
        page = b.login(&env, 0, &page, "alice", "not the password").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    }
    let before = scrape(&env).await;
    let lockouts = [("tenant", TENANT)];
    // The failure that reached the limit started the one lock.
    assert_eq!(
        moved(&start, &before, "rsp_lockouts_total", &lockouts),
        1.0,
        "{before}"
    );
    let locked = b.login(&env, 0, &page, "alice", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);

    let after = scrape(&env).await;
    let logins = |result| {
        moved(
            &before,
            &after,
            "rsp_logins_total",
            &[("result", result), ("tenant", TENANT)],
        )
    };
    assert_eq!(logins("locked"), 1.0, "{after}");
    assert_eq!(logins("success"), 0.0, "{after}");
    assert_eq!(
        sample(
            &after,
            "rsp_logins_total",
            &[("result", "bad_password"), ("tenant", TENANT)]
        ),
        f64::from(MAX_FAILURES)
    );
    // Refused while locked: no new lock.
    assert_eq!(moved(&before, &after, "rsp_lockouts_total", &lockouts), 0.0);
}

#[tokio::test]
async fn a_path_no_route_serves_is_counted_as_unmatched() {
    let env = start(1).await;
    let before = scrape(&env).await;
    let req = Request::get("/no/such/place?token=secret")
        .body(Body::empty())
        .expect("request");
    assert_eq!(env.send(0, req).await.status, StatusCode::NOT_FOUND);

    let after = scrape(&env).await;
    let unmatched = [("method", "GET"), ("route", "unmatched"), ("status", "404")];
    assert_eq!(
        moved(&before, &after, "rsp_http_requests_total", &unmatched),
        1.0,
        "{after}"
    );
    assert!(!after.contains("/no/such/place"), "{after}");
    // The scrape itself is counted under its own route.
    let scrapes = [("method", "GET"), ("route", "/metrics"), ("status", "200")];
    assert_eq!(sample(&after, "rsp_http_requests_total", &scrapes), 1.0);
}

#[tokio::test]
async fn saml_answers_are_counted_by_result() {
    use crate::saml_sso::{authn_request, env_with_sp, instant, posted_response, redirect_path};

    let (env, password) = env_with_sp(serde_json::json!({})).await;
    let before = scrape(&env).await;
    let mut b = Browser::default();
    // Passive with no session: an error status, no assertion.
    let passive = authn_request("_p1", None, r#" IsPassive="true""#, "", &instant(0));
    let page = b.get(&env, 0, &redirect_path(&passive, None)).await;
    posted_response(&page);
    // Then a sign-in through the login page: an assertion.
    let xml = authn_request("_req1", None, "", "", &instant(0));
    let login = b.get(&env, 0, &redirect_path(&xml, None)).await;
    let answered = b.login(&env, 0, &login, "alice", &password).await;
    posted_response(&answered);

    let after = scrape(&env).await;
    let saml = |result| {
        moved(
            &before,
            &after,
            "rsp_saml_responses_total",
            &[("result", result), ("tenant", TENANT)],
        )
    };
    assert_eq!(saml("success"), 1.0, "{after}");
    assert_eq!(saml("error"), 1.0, "{after}");
    let sso = [
        ("method", "GET"),
        ("route", "/t/{tenant}/saml/sso"),
        ("status", "200"),
    ];
    assert_eq!(moved(&before, &after, "rsp_http_requests_total", &sso), 2.0);
}
