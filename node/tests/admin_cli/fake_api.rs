//! `rsp admin` against a fake admin API on a socket: several pages (which
//! the real server cannot be made to give on demand), and every route of
//! the admin API and of the contract reached by some command.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::Value;

use crate::json;
use crate::support::{TOKEN, rsp_admin, run};

#[test]
fn paged_lists_follow_next_cursors_with_all_and_show_one_page_otherwise() {
    let server = FakeServer::start(|target| match target {
        "/admin/v1/tenants?limit=2" => r#"{"items":[{"id":"a"},{"id":"b"}],"next":"c1"}"#,
        "/admin/v1/tenants?limit=2&after=c1" => r#"{"items":[{"id":"c"}],"next":null}"#,
        _ => "",
    });
    let args = [
        "tenants", "list", "--limit", "2", "--all", "--output", "json",
    ];
    let all = rsp_admin(&server.url, Some(TOKEN), &args, None);
    all.expect(0);
    let items = json(&all.stdout)["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ids: Vec<&Value> = items.iter().map(|t| &t["id"]).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    let args = ["tenants", "list", "--limit", "2"];
    let page = rsp_admin(&server.url, Some(TOKEN), &args, None);
    page.expect(0);
    assert_eq!(page.stdout, "ID\na\nb\n");
    assert_eq!(page.stderr, "more: --after c1\n");
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let bearer = format!("authorization: Bearer {TOKEN}");
    assert!(requests.iter().all(|r| r.head.contains(&bearer)));
}

/// The contract's admin table, method by method.
const CONTRACT: &[(&str, &str)] = &[
    ("POST", "/admin/v1/tenants"),
    ("GET", "/admin/v1/tenants"),
    ("GET", "/admin/v1/tenants/{t}"),
    ("PATCH", "/admin/v1/tenants/{t}"),
    ("DELETE", "/admin/v1/tenants/{t}"),
    ("POST", "/admin/v1/tenants/{t}/users"),
    ("GET", "/admin/v1/tenants/{t}/users"),
    ("GET", "/admin/v1/tenants/{t}/users/{id}"),
    ("PATCH", "/admin/v1/tenants/{t}/users/{id}"),
    ("PUT", "/admin/v1/tenants/{t}/users/{id}/password"),
    ("DELETE", "/admin/v1/tenants/{t}/users/{id}"),
    ("POST", "/admin/v1/tenants/{t}/users/{id}/factors"),
    ("GET", "/admin/v1/tenants/{t}/users/{id}/factors"),
    ("DELETE", "/admin/v1/tenants/{t}/users/{id}/factors/{f}"),
    ("POST", "/admin/v1/tenants/{t}/clients"),
    ("GET", "/admin/v1/tenants/{t}/clients"),
    ("GET", "/admin/v1/tenants/{t}/clients/{id}"),
    ("PATCH", "/admin/v1/tenants/{t}/clients/{id}"),
    ("DELETE", "/admin/v1/tenants/{t}/clients/{id}"),
    ("POST", "/admin/v1/tenants/{t}/clients/{id}/secret"),
    ("PUT", "/admin/v1/tenants/{t}/policies"),
    ("PUT", "/admin/v1/tenants/{t}/entities"),
    ("POST", "/admin/v1/tenants/{t}/saml/service-providers"),
    ("GET", "/admin/v1/tenants/{t}/saml/service-providers"),
    ("DELETE", "/admin/v1/tenants/{t}/saml/service-providers/{e}"),
    ("GET", "/admin/v1/tenants/{t}/audit"),
    ("GET", "/admin/v1/tenants/{t}/usage"),
    ("GET", "/admin/v1/openapi.json"),
    ("GET", "/admin/v1/cluster"),
    ("POST", "/admin/v1/cluster/nodes"),
    ("DELETE", "/admin/v1/cluster/nodes/{id}"),
];

/// One command per call of the admin API, with its stdin.
const COMMANDS: &[(&str, &str)] = &[
    (
        "tenants create acme --display-name Acme --home-region eu",
        "",
    ),
    ("tenants get acme", ""),
    ("tenants list", ""),
    ("tenants update acme --display-name Acme2", ""),
    ("tenants delete acme --force", ""),
    (
        "users create -t acme --username bob --password-stdin --attribute n=1",
        "s3cret pw\n",
    ),
    ("users get -t acme u1", ""),
    ("users list -t acme --username bob", ""),
    (
        "users update -t acme u1 --email b@example.com --disable",
        "",
    ),
    ("users delete -t acme u1", ""),
    ("users set-password -t acme u1 --password-stdin", "n3w pw"),
    (
        "clients create -t acme --grant-type client_credentials --auth-method none",
        "",
    ),
    ("clients get -t acme c1", ""),
    ("clients list -t acme", ""),
    ("clients update -t acme c1 --require-consent", ""),
    ("clients delete -t acme c1", ""),
    ("clients rotate-secret -t acme c1", ""),
    ("factors list -t acme --user u1", ""),
    (
        "factors import -t acme --user u1 --secret-stdin",
        "JBSWY3DPEHPK3PXP\n",
    ),
    ("factors delete -t acme --user u1 f1", ""),
    ("factors reset -t acme --user u1", ""),
    ("sessions list -t acme --user u1", ""),
    ("sessions revoke -t acme s1", ""),
    ("sessions revoke-all -t acme --user u1", ""),
    ("keys list -t acme", ""),
    ("keys rotate -t acme --alg ES256", ""),
    ("keys settings -t acme --retire-days 3", ""),
    ("mfa-policy get -t acme", ""),
    ("mfa-policy set -t acme --mode required", ""),
    ("policies get -t acme --output json", ""),
    (
        "policies put -t acme --file -",
        "permit(principal, action, resource);",
    ),
    ("policies versions -t acme", ""),
    ("policies version -t acme 2", ""),
    ("policies restore -t acme 1", ""),
    ("policies links -t acme", ""),
    (
        "policies link -t acme l1 --template t1 --value ?principal=User::\"a\"",
        "",
    ),
    ("policies unlink -t acme l1", ""),
    ("entities get -t acme", ""),
    ("entities put -t acme --file -", "[]"),
    (
        "saml sps create -t acme --entity-id https://sp/x --acs-url https://sp/acs",
        "",
    ),
    ("saml sps get -t acme https://sp/x", ""),
    ("saml sps list -t acme", ""),
    (
        "saml sps update -t acme https://sp/x --acs-url https://sp/acs2",
        "",
    ),
    ("saml sps delete -t acme https://sp/x", ""),
    ("cluster status", ""),
    ("cluster add-node --id 2 --peer-addr 127.0.0.1:7082", ""),
    ("cluster remove-node 2", ""),
    ("cluster kek-status", ""),
    ("cluster kek-rotate --wait-secs 5", ""),
    ("kv get a/b", ""),
    ("kv put a/b v", ""),
    ("kv delete a/b", ""),
    (
        "kv txn --file -",
        "{\"compare\": [], \"success\": [], \"failure\": []}",
    ),
    ("kv watch --prefix a/", ""),
    ("audit list -t acme --type login.failed", ""),
    ("audit export -t acme --from 2026-12-01", ""),
    ("audit cluster --type cluster.*", ""),
    ("usage -t acme --from 2026-12-01", ""),
    ("openapi", ""),
];

#[test]
fn every_admin_route_and_every_call_of_the_contract_has_a_command() {
    let server = FakeServer::start(|_| r#"{"items":[],"next":null}"#);
    for (command, stdin) in COMMANDS {
        let args: Vec<&str> = command.split(' ').collect();
        rsp_admin(&server.url, Some(TOKEN), &args, Some(stdin)).expect(0);
    }
    // `rsp backup` calls the backup route; this server's answer is no
    // backup, so it exits 3 and leaves no file, partial or whole.
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("rsp.backup");
    let file_arg = file.to_str().expect("path");
    run(
        &["backup", "--url", &server.url, "--out", file_arg],
        &[("RSP_ADMIN_TOKEN", TOKEN)],
        None,
    )
    .expect(3);
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    let requests = server.requests();
    let reached = |method: Option<&str>, pattern: &str| {
        requests
            .iter()
            .any(|r| method.is_none_or(|m| m == r.method) && matches(pattern, &r.path))
    };
    for pattern in rsp_api::admin::routes().paths() {
        assert!(reached(None, pattern), "no command calls {pattern}");
    }
    for (method, pattern) in CONTRACT {
        assert!(
            reached(Some(method), pattern),
            "no command calls {method} {pattern}"
        );
    }
    // Secrets went from stdin into the bodies, whole.
    let bodies: Vec<&str> = requests.iter().map(|r| r.body.as_str()).collect();
    assert!(bodies.contains(&r#"{"username":"bob","attributes":{"n":1},"password":"s3cret pw"}"#));
    assert!(bodies.contains(&r#"{"password":"n3w pw"}"#));
    assert!(bodies.contains(&r#"{"type":"totp","secret":"JBSWY3DPEHPK3PXP"}"#));
    // An entity id URL stays one path segment.
    assert!(
        requests
            .iter()
            .any(|r| r.path.ends_with("/service-providers/https:%2F%2Fsp%2Fx"))
    );
}

/// `path` fits `pattern`, whose `{...}` segments take any one segment.
fn matches(pattern: &str, path: &str) -> bool {
    let (p, s): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
    p.len() == s.len()
        && p.iter()
            .zip(&s)
            .all(|(p, s)| p == s || (p.starts_with('{') && !s.is_empty()))
}

/// A request the fake server saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Without the query.
    pub path: String,
    /// The request line and headers, names lower-cased.
    pub head: String,
    pub body: String,
}

/// An HTTP/1.1 server on port 0 that answers each request with the JSON
/// `answer(path_and_query)` gives (404 when empty), and keeps the requests
/// it saw. Its thread ends with the test process.
pub struct FakeServer {
    pub url: String,
    requests: Arc<Mutex<Vec<Seen>>>,
}

impl FakeServer {
    pub fn start(answer: fn(&str) -> &'static str) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(request) = read_request(&mut stream) else {
                    continue;
                };
                let target = request.head.split(' ').nth(1).unwrap_or("").to_owned();
                seen.lock().unwrap_or_else(|p| p.into_inner()).push(request);
                let body = answer(&target);
                let status = if body.is_empty() {
                    "404 Not Found"
                } else {
                    "200 OK"
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        FakeServer { url, requests }
    }

    /// The requests seen so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// One request: its head up to the blank line, then `content-length` bytes.
fn read_request(stream: &mut impl Read) -> Option<Seen> {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        match line.split_once(':') {
            Some((name, value)) if !head.is_empty() => {
                let name = name.to_ascii_lowercase();
                if name == "content-length" {
                    length = value.trim().parse().ok()?;
                }
                head.push_str(&format!("{name}:{value}"));
            }
            _ => head.push_str(&line),
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let mut words = head.split(' ');
    let method = words.next()?.to_owned();
    let target = words.next()?;
    Some(Seen {
        method,
        path: target.split('?').next()?.to_owned(),
        head: head.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
