//! How available the cluster was to the clients: which requests failed,
//! the longest stretch in which requests failed with no success between
//! them, and whether every failure fell in a nemesis window.
//!
//! A request *succeeded* when it got an answer that says what happened:
//! `ok`, or a compare-and-set that did not hold (`compare_failed`). Every
//! other `fail` and every `info` failed. A *stretch* of failures begins at
//! the later of the first failed request's invocation and the last success
//! before it, and ends with the last failed answer before the next success.

use serde::Serialize;

use crate::checker::register::COMPARE_FAILED;
use crate::history::{self, Event, EventType};

/// Availability figures of a history.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Availability {
    /// Requests that failed (see the module docs).
    pub failed: u64,
    /// The longest stretch of failures, in milliseconds.
    pub longest_outage_ms: f64,
    /// When that stretch began, seconds into the run.
    pub longest_outage_at_s: f64,
    /// Failed requests whose life (invocation to answer) overlaps no
    /// nemesis window.
    pub failed_outside_faults: u64,
}

/// One request: invoked, answered, and whether it succeeded.
struct Request {
    invoke: u64,
    answer: u64,
    ok: bool,
}

/// Availability figures of `events`.
pub fn availability(events: &[Event]) -> Availability {
    let answered = history::answered_at(events);
    let mut requests: Vec<Request> = history::pair(events)
        .into_iter()
        .filter_map(|op| {
            let answer = *answered.get(&op.index)?;
            let ok = op.outcome == EventType::Ok
                || (op.outcome == EventType::Fail && op.error.as_deref() == Some(COMPARE_FAILED));
            Some(Request {
                invoke: op.invoke_ns,
                answer,
                ok,
            })
        })
        .collect();
    requests.sort_by_key(|r| r.answer);
    let windows = fault_windows(events);
    let mut out = Availability::default();
    let mut last_ok = 0u64;
    let mut stretch: Option<(u64, u64)> = None;
    let close = |stretch: &mut Option<(u64, u64)>, out: &mut Availability| {
        if let Some((from, to)) = stretch.take() {
            let ms = to.saturating_sub(from) as f64 / 1e6;
            if ms > out.longest_outage_ms {
                out.longest_outage_ms = ms;
                out.longest_outage_at_s = from as f64 / 1e9;
            }
        }
    };
    for r in &requests {
        if r.ok {
            close(&mut stretch, &mut out);
            last_ok = r.answer;
            continue;
        }
        out.failed += 1;
        if !windows
            .iter()
            .any(|(from, to)| r.invoke <= *to && r.answer >= *from)
        {
            out.failed_outside_faults += 1;
        }
        let from = r.invoke.max(last_ok);
        stretch = Some(match stretch {
            Some((start, _)) => (start.min(from), r.answer),
            None => (from, r.answer),
        });
    }
    close(&mut stretch, &mut out);
    out
}

/// The nemesis windows (`start` to `stop`; open ones to the end).
fn fault_windows(events: &[Event]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut open = None;
    for e in events.iter().filter(|e| e.process.is_nemesis()) {
        match e.f.as_str() {
            "start" => open = Some(e.time_ns),
            "stop" => {
                if let Some(from) = open.take() {
                    out.push((from, e.time_ns));
                }
            }
            _ => {}
        }
    }
    if let Some(from) = open {
        out.push((from, u64::MAX));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Process, Record, Recorder};
    use serde_json::json;

    /// `(process, f, invoke ms, answer ms, outcome, error)`.
    type Op<'a> = (u64, &'a str, u64, u64, EventType, Option<&'a str>);

    /// A history of `ops` and nemesis windows `(start ms, stop ms)`; times
    /// are rewritten.
    fn history(ops: &[Op<'_>], faults: &[(u64, u64)]) -> Vec<Event> {
        let recorder = Recorder::in_memory();
        let mut timed: Vec<(u64, Record)> = Vec::new();
        for (p, f, invoke, answer, kind, error) in ops {
            let process = Process::Client(*p);
            timed.push((
                *invoke,
                Record::new(process.clone(), EventType::Invoke, *f).value(json!(null)),
            ));
            let mut done = Record::new(process, *kind, *f).value(json!(null));
            done.error = error.map(str::to_string);
            timed.push((*answer, done));
        }
        for (start, stop) in faults {
            timed.push((
                *start,
                Record::new(Process::nemesis(), EventType::Info, "start"),
            ));
            timed.push((
                *stop,
                Record::new(Process::nemesis(), EventType::Info, "stop"),
            ));
        }
        timed.sort_by_key(|(t, _)| *t);
        let mut events: Vec<Event> = timed
            .iter()
            .map(|(_, r)| recorder.record(r.clone()))
            .collect();
        for (e, (t, _)) in events.iter_mut().zip(&timed) {
            e.time_ns = t * 1_000_000;
        }
        events
    }

    #[test]
    fn the_longest_stretch_runs_from_the_last_success_to_the_last_failure() {
        use EventType::*;
        let events = history(
            &[
                (0, "write", 0, 10, Ok, None),
                // Invoked before the last success: the stretch starts at it.
                (1, "write", 5, 900, Info, Some("timeout")),
                (2, "read", 20, 30, Ok, None),
                (3, "write", 40, 500, Fail, Some("unavailable")),
                (0, "cas", 600, 610, Fail, Some(COMPARE_FAILED)),
                (2, "write", 1000, 1010, Fail, Some("unavailable")),
                (3, "read", 1100, 1120, Ok, None),
            ],
            &[(35, 700)],
        );
        let a = availability(&events);
        assert_eq!(a.failed, 3, "{a:?}");
        // 40 (invoked after the success at 30) .. 500 ends at the CAS
        // answered at 610; then 610 (process 1 was invoked at 5, before
        // that success) .. 1010.
        assert!((a.longest_outage_ms - 460.0).abs() < 1e-6, "{a:?}");
        assert!((a.longest_outage_at_s - 0.04).abs() < 1e-6, "{a:?}");
        assert_eq!(a.failed_outside_faults, 1, "the write at 1000 ms: {a:?}");
    }

    #[test]
    fn a_history_of_successes_has_no_outage() {
        let events = history(
            &[
                (0, "read", 0, 5, EventType::Ok, None),
                (1, "write", 1, 9, EventType::Ok, None),
            ],
            &[],
        );
        let a = availability(&events);
        assert_eq!((a.failed, a.failed_outside_faults), (0, 0));
        assert_eq!(a.longest_outage_ms, 0.0);
    }
}
