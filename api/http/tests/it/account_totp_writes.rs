//! Setting up an authenticator app on the account page writes to Raft only
//! when the first code confirms it: showing (and reloading) the page
//! writes nothing, and the confirmed form cannot be posted again.

use crate::browser;
use crate::browser_mfa_flows::{base32_decode, text_of, totp_at};
use crate::support;

use axum::http::StatusCode;
use browser::*;
use rsp_consensus::Consistency;
use support::*;

/// The store's revision on node `node` (every committed write moves it).
fn revision(env: &Env, node: usize) -> u64 {
    env.states[node]
        .consensus
        .read_info(Consistency::Local)
        .expect("read info")
        .revision
}

#[tokio::test]
async fn showing_the_totp_setup_page_writes_nothing_and_the_confirming_post_writes_once() {
    let env = start_browser(1).await;
    let ivan = env.user(TENANT, "ivan").await;
    let mut b = Browser::default();
    let page = b.get(&env, 0, &format!("/t/{TENANT}/account")).await;
    let back = b.login(&env, 0, &page, "ivan", PASSWORD).await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.html);
    let path = format!("/t/{TENANT}/account/mfa/totp");

    // Settle whatever the sign-in committed before counting.
    env.state()
        .consensus
        .linearizable_barrier()
        .await
        .expect("barrier");
    let before = revision(&env, 0);
    let mut last = None;
    for _ in 0..3 {
        let page = b.get(&env, 0, &path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.html);
        assert!(page.has_input("enrolment"), "{}", page.html);
        last = Some(page);
    }
    assert_eq!(revision(&env, 0), before, "page views wrote to Raft");

    let page = last.expect("a page");
    let seed = base32_decode(&text_of(&page.html, "secret").expect("secret on the page"));
    let csrf = page.field("csrf_token").expect("csrf");
    let enrolment = page.field("enrolment").expect("enrolment ticket");
    let now = now_secs();
    let mut confirm = async |code: String| {
        let fields = [
            ("csrf_token", csrf.as_str()),
            ("enrolment", enrolment.as_str()),
            ("totp", code.as_str()),
        ];
        b.post(&env, 0, &path, &fields).await
    };
    let done = confirm(totp_at(&seed, now)).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.html);
    assert!(revision(&env, 0) > before, "the confirmation is written");
    let factors = env.state().identity.factors.list(TENANT, &ivan).await;
    assert_eq!(factors.expect("factors").len(), 1);

    // The same form again (with the next code): already completed.
    let again = confirm(totp_at(&seed, now + 30)).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.html);
    let factors = env.state().identity.factors.list(TENANT, &ivan).await;
    assert_eq!(factors.expect("factors").len(), 1, "confirmed once");
}
