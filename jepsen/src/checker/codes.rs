//! The codes checker: every authorization code is redeemed successfully at
//! most once.
//!
//! History shape (the `codes` workload): `authorize` (getting a code, key
//! `c<n>`; not judged) and `redeem` with the same key, several per code,
//! concurrent, through different nodes. Per code:
//! - two or more `ok` redemptions: **double-redeemed** (invalid);
//! - an `info` redemption (timeout, 5xx) may have succeeded: it counts as
//!   possibly redeemed, so one `ok` beside it is no anomaly; two `ok`s are;
//! - informational: codes redeemed once, never (every attempt refused), or
//!   only possibly (some `info`, no `ok`), and why attempts were refused.
//!
//! Without any successful redemption the result is unknown: a history in
//! which the token endpoint never worked proves nothing.

use std::collections::BTreeMap;

use serde_json::json;

use super::{CheckResult, Validity};
use crate::history::{EventType, Op};

const EXAMPLES: usize = 20;

#[derive(Default)]
struct Code {
    ok: usize,
    fail: usize,
    info: usize,
    ok_nodes: Vec<Option<u64>>,
}

/// Checks a `codes` history.
pub fn check(ops: &[Op]) -> CheckResult {
    let mut codes: BTreeMap<&str, Code> = BTreeMap::new();
    let mut issued = 0usize;
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    for op in ops {
        let Some(key) = op.key.as_deref() else {
            continue;
        };
        match op.f.as_str() {
            "authorize" if op.outcome == EventType::Ok => issued += 1,
            "redeem" => {
                let c = codes.entry(key).or_default();
                match op.outcome {
                    EventType::Ok => {
                        c.ok += 1;
                        c.ok_nodes.push(op.node);
                    }
                    EventType::Fail => {
                        c.fail += 1;
                        let why = op.error.clone().unwrap_or_else(|| "unknown".into());
                        *refusals.entry(why).or_default() += 1;
                    }
                    _ => c.info += 1,
                }
            }
            _ => {}
        }
    }
    let attempts: usize = codes.values().map(|c| c.ok + c.fail + c.info).sum();
    let oks: usize = codes.values().map(|c| c.ok).sum();
    let double: Vec<_> = codes
        .iter()
        .filter(|(_, c)| c.ok >= 2)
        .map(|(k, c)| json!({"code": k, "ok": c.ok, "nodes": c.ok_nodes}))
        .collect();
    let once = codes.values().filter(|c| c.ok == 1).count();
    let possibly = codes.values().filter(|c| c.ok == 0 && c.info > 0).count();
    let never = codes.values().filter(|c| c.ok == 0 && c.info == 0).count();
    let with_info_and_ok = codes.values().filter(|c| c.ok == 1 && c.info > 0).count();
    let valid = if !double.is_empty() {
        Validity::Invalid
    } else if oks == 0 {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let summary = match valid {
        Validity::Valid => format!(
            "every code redeemed at most once: {} codes, {attempts} redemption attempts, {once} redeemed once, {possibly} only possibly (indeterminate), {never} never",
            codes.len()
        ),
        Validity::Invalid => format!(
            "anomalies: {} codes redeemed more than once (of {} codes)",
            double.len(),
            codes.len()
        ),
        Validity::Unknown => "unknown: no redemption succeeded".to_string(),
    };
    CheckResult {
        checker: "codes".to_string(),
        valid,
        summary,
        details: json!({
            "codes_issued": issued,
            "codes_redeemed_at": codes.len(),
            "attempts": attempts,
            "ok": oks,
            "redeemed_once": once,
            "possibly_redeemed": possibly,
            "never_redeemed": never,
            "ok_beside_info": with_info_and_ok,
            "refusals": refusals,
            "double_redeemed_count": double.len(),
            "double_redeemed": double.into_iter().take(EXAMPLES).collect::<Vec<_>>(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Process;
    use serde_json::Value;

    fn redeem(key: &str, outcome: EventType, i: u64) -> Op {
        Op {
            process: Process::Client(i),
            f: "redeem".into(),
            key: Some(key.into()),
            input: Value::Null,
            invoke_ns: i,
            outcome,
            output: Value::Null,
            complete_ns: (outcome != EventType::Info).then_some(i + 10),
            node: Some(i % 3 + 1),
            error: (outcome == EventType::Fail).then(|| "invalid_grant".into()),
            index: i,
        }
    }

    #[test]
    fn one_success_per_code_is_valid_even_beside_an_indeterminate_one() {
        use EventType::*;
        let ops = vec![
            redeem("c0", Ok, 0),
            redeem("c0", Fail, 1),
            redeem("c0", Fail, 2),
            redeem("c1", Info, 3),
            redeem("c1", Ok, 4),
            redeem("c2", Info, 5),
            redeem("c2", Fail, 6),
        ];
        let r = check(&ops);
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
        assert_eq!(r.details["possibly_redeemed"], json!(1));
        assert_eq!(r.details["refusals"]["invalid_grant"], json!(3));
    }

    #[test]
    fn two_successes_for_one_code_are_an_anomaly() {
        use EventType::*;
        let ops = vec![
            redeem("c0", Ok, 0),
            redeem("c1", Ok, 1),
            redeem("c1", Info, 2),
            redeem("c1", Ok, 3),
        ];
        let r = check(&ops);
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.details["double_redeemed_count"], json!(1));
        assert_eq!(r.details["double_redeemed"][0]["code"], json!("c1"));
    }

    #[test]
    fn no_success_at_all_proves_nothing() {
        let r = check(&[redeem("c0", EventType::Fail, 0)]);
        assert_eq!(r.valid, Validity::Unknown);
    }
}
