//! `--otlp-endpoint`: a node exports its request spans over OTLP/HTTP
//! (protobuf) to `{endpoint}/v1/traces`. A small collector on 127.0.0.1
//! (port 0) receives them; the spans name the route template and the
//! resource names the service, and nothing of the raw request path (which
//! can carry tokens or user names) is exported.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rsp_tests::{put_acked, spec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// One request the collector received.
pub(crate) struct Export {
    pub(crate) request_line: String,
    pub(crate) content_type: String,
    pub(crate) body: Vec<u8>,
}

/// An OTLP/HTTP collector on 127.0.0.1, port 0: its base URL (for
/// `--otlp-endpoint`) and what it receives, in order.
pub(crate) async fn collector() -> Result<(String, mpsc::UnboundedReceiver<Export>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = serve(stream, tx).await;
            });
        }
    });
    Ok((endpoint, rx))
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Answer every HTTP/1.1 request on `stream` with an empty 200, sending
/// what was received to `tx`.
async fn serve(mut stream: TcpStream, tx: mpsc::UnboundedSender<Export>) -> Result<()> {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let header = |name: &str| {
            head.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
        };
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .context("the exporter sends a content-length")?;
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("the exporter closed mid-body");
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = buf[head_end..head_end + len].to_vec();
        buf.drain(..head_end + len);
        let _ = tx.send(Export {
            request_line: head.lines().next().unwrap_or_default().to_string(),
            content_type: header("content-type").unwrap_or_default(),
            body,
        });
        stream
            .write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
            )
            .await?;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_spans_reach_the_otlp_endpoint_with_route_templates_only() -> Result<()> {
    let (endpoint, mut rx) = collector().await?;

    let mut spec = spec(1);
    spec.args.extend(["--otlp-endpoint".to_string(), endpoint]);
    // Export every 200 ms instead of every 5 s.
    spec.env
        .push(("OTEL_BSP_SCHEDULE_DELAY".to_string(), "200".to_string()));
    let cluster = rsp_chaos::Cluster::start(spec).await?;
    let leader = cluster
        .wait_for_leader(rsp_tests::CONVERGE)
        .await
        .context("the node leads")?;
    let client = cluster.client(leader)?;
    const KEY: &str = "a-key-that-must-not-be-exported";
    put_acked(&client, KEY, "1").await?;

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!(
                "no exported span named the KV route within 30 s; requests seen: {:?}",
                seen
            );
        }
        let Ok(Some(export)) = tokio::time::timeout(left, rx.recv()).await else {
            continue;
        };
        seen.push(export.request_line.clone());
        assert!(
            export.request_line.starts_with("POST /v1/traces "),
            "{}",
            export.request_line
        );
        assert_eq!(export.content_type, "application/x-protobuf");
        // Protobuf keeps strings as raw bytes: the resource's service name
        // and the span names are readable in the body.
        assert!(find(&export.body, b"rsp").is_some(), "service.name is rsp");
        assert!(
            find(&export.body, KEY.as_bytes()).is_none(),
            "the raw request path was exported"
        );
        if find(&export.body, b"/admin/v1/kv/").is_some() {
            assert!(
                find(&export.body, b"http.route").is_some(),
                "spans carry http.route"
            );
            break;
        }
    }
    Ok(())
}
