//! The set checker: no acknowledged add is lost, and linearizable reads
//! never miss an add that was acknowledged before they began.
//!
//! History shape (the `set` workload): `add e` (a unique integer);
//! `read {"from", "to"}` whose `ok` value is the sorted list of elements in
//! that inclusive range that were present; and, after the faults are healed,
//! one `final-read` over every element ever attempted.
//!
//! Findings, per element:
//! - **lost**: the add was acknowledged (`ok`) but the final read lacks it;
//! - **stale**: a read that began after the add was acknowledged, and
//!   covered the element, did not return it (the element is not lost);
//! - **failed but present**: a definitely failed add (e.g. 503, nothing
//!   applied) that some read returns;
//! - **unexpected**: a read returns an element never attempted;
//! - **reappeared**: an element seen, then missed by a read that began
//!   after that sighting, then seen again;
//! - informational: **never read** (acknowledged adds no read saw before
//!   the final read), **recovered** / **not applied** (indeterminate adds
//!   present / absent at the end).
//!
//! Any of the first five makes the history invalid; without a final read
//! the result is unknown.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::{CheckResult, Validity};
use crate::history::{EventType, Op};

/// How many example elements each finding lists.
const EXAMPLES: usize = 20;

#[derive(Debug, Clone, Default)]
struct Element {
    outcome: Option<EventType>,
    invoke_ns: u64,
    ok_ns: Option<u64>,
}

struct Read {
    from: i64,
    to: i64,
    invoke_ns: u64,
    complete_ns: u64,
    present: BTreeSet<i64>,
}

fn range(v: &Value) -> Option<(i64, i64)> {
    Some((v.get("from")?.as_i64()?, v.get("to")?.as_i64()?))
}

fn elements(v: &Value) -> BTreeSet<i64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

fn examples(set: &BTreeSet<i64>) -> Vec<i64> {
    set.iter().take(EXAMPLES).copied().collect()
}

/// Checks a `set` history.
pub fn check(ops: &[Op]) -> CheckResult {
    let mut adds: BTreeMap<i64, Element> = BTreeMap::new();
    let mut reads: Vec<Read> = Vec::new();
    let mut final_read: Option<BTreeSet<i64>> = None;
    for op in ops {
        match op.f.as_str() {
            "add" => {
                let Some(e) = op.input.as_i64() else { continue };
                adds.insert(
                    e,
                    Element {
                        outcome: Some(op.outcome),
                        invoke_ns: op.invoke_ns,
                        ok_ns: (op.outcome == EventType::Ok)
                            .then_some(op.complete_ns)
                            .flatten(),
                    },
                );
            }
            "read" if op.outcome == EventType::Ok => {
                let (Some((from, to)), Some(done)) = (range(&op.input), op.complete_ns) else {
                    continue;
                };
                reads.push(Read {
                    from,
                    to,
                    invoke_ns: op.invoke_ns,
                    complete_ns: done,
                    present: elements(&op.output),
                });
            }
            "final-read" if op.outcome == EventType::Ok => {
                final_read = Some(elements(&op.output));
            }
            _ => {}
        }
    }
    reads.sort_by_key(|r| r.invoke_ns);

    let mut lost = BTreeSet::new();
    let mut stale = BTreeSet::new();
    let mut stale_reads = 0usize;
    let mut failed_present = BTreeSet::new();
    let mut unexpected = BTreeSet::new();
    let mut reappeared = BTreeSet::new();
    let mut never_read = BTreeSet::new();
    let mut recovered = BTreeSet::new();
    let mut not_applied = BTreeSet::new();
    // When each element was first / last seen (read completion / invoke).
    let mut seen: BTreeMap<i64, Vec<(u64, u64)>> = BTreeMap::new();

    for r in &reads {
        for e in &r.present {
            if !adds.contains_key(e) {
                unexpected.insert(*e);
            }
            seen.entry(*e)
                .or_default()
                .push((r.invoke_ns, r.complete_ns));
        }
    }

    for (e, el) in &adds {
        let covering = reads.iter().filter(|r| r.from <= *e && *e <= r.to);
        let mut last_seen_done: Option<u64> = None;
        let mut missed_after_seen = false;
        for r in covering {
            let present = r.present.contains(e);
            if let Some(ok) = el.ok_ns
                && r.invoke_ns > ok
                && !present
            {
                stale_reads += 1;
                stale.insert(*e);
            }
            if present {
                if missed_after_seen {
                    reappeared.insert(*e);
                }
                last_seen_done =
                    Some(last_seen_done.map_or(r.complete_ns, |d| d.max(r.complete_ns)));
            } else if last_seen_done.is_some_and(|d| r.invoke_ns > d) {
                missed_after_seen = true;
            }
        }
        let in_final = final_read.as_ref().map(|f| f.contains(e));
        match el.outcome {
            Some(EventType::Ok) => {
                if in_final == Some(false) {
                    lost.insert(*e);
                }
                if !seen.contains_key(e) {
                    never_read.insert(*e);
                }
            }
            Some(EventType::Fail) => {
                if seen.contains_key(e) || in_final == Some(true) {
                    failed_present.insert(*e);
                }
            }
            _ => match in_final {
                Some(true) => {
                    recovered.insert(*e);
                }
                Some(false) => {
                    not_applied.insert(*e);
                }
                None => {}
            },
        }
    }
    if let Some(f) = &final_read {
        for e in f {
            if !adds.contains_key(e) {
                unexpected.insert(*e);
            }
        }
    }
    // Stale findings for elements that are lost are reported as lost.
    let stale: BTreeSet<i64> = stale.difference(&lost).copied().collect();

    let ok_adds = adds
        .values()
        .filter(|e| e.outcome == Some(EventType::Ok))
        .count();
    let anomalies = [
        ("lost", &lost),
        ("stale", &stale),
        ("failed_but_present", &failed_present),
        ("unexpected", &unexpected),
        ("reappeared", &reappeared),
    ];
    let found: Vec<String> = anomalies
        .iter()
        .filter(|(_, s)| !s.is_empty())
        .map(|(name, s)| format!("{} {name}", s.len()))
        .collect();
    let valid = if !found.is_empty() {
        Validity::Invalid
    } else if final_read.is_none() {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let summary = match valid {
        Validity::Valid => format!(
            "no acknowledged add lost: {ok_adds} acknowledged, {} reads, {} never read before the end",
            reads.len(),
            never_read.len()
        ),
        Validity::Invalid => format!(
            "anomalies: {} (of {ok_adds} acknowledged adds)",
            found.join(", ")
        ),
        Validity::Unknown => "unknown: the final read did not complete".to_string(),
    };
    let mut details = json!({
        "attempted": adds.len(),
        "acknowledged": ok_adds,
        "reads": reads.len(),
        "stale_reads": stale_reads,
        "final_read": final_read.as_ref().map(|f| f.len()),
    });
    for (name, set) in anomalies.iter().copied().chain([
        ("never_read", &never_read),
        ("recovered", &recovered),
        ("not_applied", &not_applied),
    ]) {
        details[format!("{name}_count")] = json!(set.len());
        details[name] = json!(examples(set));
    }
    let lost_times: Vec<Value> = lost
        .iter()
        .take(EXAMPLES)
        .filter_map(|e| {
            let el = adds.get(e)?;
            Some(json!({"element": e, "invoked_s": el.invoke_ns as f64 / 1e9,
                        "acknowledged_s": el.ok_ns.map(|t| t as f64 / 1e9)}))
        })
        .collect();
    details["lost_examples"] = json!(lost_times);
    CheckResult {
        checker: "set".to_string(),
        valid,
        summary,
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Process;

    struct H {
        ops: Vec<Op>,
    }

    impl H {
        fn new() -> Self {
            Self { ops: Vec::new() }
        }

        fn op(
            &mut self,
            f: &str,
            input: Value,
            outcome: EventType,
            output: Value,
            from: u64,
            to: Option<u64>,
        ) -> &mut Self {
            let index = self.ops.len() as u64;
            self.ops.push(Op {
                process: Process::Client(index),
                f: f.to_string(),
                key: None,
                input,
                invoke_ns: from * 1_000_000,
                outcome,
                output,
                complete_ns: to.map(|t| t * 1_000_000),
                node: None,
                error: None,
                index,
            });
            self
        }

        fn add(&mut self, e: i64, outcome: EventType, from: u64, to: u64) -> &mut Self {
            let done = (outcome != EventType::Info).then_some(to);
            self.op("add", json!(e), outcome, Value::Null, from, done)
        }

        fn read(
            &mut self,
            from_e: i64,
            to_e: i64,
            present: &[i64],
            from: u64,
            to: u64,
        ) -> &mut Self {
            self.op(
                "read",
                json!({"from": from_e, "to": to_e}),
                EventType::Ok,
                json!(present),
                from,
                Some(to),
            )
        }

        fn final_read(&mut self, present: &[i64], at: u64) -> &mut Self {
            self.op(
                "final-read",
                json!({"from": 0, "to": 1000}),
                EventType::Ok,
                json!(present),
                at,
                Some(at + 1),
            )
        }

        fn check(&self) -> CheckResult {
            check(&self.ops)
        }
    }

    #[test]
    fn every_acknowledged_add_present_is_valid() {
        let r = H::new()
            .add(0, EventType::Ok, 0, 1)
            .add(1, EventType::Ok, 2, 3)
            .add(2, EventType::Info, 2, 50)
            .add(3, EventType::Fail, 4, 5)
            .read(0, 2, &[0, 1], 6, 7)
            .final_read(&[0, 1, 2], 100)
            .check();
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
        assert_eq!(r.details["recovered"], json!([2]));
        assert_eq!(r.details["never_read_count"], json!(0));
    }

    #[test]
    fn an_acknowledged_add_missing_at_the_end_is_lost() {
        let r = H::new()
            .add(0, EventType::Ok, 0, 1)
            .add(1, EventType::Ok, 2, 3)
            .final_read(&[0], 100)
            .check();
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.details["lost"], json!([1]));
        assert!(r.summary.contains("1 lost"), "{}", r.summary);
    }

    #[test]
    fn a_read_missing_an_acknowledged_add_is_stale() {
        let r = H::new()
            .add(0, EventType::Ok, 0, 1)
            .read(0, 0, &[], 2, 3)
            .final_read(&[0], 100)
            .check();
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.details["stale"], json!([0]));
        // A read that overlaps the add may miss it.
        let r = H::new()
            .add(0, EventType::Ok, 0, 10)
            .read(0, 0, &[], 2, 3)
            .final_read(&[0], 100)
            .check();
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
        // A read whose range did not cover it says nothing.
        let r = H::new()
            .add(5, EventType::Ok, 0, 1)
            .read(0, 4, &[], 2, 3)
            .final_read(&[5], 100)
            .check();
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
    }

    #[test]
    fn a_failed_add_must_not_appear() {
        let r = H::new()
            .add(0, EventType::Fail, 0, 1)
            .final_read(&[0], 100)
            .check();
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.details["failed_but_present"], json!([0]));
    }

    #[test]
    fn an_element_that_vanishes_and_comes_back_is_flagged() {
        let r = H::new()
            .add(0, EventType::Info, 0, 0)
            .read(0, 0, &[0], 1, 2)
            .read(0, 0, &[], 3, 4)
            .read(0, 0, &[0], 5, 6)
            .final_read(&[0], 100)
            .check();
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.details["reappeared"], json!([0]));
    }

    #[test]
    fn without_a_final_read_the_result_is_unknown() {
        let r = H::new().add(0, EventType::Ok, 0, 1).check();
        assert_eq!(r.valid, Validity::Unknown);
    }
}
