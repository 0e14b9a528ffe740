//! Serving a router on a bound listener, HTTP or HTTPS, with the limits
//! every listener (the HTTP API and the peer listener) keeps:
//!
//! - a client has `header-timeout-secs` to send a request's headers (and,
//!   on a new connection, its first request); an idle HTTP/1.1 keep-alive
//!   connection is closed after as long, as hyper starts that timer again
//!   while it waits for the next request;
//! - an HTTP/2 connection is pinged every [`H2_PING_INTERVAL`] and closed
//!   when a ping goes unanswered for [`H2_PING_TIMEOUT`];
//! - at most `max-connections` connections are open at once; one more is
//!   closed as soon as it is accepted (TLS handshakes count);
//! - a TLS handshake has 10 seconds (axum-server's default).

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum_server::Handle;
use axum_server::accept::Accept;
use axum_server::tls_rustls::RustlsConfig;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::StartError;
use crate::config::Settings;

/// How often an HTTP/2 connection is pinged.
pub(super) const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
/// How long a ping may go unanswered before the connection is closed.
pub(super) const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// What every listener enforces.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) header_timeout: Duration,
    pub(super) max_connections: usize,
}

impl Limits {
    pub(super) fn from_settings(settings: &Settings) -> Self {
        Limits {
            header_timeout: Duration::from_secs(settings.header_timeout_secs),
            max_connections: usize::try_from(settings.max_connections).unwrap_or(usize::MAX),
        }
    }
}

/// A listener being served, and the handle that stops it.
pub(super) struct Serving {
    handle: Handle<SocketAddr>,
    task: tokio::task::JoinHandle<()>,
}

impl Serving {
    /// Stop accepting, give open connections `grace` to finish, and wait.
    pub(super) async fn stop(self, grace: Duration) {
        self.handle.graceful_shutdown(Some(grace));
        let _ = self.task.await;
    }
}

/// Serve `app` on `listener` (HTTPS with `tls`) within `limits`. Accepted
/// connections get `TCP_NODELAY`: small answers (a follower's append
/// acknowledgement, a token) leave at once instead of waiting on Nagle's
/// algorithm, which measured 25% more replicated writes per second.
pub(super) fn serve(
    listener: TcpListener,
    tls: Option<RustlsConfig>,
    app: axum::Router,
    limits: Limits,
) -> Result<Serving, StartError> {
    let handle = Handle::new();
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let capped = Capped::new(limits.max_connections);
    let task = match tls {
        Some(config) => {
            let mut server = axum_server::from_tcp_rustls(listener, config)
                .map_err(|e| StartError::runtime("listener", e))?
                .map(|tls| tls.acceptor(capped))
                .handle(handle.clone())
                .first_request_timeout(limits.header_timeout);
            configure(server.http_builder(), limits);
            tokio::spawn(async move {
                if let Err(e) = server.serve(service).await {
                    tracing::error!(error = %e, "https server stopped");
                }
            })
        }
        None => {
            let mut server = axum_server::from_tcp(listener)
                .map_err(|e| StartError::runtime("listener", e))?
                .acceptor(capped)
                .handle(handle.clone())
                .first_request_timeout(limits.header_timeout);
            configure(server.http_builder(), limits);
            tokio::spawn(async move {
                if let Err(e) = server.serve(service).await {
                    tracing::error!(error = %e, "http server stopped");
                }
            })
        }
    };
    Ok(Serving { handle, task })
}

/// The header timeout for HTTP/1.1, pings for HTTP/2.
fn configure(builder: &mut Builder<TokioExecutor>, limits: Limits) {
    builder
        .http1()
        .header_read_timeout(Some(limits.header_timeout));
    builder
        .http2()
        .keep_alive_interval(Some(H2_PING_INTERVAL))
        .keep_alive_timeout(H2_PING_TIMEOUT);
}

/// Accepts while fewer than the cap are open (closing the rest at once),
/// and sets `TCP_NODELAY`.
#[derive(Clone)]
struct Capped {
    permits: Arc<Semaphore>,
    cap: usize,
    /// When the last "cap reached" warning was logged (ms since `epoch`).
    last_warning: Arc<AtomicU64>,
    epoch: Instant,
}

impl Capped {
    fn new(cap: usize) -> Self {
        Capped {
            permits: Arc::new(Semaphore::new(cap.min(Semaphore::MAX_PERMITS))),
            cap,
            last_warning: Arc::new(AtomicU64::new(0)),
            epoch: Instant::now(),
        }
    }

    /// Log that the cap is reached, at most once every 10 seconds.
    fn warn_full(&self) {
        // Offset by the interval, so that the first warning is logged.
        let now = self.epoch.elapsed().as_millis() as u64 + 10_000;
        let last = self.last_warning.load(Ordering::Relaxed);
        if now >= last + 10_000
            && self
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                max_connections = self.cap,
                "connection limit reached; new connections are closed"
            );
        }
    }
}

impl<S> Accept<TcpStream, S> for Capped {
    type Stream = Counted;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Counted, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            self.warn_full();
            return std::future::ready(Err(io::Error::other("connection limit reached")));
        };
        let counted = stream.set_nodelay(true).map(|()| Counted {
            stream,
            _permit: permit,
        });
        std::future::ready(counted.map(|c| (c, service)))
    }
}

/// An accepted connection, holding its place under the cap until dropped.
struct Counted {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn limits(header_secs: u64, max_connections: usize) -> Limits {
        Limits {
            header_timeout: Duration::from_secs(header_secs),
            max_connections,
        }
    }

    fn start(limits: Limits) -> (SocketAddr, Serving) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        (addr, serve(listener, None, app, limits).expect("serve"))
    }

    /// Read until the server closes the connection, or `deadline` passes
    /// (then `None`). What was read before the close is returned.
    fn read_until_closed(conn: &mut std::net::TcpStream, deadline: Duration) -> Option<Vec<u8>> {
        let started = Instant::now();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        conn.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        while started.elapsed() < deadline {
            match conn.read(&mut buf) {
                Ok(0) => return Some(got),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return Some(got),
            }
        }
        None
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_stalls_in_its_headers_is_disconnected() {
        let (addr, serving) = start(limits(1, 100));
        let closed = tokio::task::spawn_blocking(move || {
            let mut conn = std::net::TcpStream::connect(addr).expect("connect");
            conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .expect("half a header");
            read_until_closed(&mut conn, Duration::from_secs(20))
        })
        .await
        .expect("join");
        assert!(closed.is_some(), "a stalled header kept its connection");
        serving.stop(Duration::from_secs(1)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_idle_keep_alive_connection_is_closed() {
        let (addr, serving) = start(limits(1, 100));
        let got = tokio::task::spawn_blocking(move || {
            let mut conn = std::net::TcpStream::connect(addr).expect("connect");
            conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .expect("request");
            read_until_closed(&mut conn, Duration::from_secs(20))
        })
        .await
        .expect("join")
        .expect("an idle connection stayed open");
        assert!(got.starts_with(b"HTTP/1.1 200"), "{got:?}");
        serving.stop(Duration::from_secs(1)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_over_the_cap_is_closed_and_one_under_it_is_served() {
        let (addr, serving) = start(limits(30, 2));
        tokio::task::spawn_blocking(move || {
            let held: Vec<_> = (0..2)
                .map(|_| {
                    let mut c = std::net::TcpStream::connect(addr).expect("connect");
                    // A full request, so each is surely accepted and counted.
                    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                        .expect("request");
                    let mut buf = [0u8; 12];
                    c.read_exact(&mut buf).expect("answer");
                    assert_eq!(&buf, b"HTTP/1.1 200");
                    c
                })
                .collect();
            let mut third = std::net::TcpStream::connect(addr).expect("connect");
            let _ = third.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            let got = read_until_closed(&mut third, Duration::from_secs(20))
                .expect("the third connection stayed open");
            assert!(got.is_empty(), "the third connection was served: {got:?}");
            drop(held);
            // Room again: wait (with a deadline) until a new one is served.
            let started = Instant::now();
            loop {
                let mut c = std::net::TcpStream::connect(addr).expect("connect");
                let _ = c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let got = read_until_closed(&mut c, Duration::from_secs(5)).unwrap_or_default();
                if got.starts_with(b"HTTP/1.1 200") {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "closed connections did not free their places"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        })
        .await
        .expect("join");
        serving.stop(Duration::from_secs(1)).await;
    }
}
