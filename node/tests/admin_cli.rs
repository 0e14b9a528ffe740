//! `rsp admin` against a real one-node cluster (`rsp serve` as a child on
//! port 0), and against a small fake server (`fake_api`) for paging and route coverage: what it prints in
//! table and JSON form, that secrets come from stdin, and the exit codes
//! scripts rely on (docs/cli.md).

#[path = "admin_cli/fake_api.rs"]
mod fake_api;
#[path = "admin_cli/support.rs"]
mod support;

use std::fs;

use serde_json::Value;
use support::{Node, TOKEN, closed_port_url, rsp, rsp_admin};

pub(crate) fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[test]
fn tenants_users_and_clients_are_created_and_shown_as_tables_and_json() {
    let node = Node::start();
    let out = node.admin(
        &["tenants", "create", "acme", "--display-name", "Acme Corp"],
        None,
    );
    out.expect(0);
    assert!(out.stdout.contains("acme"), "{}", out.stdout);

    let table = node.admin(&["tenants", "get", "acme"], None);
    table.expect(0);
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.starts_with("display_name:") && l.ends_with("Acme Corp"))
    );
    let got = node.admin(&["tenants", "get", "acme", "--output", "json"], None);
    got.expect(0);
    assert_eq!(json(&got.stdout)["display_name"], "Acme Corp");

    let again = node.admin(&["tenants", "create", "acme"], None);
    again.expect(5);
    assert!(
        again.stderr.starts_with("error: tenant_exists: "),
        "{}",
        again.stderr
    );
    let missing = node.admin(&["tenants", "get", "nope"], None);
    missing.expect(4);
    assert!(
        missing.stderr.starts_with("error: tenant_not_found: "),
        "{}",
        missing.stderr
    );

    let password = "correct horse battery staple 42";
    let args = [
        "users",
        "create",
        "--tenant",
        "acme",
        "--username",
        "bob",
        "--password-stdin",
        "--email",
        "bob@example.com",
        "--attribute",
        "team=blue",
        "--output",
        "json",
    ];
    assert!(!args.iter().any(|a| a.contains("horse")));
    let user = node.admin(&args, Some(&format!("{password}\n")));
    user.expect(0);
    assert!(!user.stdout.contains(password) && !user.stderr.contains(password));
    let user_id = json(&user.stdout)["id"]
        .as_str()
        .expect("a user id")
        .to_owned();
    let no_password = node.admin(
        &[
            "users",
            "create",
            "-t",
            "acme",
            "--username",
            "eve",
            "--password-stdin",
        ],
        Some(""),
    );
    no_password.expect(2);
    assert!(
        no_password.stderr.contains("no password on stdin"),
        "{}",
        no_password.stderr
    );

    let patched = node.admin(
        &[
            "users",
            "update",
            "-t",
            "acme",
            &user_id,
            "--attribute",
            "rsp_admin=true",
            "--output",
            "json",
        ],
        None,
    );
    patched.expect(0);
    assert_eq!(json(&patched.stdout)["attributes"]["rsp_admin"], true);

    let client = node.admin(
        &[
            "clients",
            "create",
            "-t",
            "acme",
            "--client-id",
            "svc",
            "--grant-type",
            "client_credentials",
            "--auth-method",
            "client_secret_basic",
            "--output",
            "json",
        ],
        None,
    );
    client.expect(0);
    let client = json(&client.stdout);
    assert_eq!(client["client_id"], "svc");
    assert!(
        client["client_secret"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    let bad_client = node.admin(
        &[
            "clients",
            "create",
            "-t",
            "acme",
            "--grant-type",
            "nonsense",
        ],
        None,
    );
    bad_client.expect(1);
    assert!(
        bad_client.stderr.starts_with("error: "),
        "{}",
        bad_client.stderr
    );
}

#[test]
fn policies_are_put_from_a_file_and_an_invalid_set_exits_1_with_cedar_diagnostics() {
    let node = Node::start();
    node.admin(&["tenants", "create", "shop"], None).expect(0);
    let file = node.dir.path().join("policies.cedar");
    fs::write(
        &file,
        "@id(\"all\")\npermit(principal, action, resource);\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    node.admin(&["policies", "put", "-t", "shop", "--file", file], None)
        .expect(0);
    let text = node.admin(&["policies", "get", "-t", "shop"], None);
    text.expect(0);
    assert!(
        text.stdout.contains("permit(principal, action, resource);"),
        "{}",
        text.stdout
    );

    let invalid = node.admin(
        &["policies", "put", "-t", "shop", "--file", "-"],
        Some("permit(principal, action, resource);\nforbid(principal action, resource);\n"),
    );
    invalid.expect(1);
    let mut lines = invalid.stderr.lines();
    assert!(
        lines.next().is_some_and(|l| l.starts_with("error: ")),
        "{}",
        invalid.stderr
    );
    assert!(
        lines.any(|l| l.starts_with("  - ") && l.contains("at line 2")),
        "{}",
        invalid.stderr
    );
    let versions = node.admin(
        &["policies", "versions", "-t", "shop", "--output", "json"],
        None,
    );
    versions.expect(0);
    assert_eq!(
        json(&versions.stdout)["current"],
        1,
        "the invalid set was not stored"
    );

    node.admin(
        &["entities", "put", "-t", "shop", "--file", "-"],
        Some("[]"),
    )
    .expect(0);
}

#[test]
fn cluster_status_and_the_kv_space_answer_and_a_missing_key_exits_4() {
    let node = Node::start();
    let status = node.admin(&["cluster", "status"], None);
    status.expect(0);
    assert!(
        status.stdout.lines().any(|l| l.starts_with("leader:")),
        "{}",
        status.stdout
    );
    assert!(status.stdout.contains("members:"), "{}", status.stdout);
    let status = node.admin(&["cluster", "status", "--output", "json"], None);
    status.expect(0);
    assert_eq!(
        json(&status.stdout)["members"].as_array().map(Vec::len),
        Some(1)
    );

    node.admin(&["kv", "put", "app/colour", "blue"], None)
        .expect(0);
    let got = node.admin(&["kv", "get", "app/colour", "--output", "json"], None);
    got.expect(0);
    assert_eq!(json(&got.stdout)["value"], "blue");
    let table = node.admin(&["kv", "get", "app/colour"], None);
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.starts_with("value:") && l.ends_with("blue"))
    );
    node.admin(&["kv", "delete", "app/colour"], None).expect(0);
    let gone = node.admin(&["kv", "get", "app/colour"], None);
    gone.expect(4);
    assert!(
        gone.stderr.starts_with("error: key_not_found"),
        "{}",
        gone.stderr
    );
}

#[test]
fn a_wrong_token_exits_1_and_no_token_exits_2() {
    let node = Node::start();
    let wrong = rsp_admin(
        &node.url,
        Some("w".repeat(40).as_str()),
        &["cluster", "status"],
        None,
    );
    wrong.expect(1);
    assert!(
        wrong.stderr.starts_with("error: invalid_token"),
        "{}",
        wrong.stderr
    );
    let none = rsp_admin(&node.url, None, &["cluster", "status"], None);
    none.expect(2);
    assert!(none.stderr.contains("RSP_ADMIN_TOKEN"), "{}", none.stderr);
    let file = node.dir.path().join("token");
    fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let by_file = rsp_admin(
        &node.url,
        None,
        &[
            "--admin-token-file",
            file.to_str().unwrap(),
            "cluster",
            "status",
        ],
        None,
    );
    by_file.expect(0);
    assert!(!by_file.stdout.contains(TOKEN) && !by_file.stderr.contains(TOKEN));
}

#[test]
fn audit_and_usage_show_the_trail_and_the_days() {
    let node = Node::start();
    node.admin(&["tenants", "create", "acme"], None).expect(0);
    let listed = node.admin(
        &[
            "audit", "list", "-t", "acme", "--type", "tenant.*", "--output", "json",
        ],
        None,
    );
    listed.expect(0);
    let items = json(&listed.stdout)["items"].clone();
    assert_eq!(items[0]["type"], "tenant.created", "{items}");
    assert_eq!(items[0]["actor"], "operator", "{items}");
    let table = node.admin(&["audit", "list", "-t", "acme"], None);
    table.expect(0);
    assert!(table.stdout.contains("tenant.created"), "{}", table.stdout);
    let export = node.admin(&["audit", "export", "-t", "acme"], None);
    export.expect(0);
    let lines: Vec<&str> = export.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", export.stdout);
    assert_eq!(json(lines[0])["type"], "tenant.created");
    let usage = node.admin(&["usage", "-t", "acme", "--output", "json"], None);
    usage.expect(0);
    assert_eq!(
        json(&usage.stdout)["days"].as_array().map(Vec::len),
        Some(30)
    );
    // A bad filter is the server's clear error.
    let bad = node.admin(&["audit", "list", "-t", "acme", "--outcome", "maybe"], None);
    assert!(bad.stderr.starts_with("error: "), "{}", bad.stderr);
    assert!(bad.stdout.is_empty(), "{}", bad.stdout);
}

#[test]
fn the_lifecycle_commands_list_change_disable_and_delete() {
    let node = Node::start();
    node.admin(&["tenants", "create", "acme"], None).expect(0);
    let listed = node.admin(&["tenants", "list", "--output", "json"], None);
    listed.expect(0);
    assert_eq!(json(&listed.stdout)["items"][0]["id"], "acme");

    // Settings by flag: JSON values, and a refused one named by the server.
    let set = node.admin(
        &[
            "tenants",
            "update",
            "acme",
            "--set",
            "max_users=10",
            "--set",
            "password_blocklist=[\"acme\"]",
            "--output",
            "json",
        ],
        None,
    );
    set.expect(0);
    assert_eq!(json(&set.stdout)["settings"]["max_users"], 10);
    assert_eq!(
        json(&set.stdout)["settings"]["password_blocklist"][0],
        "acme"
    );
    let refused = node.admin(&["tenants", "update", "acme", "--set", "max_users=0"], None);
    refused.expect(1);
    assert!(
        refused.stderr.contains("settings.max_users"),
        "{}",
        refused.stderr
    );

    let user = node.admin(
        &[
            "users",
            "create",
            "-t",
            "acme",
            "--username",
            "bob",
            "--password-stdin",
            "--output",
            "json",
        ],
        Some("correct horse battery staple\n"),
    );
    user.expect(0);
    let id = json(&user.stdout)["id"].as_str().expect("id").to_owned();
    let users = node.admin(&["users", "list", "-t", "acme", "--output", "json"], None);
    users.expect(0);
    assert_eq!(json(&users.stdout)["items"][0]["id"], id.as_str());
    let disabled = node.admin(
        &[
            "users",
            "update",
            "-t",
            "acme",
            &id,
            "--disable",
            "--output",
            "json",
        ],
        None,
    );
    disabled.expect(0);
    assert_eq!(json(&disabled.stdout)["disabled"], true);
    node.admin(
        &[
            "users",
            "set-password",
            "-t",
            "acme",
            &id,
            "--password-stdin",
        ],
        Some("another long passphrase\n"),
    )
    .expect(0);

    let client = node.admin(
        &[
            "clients",
            "create",
            "-t",
            "acme",
            "--client-id",
            "svc",
            "--grant-type",
            "client_credentials",
            "--auth-method",
            "client_secret_basic",
            "--output",
            "json",
        ],
        None,
    );
    client.expect(0);
    let old = json(&client.stdout)["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let rotated = node.admin(
        &[
            "clients",
            "rotate-secret",
            "-t",
            "acme",
            "svc",
            "--output",
            "json",
        ],
        None,
    );
    rotated.expect(0);
    let new = json(&rotated.stdout)["client_secret"]
        .as_str()
        .expect("new secret")
        .to_owned();
    assert_ne!(old, new);

    // Deleting a tenant asks first; without a terminal, --force is needed.
    let refused = node.admin(&["tenants", "delete", "acme"], None);
    refused.expect(2);
    node.admin(&["tenants", "get", "acme"], None).expect(0);
    node.admin(&["users", "delete", "-t", "acme", &id], None)
        .expect(0);
    node.admin(&["users", "get", "-t", "acme", &id], None)
        .expect(4);
    node.admin(&["tenants", "delete", "acme", "--force"], None)
        .expect(0);
    node.admin(&["tenants", "get", "acme"], None).expect(4);
}

#[test]
fn an_unreachable_url_exits_3() {
    let out = rsp_admin(
        &closed_port_url(),
        Some(TOKEN),
        &["tenants", "get", "acme"],
        None,
    );
    out.expect(3);
    assert!(
        out.stderr.starts_with("error: cannot connect to "),
        "{}",
        out.stderr
    );
    let https = rsp_admin(
        "https://127.0.0.1:1",
        Some(TOKEN),
        &["cluster", "status"],
        None,
    );
    https.expect(3);
}

#[test]
fn completions_help_and_usage_errors_need_no_server() {
    let bash = rsp(&["completions", "bash"], None);
    bash.expect(0);
    assert!(
        bash.stdout.contains("rsp") && bash.stdout.contains("admin") && bash.stdout.len() > 1000
    );
    let help = rsp(&["--help"], None);
    help.expect(0);
    for command in ["serve", "admin", "completions"] {
        assert!(
            help.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(command)),
            "{}",
            help.stdout
        );
    }
    rsp_admin(
        "http://127.0.0.1:1",
        Some(TOKEN),
        &["tenants", "frobnicate"],
        None,
    )
    .expect(2);
    let unconfirmed = rsp_admin(
        "http://127.0.0.1:1",
        Some(TOKEN),
        &["tenants", "delete", "acme"],
        None,
    );
    unconfirmed.expect(2);
    assert!(
        unconfirmed.stderr.contains("--force"),
        "{}",
        unconfirmed.stderr
    );
}
