//! Paged lists against a fake admin API on a socket, which gives the
//! several pages the real server cannot be made to give on demand.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::Value;

use crate::json;
use crate::support::{TOKEN, rsp_admin};

#[test]
fn paged_lists_follow_next_cursors_with_all_and_show_one_page_otherwise() {
    let server = FakeServer::start(|target| match target {
        "/admin/v1/tenants?limit=2" => r#"{"items":[{"id":"a"},{"id":"b"}],"next":"c1"}"#,
        "/admin/v1/tenants?limit=2&after=c1" => r#"{"items":[{"id":"c"}],"next":null}"#,
        _ => "",
    });
    let all = rsp_admin(
        &server.url,
        Some(TOKEN),
        &[
            "tenants", "list", "--limit", "2", "--all", "--output", "json",
        ],
        None,
    );
    all.expect(0);
    let ids: Vec<Value> = json(&all.stdout)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
    let page = rsp_admin(
        &server.url,
        Some(TOKEN),
        &["tenants", "list", "--limit", "2"],
        None,
    );
    page.expect(0);
    assert_eq!(page.stdout, "ID\na\nb\n");
    assert_eq!(page.stderr, "more: --after c1\n");
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.contains(&format!("authorization: Bearer {TOKEN}")))
    );
}

/// An HTTP/1.1 server on port 0 that answers each request with the JSON
/// `answer(path_and_query)` gives (404 when empty), and keeps the request
/// heads it saw. Its thread ends with the test process.
pub struct FakeServer {
    pub url: String,
    requests: Arc<Mutex<Vec<String>>>,
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
                let head = read_head(&mut stream);
                let target = head.split(' ').nth(1).unwrap_or("").to_owned();
                seen.lock().unwrap_or_else(|p| p.into_inner()).push(head);
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

    /// The request heads seen so far, header names in lower case.
    pub fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The request line and headers (names lower-cased), up to the blank line.
fn read_head(stream: &mut impl Read) -> String {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            return head;
        }
        match line.split_once(':') {
            Some((name, value)) if !head.is_empty() => {
                head.push_str(&format!("{}:{value}", name.to_ascii_lowercase()));
            }
            _ => head.push_str(&line),
        }
    }
}
