//! The web console at `/admin/`: sign-in with the admin token (wrong
//! tokens refused and rate limited), pages refused without a session,
//! forms refused without the session's anti-forgery token, and the
//! operations done through forms checked through the admin API: tenants,
//! users, clients, a disabled user's sessions ended, a rotated secret
//! refused at the token endpoint, Cedar's diagnostics shown, the security
//! headers, and user data escaped.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};

use crate::{authz, browser, support};

use authz::{ADMIN, call};
use browser::{Browser, PASSWORD, Reply, TENANT, authorize_path, code_request, start_browser};
use support::{Env, TestClient, pkce};

/// Sign a fresh browser in to the console on node 0; the browser and the
/// session's anti-forgery token.
async fn signed_in(env: &Env) -> (Browser, String) {
    let mut b = Browser::default();
    let page = b.get(env, 0, "/admin/").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let seed_csrf = page.field("csrf_token").expect("csrf field");
    let r = b
        .post(
            env,
            0,
            "/admin/login",
            &[("csrf_token", &seed_csrf), ("admin_token", "admin")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let home = b.get(env, 0, "/admin/tenants").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.html);
    let csrf = home.field("csrf_token").expect("csrf field");
    (b, csrf)
}

fn location(r: &Reply) -> String {
    r.header("location")
}

/// The text of the element with `id` (`<tag id="...">text<`).
fn element_text(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let start = at + html[at..].find('>')? + 1;
    let len = html[start..].find('<')?;
    Some(html[start..start + len].to_string())
}

#[tokio::test]
async fn sign_in_refuses_a_wrong_token_and_accepts_the_admin_token() {
    let env = start_browser(1).await;
    let mut b = Browser::default();
    let page = b.get(&env, 0, "/admin/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("type=\"password\""), "{}", page.html);
    let csrf = page.field("csrf_token").expect("csrf field");

    let wrong = b
        .post(
            &env,
            0,
            "/admin/login",
            &[("csrf_token", &csrf), ("admin_token", "not-it")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.html.contains("That is not the admin token."));
    assert!(!b.cookies.contains_key("rsp_console"));

    // Without the seed-bound anti-forgery field, even the right token is
    // refused.
    let forged = b
        .post(&env, 0, "/admin/login", &[("admin_token", "admin")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(!b.cookies.contains_key("rsp_console"));

    let csrf = forged.field("csrf_token").expect("csrf field");
    let right = b
        .post(
            &env,
            0,
            "/admin/login",
            &[("csrf_token", &csrf), ("admin_token", "admin")],
        )
        .await;
    assert_eq!(right.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&right), "/admin/tenants");
    let cookie = right
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("rsp_console="))
        .expect("a session cookie");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/admin/", "Max-Age="] {
        assert!(cookie.contains(part), "{cookie} lacks {part}");
    }
    let value = &b.cookies["rsp_console"];
    assert!(!value.contains("admin"), "the cookie holds the token");
    let tenants = b.get(&env, 0, "/admin/tenants").await;
    assert_eq!(tenants.status, StatusCode::OK);
    assert!(tenants.html.contains(TENANT));
    // Signed in, the sign-in page sends on to the tenants.
    let home = b.get(&env, 0, "/admin/").await;
    assert_eq!(location(&home), "/admin/tenants");
}

#[tokio::test]
async fn repeated_wrong_tokens_are_rate_limited_even_for_the_right_one() {
    let env = start_browser(1).await;
    let from: SocketAddr = "192.0.2.7:5000".parse().expect("address");
    let mut b = Browser::default();
    let post = |b: &Browser, csrf: &str, token: &str| {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("csrf_token", csrf), ("admin_token", token)])
            .finish();
        let cookies = b
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut req = Request::post("/admin/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, cookies)
            .body(Body::from(body))
            .expect("request");
        req.extensions_mut().insert(ConnectInfo(from));
        req
    };
    let mut page = b.get(&env, 0, "/admin/").await;
    for _ in 0..rsp_api::authz::admin_guard::MAX_FAILURES {
        let csrf = page.field("csrf_token").expect("csrf");
        page = b.send(&env, 0, post(&b, &csrf, "guess")).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.html);
    }
    let csrf = page.field("csrf_token").expect("csrf");
    let refused = b.send(&env, 0, post(&b, &csrf, "admin")).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        refused
            .header("retry-after")
            .parse::<u64>()
            .is_ok_and(|s| s > 0)
    );
    assert!(refused.html.contains("Too many failed sign-ins"));
    assert!(!b.cookies.contains_key("rsp_console"));
    // The admin API refuses the address too: one guard.
    let mut req = Request::get("/admin/v1/tenants")
        .header(header::AUTHORIZATION, ADMIN)
        .body(Body::empty())
        .expect("request");
    req.extensions_mut().insert(ConnectInfo(from));
    assert_eq!(env.send(0, req).await.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn pages_without_a_session_send_to_sign_in_and_change_nothing() {
    let env = start_browser(1).await;
    let mut b = Browser::default();
    for path in [
        "/admin/tenants",
        "/admin/tenants/acme",
        "/admin/tenants/acme/users",
        "/admin/tenants/acme/clients",
        "/admin/tenants/acme/policies",
        "/admin/cluster",
    ] {
        let r = b.get(&env, 0, path).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&r), "/admin/", "{path}");
    }
    let r = b
        .post(&env, 0, "/admin/tenants", &[("id", "nosession")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // A cookie this cluster did not seal is no session either.
    b.cookies.insert(
        "rsp_console".into(),
        format!("{}.99999999999.{}", "A".repeat(43), "0".repeat(64)),
    );
    let r = b.get(&env, 0, "/admin/tenants").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let a = call(
        &env,
        0,
        "GET",
        "/admin/v1/tenants/nosession",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_form_without_the_sessions_anti_forgery_token_changes_nothing() {
    let env = start_browser(1).await;
    let (mut b, csrf) = signed_in(&env).await;
    let (_other, other_csrf) = signed_in(&env).await;
    assert_ne!(csrf, other_csrf);
    let missing = b.post(&env, 0, "/admin/tenants", &[("id", "forged")]).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let wrong = b
        .post(
            &env,
            0,
            "/admin/tenants",
            &[("csrf_token", &other_csrf), ("id", "forged")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(wrong.html.contains("was not sent from the console"));
    let a = call(
        &env,
        0,
        "GET",
        "/admin/v1/tenants/forged",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    // The sign-out form needs it too.
    let out = b.post(&env, 0, "/admin/logout", &[]).await;
    assert_eq!(out.status, StatusCode::FORBIDDEN);
    assert_eq!(
        b.get(&env, 0, "/admin/tenants").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn sign_out_clears_the_session_cookie() {
    let env = start_browser(1).await;
    let (mut b, csrf) = signed_in(&env).await;
    let out = b
        .post(&env, 0, "/admin/logout", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        out.set_cookies()
            .iter()
            .any(|c| c.starts_with("rsp_console=;") && c.contains("Max-Age=0"))
    );
    let r = b.get(&env, 0, "/admin/tenants").await;
    assert_eq!(location(&r), "/admin/");
}

#[tokio::test]
async fn tenants_users_and_clients_made_through_forms_exist_in_the_admin_api() {
    let env = start_browser(1).await;
    let (mut b, csrf) = signed_in(&env).await;
    let r = b
        .post(
            &env,
            0,
            "/admin/tenants",
            &[
                ("csrf_token", &csrf),
                ("id", "globex"),
                ("display_name", "Globex Corp"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let a = call(
        &env,
        0,
        "GET",
        "/admin/v1/tenants/globex",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.str("display_name"), "Globex Corp");

    // A bad id is the service's message, on the page; nothing is made.
    let bad = b
        .post(
            &env,
            0,
            "/admin/tenants",
            &[("csrf_token", &csrf), ("id", "Bad Id")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.html.contains("tenant ids are 1 to 62 characters"),
        "{}",
        bad.html
    );

    let r = b
        .post(
            &env,
            0,
            "/admin/tenants/globex",
            &[("csrf_token", &csrf), ("display_name", "Globex")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let a = call(
        &env,
        0,
        "GET",
        "/admin/v1/tenants/globex",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.str("display_name"), "Globex");

    let r = b
        .post(
            &env,
            0,
            "/admin/tenants/globex/users",
            &[
                ("csrf_token", &csrf),
                ("username", "carol"),
                ("email", "carol@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let a = call(
        &env,
        0,
        "GET",
        "/admin/v1/tenants/globex/users?username=carol",
        Some(ADMIN),
        None,
    )
    .await;
    let users = a.body["items"].as_array().expect("items").clone();
    assert_eq!(users.len(), 1, "{}", a.body);
    assert_eq!(users[0]["email"], "carol@example.com");
    let short = b
        .post(
            &env,
            0,
            "/admin/tenants/globex/users",
            &[
                ("csrf_token", &csrf),
                ("username", "dave"),
                ("password", "x"),
            ],
        )
        .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert!(
        short.html.contains("value=\"dave\""),
        "the form keeps the username"
    );

    // The search finds carol by a prefix, in any case.
    let found = b
        .get(&env, 0, "/admin/tenants/globex/users?search=CA")
        .await;
    assert!(found.html.contains(">carol</a>"), "{}", found.html);
    let none = b
        .get(&env, 0, "/admin/tenants/globex/users?search=zz")
        .await;
    assert!(!none.html.contains(">carol</a>"));

    let r = b
        .post(
            &env,
            0,
            "/admin/tenants/globex/clients",
            &[
                ("csrf_token", &csrf),
                ("client_id", "portal"),
                ("client_name", "Portal"),
                (
                    "redirect_uris",
                    "https://portal.example.com/cb\nhttps://portal.example.com/cb2",
                ),
                ("grant_types", "authorization_code refresh_token"),
                ("token_endpoint_auth_method", "client_secret_basic"),
                ("scopes", "openid profile"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    let secret = element_text(&r.html, "client-secret").expect("the secret, shown once");
    assert!(secret.len() >= 32);
    let a = call(
        &env,
        0,
        "GET",
        "/admin/v1/tenants/globex/clients/portal",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["redirect_uris"].as_array().expect("uris").len(), 2);
    // The client's page never shows the secret again.
    let page = b.get(&env, 0, "/admin/tenants/globex/clients/portal").await;
    assert!(!page.html.contains(&secret));

    // Edit: one redirect URI and consent.
    let r = b
        .post(
            &env,
            0,
            "/admin/tenants/globex/clients/portal",
            &[
                ("csrf_token", &csrf),
                ("client_name", "Portal 2"),
                ("redirect_uris", "https://portal.example.com/only"),
                ("grant_types", "authorization_code"),
                ("token_endpoint_auth_method", "client_secret_basic"),
                ("scopes", "openid"),
                ("require_consent", "true"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let a = call(
        &env,
        0,
        "GET",
        "/admin/v1/tenants/globex/clients/portal",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(
        a.body["redirect_uris"],
        serde_json::json!(["https://portal.example.com/only"])
    );
    assert_eq!(a.body["require_consent"], true);
    assert_eq!(a.str("client_name"), "Portal 2");

    // Deleting a tenant with data needs the typed id and "everything".
    let r = b
        .post(
            &env,
            0,
            "/admin/tenants/globex/delete",
            &[("csrf_token", &csrf), ("confirm", "globex")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.html);
    let r = b
        .post(
            &env,
            0,
            "/admin/tenants/globex/delete",
            &[
                ("csrf_token", &csrf),
                ("confirm", "acme"),
                ("force", "true"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let a = call(
        &env,
        0,
        "GET",
        "/admin/v1/tenants/globex",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let r = b
        .post(
            &env,
            0,
            "/admin/tenants/globex/delete",
            &[
                ("csrf_token", &csrf),
                ("confirm", "globex"),
                ("force", "true"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let a = call(
        &env,
        0,
        "GET",
        "/admin/v1/tenants/globex",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn disabling_a_user_through_the_console_ends_their_sessions() {
    let env = start_browser(2).await;
    let web = browser::client(
        &env,
        "web",
        "client_secret_basic",
        &["authorization_code"],
        false,
    )
    .await;
    let alice = env.user(TENANT, "alice").await;
    let (_, challenge) = pkce();
    let mut user_browser = Browser::default();
    let page = user_browser
        .get(
            &env,
            1,
            &authorize_path(&web.id, &code_request(&challenge, "s")),
        )
        .await;
    let done = user_browser.login(&env, 1, &page, "alice", PASSWORD).await;
    assert!(done.param("code").is_some(), "{}", done.html);
    let sessions = format!("/admin/v1/tenants/{TENANT}/users/{alice}/sessions");
    let a = call(&env, 0, "GET", &sessions, Some(ADMIN), None).await;
    assert_eq!(a.body.as_array().expect("sessions").len(), 1, "{}", a.body);

    let (mut b, csrf) = signed_in(&env).await;
    let user_page = b
        .get(&env, 0, &format!("/admin/tenants/{TENANT}/users/{alice}"))
        .await;
    assert!(user_page.html.contains("<code>"), "the session is listed");
    let r = b
        .post(
            &env,
            0,
            &format!("/admin/tenants/{TENANT}/users/{alice}/disabled"),
            &[("csrf_token", &csrf), ("disabled", "true")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let a = call(&env, 0, "GET", &sessions, Some(ADMIN), None).await;
    assert_eq!(a.body, serde_json::json!([]), "sessions ended");
    // The console's change is in the audit trail, as the API's would be.
    let trail = call(
        &env,
        1,
        "GET",
        &format!("/admin/v1/tenants/{TENANT}/audit?type=user.updated"),
        Some(ADMIN),
        None,
    )
    .await;
    let event = &trail.body["items"][0];
    assert_eq!(event["actor"], "operator", "{}", trail.body);
    assert_eq!(event["outcome"], "success", "{}", trail.body);
    assert_eq!(event["details"]["via"], "console", "{}", trail.body);
    assert_eq!(event["details"]["user"], alice.as_str(), "{}", trail.body);
    let a = call(
        &env,
        1,
        "GET",
        &format!("/admin/v1/tenants/{TENANT}/users/{alice}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.body["disabled"], true);
    // The other node no longer signs alice in silently.
    let (_, challenge) = pkce();
    let mut params = code_request(&challenge, "again");
    params.push(("prompt", "none"));
    let silent = user_browser
        .get(&env, 1, &authorize_path(&web.id, &params))
        .await;
    assert_eq!(silent.param("error").as_deref(), Some("login_required"));

    let shown = b
        .get(
            &env,
            0,
            &format!("/admin/tenants/{TENANT}/users/{alice}?done=user-disabled"),
        )
        .await;
    assert!(shown.html.contains("enable-user"), "{}", shown.html);
}

#[tokio::test]
async fn rotating_a_secret_makes_the_old_one_fail_at_the_token_endpoint() {
    let env = start_browser(1).await;
    let (mut b, csrf) = signed_in(&env).await;
    let r = b
        .post(
            &env,
            0,
            &format!("/admin/tenants/{TENANT}/clients"),
            &[
                ("csrf_token", &csrf),
                ("client_id", "worker"),
                ("grant_types", "client_credentials"),
                ("token_endpoint_auth_method", "client_secret_basic"),
                ("scopes", "jobs"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    let old = TestClient {
        id: "worker".into(),
        secret: element_text(&r.html, "client-secret"),
    };
    let a = env.client_credentials(TENANT, &old, "jobs").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);

    let r = b
        .post(
            &env,
            0,
            &format!("/admin/tenants/{TENANT}/clients/worker/secret"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    let new = TestClient {
        id: "worker".into(),
        secret: element_text(&r.html, "client-secret"),
    };
    assert_ne!(new.secret, old.secret);
    let a = env.client_credentials(TENANT, &old, "jobs").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    assert_eq!(a.error(), "invalid_client");
    let a = env.client_credentials(TENANT, &new, "jobs").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

#[tokio::test]
async fn invalid_cedar_shows_its_diagnostics_and_keeps_the_text() {
    let env = start_browser(1).await;
    let (mut b, csrf) = signed_in(&env).await;
    let path = format!("/admin/tenants/{TENANT}/policies");
    let broken = "permit(principal, action, resource) when { principal.level > };";
    let r = b
        .post(
            &env,
            0,
            &path,
            &[("csrf_token", &csrf), ("policies", broken)],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.html);
    assert!(
        r.html.contains("Cedar refused these policies"),
        "{}",
        r.html
    );
    assert!(r.html.contains("class=\"diagnostics\""));
    assert!(r.html.contains("unexpected token"), "Cedar's own message");
    assert!(r.html.contains("line 1, column 62"), "where: {}", r.html);
    assert!(
        r.html.contains("principal.level &#62; };"),
        "the text is kept: {}",
        r.html
    );
    let a = call(
        &env,
        0,
        "GET",
        &format!("/admin/v1/tenants/{TENANT}/policies"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.body["version"], 0, "nothing stored");

    let good = "permit(principal, action, resource);";
    let r = b
        .post(&env, 0, &path, &[("csrf_token", &csrf), ("policies", good)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let a = call(
        &env,
        0,
        "GET",
        &format!("/admin/v1/tenants/{TENANT}/policies"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.body["version"], 1);
    assert_eq!(a.str("policies"), good);
    let shown = b.get(&env, 0, &path).await;
    assert!(shown.html.contains("Version 1"), "{}", shown.html);
}

#[tokio::test]
async fn console_pages_carry_a_strict_csp_and_no_store() {
    let env = start_browser(1).await;
    let (mut b, _) = signed_in(&env).await;
    let mut pages = vec![Browser::default().get(&env, 0, "/admin/").await];
    for path in [
        "/admin/tenants",
        "/admin/tenants/acme",
        "/admin/tenants/acme/users",
        "/admin/tenants/acme/clients",
        "/admin/tenants/acme/policies",
        "/admin/cluster",
    ] {
        pages.push(b.get(&env, 0, path).await);
    }
    for p in &pages {
        assert_eq!(p.status, StatusCode::OK, "{}", p.html);
        let csp = p.header("content-security-policy");
        for part in [
            "default-src 'none'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(part), "{csp} lacks {part}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("script-src"));
        assert_eq!(p.header("x-frame-options"), "DENY");
        assert_eq!(p.header("cache-control"), "no-store");
        assert_eq!(p.header("x-content-type-options"), "nosniff");
        assert!(!p.html.contains("<script"), "no script");
        assert!(!p.html.contains("style=\""), "no inline style");
        assert!(
            !p.html.contains("http://") && !p.html.contains("https://"),
            "no external assets"
        );
    }
    let cluster = &pages[6];
    assert!(cluster.html.contains("leader"), "{}", cluster.html);
    let css = Browser::default()
        .get(&env, 0, "/admin/assets/console.css")
        .await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header("content-type").starts_with("text/css"));
}

#[tokio::test]
async fn html_in_a_display_name_or_username_is_escaped() {
    let env = start_browser(1).await;
    let (mut b, csrf) = signed_in(&env).await;
    let evil = "<img src=x onerror=alert(1)>\"'&";
    let r = b
        .post(
            &env,
            0,
            "/admin/tenants",
            &[
                ("csrf_token", &csrf),
                ("id", "evil"),
                ("display_name", evil),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    for path in ["/admin/tenants", "/admin/tenants/evil"] {
        let page = b.get(&env, 0, path).await;
        assert!(!page.html.contains("<img"), "{path}: {}", page.html);
        assert!(page.html.contains("&#60;img src"), "{path}: {}", page.html);
    }
    let r = b
        .post(
            &env,
            0,
            "/admin/tenants/evil/users",
            &[
                ("csrf_token", &csrf),
                ("username", "x\"><b>bold</b>"),
                ("password", PASSWORD),
            ],
        )
        .await;
    // Whether the service takes such a username or not, the page echoes
    // nothing unescaped.
    let page = match r.status {
        StatusCode::SEE_OTHER => b.get(&env, 0, &location(&r)).await,
        _ => r,
    };
    assert!(!page.html.contains("<b>bold</b>"), "{}", page.html);
}
