//! Workloads: what the clients do, and which checker judges it.
//!
//! The registry ([`WORKLOADS`]) names every workload the issue asks for;
//! all run in this build. An entry may name what a build lacks (`needs`):
//! asking for it is then an error ([`BuildError::NotInThisBuild`], exit
//! code 2) rather than a fake. A workload is added by writing its module
//! and one arm in [`build`] and in [`Workload`]'s methods; the OIDC ones
//! share [`oidc`] (tenant, clients, users, browser login, token endpoint).

pub mod codes;
pub mod create_use;
pub mod lockout;
pub mod oidc;
pub mod refresh;
pub mod register;
pub mod sessions;
pub mod set;

use rand::rngs::StdRng;
use serde_json::Value;

use crate::checker::CheckResult;
use crate::checker::register::RegisterLimits;
use crate::client::KvClient;
use crate::history::{Event, EventType, Process, Record, Recorder};
use crate::outcome::Outcome;

/// A registry entry.
#[derive(Debug, Clone, Copy)]
pub struct WorkloadInfo {
    pub name: &'static str,
    pub description: &'static str,
    /// What the workload needs that this build lacks; `None`: runnable.
    pub needs: Option<&'static str>,
}

/// Every workload, runnable or not yet.
pub const WORKLOADS: &[WorkloadInfo] = &[
    WorkloadInfo {
        name: "register",
        description: "read / write / compare-and-set on a few keys of the KV API, checked for linearizability per key",
        needs: None,
    },
    WorkloadInfo {
        name: "set",
        description: "unique adds (one key each) and range reads; after healing, a final read: no acknowledged add is lost",
        needs: None,
    },
    WorkloadInfo {
        name: "sessions",
        description: "a revoked session is never accepted (authorize?prompt=none on every node) after the admin revoke was acknowledged",
        needs: None,
    },
    WorkloadInfo {
        name: "codes",
        description: "each OAuth authorization code (browser login, PKCE) is redeemed at most once, through the real token endpoint on several nodes at once",
        needs: None,
    },
    WorkloadInfo {
        name: "refresh",
        description: "refresh-token rotation with reuse detection never lets two holders keep a family alive (concurrent rotations on several nodes, then the newest token is probed)",
        needs: None,
    },
    WorkloadInfo {
        name: "lockout",
        description: "wrong passwords for one user posted at once through every node: checked attempts never exceed the stated lockout bound",
        needs: None,
    },
    WorkloadInfo {
        name: "create-use",
        description: "a tenant, user and client made through one node are found by the very next request on another (admin API, login form, token endpoint): no \"not found\" after the creation was acknowledged",
        needs: None,
    },
];

/// Why a workload cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    Unknown(String),
    NotInThisBuild {
        name: &'static str,
        needs: &'static str,
    },
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Unknown(name) => {
                let known: Vec<&str> = WORKLOADS.iter().map(|w| w.name).collect();
                write!(f, "no workload `{name}` (known: {})", known.join(", "))
            }
            BuildError::NotInThisBuild { name, needs } => {
                write!(f, "workload {name} needs {needs}, not in this build yet")
            }
        }
    }
}

impl std::error::Error for BuildError {}

/// Knobs shared by the workloads.
#[derive(Debug, Clone)]
pub struct WorkloadOptions {
    /// Key prefix, unique per run.
    pub prefix: String,
    /// Register: keys in use at once.
    pub keys: usize,
    /// Register: operations on one key before it is retired for a fresh
    /// one (bounds the checker's work per key).
    pub ops_per_key: usize,
    /// Set: how many of the newest elements a read covers.
    pub read_window: usize,
    /// Codes / refresh: how many nodes present the same code or token at
    /// once.
    pub redeemers: usize,
    /// Lockout: failed attempts `rsp` admits per user and window (its
    /// default, docs/actors.md).
    pub lockout_bound: u32,
    /// Lockout: wrong passwords posted at once per user.
    pub lockout_attempts: usize,
}

impl Default for WorkloadOptions {
    fn default() -> Self {
        Self {
            prefix: "jepsen".to_string(),
            keys: 5,
            ops_per_key: 150,
            read_window: 64,
            redeemers: 3,
            lockout_bound: 5,
            lockout_attempts: 12,
        }
    }
}

/// A runnable workload: what its clients do, and (for the workloads that
/// go through the OIDC endpoints) what was made for them before the run.
pub struct Workload {
    kind: Kind,
    rig: std::sync::OnceLock<oidc::Rig>,
}

enum Kind {
    Register(register::RegisterWorkload),
    Set(set::SetWorkload),
    Codes(codes::CodesWorkload),
    Refresh(refresh::RefreshWorkload),
    Sessions(sessions::SessionsWorkload),
    Lockout(lockout::LockoutWorkload),
    CreateUse(create_use::CreateUseWorkload),
}

/// What a workload needs made before its clients start.
enum Setup {
    /// Nothing (the KV workloads).
    Nothing,
    /// The OIDC [`oidc::Rig`] with nothing in it: each step makes its own
    /// tenant, client and user.
    Bare,
    /// The `jepsen` tenant and, per worker, a user and a client with these
    /// grants.
    Tenant(&'static [&'static str]),
}

impl From<Kind> for Workload {
    fn from(kind: Kind) -> Self {
        Workload {
            kind,
            rig: std::sync::OnceLock::new(),
        }
    }
}

/// The workload called `name`.
pub fn build(name: &str, opts: &WorkloadOptions) -> Result<Workload, BuildError> {
    let info = WORKLOADS
        .iter()
        .find(|w| w.name == name)
        .ok_or_else(|| BuildError::Unknown(name.to_string()))?;
    if let Some(needs) = info.needs {
        return Err(BuildError::NotInThisBuild {
            name: info.name,
            needs,
        });
    }
    let kind = match info.name {
        "register" => Kind::Register(register::RegisterWorkload::new(opts)),
        "set" => Kind::Set(set::SetWorkload::new(opts)),
        "codes" => Kind::Codes(codes::CodesWorkload::new(opts.redeemers)),
        "refresh" => Kind::Refresh(refresh::RefreshWorkload::new(opts.redeemers)),
        "sessions" => Kind::Sessions(sessions::SessionsWorkload::new()),
        "lockout" => Kind::Lockout(lockout::LockoutWorkload::new(
            opts.lockout_bound,
            opts.lockout_attempts,
        )),
        "create-use" => Kind::CreateUse(create_use::CreateUseWorkload::new(&opts.prefix)),
        other => return Err(BuildError::Unknown(other.to_string())),
    };
    Ok(kind.into())
}

/// What one operation needs: where to record, whom to ask, as whom.
pub struct OpCtx<'a> {
    pub recorder: &'a Recorder,
    pub client: &'a KvClient,
    pub process: Process,
    /// The worker (stable across the process ids it takes).
    pub worker: usize,
}

impl OpCtx<'_> {
    pub fn invoke(&self, f: &str, key: Option<&str>, value: Value) {
        let mut r = Record::new(self.process.clone(), EventType::Invoke, f)
            .value(value)
            .node(self.client.node);
        r.key = key.map(str::to_string);
        self.recorder.record(r);
    }

    /// Records the completion of `outcome`; `ok_value` maps the ok result.
    pub fn complete<T>(
        &self,
        f: &str,
        key: Option<&str>,
        outcome: &Outcome<T>,
        ok_value: impl FnOnce(&T) -> Value,
    ) -> EventType {
        let (kind, value, error) = match outcome {
            Outcome::Ok(v) => (EventType::Ok, ok_value(v), None),
            Outcome::Fail(e) => (EventType::Fail, Value::Null, Some(e.clone())),
            Outcome::Info(e) => (EventType::Info, Value::Null, Some(e.clone())),
        };
        let mut r = Record::new(self.process.clone(), kind, f)
            .value(value)
            .node(self.client.node);
        r.key = key.map(str::to_string);
        r.error = error;
        self.recorder.record(r);
        kind
    }
}

impl Workload {
    pub fn name(&self) -> &'static str {
        match &self.kind {
            Kind::Register(_) => "register",
            Kind::Set(_) => "set",
            Kind::Codes(_) => "codes",
            Kind::Refresh(_) => "refresh",
            Kind::Sessions(_) => "sessions",
            Kind::Lockout(_) => "lockout",
            Kind::CreateUse(_) => "create-use",
        }
    }

    /// What the workload needs made before its clients start.
    fn setup(&self) -> Setup {
        match &self.kind {
            Kind::Register(_) | Kind::Set(_) => Setup::Nothing,
            Kind::Codes(_) | Kind::Sessions(_) | Kind::Lockout(_) => {
                Setup::Tenant(&["authorization_code"])
            }
            Kind::Refresh(_) => Setup::Tenant(&["authorization_code", "refresh_token"]),
            Kind::CreateUse(_) => Setup::Bare,
        }
    }

    /// Before the clients start: the tenant, clients and users of the
    /// workloads that go through the OIDC endpoints.
    pub async fn prepare(
        &self,
        nodes: oidc::Nodes,
        workers: usize,
        timeout: std::time::Duration,
    ) -> anyhow::Result<()> {
        let rig = match self.setup() {
            Setup::Nothing => return Ok(()),
            Setup::Bare => oidc::Rig::bare(nodes, timeout),
            Setup::Tenant(grants) => oidc::Rig::prepare(nodes, workers, timeout, grants).await?,
        };
        let _ = self.rig.set(rig);
        Ok(())
    }

    /// Generates, performs and records one operation; returns how it ended.
    pub async fn step(&self, ctx: &OpCtx<'_>, rng: &mut StdRng) -> EventType {
        match &self.kind {
            Kind::Register(w) => w.step(ctx, rng).await,
            Kind::Set(w) => w.step(ctx, rng).await,
            kind => {
                let Some(rig) = self.rig.get() else {
                    return EventType::Fail;
                };
                match kind {
                    Kind::Codes(w) => w.step(rig, ctx, rng).await,
                    Kind::Refresh(w) => w.step(rig, ctx, rng).await,
                    Kind::Sessions(w) => w.step(rig, ctx, rng).await,
                    Kind::Lockout(w) => w.step(rig, ctx, rng).await,
                    Kind::CreateUse(w) => w.step(rig, ctx, rng).await,
                    Kind::Register(_) | Kind::Set(_) => EventType::Fail,
                }
            }
        }
    }

    /// After the clients stopped and the faults were healed: final reads.
    pub async fn finish(
        &self,
        recorder: &Recorder,
        clients: &[KvClient],
        timeout: std::time::Duration,
    ) {
        if let Kind::Set(w) = &self.kind {
            w.final_read(recorder, clients, timeout).await;
        }
    }

    /// Judges a history of this workload.
    pub fn check(&self, events: &[Event], limits: RegisterLimits) -> CheckResult {
        check_history(self.name(), events, limits)
    }
}

/// Judges a stored history of the workload called `name`.
pub fn check_history(name: &str, events: &[Event], limits: RegisterLimits) -> CheckResult {
    let ops = crate::history::pair(events);
    match name {
        "register" => crate::checker::register::check(&ops, limits),
        "set" => crate::checker::set::check(&ops),
        "codes" => crate::checker::codes::check(&ops),
        "refresh" => crate::checker::refresh::check(&ops),
        "sessions" => crate::checker::sessions::check(&ops),
        "lockout" => crate::checker::lockout::check(&ops),
        "create-use" => crate::checker::create_use::check(&ops),
        other => CheckResult {
            checker: "none".to_string(),
            valid: crate::checker::Validity::Unknown,
            summary: format!("no checker for workload `{other}`"),
            details: Value::Null,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_builds_and_unknown_names_are_refused() {
        let opts = WorkloadOptions::default();
        for w in WORKLOADS {
            assert_eq!(w.needs, None, "{}", w.name);
            assert_eq!(build(w.name, &opts).map(|b| b.name()).ok(), Some(w.name));
        }
        let err = build("nope", &opts).err().expect("unknown");
        assert!(matches!(err, BuildError::Unknown(_)));
        assert!(err.to_string().contains("known: register, set"), "{err}");
    }
}
