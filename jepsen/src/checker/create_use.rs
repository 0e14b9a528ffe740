//! The create-use checker: nothing whose creation was acknowledged is
//! "not found" by a request that began after the acknowledgement.
//!
//! History shape (the `create-use` workload): per step (key `c<n>`) the
//! creations `create-tenant`, `create-user`, `create-client` and `login`
//! (it creates the authorization code), and the uses `create-user`,
//! `create-client` (of the tenant), `probe-client`, `authorize`, `login`
//! and `redeem`.
//! A use that answered "not found" is a `fail` whose error names what was
//! missing ([`NOT_FOUND`]).
//!
//! Findings:
//! - **not found after acknowledgement** (the anomaly): the use's
//!   invocation came after the `ok` completion of the creation it names,
//!   in the same step; reported with both operations' ids (the index of
//!   their invocation events), nodes and times;
//! - informational: "not found" answers to uses that began before the
//!   creation was acknowledged (`overlapping`: either answer is right),
//!   or whose creation never was (`unacknowledged`); indeterminate uses
//!   (`info`: timeouts, 5xx, connections broken during faults) and other
//!   refusals, counted by operation and error.
//!
//! Without any successful use the result is unknown.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{CheckResult, Validity};
use crate::history::{EventType, Op};

/// The error of a "not found" answer, and the operation that creates what
/// it says is missing.
pub const NOT_FOUND: &[(&str, &str)] = &[
    ("tenant_not_found", "create-tenant"),
    ("user_not_found", "create-user"),
    ("client_not_found", "create-client"),
    ("code_not_found", "login"),
];

const EXAMPLES: usize = 20;

/// Counts of one operation kind.
#[derive(Default)]
struct Tally {
    ok: usize,
    info: usize,
    /// Refusals by error (the "not found" ones included).
    fail: BTreeMap<String, usize>,
}

/// Checks a `create-use` history.
pub fn check(ops: &[Op]) -> CheckResult {
    let mut steps: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        if let Some(k) = op.key.as_deref() {
            steps.entry(k).or_default().push(op);
        }
    }
    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    for op in ops {
        let t = tallies.entry(op.f.as_str()).or_default();
        match op.outcome {
            EventType::Ok => t.ok += 1,
            EventType::Fail => {
                let e = op.error.clone().unwrap_or_else(|| "unknown".into());
                *t.fail.entry(e).or_default() += 1;
            }
            _ => t.info += 1,
        }
    }
    let mut stale = Vec::new();
    let (mut overlapping, mut unacknowledged) = (0usize, 0usize);
    for (key, ops) in &steps {
        for o in ops.iter().filter(|o| o.outcome == EventType::Fail) {
            let Some(&(missing, creator)) = NOT_FOUND
                .iter()
                .find(|(e, _)| o.error.as_deref() == Some(*e))
            else {
                continue;
            };
            let created = ops
                .iter()
                .filter(|c| c.f == creator && c.outcome == EventType::Ok)
                .filter_map(|c| c.complete_ns.map(|at| (at, *c)))
                .min_by_key(|(at, _)| *at);
            match created {
                Some((at, c)) if o.invoke_ns > at => stale.push(json!({
                    "step": key,
                    "use": o.f,
                    "use_op": o.index,
                    "answer": missing,
                    "node": o.node,
                    "invoked_s": o.invoke_ns as f64 / 1e9,
                    "created_by": c.f,
                    "create_op": c.index,
                    "create_node": c.node,
                    "acknowledged_s": at as f64 / 1e9,
                    "after_ms": (o.invoke_ns - at) as f64 / 1e6,
                })),
                Some(_) => overlapping += 1,
                None => unacknowledged += 1,
            }
        }
    }
    let uses_ok: usize = tallies
        .iter()
        .filter(|(f, _)| **f != "create-tenant")
        .map(|(_, t)| t.ok)
        .sum();
    let indeterminate: usize = tallies.values().map(|t| t.info).sum();
    let valid = if !stale.is_empty() {
        Validity::Invalid
    } else if uses_ok == 0 {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let ok_of = |f: &str| tallies.get(f).map_or(0, |t| t.ok);
    let summary = match valid {
        Validity::Valid => format!(
            "nothing acknowledged was then not found: {} tenants, {} users, {} clients made; {} authorization requests, {} logins, {} client probes, {} redemptions on other nodes succeeded; {indeterminate} indeterminate",
            ok_of("create-tenant"),
            ok_of("create-user"),
            ok_of("create-client"),
            ok_of("authorize"),
            ok_of("login"),
            ok_of("probe-client"),
            ok_of("redeem"),
        ),
        Validity::Invalid => format!(
            "anomalies: {} uses answered \"not found\" for something whose creation had been acknowledged before they began",
            stale.len()
        ),
        Validity::Unknown => "unknown: no use succeeded".into(),
    };
    let operations: serde_json::Map<String, Value> = tallies
        .iter()
        .map(|(f, t)| {
            let v = json!({"ok": t.ok, "info": t.info, "fail": t.fail});
            (f.to_string(), v)
        })
        .collect();
    CheckResult {
        checker: "create-use".to_string(),
        valid,
        summary,
        details: json!({
            "steps": steps.len(),
            "operations": operations,
            "uses_ok": uses_ok,
            "indeterminate": indeterminate,
            "not_found_overlapping": overlapping,
            "not_found_unacknowledged": unacknowledged,
            "not_found_after_ack_count": stale.len(),
            "not_found_after_ack": stale.into_iter().take(EXAMPLES).collect::<Vec<Value>>(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Process;
    use EventType::*;

    fn op(f: &str, outcome: EventType, error: &str, from: u64, to: u64) -> Op {
        Op {
            process: Process::Client(from),
            f: f.into(),
            key: Some("c0".into()),
            input: Value::Null,
            invoke_ns: from,
            outcome,
            output: Value::Null,
            complete_ns: (outcome != Info).then_some(to),
            node: Some(1 + from % 3),
            error: (!error.is_empty()).then(|| error.to_string()),
            index: from,
        }
    }

    /// A whole step: every creation acknowledged, then used elsewhere.
    fn step() -> Vec<Op> {
        vec![
            op("create-tenant", Ok, "", 0, 10),
            op("create-user", Ok, "", 11, 20),
            op("create-client", Ok, "", 12, 18),
            op("probe-client", Ok, "", 19, 22),
            op("login", Ok, "", 21, 30),
            op("redeem", Ok, "", 31, 35),
            op("authorize", Ok, "", 19, 21),
        ]
    }

    #[test]
    fn uses_after_acknowledged_creations_that_succeed_are_valid() {
        let r = check(&step());
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
        assert_eq!(r.details["uses_ok"], json!(6));
        assert_eq!(r.details["operations"]["login"]["ok"], json!(1));
    }

    #[test]
    fn a_user_not_found_after_its_creation_was_acknowledged_is_an_anomaly() {
        let mut ops = step();
        ops[4] = op("login", Fail, "user_not_found", 21, 30);
        let r = check(&ops);
        assert_eq!(r.valid, Validity::Invalid, "{r:?}");
        assert_eq!(r.details["not_found_after_ack_count"], json!(1));
        let found = &r.details["not_found_after_ack"][0];
        assert_eq!(found["use_op"], json!(21));
        assert_eq!(found["create_op"], json!(11));
        assert_eq!(found["created_by"], json!("create-user"));
    }

    #[test]
    fn a_stale_tenant_or_client_is_an_anomaly_too() {
        for (i, f, error) in [
            (1, "create-user", "tenant_not_found"),
            (3, "probe-client", "client_not_found"),
            (5, "redeem", "code_not_found"),
            (6, "authorize", "client_not_found"),
            (6, "authorize", "tenant_not_found"),
        ] {
            let mut ops = step();
            let (from, to) = (ops[i].invoke_ns, ops[i].complete_ns.unwrap_or(0));
            ops[i] = op(f, Fail, error, from, to);
            let r = check(&ops);
            assert_eq!(r.valid, Validity::Invalid, "{f}: {r:?}");
        }
    }

    #[test]
    fn not_found_before_the_acknowledgement_is_not_an_anomaly() {
        // The login began (9) before the user's creation was acknowledged
        // (20): either answer is right.
        let mut ops = step();
        ops[4] = op("login", Fail, "user_not_found", 9, 30);
        let r = check(&ops);
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
        assert_eq!(r.details["not_found_overlapping"], json!(1));
        // A creation that never was acknowledged constrains nothing.
        let mut ops = step();
        ops[1] = op("create-user", Info, "timeout", 11, 0);
        ops[4] = op("login", Fail, "user_not_found", 21, 30);
        let r = check(&ops);
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
        assert_eq!(r.details["not_found_unacknowledged"], json!(1));
    }

    #[test]
    fn indeterminate_uses_are_counted_not_judged() {
        let mut ops = step();
        ops[4] = op("login", Info, "timeout", 21, 0);
        ops[5] = op("redeem", Fail, "connect_failed", 31, 33);
        let r = check(&ops);
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
        assert_eq!(r.details["indeterminate"], json!(1));
        assert_eq!(
            r.details["operations"]["redeem"]["fail"]["connect_failed"],
            json!(1)
        );
    }

    #[test]
    fn without_a_successful_use_the_result_is_unknown() {
        let ops = vec![
            op("create-tenant", Ok, "", 0, 10),
            op("create-user", Info, "timeout", 11, 0),
        ];
        assert_eq!(check(&ops).valid, Validity::Unknown);
    }
}
