//! The refresh checker: rotation with reuse detection never lets two
//! holders keep a family alive.
//!
//! History shape (the `refresh` workload): per family (key `f<n>`), `open`
//! (its first token) and `rotate` operations whose invocation names the
//! token `presented` and whose `ok` names the token `issued`. Findings:
//! - **double rotation**: one presented token rotated successfully twice
//!   (two holders would each hold a live token);
//! - **accepted after reuse**: a rotation of the family succeeded although
//!   it was invoked after another rotation of the family was refused with
//!   `invalid_grant` (reuse detected: the refusal is sent only once the
//!   family is revoked everywhere).
//!
//! Indeterminate rotations (`info`) may have succeeded; they never count
//! against the cluster. Without any successful rotation or any detected
//! reuse the result is unknown.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{CheckResult, Validity};
use crate::history::{EventType, Op};

const EXAMPLES: usize = 20;

fn flag(op: &Op, name: &str) -> bool {
    op.input.get(name).and_then(Value::as_bool).unwrap_or(false)
}

/// Checks a `refresh` history.
pub fn check(ops: &[Op]) -> CheckResult {
    let mut families: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in ops.iter().filter(|o| o.f == "rotate") {
        if let Some(k) = op.key.as_deref() {
            families.entry(k).or_default().push(op);
        }
    }
    let opened = ops
        .iter()
        .filter(|o| o.f == "open" && o.outcome == EventType::Ok)
        .count();
    let mut double = Vec::new();
    let mut after_reuse = Vec::new();
    let (mut ok, mut fail, mut info) = (0usize, 0usize, 0usize);
    let (mut races, mut races_one_winner, mut reuse_detected, mut probes_refused) =
        (0usize, 0usize, 0usize, 0usize);
    for (key, rotations) in &families {
        let mut by_token: BTreeMap<&str, usize> = BTreeMap::new();
        for op in rotations {
            match op.outcome {
                EventType::Ok => ok += 1,
                EventType::Fail => fail += 1,
                _ => info += 1,
            }
            if op.outcome == EventType::Ok
                && let Some(t) = op.input.get("presented").and_then(Value::as_str)
            {
                *by_token.entry(t).or_default() += 1;
            }
        }
        for (token, n) in &by_token {
            if *n >= 2 {
                double.push(json!({"family": key, "token": token, "ok": n}));
            }
        }
        let race: Vec<&&Op> = rotations.iter().filter(|o| flag(o, "race")).collect();
        if !race.is_empty() {
            races += 1;
            if race.iter().filter(|o| o.outcome == EventType::Ok).count() == 1 {
                races_one_winner += 1;
            }
        }
        // The earliest acknowledged reuse detection of the family.
        let detected = rotations
            .iter()
            .filter(|o| o.outcome == EventType::Fail && o.error.as_deref() == Some("invalid_grant"))
            .filter_map(|o| o.complete_ns)
            .min();
        if let Some(at) = detected {
            reuse_detected += 1;
            for op in rotations {
                if op.outcome == EventType::Ok && op.invoke_ns > at {
                    after_reuse.push(json!({
                        "family": key,
                        "presented": op.input.get("presented"),
                        "node": op.node,
                        "invoked_s": op.invoke_ns as f64 / 1e9,
                        "reuse_detected_s": at as f64 / 1e9,
                    }));
                }
            }
            probes_refused += rotations
                .iter()
                .filter(|o| flag(o, "probe") && o.outcome == EventType::Fail)
                .count();
        }
    }
    let anomalies = [
        ("double_rotation", &double),
        ("accepted_after_reuse", &after_reuse),
    ];
    let found: Vec<String> = anomalies
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(n, v)| format!("{} {n}", v.len()))
        .collect();
    let valid = if !found.is_empty() {
        Validity::Invalid
    } else if ok == 0 && reuse_detected == 0 {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let summary = match valid {
        Validity::Valid => format!(
            "no family kept alive by two holders: {opened} families, {ok} rotations ok, {races} races ({races_one_winner} with exactly one winner), reuse detected in {reuse_detected}"
        ),
        Validity::Invalid => format!("anomalies: {}", found.join(", ")),
        Validity::Unknown => "unknown: no rotation succeeded and no reuse was detected".into(),
    };
    let mut details = json!({
        "families": opened,
        "rotations": {"ok": ok, "fail": fail, "info": info},
        "races": races,
        "races_one_winner": races_one_winner,
        "reuse_detected": reuse_detected,
        "probes_refused_after_reuse": probes_refused,
    });
    for (name, list) in anomalies {
        details[format!("{name}_count")] = json!(list.len());
        details[name] = json!(list.iter().take(EXAMPLES).collect::<Vec<_>>());
    }
    CheckResult {
        checker: "refresh".to_string(),
        valid,
        summary,
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Process;

    fn rotate(presented: &str, race: bool, outcome: EventType, at: u64, error: &str) -> Op {
        Op {
            process: Process::Client(at),
            f: "rotate".into(),
            key: Some("f0".into()),
            input: json!({"presented": presented, "race": race}),
            invoke_ns: at,
            outcome,
            output: Value::Null,
            complete_ns: (outcome != EventType::Info).then_some(at + 5),
            node: Some(1),
            error: (!error.is_empty()).then(|| error.to_string()),
            index: at,
        }
    }

    #[test]
    fn one_winner_then_a_refused_probe_is_valid() {
        use EventType::*;
        let ops = vec![
            rotate("f0.t0", false, Ok, 0, ""),
            rotate("f0.t1", true, Ok, 10, ""),
            rotate("f0.t1", true, Fail, 10, "invalid_grant"),
            rotate("f0.t1", true, Info, 10, "timeout"),
            rotate("f0.t2", false, Fail, 30, "invalid_grant"),
        ];
        let r = check(&ops);
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
        assert_eq!(r.details["races_one_winner"], json!(1));
    }

    #[test]
    fn two_winners_of_one_token_are_an_anomaly() {
        use EventType::*;
        let ops = vec![
            rotate("f0.t0", true, Ok, 10, ""),
            rotate("f0.t0", true, Ok, 10, ""),
        ];
        let r = check(&ops);
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.details["double_rotation_count"], json!(1));
    }

    #[test]
    fn a_token_accepted_after_the_reuse_was_acknowledged_is_an_anomaly() {
        use EventType::*;
        let ops = vec![
            rotate("f0.t0", true, Ok, 10, ""),
            rotate("f0.t0", true, Fail, 10, "invalid_grant"),
            rotate("f0.t1", false, Ok, 30, ""),
        ];
        let r = check(&ops);
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.details["accepted_after_reuse_count"], json!(1));
        // Overlapping the detection, it may still win.
        let ops = vec![
            rotate("f0.t0", true, Ok, 10, ""),
            rotate("f0.t0", true, Fail, 10, "invalid_grant"),
            rotate("f0.t1", false, Ok, 12, ""),
        ];
        assert_eq!(check(&ops).valid, Validity::Valid);
    }
}
