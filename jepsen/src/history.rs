//! The history of a run: every invocation and completion of a client
//! operation, and every nemesis event, with monotonic times.
//!
//! One [`Event`] per line of `history.jsonl`, in the order they happened
//! (`index` is that order). A client operation is an `invoke` event followed
//! later by exactly one completion of the same `process`: `ok` (it took
//! effect, with its result), `fail` (it certainly did not take effect) or
//! `info` (indeterminate: it may or may not have taken effect, now or later).
//! Times are nanoseconds since the run started, from one monotonic clock
//! that every client and the nemesis share.
//!
//! A process that saw `info` never issues another operation: its operation
//! stays open forever, so the worker continues under a fresh process id, as
//! in Jepsen.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// Who acted: a client process (a number) or a named actor (`nemesis`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Process {
    Client(u64),
    Named(String),
}

impl Process {
    pub fn nemesis() -> Self {
        Process::Named("nemesis".to_string())
    }

    pub fn is_nemesis(&self) -> bool {
        matches!(self, Process::Named(n) if n == "nemesis")
    }
}

/// One line of `history.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub index: u64,
    /// Nanoseconds since the run started (monotonic).
    pub time_ns: u64,
    pub process: Process,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The operation: `read`, `write`, `cas`, `add`, ...; for the nemesis
    /// `start` / `stop`.
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The operation's argument on `invoke`, its result on `ok`.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub value: Value,
    /// The node the client talked to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<u64>,
    /// Why it failed or is indeterminate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a client or the nemesis reports; the recorder stamps index and time.
#[derive(Debug, Clone)]
pub struct Record {
    pub process: Process,
    pub kind: EventType,
    pub f: String,
    pub key: Option<String>,
    pub value: Value,
    pub node: Option<u64>,
    pub error: Option<String>,
}

impl Record {
    pub fn new(process: Process, kind: EventType, f: impl Into<String>) -> Self {
        Self {
            process,
            kind,
            f: f.into(),
            key: None,
            value: Value::Null,
            node: None,
            error: None,
        }
    }

    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    pub fn value(mut self, value: Value) -> Self {
        self.value = value;
        self
    }

    pub fn node(mut self, node: u64) -> Self {
        self.node = Some(node);
        self
    }

    pub fn error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }
}

struct Inner {
    events: Vec<Event>,
    out: Option<BufWriter<File>>,
    write_error: Option<String>,
}

/// Stamps events with index and time, keeps them, and appends each to
/// `history.jsonl` as it happens (so a crashed run leaves its history).
pub struct Recorder {
    start: Instant,
    inner: Mutex<Inner>,
}

impl Recorder {
    /// A recorder that also writes `path` (created or truncated).
    pub fn to_file(path: &Path) -> Result<Self> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self::with_output(Some(BufWriter::new(file))))
    }

    /// A recorder that only keeps events in memory.
    pub fn in_memory() -> Self {
        Self::with_output(None)
    }

    fn with_output(out: Option<BufWriter<File>>) -> Self {
        Self {
            start: Instant::now(),
            inner: Mutex::new(Inner {
                events: Vec::new(),
                out,
                write_error: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Nanoseconds since the run started.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos().min(u64::MAX as u128) as u64
    }

    /// When the run started.
    pub fn started(&self) -> Instant {
        self.start
    }

    /// Records `r` now; returns its event. The time is taken under the lock,
    /// so index order is time order.
    pub fn record(&self, r: Record) -> Event {
        let mut inner = self.lock();
        let event = Event {
            index: inner.events.len() as u64,
            time_ns: self.now_ns(),
            process: r.process,
            kind: r.kind,
            f: r.f,
            key: r.key,
            value: r.value,
            node: r.node,
            error: r.error,
        };
        if let Some(out) = inner.out.as_mut() {
            let written = serde_json::to_writer(&mut *out, &event)
                .map_err(std::io::Error::from)
                .and_then(|_| out.write_all(b"\n"));
            if let Err(e) = written
                && inner.write_error.is_none()
            {
                inner.write_error = Some(e.to_string());
            }
        }
        inner.events.push(event.clone());
        event
    }

    /// Flushes the file; an error if any write failed.
    pub fn flush(&self) -> Result<()> {
        let mut inner = self.lock();
        if let Some(out) = inner.out.as_mut() {
            out.flush().context("flushing history.jsonl")?;
        }
        match &inner.write_error {
            Some(e) => anyhow::bail!("writing history.jsonl: {e}"),
            None => Ok(()),
        }
    }

    /// A copy of every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.clone()
    }

    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads a `history.jsonl`.
pub fn load(path: &Path) -> Result<Vec<Event>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut events = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let event: Event = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not an event", path.display(), n + 1))?;
        events.push(event);
    }
    Ok(events)
}

/// A client operation: its invocation paired with its completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub process: Process,
    pub f: String,
    pub key: Option<String>,
    /// The invocation's argument.
    pub input: Value,
    pub invoke_ns: u64,
    /// `Ok`, `Fail` or `Info`; `Info` also when the history ends before a
    /// completion.
    pub outcome: EventType,
    /// The completion's value (`ok`).
    pub output: Value,
    /// `None` when indeterminate.
    pub complete_ns: Option<u64>,
    pub node: Option<u64>,
    pub error: Option<String>,
    /// Index of the invocation event.
    pub index: u64,
}

impl Op {
    /// Latency of a completed (ok or fail) operation, or of an info one
    /// that got an answer (its completion time is recorded separately).
    pub fn latency_ns(&self) -> Option<u64> {
        self.complete_ns.map(|c| c.saturating_sub(self.invoke_ns))
    }
}

/// Pairs invocations with completions. Nemesis events are skipped. An
/// invocation without completion becomes `info` with no completion time.
/// Indeterminate operations keep `complete_ns = None` (they may take effect
/// at any later time); `answered_ns` gives when the client gave up.
pub fn pair(events: &[Event]) -> Vec<Op> {
    use std::collections::HashMap;
    let mut open: HashMap<&Process, usize> = HashMap::new();
    let mut ops: Vec<Op> = Vec::new();
    for e in events {
        if e.process.is_nemesis() {
            continue;
        }
        match e.kind {
            EventType::Invoke => {
                open.insert(&e.process, ops.len());
                ops.push(Op {
                    process: e.process.clone(),
                    f: e.f.clone(),
                    key: e.key.clone(),
                    input: e.value.clone(),
                    invoke_ns: e.time_ns,
                    outcome: EventType::Info,
                    output: Value::Null,
                    complete_ns: None,
                    node: e.node,
                    error: None,
                    index: e.index,
                });
            }
            kind => {
                if let Some(i) = open.remove(&e.process) {
                    let op = &mut ops[i];
                    op.outcome = kind;
                    op.output = e.value.clone();
                    op.error = e.error.clone();
                    op.complete_ns = (kind != EventType::Info).then_some(e.time_ns);
                }
            }
        }
    }
    ops
}

/// When each client operation's answer came (also for `info`), keyed by the
/// invocation index; for latency plots.
pub fn answered_at(events: &[Event]) -> std::collections::HashMap<u64, u64> {
    use std::collections::HashMap;
    let mut open: HashMap<&Process, u64> = HashMap::new();
    let mut out = HashMap::new();
    for e in events.iter().filter(|e| !e.process.is_nemesis()) {
        if e.kind == EventType::Invoke {
            open.insert(&e.process, e.index);
        } else if let Some(i) = open.remove(&e.process) {
            out.insert(i, e.time_ns);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_round_trip_through_jsonl_and_pair_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("history.jsonl");
        let rec = Recorder::to_file(&path).expect("recorder");
        let p = Process::Client(0);
        rec.record(
            Record::new(p.clone(), EventType::Invoke, "write")
                .key("k")
                .value(json!(1))
                .node(2),
        );
        rec.record(Record::new(Process::nemesis(), EventType::Info, "start").value(json!("x")));
        rec.record(
            Record::new(p.clone(), EventType::Ok, "write")
                .key("k")
                .value(json!(1)),
        );
        rec.record(Record::new(Process::Client(1), EventType::Invoke, "read").key("k"));
        rec.flush().expect("flush");

        let events = load(&path).expect("load");
        assert_eq!(events, rec.events());
        assert!(events.windows(2).all(|w| w[0].time_ns <= w[1].time_ns));
        let ops = pair(&events);
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].outcome, EventType::Ok);
        assert_eq!(ops[0].node, Some(2));
        assert!(ops[0].complete_ns.is_some());
        // Never completed: indeterminate, open forever.
        assert_eq!(ops[1].outcome, EventType::Info);
        assert_eq!(ops[1].complete_ns, None);
    }

    #[test]
    fn process_serialises_as_number_or_name() {
        assert_eq!(
            serde_json::to_value(Process::Client(3)).expect("ser"),
            json!(3)
        );
        assert_eq!(
            serde_json::to_value(Process::nemesis()).expect("ser"),
            json!("nemesis")
        );
        let p: Process = serde_json::from_value(json!("nemesis")).expect("de");
        assert!(p.is_nemesis());
    }
}
