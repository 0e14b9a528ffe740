//! `GET /metrics` after real traffic: a failed and a successful sign-in, a
//! code exchanged at the token endpoint, an account locked and refused,
//! SAML answers with and without an assertion, Cedar decisions, a session
//! started and revoked, an authenticator app enrolled, and a path no route
//! serves move the HTTP, sign-in, token, SAML, decision, session and MFA
//! families by exactly what was done, labelled by route template (never the
//! raw path).

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

#[tokio::test]
async fn cedar_decisions_count_by_result_and_are_timed() {
    use crate::authz::{ask, decision, is_authorized, put_policies};
    const VIEW: &str = r#"Action::"view""#;
    let env = start(1).await;
    env.tenant("acme").await;
    let put = put_policies(
        &env,
        0,
        "acme",
        r#"permit(principal == User::"alice", action, resource);"#,
        None,
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let before = scrape(&env).await;

    let allow = is_authorized(&env, "acme", ask(r#"User::"alice""#, VIEW, r#"Doc::"1""#)).await;
    assert_eq!(decision(&allow), "Allow");
    for _ in 0..2 {
        let deny = is_authorized(&env, "acme", ask(r#"User::"bob""#, VIEW, r#"Doc::"1""#)).await;
        assert_eq!(decision(&deny), "Deny");
    }

    let after = scrape(&env).await;
    let decisions = |result| {
        moved(
            &before,
            &after,
            "rsp_authz_decisions_total",
            &[("result", result), ("tenant", "acme")],
        )
    };
    assert_eq!(decisions("allow"), 1.0, "{after}");
    assert_eq!(decisions("deny"), 2.0, "{after}");
    assert_eq!(decisions("error"), 0.0, "{after}");
    let timed = |result| {
        moved(
            &before,
            &after,
            "rsp_authz_decision_duration_seconds_count",
            &[("result", result)],
        )
    };
    assert_eq!(timed("allow"), 1.0, "{after}");
    assert_eq!(timed("deny"), 2.0, "{after}");
}

#[tokio::test]
async fn a_sign_in_creates_a_session_and_signing_the_user_out_revokes_it() {
    use crate::authz::{ADMIN, call};
    let env = start_browser(1).await;
    let web = client(&env, "web", "client_secret_basic", CODE, false).await;
    let alice = env.user(TENANT, "alice").await;
    let before = scrape(&env).await;

    let (_, challenge) = pkce();
    let mut b = Browser::default();
    let path = authorize_path(&web.id, &code_request(&challenge, "st-1"));
    let page = b.get(&env, 0, &path).await;
    let done = b.login(&env, 0, &page, "alice", PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    let signed_in = scrape(&env).await;
    let tenant = [("tenant", TENANT)];
    assert_eq!(
        moved(&before, &signed_in, "rsp_sessions_created_total", &tenant),
        1.0,
        "{signed_in}"
    );
    assert_eq!(
        moved(&before, &signed_in, "rsp_sessions_revoked_total", &tenant),
        0.0
    );

    let out = call(
        &env,
        0,
        "DELETE",
        &format!("/admin/v1/tenants/{TENANT}/users/{alice}/sessions"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.body);
    let after = scrape(&env).await;
    assert_eq!(
        moved(&signed_in, &after, "rsp_sessions_revoked_total", &tenant),
        1.0,
        "{after}"
    );
    // Nothing left to revoke: a second sign-out counts nothing.
    let again = call(
        &env,
        0,
        "DELETE",
        &format!("/admin/v1/tenants/{TENANT}/users/{alice}/sessions"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    let last = scrape(&env).await;
    assert_eq!(
        moved(&after, &last, "rsp_sessions_revoked_total", &tenant),
        0.0
    );
}

#[tokio::test]
async fn a_confirmed_authenticator_app_counts_as_a_totp_enrolment_with_recovery_codes() {
    use crate::browser_mfa_flows::{base32_decode, text_of, totp_at};
    let env = start_browser(1).await;
    env.user(TENANT, "ivan").await;
    let mut b = Browser::default();
    let page = b.get(&env, 0, &format!("/t/{TENANT}/account")).await;
    let back = b.login(&env, 0, &page, "ivan", PASSWORD).await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.html);
    let path = format!("/t/{TENANT}/account/mfa/totp");
    let page = b.get(&env, 0, &path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let seed = base32_decode(&text_of(&page.html, "secret").expect("secret on the page"));
    let before = scrape(&env).await;
    let enrolments = |text: &str, factor| {
        sample(
            text,
            "rsp_mfa_enrolments_total",
            &[("factor", factor), ("tenant", TENANT)],
        )
    };
    assert_eq!(
        enrolments(&before, "totp"),
        0.0,
        "the setup page enrols nothing"
    );

    let code = totp_at(&seed, now_secs());
    let fields = [
        ("csrf_token", page.field("csrf_token").expect("csrf")),
        (
            "enrolment",
            page.field("enrolment").expect("enrolment ticket"),
        ),
        ("totp", code),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = b.post(&env, 0, &path, &fields).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.html);

    let after = scrape(&env).await;
    assert_eq!(enrolments(&after, "totp"), 1.0, "{after}");
    // A first factor brings ten recovery codes.
    assert_eq!(enrolments(&after, "recovery_codes"), 1.0, "{after}");
    assert_eq!(enrolments(&after, "passkey"), 0.0);
}
