//! The register model and the per-key linearizability check of the
//! `register` workload.
//!
//! Operations on one key: `read` (ok with the value, `null` when absent),
//! `write v`, `cas [from, to]`. A CAS that answered "compare failed" is a
//! `fail` with error `compare_failed`: it did not take effect, but it did
//! observe that the value was not `from`, and the model checks that too.
//! Other failed operations took no effect and are left out; `info`
//! operations may have taken effect at any time after their invocation.
//! Keys are independent (linearizability is compositional), so each key is
//! checked on its own, in parallel.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::linear::{self, Budget, Model, Operation, Outcome};
use super::{CheckResult, Validity};
use crate::history::{EventType, Op};

/// The error of a CAS whose compare did not hold.
pub const COMPARE_FAILED: &str = "compare_failed";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RegInput {
    Read,
    Write(i64),
    Cas(i64, i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegOutput {
    /// What a read returned (`None`: the key does not exist).
    Read(Option<i64>),
    Written,
    CasSucceeded,
    CasFailed,
    /// Indeterminate.
    Unknown,
}

/// A single register that starts absent.
pub struct Register;

impl Model for Register {
    type State = Option<i64>;
    type Input = RegInput;
    type Output = RegOutput;

    fn init(&self) -> Option<i64> {
        None
    }

    fn step(&self, s: &Option<i64>, input: &RegInput, output: &RegOutput) -> Option<Option<i64>> {
        match (input, output) {
            (RegInput::Read, RegOutput::Read(v)) => (v == s).then_some(*s),
            (RegInput::Read, RegOutput::Unknown) => Some(*s),
            (RegInput::Write(v), RegOutput::Written | RegOutput::Unknown) => Some(Some(*v)),
            (RegInput::Cas(from, to), RegOutput::CasSucceeded) => {
                (*s == Some(*from)).then_some(Some(*to))
            }
            (RegInput::Cas(from, _), RegOutput::CasFailed) => (*s != Some(*from)).then_some(*s),
            (RegInput::Cas(from, to), RegOutput::Unknown) => {
                Some(if *s == Some(*from) { Some(*to) } else { *s })
            }
            _ => None,
        }
    }
}

/// Turns one history operation into a checker operation; `None` when it
/// took no effect and observed nothing.
pub fn to_operation(op: &Op) -> Option<Operation<RegInput, RegOutput>> {
    let input = match op.f.as_str() {
        "read" => RegInput::Read,
        "write" => RegInput::Write(op.input.as_i64()?),
        "cas" => {
            let pair = op.input.as_array()?;
            RegInput::Cas(pair.first()?.as_i64()?, pair.get(1)?.as_i64()?)
        }
        _ => return None,
    };
    let output = match (op.outcome, &input) {
        (EventType::Ok, RegInput::Read) => RegOutput::Read(op.output.as_i64()),
        (EventType::Ok, RegInput::Write(_)) => RegOutput::Written,
        (EventType::Ok, RegInput::Cas(..)) => RegOutput::CasSucceeded,
        (EventType::Fail, RegInput::Cas(..)) if op.error.as_deref() == Some(COMPARE_FAILED) => {
            RegOutput::CasFailed
        }
        (EventType::Fail, _) => return None,
        // A read that got no answer observed nothing.
        (EventType::Info | EventType::Invoke, RegInput::Read) => return None,
        (EventType::Info | EventType::Invoke, _) => RegOutput::Unknown,
    };
    let ret = match output {
        RegOutput::Unknown => None,
        _ => op.complete_ns,
    };
    Some(Operation {
        id: op.index,
        call: op.invoke_ns,
        ret,
        input,
        output,
        class: None,
    })
}

/// Stands for every value that no operation ever observes.
pub const UNOBSERVED: i64 = i64::MIN;

/// Prepares one key's operations for the search without changing the
/// answer: a written value that no read returned and no CAS compared
/// against behaves exactly like any other such value (the model only ever
/// compares the state with observed values), so all of them become
/// [`UNOBSERVED`]; indeterminate operations whose effect is then the same
/// are interchangeable (see [`linear`]'s module docs).
pub fn abstract_unobserved(ops: &mut [Operation<RegInput, RegOutput>]) {
    use std::collections::{HashMap, HashSet};
    let mut observed: HashSet<i64> = HashSet::new();
    for op in ops.iter() {
        match (&op.input, &op.output) {
            (RegInput::Read, RegOutput::Read(Some(v))) => {
                observed.insert(*v);
            }
            (RegInput::Cas(from, _), _) => {
                observed.insert(*from);
            }
            _ => {}
        }
    }
    let hide = |v: &mut i64| {
        if !observed.contains(v) {
            *v = UNOBSERVED;
        }
    };
    let mut classes: HashMap<RegInput, u64> = HashMap::new();
    for op in ops.iter_mut() {
        match &mut op.input {
            RegInput::Write(v) => hide(v),
            RegInput::Cas(_, to) => hide(to),
            RegInput::Read => {}
        }
        let unobserved_effect = matches!(
            op.input,
            RegInput::Write(UNOBSERVED) | RegInput::Cas(_, UNOBSERVED)
        );
        if op.ret.is_none() && op.output == RegOutput::Unknown && unobserved_effect {
            let next = classes.len() as u64;
            op.class = Some(*classes.entry(op.input.clone()).or_insert(next));
        }
    }
}

/// Per-key verdict.
#[derive(Debug, Clone)]
pub struct KeyResult {
    pub key: String,
    pub ops: usize,
    pub outcome: Outcome<Option<i64>>,
    pub elapsed: Duration,
}

/// Limits of the register check.
#[derive(Debug, Clone, Copy)]
pub struct RegisterLimits {
    /// Steps per key before the key is `unknown`.
    pub max_steps_per_key: u64,
    /// Wall time for the whole check; keys not done by then are `unknown`.
    pub time: Duration,
    pub threads: usize,
}

impl Default for RegisterLimits {
    fn default() -> Self {
        Self {
            max_steps_per_key: 20_000_000,
            time: Duration::from_secs(120),
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        }
    }
}

/// Checks every key of a register history.
pub fn check(ops: &[Op], limits: RegisterLimits) -> CheckResult {
    let mut by_key: BTreeMap<String, Vec<Operation<RegInput, RegOutput>>> = BTreeMap::new();
    let mut by_index: BTreeMap<u64, &Op> = BTreeMap::new();
    for op in ops {
        let Some(key) = &op.key else { continue };
        if let Some(o) = to_operation(op) {
            by_index.insert(op.index, op);
            by_key.entry(key.clone()).or_default().push(o);
        }
    }
    let deadline = Instant::now() + limits.time;
    let mut keys: Vec<(String, Vec<Operation<RegInput, RegOutput>>)> = by_key.into_iter().collect();
    for (_, ops) in keys.iter_mut() {
        abstract_unobserved(ops);
    }
    let results = check_keys(&keys, limits, deadline);

    let mut invalid = Vec::new();
    let mut unknown = Vec::new();
    let mut slowest = Duration::ZERO;
    for r in &results {
        slowest = slowest.max(r.elapsed);
        match &r.outcome {
            Outcome::Linearizable(_) => {}
            Outcome::NotLinearizable(c) => invalid.push(json!({
                "key": r.key,
                "ops": r.ops,
                "linearized_prefix_len": c.linearized.len(),
                "last_linearized": c.linearized.iter().rev().take(5).rev()
                    .filter_map(|i| by_index.get(i)).map(|o| describe(o)).collect::<Vec<_>>(),
                "state_then": describe_state(c.state),
                "cannot_linearize": by_index.get(&c.stuck).map(|o| describe(o)),
            })),
            Outcome::Unknown { steps, reason } => {
                unknown.push(json!({"key": r.key, "ops": r.ops, "steps": steps, "reason": reason}))
            }
        }
    }
    let valid = if !invalid.is_empty() {
        Validity::Invalid
    } else if !unknown.is_empty() {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let checked: usize = results.iter().map(|r| r.ops).sum();
    let summary = match valid {
        Validity::Valid => format!("linearizable: {} keys, {checked} operations", results.len()),
        Validity::Invalid => format!(
            "NOT linearizable: {} of {} keys have anomalies",
            invalid.len(),
            results.len()
        ),
        Validity::Unknown => format!(
            "unknown: {} of {} keys could not be decided within the budget",
            unknown.len(),
            results.len()
        ),
    };
    CheckResult {
        checker: "linearizable-register".to_string(),
        valid,
        summary,
        details: json!({
            "keys": results.len(),
            "operations_checked": checked,
            "slowest_key_ms": slowest.as_millis() as u64,
            "anomalies": invalid,
            "unknown": unknown,
        }),
    }
}

fn check_keys(
    keys: &[(String, Vec<Operation<RegInput, RegOutput>>)],
    limits: RegisterLimits,
    deadline: Instant,
) -> Vec<KeyResult> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let out = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..limits.threads.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((key, ops)) = keys.get(i) else {
                        return;
                    };
                    let started = Instant::now();
                    let budget = Budget {
                        max_steps: limits.max_steps_per_key,
                        deadline: Some(deadline),
                    };
                    let outcome = linear::check(&Register, ops, budget);
                    let result = KeyResult {
                        key: key.clone(),
                        ops: ops.len(),
                        outcome,
                        elapsed: started.elapsed(),
                    };
                    out.lock().unwrap_or_else(|p| p.into_inner()).push(result);
                }
            });
        }
    });
    let mut results = out.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by(|a, b| a.key.cmp(&b.key));
    results
}

/// The register's value for people: absent, a value, or a value nobody
/// ever observed.
fn describe_state(state: Option<i64>) -> Value {
    match state {
        None => Value::Null,
        Some(UNOBSERVED) => json!("a value no operation observed"),
        Some(v) => json!(v),
    }
}

/// One line about an operation, for reports.
pub fn describe(op: &Op) -> String {
    let secs = |ns: u64| format!("{:.3}s", ns as f64 / 1e9);
    let result = match op.outcome {
        EventType::Ok => format!("ok {}", op.output),
        EventType::Fail => format!("fail ({})", op.error.as_deref().unwrap_or("")),
        _ => format!("info ({})", op.error.as_deref().unwrap_or("no answer")),
    };
    let input = if op.input == Value::Null {
        String::new()
    } else {
        format!(" {}", op.input)
    };
    format!(
        "#{} process {} on node {}: {}{} -> {} [{} .. {}]",
        op.index,
        serde_json::to_string(&op.process).unwrap_or_default(),
        op.node.map_or("?".to_string(), |n| n.to_string()),
        op.f,
        input,
        result,
        secs(op.invoke_ns),
        op.complete_ns.map_or("never".to_string(), secs),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Process;

    /// A hand-written history builder: times in milliseconds.
    struct H {
        ops: Vec<Op>,
    }

    impl H {
        fn new() -> Self {
            Self { ops: Vec::new() }
        }

        #[allow(clippy::too_many_arguments)]
        fn push(
            &mut self,
            p: u64,
            f: &str,
            input: Value,
            outcome: EventType,
            output: Value,
            from_ms: u64,
            to_ms: Option<u64>,
            error: Option<&str>,
        ) -> &mut Self {
            let index = self.ops.len() as u64;
            self.ops.push(Op {
                process: Process::Client(p),
                f: f.to_string(),
                key: Some("k".to_string()),
                input,
                invoke_ns: from_ms * 1_000_000,
                outcome,
                output,
                complete_ns: to_ms.map(|t| t * 1_000_000),
                node: Some(1),
                error: error.map(str::to_string),
                index,
            });
            self
        }

        fn write(&mut self, p: u64, v: i64, from: u64, to: u64) -> &mut Self {
            self.push(
                p,
                "write",
                json!(v),
                EventType::Ok,
                json!(v),
                from,
                Some(to),
                None,
            )
        }

        fn write_info(&mut self, p: u64, v: i64, from: u64) -> &mut Self {
            self.push(
                p,
                "write",
                json!(v),
                EventType::Info,
                Value::Null,
                from,
                None,
                Some("timeout"),
            )
        }

        fn write_fail(&mut self, p: u64, v: i64, from: u64, to: u64) -> &mut Self {
            self.push(
                p,
                "write",
                json!(v),
                EventType::Fail,
                Value::Null,
                from,
                Some(to),
                Some("unavailable"),
            )
        }

        fn read(&mut self, p: u64, v: Option<i64>, from: u64, to: u64) -> &mut Self {
            self.push(
                p,
                "read",
                Value::Null,
                EventType::Ok,
                json!(v),
                from,
                Some(to),
                None,
            )
        }

        fn cas(&mut self, p: u64, a: i64, b: i64, ok: bool, from: u64, to: u64) -> &mut Self {
            let (outcome, error) = if ok {
                (EventType::Ok, None)
            } else {
                (EventType::Fail, Some(COMPARE_FAILED))
            };
            self.push(
                p,
                "cas",
                json!([a, b]),
                outcome,
                json!([a, b]),
                from,
                Some(to),
                error,
            )
        }

        fn check(&self) -> CheckResult {
            check(&self.ops, RegisterLimits::default())
        }
    }

    #[test]
    fn a_valid_history_is_linearizable() {
        let r = H::new()
            .read(0, None, 0, 1)
            .write(0, 1, 2, 3)
            .read(1, Some(1), 4, 5)
            .cas(0, 1, 2, true, 6, 7)
            .cas(1, 1, 3, false, 8, 9)
            .read(2, Some(2), 10, 11)
            .check();
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
    }

    #[test]
    fn a_stale_read_is_caught() {
        // write 2 completed before the read began, yet the read saw 1.
        let r = H::new()
            .write(0, 1, 0, 1)
            .write(0, 2, 2, 3)
            .read(1, Some(1), 4, 5)
            .check();
        assert_eq!(r.valid, Validity::Invalid, "{r:?}");
        let anomaly = &r.details["anomalies"][0];
        assert!(
            anomaly["cannot_linearize"]
                .as_str()
                .is_some_and(|s| s.contains("read")),
            "{anomaly}"
        );
    }

    #[test]
    fn a_lost_write_is_caught() {
        // write 2 was acknowledged, then every read sees 1 forever.
        let r = H::new()
            .write(0, 1, 0, 1)
            .write(0, 2, 2, 3)
            .read(1, Some(2), 4, 5)
            .read(1, Some(1), 6, 7)
            .check();
        assert_eq!(r.valid, Validity::Invalid, "{r:?}");
    }

    #[test]
    fn a_cas_anomaly_is_caught() {
        // The value was 1, yet cas 5 -> 6 claims success.
        let bad_success = H::new().write(0, 1, 0, 1).cas(1, 5, 6, true, 2, 3).check();
        assert_eq!(bad_success.valid, Validity::Invalid);
        // The value was 1, yet cas 1 -> 2 claims the compare failed.
        let bad_failure = H::new().write(0, 1, 0, 1).cas(1, 1, 2, false, 2, 3).check();
        assert_eq!(bad_failure.valid, Validity::Invalid);
        // Two successful cas from the same value cannot both win.
        let double = H::new()
            .write(0, 1, 0, 1)
            .cas(1, 1, 2, true, 2, 10)
            .cas(2, 1, 3, true, 3, 11)
            .check();
        assert_eq!(double.valid, Validity::Invalid);
    }

    #[test]
    fn overlapping_operations_valid_in_only_one_order() {
        // Writes 1 and 2 overlap; reads after both see 1, so 2 must have
        // been linearized first. Valid, and only in that order.
        let r = H::new()
            .write(0, 1, 0, 10)
            .write(1, 2, 1, 9)
            .read(2, Some(1), 11, 12)
            .check();
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
        // Adding a read that saw 2 after one that saw 1 (both after the
        // writes) makes it impossible.
        let r = H::new()
            .write(0, 1, 0, 10)
            .write(1, 2, 1, 9)
            .read(2, Some(1), 11, 12)
            .read(2, Some(2), 13, 14)
            .check();
        assert_eq!(r.valid, Validity::Invalid, "{r:?}");
        // A read overlapping both writes may see either, in one order with
        // a later read.
        let r = H::new()
            .write(0, 1, 0, 10)
            .write(1, 2, 1, 9)
            .read(2, Some(2), 2, 8)
            .read(3, Some(1), 11, 12)
            .check();
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
    }

    #[test]
    fn indeterminate_writes_may_or_may_not_have_happened() {
        // A timed-out write shows up later: fine.
        let r = H::new()
            .write(0, 1, 0, 1)
            .write_info(1, 2, 2)
            .read(2, Some(1), 3, 4)
            .read(2, Some(2), 100, 101)
            .check();
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
        // ... but a failed (503) write must never show up.
        let r = H::new()
            .write(0, 1, 0, 1)
            .write_fail(1, 2, 2, 3)
            .read(2, Some(2), 4, 5)
            .check();
        assert_eq!(r.valid, Validity::Invalid, "{r:?}");
        // And an indeterminate write cannot take effect before it was sent.
        let r = H::new().read(2, Some(2), 0, 1).write_info(1, 2, 2).check();
        assert_eq!(r.valid, Validity::Invalid, "{r:?}");
    }

    #[test]
    fn keys_are_checked_independently() {
        let mut h = H::new();
        h.write(0, 1, 0, 1).read(1, Some(1), 2, 3);
        // Same values on another key, valid on its own.
        let mut other = h.ops.clone();
        for (i, op) in other.iter_mut().enumerate() {
            op.key = Some("other".to_string());
            op.index = 100 + i as u64;
        }
        h.ops.extend(other);
        let r = h.check();
        assert_eq!(r.valid, Validity::Valid);
        assert_eq!(r.details["keys"], json!(2));
    }

    #[test]
    fn many_timed_out_writes_in_a_partition_stay_decidable() {
        // 40 writes from a minority time out; the majority keeps writing
        // and reading. Without interchangeable classes this is 2^40.
        let mut h = H::new();
        h.write(0, 1, 0, 1);
        for i in 0..40 {
            h.write_info(100 + i, 1000 + i as i64, 2 + i);
            h.cas(200, 1, 2, true, 3 + 2 * i, 4 + 2 * i);
            h.write(201, 1, 5 + 2 * i, 6 + 2 * i);
        }
        h.read(300, Some(1), 200, 201);
        let r = check(
            &h.ops,
            RegisterLimits {
                max_steps_per_key: 200_000,
                ..RegisterLimits::default()
            },
        );
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
        // ... and a stale read among them is still caught.
        h.read(301, Some(2), 300, 301);
        h.write(0, 3, 302, 303);
        h.read(302, Some(1), 304, 305);
        let r = check(
            &h.ops,
            RegisterLimits {
                max_steps_per_key: 200_000,
                ..RegisterLimits::default()
            },
        );
        assert_eq!(r.valid, Validity::Invalid, "{r:?}");
    }

    #[test]
    fn unobserved_values_are_merged_and_timed_out_ones_made_interchangeable() {
        let mut ops: Vec<_> = H::new()
            .write(0, 1, 0, 1)
            .write_info(1, 2, 2)
            .write_info(2, 3, 3)
            .read(3, Some(1), 4, 5)
            .cas(4, 1, 4, true, 6, 7)
            .ops
            .iter()
            .filter_map(to_operation)
            .collect();
        abstract_unobserved(&mut ops);
        assert_eq!(ops[1].input, RegInput::Write(UNOBSERVED));
        assert_eq!(ops[1].class, ops[2].class);
        assert!(ops[1].class.is_some());
        assert_eq!(ops[0].input, RegInput::Write(1), "1 was read");
        assert_eq!(ops[4].input, RegInput::Cas(1, UNOBSERVED));
        assert_eq!(ops[4].class, None, "it returned");
    }

    #[test]
    fn an_undecidable_history_is_unknown() {
        // Many indeterminate writes of values that are read, then a read of
        // a value never written: not linearizable, but proving it needs
        // every subset of the writes.
        let mut h = H::new();
        for i in 0..30 {
            h.write_info(i, i as i64 + 10, 0);
            h.read(50 + i, Some(i as i64 + 10), 1000, 1001);
        }
        h.read(99, Some(7), 1, 2);
        let r = check(
            &h.ops,
            RegisterLimits {
                max_steps_per_key: 10_000,
                ..RegisterLimits::default()
            },
        );
        assert_eq!(r.valid, Validity::Unknown, "{r:?}");
    }
}
