//! `rsp-jepsen`: Jepsen-style tests of an `rsp` cluster. Concurrent clients
//! drive a workload through the public API while a nemesis injects faults;
//! every invocation and completion is recorded, and checkers decide whether
//! the history is consistent with the cluster's promises.
//!
//! Parts:
//! - [`history`]: events (`invoke` / `ok` / `fail` / `info`, nemesis
//!   events) with monotonic times, the recorder that writes
//!   `history.jsonl`, and pairing invocations with completions;
//! - [`outcome`]: how an operation ended: ok, fail (not applied) or info
//!   (indeterminate);
//! - [`client`]: a KV client that classifies answers into outcomes,
//!   following the admin API's contract;
//! - [`workload`]: the registry of workloads and their generators: `register`
//!   and `set` on the KV API; `codes`, `refresh`, `sessions`, `lockout`
//!   through the OIDC endpoints as a browser and an OAuth client use them;
//!   `create-use` through the admin API and those endpoints, each thing
//!   used on another node than the one that made it;
//! - [`nemesis`]: seeded fault schedules on top of `rsp-chaos`'s fault
//!   vocabulary (kill, pause, partitions, latency, loss, clock skew);
//! - [`checker`]: the linearizability checker (Wing–Gong / Lowe with
//!   Porcupine's memoization) with the register model, the set checker, and
//!   the invariant checkers of the OIDC workloads;
//! - [`report`]: `results.json` and `report.html` with inline SVG plots;
//! - [`web`]: HTTP as a browser and an OAuth client see it (the OIDC
//!   workloads);
//! - [`external`]: driving an existing cluster from a nodes file
//!   (addresses, stop and start commands);
//! - [`etcd`]: a local etcd cluster, the trusted system the `register`
//!   workload and its checker are run against as a sanity check, and
//!   [`etcd_client`], its KV client;
//! - [`options`]: what a run is asked and how it answers;
//! - [`roster`]: which node each client talks to while nodes are
//!   replaced, moved or upgraded;
//! - `harness`: the steps every kind of run shares (paced clients, the
//!   `kill` nemesis over members not started through `rsp-chaos`,
//!   checking the history into results);
//! - [`run()`]: one run from cluster start to exit code (module [`mod@run`]).
//!
//! Not for: starting or faulting processes by itself (that is `rsp-chaos`),
//! or benchmarking (the rate is paced and the checker dominates).

pub mod checker;
pub mod client;
pub mod etcd;
pub mod etcd_client;
pub mod external;
pub(crate) mod harness;
pub mod history;
pub mod nemesis;
pub mod options;
pub mod outcome;
pub mod report;
pub mod roster;
pub mod run;
pub mod web;
pub mod workload;

pub use checker::{CheckResult, Validity};
pub use options::{Refused, RunOptions, RunOutcome, Target};
pub use run::run;
