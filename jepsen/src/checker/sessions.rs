//! The sessions checker: a revoked session is never accepted after the
//! revoke was acknowledged.
//!
//! History shape (the `sessions` workload): per session (key `s<n>`) a
//! `login`, many `validate` reads (`ok` value `accepted` or `rejected`)
//! and one `revoke`. Findings:
//! - **accepted after revoke**: a validation invoked after an `ok` revoke
//!   completed answered `accepted`;
//! - **missing from list**: the user's session list, read after the login
//!   completed (and before the revoke was sent), lacks the session;
//! - informational: validations accepted / rejected before the revoke
//!   answered (a revoke in flight may or may not be in force yet),
//!   rejections before any revoke was sent (a live session refused: fail
//!   closed, not a safety anomaly), revokes that were indeterminate
//!   (`info`: no constraint).
//!
//! Without any acknowledged revoke, or any accepted validation, the result
//! is unknown.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{CheckResult, Validity};
use crate::history::{EventType, Op};

const EXAMPLES: usize = 20;

/// Checks a `sessions` history.
pub fn check(ops: &[Op]) -> CheckResult {
    let mut sessions: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        if let Some(k) = op.key.as_deref() {
            sessions.entry(k).or_default().push(op);
        }
    }
    let mut stale = Vec::new();
    let (mut revoked, mut revoke_info, mut revoke_fail) = (0usize, 0usize, 0usize);
    let (mut accepted, mut rejected, mut failed) = (0usize, 0usize, 0usize);
    let (mut rejected_after_ack, mut in_flight) = (0usize, 0usize);
    // Rejections of a session no one had begun to revoke (fail-closed
    // answers: not a safety anomaly, reported).
    let mut live_refused = 0usize;
    for (key, ops) in &sessions {
        let ack = ops
            .iter()
            .filter(|o| o.f == "revoke" && o.outcome == EventType::Ok)
            .filter_map(|o| o.complete_ns)
            .min();
        let revoke_invoked = ops
            .iter()
            .filter(|o| o.f == "revoke")
            .map(|o| o.invoke_ns)
            .min();
        for o in ops.iter().filter(|o| o.f == "revoke") {
            match o.outcome {
                EventType::Ok => revoked += 1,
                EventType::Fail => revoke_fail += 1,
                _ => revoke_info += 1,
            }
        }
        for o in ops.iter().filter(|o| o.f == "validate") {
            let answer = o.output.as_str();
            match (o.outcome, answer) {
                (EventType::Ok, Some("accepted")) => accepted += 1,
                (EventType::Ok, Some("rejected")) => {
                    rejected += 1;
                    if revoke_invoked.is_none_or(|r| o.complete_ns.is_some_and(|c| c < r)) {
                        live_refused += 1;
                    }
                }
                _ => {
                    failed += 1;
                    continue;
                }
            }
            let Some(at) = ack else { continue };
            if o.invoke_ns > at {
                if answer == Some("accepted") {
                    stale.push(json!({
                        "session": key,
                        "node": o.node,
                        "invoked_s": o.invoke_ns as f64 / 1e9,
                        "revoke_acknowledged_s": at as f64 / 1e9,
                    }));
                } else {
                    rejected_after_ack += 1;
                }
            } else if o.complete_ns.is_some_and(|c| c > at) {
                in_flight += 1;
            }
        }
    }
    // A session whose login completed before a listing was invoked must be
    // listed (the listing reads linearizably).
    let mut unlisted = Vec::new();
    let mut listed = 0usize;
    for (key, ops) in &sessions {
        let Some(login) = ops
            .iter()
            .filter(|o| o.f == "login" && o.outcome == EventType::Ok)
            .filter_map(|o| o.complete_ns)
            .min()
        else {
            continue;
        };
        for o in ops
            .iter()
            .filter(|o| o.f == "list" && o.outcome == EventType::Ok)
        {
            if o.output == json!(true) {
                listed += 1;
            } else if o.invoke_ns > login {
                unlisted.push(json!({"session": key, "node": o.node}));
            }
        }
    }
    let logged_in = ops
        .iter()
        .filter(|o| o.f == "login" && o.outcome == EventType::Ok)
        .count();
    let valid = if !stale.is_empty() || !unlisted.is_empty() {
        Validity::Invalid
    } else if revoked == 0 || accepted == 0 {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let summary = match valid {
        Validity::Valid => format!(
            "no revoked session accepted: {logged_in} sessions, {revoked} revokes acknowledged, {rejected_after_ack} validations after them all rejected"
        ),
        Validity::Invalid => format!(
            "anomalies: {} validations accepted a session after its revoke was acknowledged, {} live sessions missing from their user's list",
            stale.len(),
            unlisted.len()
        ),
        Validity::Unknown => "unknown: no acknowledged revoke or no accepted validation".into(),
    };
    CheckResult {
        checker: "sessions".to_string(),
        valid,
        summary,
        details: json!({
            "sessions": logged_in,
            "revokes": {"ok": revoked, "fail": revoke_fail, "info": revoke_info},
            "validations": {"accepted": accepted, "rejected": rejected, "failed": failed},
            "rejected_after_ack": rejected_after_ack,
            "overlapping_the_ack": in_flight,
            "rejected_before_any_revoke": live_refused,
            "listed": listed,
            "missing_from_list_count": unlisted.len(),
            "missing_from_list": unlisted.into_iter().take(EXAMPLES).collect::<Vec<Value>>(),
            "accepted_after_revoke_count": stale.len(),
            "accepted_after_revoke": stale.into_iter().take(EXAMPLES).collect::<Vec<Value>>(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Process;

    fn op(f: &str, outcome: EventType, out: &str, from: u64, to: u64) -> Op {
        Op {
            process: Process::Client(from),
            f: f.into(),
            key: Some("s0".into()),
            input: Value::Null,
            invoke_ns: from,
            outcome,
            output: if out.is_empty() {
                Value::Null
            } else {
                json!(out)
            },
            complete_ns: (outcome != EventType::Info).then_some(to),
            node: Some(1),
            error: None,
            index: from,
        }
    }

    #[test]
    fn accepted_only_before_the_acknowledgement_is_valid() {
        use EventType::*;
        let ops = vec![
            op("validate", Ok, "accepted", 0, 5),
            op("revoke", Ok, "", 4, 10),
            op("validate", Ok, "accepted", 8, 12),
            op("validate", Ok, "rejected", 11, 13),
        ];
        let r = check(&ops);
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
        assert_eq!(r.details["overlapping_the_ack"], json!(1));
    }

    #[test]
    fn accepted_after_the_acknowledgement_is_an_anomaly() {
        use EventType::*;
        let ops = vec![
            op("validate", Ok, "accepted", 0, 5),
            op("revoke", Ok, "", 4, 10),
            op("validate", Ok, "accepted", 11, 13),
        ];
        let r = check(&ops);
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.details["accepted_after_revoke_count"], json!(1));
    }

    #[test]
    fn a_live_session_missing_from_its_users_list_is_an_anomaly() {
        use EventType::*;
        let mut login = op("login", Ok, "", 0, 2);
        login.output = json!({"sid": "x"});
        let mut listed = op("list", Ok, "", 3, 4);
        listed.output = json!(true);
        let mut missing = op("list", Ok, "", 5, 6);
        missing.output = json!(false);
        let base = vec![
            login,
            op("validate", Ok, "accepted", 7, 8),
            op("revoke", Ok, "", 9, 10),
        ];
        let mut ops = base.clone();
        ops.push(listed);
        let r = check(&ops);
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
        assert_eq!(r.details["listed"], json!(1));
        let mut ops = base;
        ops.push(missing);
        let r = check(&ops);
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.details["missing_from_list_count"], json!(1));
    }

    #[test]
    fn an_indeterminate_revoke_constrains_nothing() {
        use EventType::*;
        let ops = vec![
            op("validate", Ok, "accepted", 0, 5),
            op("revoke", Info, "", 4, 0),
            op("validate", Ok, "accepted", 11, 13),
        ];
        assert_eq!(check(&ops).valid, Validity::Unknown);
    }
}
