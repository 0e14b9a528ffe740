//! A fault-injecting TCP proxy for one directed peer link.
//!
//! Node `i` reaches node `j` only through the proxy of link `i -> j` (the
//! node is started with `--peer-route j=<proxy addr>`). Every TCP connection
//! node `i` opens to `j` goes through it, so a fault on the link affects `i`'s
//! requests to `j` *and* `j`'s answers on those connections; `j`'s own
//! connections to `i` use the link `j -> i`. A full partition between two
//! nodes therefore sets both directed links down.
//!
//! Faults (see [`LinkFaults`]):
//! - **down**: new connections are accepted and reset at once, and every live
//!   connection is aborted with a TCP reset immediately;
//! - **latency and jitter**: every chunk read on either side is delivered
//!   `latency ± jitter` later (so a request/response round trip pays it
//!   twice). Chunks never overtake each other, as bytes on a TCP stream can't;
//! - **loss**: TCP never loses bytes, it retransmits them. Loss is emulated as
//!   what the application sees: with probability `loss` a chunk is held back
//!   for `loss_penalty` (default 200 ms, about a minimum retransmission
//!   timeout), and everything behind it waits too (head-of-line blocking);
//! - **bandwidth**: an optional throttle in bytes per second per direction.
//!
//! The target can change at run time (new connections use the new target).
//! The proxy runs on the current Tokio runtime; dropping it stops the listener
//! and every connection it carries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use rand::Rng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// How long the proxy waits to connect to its target.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Read size per chunk.
const CHUNK: usize = 16 * 1024;
/// Chunks buffered per direction before reads stop (back pressure).
const QUEUE: usize = 64;

/// The faults currently applied to a link.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkFaults {
    pub down: bool,
    pub latency: Duration,
    /// Each chunk's delay is `latency` plus a uniform value in
    /// `[-jitter, +jitter]`, never below zero.
    pub jitter: Duration,
    /// Probability in `[0, 1]` that a chunk pays `loss_penalty`.
    pub loss: f64,
    pub loss_penalty: Duration,
    /// Bytes per second per direction; `None` is unlimited.
    pub bandwidth: Option<u64>,
}

impl Default for LinkFaults {
    fn default() -> Self {
        Self {
            down: false,
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            loss_penalty: Duration::from_millis(200),
            bandwidth: None,
        }
    }
}

impl LinkFaults {
    /// No faults at all.
    pub fn healthy() -> Self {
        Self::default()
    }

    /// The link is cut.
    pub fn down() -> Self {
        Self {
            down: true,
            ..Self::default()
        }
    }

    /// Added delay per chunk.
    pub fn delayed(latency: Duration, jitter: Duration) -> Self {
        Self {
            latency,
            jitter,
            ..Self::default()
        }
    }

    /// The delay the next chunk gets.
    fn chunk_delay(&self) -> Duration {
        let mut delay = self.latency;
        if !self.jitter.is_zero() || self.loss > 0.0 {
            let mut rng = rand::rng();
            if !self.jitter.is_zero() {
                let j = self.jitter.as_micros().min(i64::MAX as u128) as i64;
                let offset = rng.random_range(-j..=j);
                let base = delay.as_micros().min(i64::MAX as u128) as i64;
                delay = Duration::from_micros(base.saturating_add(offset).max(0) as u64);
            }
            if self.loss > 0.0 && rng.random_bool(self.loss.clamp(0.0, 1.0)) {
                delay += self.loss_penalty;
            }
        }
        delay
    }
}

/// Counters of one proxy, for tests and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections forwarded to the target.
    pub forwarded: u64,
    /// Connections reset at once (link down, no target, target unreachable).
    pub refused: u64,
    /// Live connections aborted because the link went down.
    pub aborted: u64,
    /// Connections open right now.
    pub active: u64,
    /// Bytes delivered, both directions.
    pub bytes: u64,
}

#[derive(Default)]
struct Counters {
    forwarded: AtomicU64,
    refused: AtomicU64,
    aborted: AtomicU64,
    active: AtomicU64,
    bytes: AtomicU64,
}

struct Shared {
    target: watch::Sender<Option<SocketAddr>>,
    faults: watch::Sender<LinkFaults>,
    counters: Counters,
}

/// A proxy for one directed link, listening on `127.0.0.1:<port>`.
pub struct LinkProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl LinkProxy {
    /// Binds `127.0.0.1:0` and starts forwarding to `target` (connections
    /// are reset while the target is `None`).
    pub async fn bind(target: Option<SocketAddr>) -> Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("binding a link proxy")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target: watch::Sender::new(target),
            faults: watch::Sender::new(LinkFaults::default()),
            counters: Counters::default(),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Self { addr, shared, task })
    }

    /// Where nodes connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn target(&self) -> Option<SocketAddr> {
        *self.shared.target.borrow()
    }

    /// New connections go to `target` from now on.
    pub fn set_target(&self, target: Option<SocketAddr>) {
        self.shared.target.send_replace(target);
    }

    pub fn faults(&self) -> LinkFaults {
        self.shared.faults.borrow().clone()
    }

    /// Replaces the link's faults; going down aborts live connections.
    pub fn set_faults(&self, faults: LinkFaults) {
        self.shared.faults.send_replace(faults);
    }

    /// Changes part of the link's faults.
    pub fn update_faults(&self, f: impl FnOnce(&mut LinkFaults)) {
        self.shared.faults.send_modify(f);
    }

    /// Cuts (`true`) or restores (`false`) the link, keeping other faults.
    pub fn set_down(&self, down: bool) {
        self.shared.faults.send_if_modified(|f| {
            let changed = f.down != down;
            f.down = down;
            changed
        });
    }

    pub fn stats(&self) -> ProxyStats {
        let c = &self.shared.counters;
        ProxyStats {
            forwarded: c.forwarded.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            aborted: c.aborted.load(Ordering::Relaxed),
            active: c.active.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
        }
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        // Dropping the accept task drops its JoinSet, which aborts every
        // connection task.
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => {
                    conns.spawn(handle(socket, shared.clone()));
                }
                // E.g. out of file descriptors: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Closes a socket with a TCP reset.
fn reset(socket: TcpStream) {
    let _ = socket.set_zero_linger();
    drop(socket);
}

async fn handle(inbound: TcpStream, shared: Arc<Shared>) {
    let counters = &shared.counters;
    let mut faults = shared.faults.subscribe();
    let target = *shared.target.borrow();
    let Some(target) = target.filter(|_| !faults.borrow().down) else {
        counters.refused.fetch_add(1, Ordering::Relaxed);
        reset(inbound);
        return;
    };
    let connect = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target));
    let outbound = tokio::select! {
        r = connect => match r {
            Ok(Ok(s)) => Some(s),
            _ => None,
        },
        _ = faults.wait_for(|f| f.down) => None,
    };
    let Some(outbound) = outbound else {
        counters.refused.fetch_add(1, Ordering::Relaxed);
        reset(inbound);
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    counters.forwarded.fetch_add(1, Ordering::Relaxed);
    counters.active.fetch_add(1, Ordering::Relaxed);
    relay(inbound, outbound, &shared).await;
    counters.active.fetch_sub(1, Ordering::Relaxed);
}

/// Copies both directions until both are closed, an I/O error happens, or
/// the link goes down; the last two end in a reset of both sockets.
async fn relay(mut a: TcpStream, mut b: TcpStream, shared: &Shared) {
    let mut down = shared.faults.subscribe();
    let (cut, failed) = {
        let (ar, aw) = a.split();
        let (br, bw) = b.split();
        let forward = pipe(ar, bw, shared);
        let backward = pipe(br, aw, shared);
        tokio::select! {
            r = async { tokio::try_join!(forward, backward) } => (false, r.is_err()),
            _ = down.wait_for(|f| f.down) => (true, true),
        }
    };
    if cut {
        shared.counters.aborted.fetch_add(1, Ordering::Relaxed);
    }
    if failed {
        reset(a);
        reset(b);
    }
}

/// One direction: a reader that stamps each chunk with its delivery time and
/// a writer that delivers it then, connected by a bounded queue.
async fn pipe<R, W>(mut from: R, mut to: W, shared: &Shared) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE);
    let reader = async move {
        let mut buf = vec![0u8; CHUNK];
        let mut last_due = Instant::now();
        loop {
            let n = from.read(&mut buf).await?;
            if n == 0 {
                return Ok::<(), std::io::Error>(());
            }
            let delay = shared.faults.borrow().chunk_delay();
            let due = (Instant::now() + delay).max(last_due);
            last_due = due;
            if tx.send((due, buf[..n].to_vec())).await.is_err() {
                return Ok(());
            }
        }
    };
    let writer = async move {
        let mut next_free = Instant::now();
        while let Some((due, chunk)) = rx.recv().await {
            // A healthy link adds no timer round trip.
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            let bandwidth = shared.faults.borrow().bandwidth.filter(|b| *b > 0);
            if let Some(bytes_per_sec) = bandwidth {
                // Serialisation delay: a chunk is delivered once the link
                // has had time to carry it.
                let cost = Duration::from_secs_f64(chunk.len() as f64 / bytes_per_sec as f64);
                next_free = next_free.max(Instant::now()) + cost;
                tokio::time::sleep_until(next_free).await;
            }
            to.write_all(&chunk).await?;
            shared
                .counters
                .bytes
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        to.shutdown().await
    };
    tokio::try_join!(reader, writer).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant as StdInstant;
    use tokio::time::timeout;

    const T: Duration = Duration::from_secs(5);

    /// An echo server that prefixes nothing; returns its address.
    async fn echo_server() -> SocketAddr {
        tagged_server(None).await
    }

    /// A server that echoes, optionally answering every read with `tag` first.
    async fn tagged_server(tag: Option<&'static [u8]>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if let Some(tag) = tag
                            && s.write_all(tag).await.is_err()
                        {
                            return;
                        }
                        if s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
        s.write_all(msg).await?;
        let mut got = vec![0u8; msg.len()];
        s.read_exact(&mut got).await?;
        Ok(got)
    }

    /// True when the connection ends (EOF or error) within `T`.
    async fn ends(s: &mut TcpStream) -> bool {
        let mut buf = [0u8; 16];
        matches!(timeout(T, s.read(&mut buf)).await, Ok(Ok(0)) | Ok(Err(_)))
    }

    #[tokio::test]
    async fn forwards_bytes_both_ways() {
        let proxy = LinkProxy::bind(Some(echo_server().await))
            .await
            .expect("bind");
        let mut s = timeout(T, TcpStream::connect(proxy.addr()))
            .await
            .expect("t")
            .expect("c");
        let got = timeout(T, round_trip(&mut s, b"hello"))
            .await
            .expect("t")
            .expect("rt");
        assert_eq!(got, b"hello");
        let stats = proxy.stats();
        assert_eq!(stats.forwarded, 1);
        assert_eq!(stats.bytes, 10);
    }

    #[tokio::test]
    async fn down_aborts_live_connections_and_refuses_new_ones_until_healed() {
        let proxy = LinkProxy::bind(Some(echo_server().await))
            .await
            .expect("bind");
        let mut live = timeout(T, TcpStream::connect(proxy.addr()))
            .await
            .expect("t")
            .expect("c");
        timeout(T, round_trip(&mut live, b"x"))
            .await
            .expect("t")
            .expect("rt");

        let started = StdInstant::now();
        proxy.set_down(true);
        assert!(ends(&mut live).await, "live connection must be aborted");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "abort is immediate"
        );
        assert_eq!(proxy.stats().aborted, 1);

        let mut fresh = timeout(T, TcpStream::connect(proxy.addr()))
            .await
            .expect("t")
            .expect("c");
        assert!(ends(&mut fresh).await, "new connection must be closed");
        assert!(proxy.stats().refused >= 1);

        proxy.set_down(false);
        let mut healed = timeout(T, TcpStream::connect(proxy.addr()))
            .await
            .expect("t")
            .expect("c");
        let got = timeout(T, round_trip(&mut healed, b"back"))
            .await
            .expect("t")
            .expect("rt");
        assert_eq!(got, b"back");
    }

    #[tokio::test]
    async fn latency_delays_each_direction() {
        let proxy = LinkProxy::bind(Some(echo_server().await))
            .await
            .expect("bind");
        let mut s = timeout(T, TcpStream::connect(proxy.addr()))
            .await
            .expect("t")
            .expect("c");
        timeout(T, round_trip(&mut s, b"warm"))
            .await
            .expect("t")
            .expect("rt");

        proxy.set_faults(LinkFaults::delayed(
            Duration::from_millis(100),
            Duration::ZERO,
        ));
        let started = StdInstant::now();
        timeout(T, round_trip(&mut s, b"slow"))
            .await
            .expect("t")
            .expect("rt");
        let rtt = started.elapsed();
        assert!(rtt >= Duration::from_millis(190), "round trip {rtt:?}");
        assert!(rtt < Duration::from_secs(2), "round trip {rtt:?}");

        proxy.set_faults(LinkFaults::healthy());
        let started = StdInstant::now();
        timeout(T, round_trip(&mut s, b"fast"))
            .await
            .expect("t")
            .expect("rt");
        assert!(
            started.elapsed() < Duration::from_millis(150),
            "heal removes latency"
        );
    }

    #[tokio::test]
    async fn jitter_stays_within_bounds_and_keeps_order() {
        let proxy = LinkProxy::bind(Some(echo_server().await))
            .await
            .expect("bind");
        proxy.set_faults(LinkFaults::delayed(
            Duration::from_millis(30),
            Duration::from_millis(20),
        ));
        let mut s = timeout(T, TcpStream::connect(proxy.addr()))
            .await
            .expect("t")
            .expect("c");
        for i in 0..10u8 {
            let started = StdInstant::now();
            let got = timeout(T, round_trip(&mut s, &[i; 3]))
                .await
                .expect("t")
                .expect("rt");
            assert_eq!(got, [i; 3]);
            let rtt = started.elapsed();
            assert!(rtt >= Duration::from_millis(18), "round trip {rtt:?}");
            assert!(rtt < Duration::from_secs(1), "round trip {rtt:?}");
        }
    }

    #[tokio::test]
    async fn loss_holds_chunks_back_like_a_retransmission() {
        let proxy = LinkProxy::bind(Some(echo_server().await))
            .await
            .expect("bind");
        proxy.set_faults(LinkFaults {
            loss: 1.0,
            loss_penalty: Duration::from_millis(120),
            ..LinkFaults::default()
        });
        let mut s = timeout(T, TcpStream::connect(proxy.addr()))
            .await
            .expect("t")
            .expect("c");
        let started = StdInstant::now();
        let got = timeout(T, round_trip(&mut s, b"lossy"))
            .await
            .expect("t")
            .expect("rt");
        assert_eq!(got, b"lossy", "no byte is ever lost");
        assert!(
            started.elapsed() >= Duration::from_millis(230),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn bandwidth_throttles_throughput() {
        let proxy = LinkProxy::bind(Some(echo_server().await))
            .await
            .expect("bind");
        proxy.update_faults(|f| f.bandwidth = Some(20_000));
        let mut s = timeout(T, TcpStream::connect(proxy.addr()))
            .await
            .expect("t")
            .expect("c");
        let msg = vec![7u8; 8_000];
        let started = StdInstant::now();
        let got = timeout(T, round_trip(&mut s, &msg))
            .await
            .expect("t")
            .expect("rt");
        assert_eq!(got, msg);
        // 8 kB each way at 20 kB/s: about 0.4 s per direction.
        assert!(
            started.elapsed() >= Duration::from_millis(700),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn target_can_change_at_run_time() {
        let a = tagged_server(Some(b"A")).await;
        let b = tagged_server(Some(b"B")).await;
        let proxy = LinkProxy::bind(None).await.expect("bind");
        let mut none = timeout(T, TcpStream::connect(proxy.addr()))
            .await
            .expect("t")
            .expect("c");
        assert!(ends(&mut none).await, "no target: reset");

        proxy.set_target(Some(a));
        let mut s = timeout(T, TcpStream::connect(proxy.addr()))
            .await
            .expect("t")
            .expect("c");
        assert_eq!(
            timeout(T, round_trip(&mut s, b"1"))
                .await
                .expect("t")
                .expect("rt"),
            b"A"
        );

        proxy.set_target(Some(b));
        let mut s2 = timeout(T, TcpStream::connect(proxy.addr()))
            .await
            .expect("t")
            .expect("c");
        assert_eq!(
            timeout(T, round_trip(&mut s2, b"1"))
                .await
                .expect("t")
                .expect("rt"),
            b"B"
        );
    }

    #[tokio::test]
    async fn dropping_the_proxy_closes_its_connections() {
        let proxy = LinkProxy::bind(Some(echo_server().await))
            .await
            .expect("bind");
        let mut s = timeout(T, TcpStream::connect(proxy.addr()))
            .await
            .expect("t")
            .expect("c");
        timeout(T, round_trip(&mut s, b"x"))
            .await
            .expect("t")
            .expect("rt");
        drop(proxy);
        assert!(ends(&mut s).await);
    }
}
