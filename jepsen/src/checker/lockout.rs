//! The lockout checker: for each user, the failed logins whose password
//! was actually checked never exceed the stated bound (each attempt's
//! invocation carries it).
//!
//! History shape (the `lockout` workload): per user (key `u<n>`) many
//! concurrent `attempt`s with a wrong password; `ok` value `checked` or
//! `locked`. An indeterminate attempt (`info`) may have been admitted; it
//! is reported but never counted against the bound (the bound is on what
//! was certainly checked). Runs are shorter than the lockout window, and
//! each user lives for one step.
//!
//! Without any checked or locked attempt the result is unknown.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{CheckResult, Validity};
use crate::history::{EventType, Op};

const EXAMPLES: usize = 20;

#[derive(Default)]
struct User {
    bound: u64,
    checked: u64,
    locked: u64,
    info: u64,
    fail: u64,
}

/// Checks a `lockout` history.
pub fn check(ops: &[Op]) -> CheckResult {
    let mut users: BTreeMap<&str, User> = BTreeMap::new();
    for op in ops.iter().filter(|o| o.f == "attempt") {
        let Some(key) = op.key.as_deref() else {
            continue;
        };
        let u = users.entry(key).or_default();
        u.bound = op
            .input
            .get("bound")
            .and_then(Value::as_u64)
            .unwrap_or(u.bound);
        match (op.outcome, op.output.as_str()) {
            (EventType::Ok, Some("checked")) => u.checked += 1,
            (EventType::Ok, _) => u.locked += 1,
            (EventType::Fail, _) => u.fail += 1,
            _ => u.info += 1,
        }
    }
    let over: Vec<Value> = users
        .iter()
        .filter(|(_, u)| u.checked > u.bound)
        .map(|(k, u)| json!({"user": k, "checked": u.checked, "bound": u.bound}))
        .collect();
    let total = |f: fn(&User) -> u64| users.values().map(f).sum::<u64>();
    let (checked, locked, info, fail) = (
        total(|u| u.checked),
        total(|u| u.locked),
        total(|u| u.info),
        total(|u| u.fail),
    );
    let at_bound = users
        .values()
        .filter(|u| u.checked == u.bound && u.bound > 0)
        .count();
    let max_checked = users.values().map(|u| u.checked).max().unwrap_or(0);
    let bound = users.values().map(|u| u.bound).max().unwrap_or(0);
    let valid = if !over.is_empty() {
        Validity::Invalid
    } else if checked + locked == 0 {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let summary = match valid {
        Validity::Valid => format!(
            "at most {bound} checked attempts per user: {} users, {checked} checked, {locked} refused as locked, most checked for one user {max_checked}",
            users.len()
        ),
        Validity::Invalid => format!(
            "anomalies: {} users had more than {bound} attempts checked",
            over.len()
        ),
        Validity::Unknown => "unknown: no attempt was checked or refused as locked".into(),
    };
    CheckResult {
        checker: "lockout".to_string(),
        valid,
        summary,
        details: json!({
            "users": users.len(),
            "bound": bound,
            "attempts": {"checked": checked, "locked": locked, "info": info, "fail": fail},
            "users_at_bound": at_bound,
            "max_checked_per_user": max_checked,
            "over_bound_count": over.len(),
            "over_bound": over.into_iter().take(EXAMPLES).collect::<Vec<_>>(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Process;

    fn attempt(user: &str, outcome: EventType, out: &str, i: u64) -> Op {
        Op {
            process: Process::Client(i),
            f: "attempt".into(),
            key: Some(user.into()),
            input: json!({"bound": 2}),
            invoke_ns: i,
            outcome,
            output: if out.is_empty() {
                Value::Null
            } else {
                json!(out)
            },
            complete_ns: Some(i + 1),
            node: None,
            error: None,
            index: i,
        }
    }

    #[test]
    fn checks_within_the_bound_are_valid_whatever_was_indeterminate() {
        use EventType::*;
        let ops = vec![
            attempt("u0", Ok, "checked", 0),
            attempt("u0", Ok, "checked", 1),
            attempt("u0", Ok, "locked", 2),
            attempt("u0", Info, "", 3),
            attempt("u1", Ok, "checked", 4),
        ];
        let r = check(&ops);
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
        assert_eq!(r.details["users_at_bound"], json!(1));
    }

    #[test]
    fn more_checks_than_the_bound_are_an_anomaly() {
        use EventType::*;
        let ops = vec![
            attempt("u0", Ok, "checked", 0),
            attempt("u0", Ok, "checked", 1),
            attempt("u0", Ok, "checked", 2),
        ];
        let r = check(&ops);
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.details["over_bound"][0]["checked"], json!(3));
    }
}
