//! Authorization codes across a 3-node cluster: one `AppState` per node,
//! the same code redeemed concurrently on two nodes.

use crate::support;

use axum::http::StatusCode;
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_redemption_of_one_code_on_two_nodes_gives_exactly_one_success() {
    let env = start(3).await;
    env.tenant("acme").await;
    let web = env
        .client(
            "acme",
            ClientSpec::new(
                "web",
                "client_secret_basic",
                &["authorization_code", "refresh_token"],
            ),
        )
        .await;
    let rs = env
        .client(
            "acme",
            ClientSpec::new("rs", "client_secret_basic", &["client_credentials"]),
        )
        .await;
    let user = env.user("acme", "alice").await;
    env.settle().await;
    for round in 0..5 {
        let (verifier, challenge) = pkce();
        // Issued on node 1; nodes 2 and 3 may not have applied it yet.
        let code = env
            .code("acme", grant("web", &user, "openid", Some(&challenge)))
            .await;
        let basic = web.basic();
        let params = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier.as_str()),
        ];
        let (a, b) = tokio::join!(
            env.form_on(1, "acme", "/token", Some(&basic), &params),
            env.form_on(2, "acme", "/token", Some(&basic), &params),
        );
        let answers = [a, b];
        let winners: Vec<_> = answers
            .iter()
            .filter(|x| x.status == StatusCode::OK)
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: {} / {}",
            answers[0].body,
            answers[1].body
        );
        let loser = answers
            .iter()
            .find(|x| x.status != StatusCode::OK)
            .expect("a loser");
        assert_eq!(loser.status, StatusCode::BAD_REQUEST, "round {round}");
        assert_eq!(loser.error(), "invalid_grant", "round {round}");
        // The loser revoked what the winner got, on every node.
        let access = winners[0].str("access_token");
        let refresh = winners[0].str("refresh_token");
        for node in 0..3 {
            for token in [&access, &refresh] {
                let i = env
                    .form_on(
                        node,
                        "acme",
                        "/introspect",
                        Some(&rs.basic()),
                        &[("token", token)],
                    )
                    .await;
                assert_eq!(
                    i.body,
                    json!({"active": false}),
                    "round {round}, node {node}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_minted_on_one_node_work_on_the_others_and_refresh_rotates_anywhere() {
    let env = start(3).await;
    env.tenant("acme").await;
    let web = env
        .client(
            "acme",
            ClientSpec::new(
                "web",
                "client_secret_basic",
                &["authorization_code", "refresh_token"],
            ),
        )
        .await;
    let user = env.user("acme", "alice").await;
    env.settle().await;
    let (verifier, challenge) = pkce();
    let code = env
        .code(
            "acme",
            grant("web", &user, "openid profile", Some(&challenge)),
        )
        .await;
    let a = env
        .form_on(
            1,
            "acme",
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
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let r = env
        .form_on(
            2,
            "acme",
            "/token",
            Some(&web.basic()),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &a.str("refresh_token")),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let info = env
        .form_on(
            2,
            "acme",
            "/userinfo",
            None,
            &[("access_token", &r.str("access_token"))],
        )
        .await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.body);
    assert_eq!(info.body["preferred_username"], "alice");
    // The rotated token, replayed on yet another node, kills the family.
    let reuse = env
        .form_on(
            0,
            "acme",
            "/token",
            Some(&web.basic()),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &a.str("refresh_token")),
            ],
        )
        .await;
    assert_eq!(reuse.error(), "invalid_grant");
    let after = env
        .form_on(
            1,
            "acme",
            "/token",
            Some(&web.basic()),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &r.str("refresh_token")),
            ],
        )
        .await;
    assert_eq!(after.error(), "invalid_grant");
}
