//! `rsp-chaos`: the fault-injection layer shared by the cluster tests, the
//! chaos experiments and the Jepsen harness.
//!
//! It drives `rsp` the way an operator's tools would: as child processes,
//! over the binary's public interfaces (flags, the `RSP_READY` line on
//! stdout, the admin HTTP API, signals). Nothing here links against the
//! node's crates.
//!
//! Parts:
//! - [`binary`]: finds the `rsp` binary under test (`RSP_BIN`, else
//!   `target/debug/rsp`).
//! - [`process`]: [`NodeProcess`], one `rsp serve` child: ready line, log
//!   file, `kill -9`, SIGSTOP/SIGCONT, SIGTERM, restart on the same data dir
//!   and ports; children die with the test process. [`NodeSpec`] is its
//!   command line, [`ReadyInfo`] its `RSP_READY` line.
//! - [`proxy`]: [`LinkProxy`], a fault-injecting TCP proxy for one directed
//!   peer link: down (resets live connections), latency and jitter, emulated
//!   loss, throttle, a target that can change.
//! - [`spec`]: [`ClusterSpec`] and [`NodeJoin`], what to start.
//! - [`cluster`]: [`Cluster`], N nodes wired through proxies: start-up,
//!   process faults, membership changes and the operators' sequences
//!   (replace a dead node, move a node, upgrade a node in place); its link
//!   faults (partitions, isolation, bridges, latency, loss) and its
//!   observers (views, leader, readiness) are in files of their own beside
//!   it.
//! - [`admin`]: [`AdminClient`], a typed client for the admin API that keeps
//!   status codes and error bodies visible.
//! - [`wait`]: waiting on conditions with a deadline.
//! - [`experiments`]: named chaos experiments with steady-state hypotheses
//!   (`rsp-chaos list`, `rsp-chaos run NAME`), and the fault vocabulary
//!   ([`experiments::faults`]) that the Jepsen nemesis shares.
//!
//! Not for: in-process tests of the node's crates (they have their own test
//! routers), or asserting anything about the cluster by itself: the tests,
//! experiments and checkers decide what is correct.

pub mod admin;
pub mod binary;
pub mod cluster;
pub mod experiments;
pub mod process;
pub mod proxy;
pub mod spec;
pub mod wait;

pub use admin::{AdminClient, ApiResponse, ClusterInfo, Consistency, KvRead, Member, WatchEvent};
pub use cluster::{Cluster, ClusterNode};
pub use process::{NodeProcess, NodeSpec, ReadyInfo};
pub use proxy::{LinkFaults, LinkProxy, ProxyStats};
pub use spec::{ClusterSpec, JoinMode, NodeJoin};
pub use wait::wait_until;
