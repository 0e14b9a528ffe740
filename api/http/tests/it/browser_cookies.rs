//! The anti-forgery token is bound to what the server issued to this
//! browser (its session when signed in, else a seed the server sealed), a
//! cookie planted from a sibling domain does not make a form pass, two
//! cookies of one name are refused, and on https every cookie is a
//! `__Host-` cookie.

use std::sync::Arc;

use crate::browser;
use crate::support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use browser::*;
use support::*;

/// A page with a form from a fresh browser: its cookies and token.
async fn fresh_form(env: &Env) -> (Browser, Reply) {
    let mut b = Browser::default();
    let page = b.get(env, 0, &format!("/t/{TENANT}/account")).await;
    assert!(page.has_input("password"), "{}", page.html);
    (b, page)
}

/// `b` signed in on the account page.
async fn signed_in(env: &Env, username: &str) -> Browser {
    env.user(TENANT, username).await;
    let (mut b, page) = fresh_form(env).await;
    let back = b.login(env, 0, &page, username, PASSWORD).await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.html);
    assert!(b.cookies.contains_key("rsp_session"));
    b
}

/// POST a form to `path` with a raw `Cookie` header.
async fn post_with_cookie_header(
    env: &Env,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
) -> Reply {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let req = Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookie)
        .body(Body::from(body))
        .expect("request");
    Browser::default().send(env, 0, req).await
}

#[tokio::test]
async fn a_planted_csrf_cookie_and_its_token_do_not_pass_for_a_signed_in_browser() {
    let env = start_browser(1).await;
    let victim = signed_in(&env, "vera").await;
    // The attacker's own cookie and a token for it, from any page.
    let (attacker, page) = fresh_form(&env).await;
    let token = page.field("csrf_token").expect("csrf");
    // Planted in the victim's browser, it is the one sent.
    let mut planted = victim.clone();
    planted
        .cookies
        .insert("rsp_csrf".into(), attacker.cookies["rsp_csrf"].clone());
    let forged = planted
        .post(
            &env,
            0,
            &format!("/t/{TENANT}/account/mfa/recovery"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.html);
    assert!(
        forged.html.contains("not sent from this site"),
        "{}",
        forged.html
    );
}

#[tokio::test]
async fn two_cookies_of_one_name_are_refused_rather_than_the_first_believed() {
    let env = start_browser(1).await;
    env.user(TENANT, "walt").await;
    let (victim, _) = fresh_form(&env).await;
    let (attacker, page) = fresh_form(&env).await;
    let token = page.field("csrf_token").expect("csrf");
    let flow = page.field("flow").expect("flow");
    let form = [
        ("csrf_token", token.as_str()),
        ("flow", flow.as_str()),
        ("username", "walt"),
        ("password", PASSWORD),
    ];
    let login = format!("/t/{TENANT}/login");
    // The planted cookie (longer path) comes first, the victim's second.
    let both = format!(
        "rsp_csrf={}; rsp_csrf={}",
        attacker.cookies["rsp_csrf"], victim.cookies["rsp_csrf"]
    );
    let refused = post_with_cookie_header(&env, &login, &both, &form).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.html);
    // The same form with the one cookie it was made for passes.
    let one = format!("rsp_csrf={}", attacker.cookies["rsp_csrf"]);
    let ok = post_with_cookie_header(&env, &login, &one, &form).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.html);
}

#[tokio::test]
async fn a_csrf_cookie_the_server_did_not_seal_is_replaced_and_never_accepted() {
    let env = start_browser(1).await;
    let mut b = Browser::default();
    let invented = "A".repeat(43);
    b.cookies.insert("rsp_csrf".into(), invented.clone());
    let page = b.get(&env, 0, &format!("/t/{TENANT}/account")).await;
    assert!(
        page.set_cookies()
            .iter()
            .any(|c| c.starts_with("rsp_csrf=")),
        "a sealed seed replaces it: {:?}",
        page.set_cookies()
    );
    assert_ne!(b.cookies["rsp_csrf"], invented);
    let token = page.field("csrf_token").expect("csrf");
    let flow = page.field("flow").expect("flow");
    let cookie = format!("rsp_csrf={invented}");
    let refused = post_with_cookie_header(
        &env,
        &format!("/t/{TENANT}/login"),
        &cookie,
        &[("csrf_token", &token), ("flow", &flow)],
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.html);
}

#[tokio::test]
async fn on_https_cookies_are_host_prefixed_and_sign_in_works() {
    let mut env = start_browser(1).await;
    for state in &mut env.states {
        state.public_url = Arc::from("https://id.example.com");
    }
    rebuild(&mut env);
    env.user(TENANT, "xena").await;
    let (mut b, page) = fresh_form(&env).await;
    let csrf = page
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-rsp_csrf-acme="))
        .expect("a __Host- anti-forgery cookie");
    assert!(
        csrf.contains("; Path=/;") && csrf.contains("Secure"),
        "{csrf}"
    );
    assert!(!csrf.to_ascii_lowercase().contains("domain="), "{csrf}");
    // An unprefixed cookie (which a sibling domain could set) is not read.
    let prefixed = b.cookies["__Host-rsp_csrf-acme"].clone();
    b.cookies.insert("rsp_csrf".into(), prefixed);
    let back = b.login(&env, 0, &page, "xena", PASSWORD).await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.html);
    let session = back
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-rsp_session-acme="))
        .expect("a __Host- session cookie");
    assert!(session.contains("; Path=/;") && session.contains("Secure"));
    let account = b.get(&env, 0, &format!("/t/{TENANT}/account")).await;
    assert!(account.html.contains("xena"), "{}", account.html);

    let mut plain = Browser::default();
    plain
        .cookies
        .insert("rsp_csrf".into(), b.cookies["__Host-rsp_csrf-acme"].clone());
    let token = page.field("csrf_token").expect("csrf");
    let refused = plain
        .post(
            &env,
            0,
            &format!("/t/{TENANT}/login"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.html);
}
