//! Reading the audit trail: a page of events, newest first, filtered by
//! type, actor, outcome and time, read linearizably (an event committed
//! before the read, through any node, is listed).
//!
//! A page scans at most [`SCAN_BUDGET`] records: a filter that matches
//! little in a long trail answers a short (even empty) page with a cursor
//! to go on from, instead of reading the whole trail in one call.

use rsp_consensus::{Consensus, ConsensusError, Consistency};

use super::{AuditEvent, Outcome, PREFIX, key_at};

/// Records read per range call.
const CHUNK: usize = 500;
/// Records one page may scan.
pub const SCAN_BUDGET: usize = 10_000;

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// A type (`login.failed`), or a family ending in `.` or `.*`
    /// (`login.*`: every `login.` type).
    pub kind: Option<String>,
    pub actor: Option<String>,
    pub outcome: Option<Outcome>,
    /// Events at or after this time (ms since the epoch).
    pub from_ms: Option<u64>,
    /// Events at or before this time.
    pub to_ms: Option<u64>,
}

impl AuditFilter {
    pub fn matches(&self, e: &AuditEvent) -> bool {
        let kind = match self.kind.as_deref() {
            None => true,
            Some(k) => match k.strip_suffix('*') {
                Some(family) => e.kind.starts_with(family),
                None if k.ends_with('.') => e.kind.starts_with(k),
                None => e.kind == k,
            },
        };
        kind && self.actor.as_ref().is_none_or(|a| &e.actor == a)
            && self.outcome.is_none_or(|o| e.outcome == o)
            && self.from_ms.is_none_or(|t| e.time_ms >= t)
            && self.to_ms.is_none_or(|t| e.time_ms <= t)
    }
}

/// One page: the events, and the key to go on after (`None`: the end).
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    pub next: Option<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
    #[error("a stored audit event is unreadable: {0}")]
    Corrupt(String),
}

/// Up to `limit` events of `keyspace` matching `filter`, starting after the
/// record key `after` (a previous page's `next`).
pub async fn page(
    consensus: &Consensus,
    keyspace: &str,
    filter: &AuditFilter,
    after: Option<Vec<u8>>,
    limit: usize,
) -> Result<AuditPage, QueryError> {
    // Newest first: start at the `to` bound unless a cursor is further on.
    let mut cursor = match (after, filter.to_ms) {
        (Some(a), Some(to)) => Some(a.max(key_at(to))),
        (Some(a), None) => Some(a),
        (None, Some(to)) => Some(key_at(to)),
        (None, None) => None,
    };
    let mut events = Vec::new();
    let mut scanned = 0;
    let mut consistency = Consistency::Linearizable;
    loop {
        let (kvs, _) = consensus
            .range_after(keyspace, PREFIX, cursor.as_deref(), CHUNK, consistency)
            .await?;
        // One quorum-confirmed read; the rest of the page reads the same
        // node's copy, which is at least as new.
        consistency = Consistency::Local;
        let full = kvs.len() == CHUNK;
        for kv in kvs {
            scanned += 1;
            let event: AuditEvent = serde_json::from_slice(&kv.value)
                .map_err(|e| QueryError::Corrupt(e.to_string()))?;
            cursor = Some(kv.key.key);
            if filter.from_ms.is_some_and(|from| event.time_ms < from) {
                return Ok(AuditPage { events, next: None });
            }
            if filter.matches(&event) {
                events.push(event);
                if events.len() == limit {
                    return Ok(AuditPage {
                        events,
                        next: cursor,
                    });
                }
            }
            if scanned >= SCAN_BUDGET {
                return Ok(AuditPage {
                    events,
                    next: cursor,
                });
            }
        }
        if !full {
            return Ok(AuditPage { events, next: None });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn event(kind: &str, actor: &str, outcome: Outcome, time_ms: u64) -> AuditEvent {
        AuditEvent {
            id: format!("{time_ms}-1-0"),
            time: super::super::rfc3339(time_ms),
            kind: kind.into(),
            actor: actor.into(),
            outcome,
            ip: None,
            tenant: None,
            details: Map::new(),
            time_ms,
        }
    }

    #[test]
    fn filters_match_types_families_actors_outcomes_and_times() {
        let e = event("login.failed", "anonymous", Outcome::Failure, 5_000);
        let f = |kind: Option<&str>| AuditFilter {
            kind: kind.map(str::to_string),
            ..AuditFilter::default()
        };
        assert!(f(None).matches(&e));
        assert!(f(Some("login.failed")).matches(&e));
        assert!(f(Some("login.*")).matches(&e));
        assert!(f(Some("login.")).matches(&e));
        assert!(!f(Some("login")).matches(&e));
        assert!(!f(Some("login.succeeded")).matches(&e));
        let by = AuditFilter {
            actor: Some("operator".into()),
            ..AuditFilter::default()
        };
        assert!(!by.matches(&e));
        let outcome = AuditFilter {
            outcome: Some(Outcome::Success),
            ..AuditFilter::default()
        };
        assert!(!outcome.matches(&e));
        let window = AuditFilter {
            from_ms: Some(4_000),
            to_ms: Some(5_000),
            ..AuditFilter::default()
        };
        assert!(window.matches(&e));
        let later = AuditFilter {
            from_ms: Some(5_001),
            ..AuditFilter::default()
        };
        assert!(!later.matches(&e));
    }
}
