//! Workloads: what the clients do, and which checker judges it.
//!
//! The registry ([`WORKLOADS`]) names every workload the issue asks for.
//! Those whose endpoints are not in this build yet are listed with what they
//! need, and asking for one is an error ([`BuildError::NotInThisBuild`],
//! exit code 2) rather than a fake: a workload is added by writing its
//! module and one arm in [`build`] and in [`Workload`]'s methods.

pub mod register;
pub mod set;

use rand::rngs::StdRng;
use serde_json::Value;

use crate::checker::CheckResult;
use crate::checker::register::RegisterLimits;
use crate::client::{KvClient, Outcome};
use crate::history::{Event, EventType, Process, Record, Recorder};

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
        description: "a revoked session is never accepted after the revoke was acknowledged",
        needs: Some("the session endpoints (create, revoke, introspect)"),
    },
    WorkloadInfo {
        name: "codes",
        description: "each OAuth authorization code is redeemed at most once, through the real token endpoint",
        needs: Some("the OAuth authorization-code flow and token endpoint"),
    },
    WorkloadInfo {
        name: "refresh",
        description: "refresh-token rotation with reuse detection never lets two holders keep a family alive",
        needs: Some("refresh-token rotation on the token endpoint"),
    },
    WorkloadInfo {
        name: "lockout",
        description: "failed logins across nodes never exceed the stated lockout bound",
        needs: Some("password login with failed-attempt lockout"),
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
}

impl Default for WorkloadOptions {
    fn default() -> Self {
        Self {
            prefix: "jepsen".to_string(),
            keys: 5,
            ops_per_key: 150,
            read_window: 64,
        }
    }
}

/// A runnable workload.
pub enum Workload {
    Register(register::RegisterWorkload),
    Set(set::SetWorkload),
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
    match info.name {
        "register" => Ok(Workload::Register(register::RegisterWorkload::new(opts))),
        "set" => Ok(Workload::Set(set::SetWorkload::new(opts))),
        other => Err(BuildError::Unknown(other.to_string())),
    }
}

/// What one operation needs: where to record, whom to ask, as whom.
pub struct OpCtx<'a> {
    pub recorder: &'a Recorder,
    pub client: &'a KvClient,
    pub process: Process,
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
        match self {
            Workload::Register(_) => "register",
            Workload::Set(_) => "set",
        }
    }

    /// Generates, performs and records one operation; returns how it ended.
    pub async fn step(&self, ctx: &OpCtx<'_>, rng: &mut StdRng) -> EventType {
        match self {
            Workload::Register(w) => w.step(ctx, rng).await,
            Workload::Set(w) => w.step(ctx, rng).await,
        }
    }

    /// After the clients stopped and the faults were healed: final reads.
    pub async fn finish(
        &self,
        recorder: &Recorder,
        clients: &[KvClient],
        timeout: std::time::Duration,
    ) {
        match self {
            Workload::Register(_) => {}
            Workload::Set(w) => w.final_read(recorder, clients, timeout).await,
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
    fn unbuilt_workloads_say_what_they_need() {
        let opts = WorkloadOptions::default();
        for name in ["sessions", "codes", "refresh", "lockout"] {
            let err = build(name, &opts).err().expect("not in this build");
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!("workload {name} needs "))
                    && msg.ends_with(", not in this build yet"),
                "{msg}"
            );
        }
        assert!(matches!(build("nope", &opts), Err(BuildError::Unknown(_))));
        assert_eq!(
            build("register", &opts).map(|w| w.name()).ok(),
            Some("register")
        );
        assert_eq!(build("set", &opts).map(|w| w.name()).ok(), Some("set"));
    }
}
