//! W3C trace context (`traceparent`) across the peer link, so a write a
//! follower forwards is traced on the leader in the caller's trace.
//!
//! **Wire form.** Forwarded writes travel batched in one
//! [`crate::rpc::PeerBody::WriteBatch`], and each write in a batch may come
//! from a different request, so each needs its own parent. The follower
//! sends them in one HTTP header of the peer request, [`TRACE_HEADER`]:
//! one entry per operation of the batch, in order, separated by spaces,
//! each a `traceparent` value or `-` for a write without one. The bincode
//! message is unchanged: a node of an earlier release ignores the header (an
//! unknown HTTP header), and a node of this release answers a batch without
//! it as before (its writes are not traced on the leader). So nodes one release
//! apart forward writes to each other in both directions with no cluster
//! feature to wait for; during the upgrade only the trace is split.
//!
//! The header is outside the join-token tag of the body (adding it to the
//! tag would break that check with earlier releases). It names trace and
//! span ids only: whoever could alter it on a peer link (mutual TLS keeps
//! strangers off) could only misfile spans. It is parsed strictly (entries
//! that are not a valid `traceparent` are ignored, and a header whose entry
//! count does not match the batch is ignored whole).
//!
//! `tracestate` does not cross the peer link; it stays on the spans of the
//! node that received the request.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The peer request header with one `traceparent` (or `-`) per operation.
pub const TRACE_HEADER: &str = "rsp-op-traceparents";
const TRACEPARENT: &str = "traceparent";
/// Longest header accepted: a full batch of 256 entries of 55 characters.
const MAX_HEADER: usize = 256 * 56;

/// A carrier of one `traceparent` value.
struct One(Option<String>);

impl Injector for One {
    fn set(&mut self, key: &str, value: String) {
        if key == TRACEPARENT {
            self.0 = Some(value);
        }
    }
}

impl Extractor for One {
    fn get(&self, key: &str) -> Option<&str> {
        (key == TRACEPARENT).then_some(self.0.as_deref()).flatten()
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT]
    }
}

/// The `traceparent` of `span` when it belongs to a trace (sampled or not:
/// an unsampled parent keeps the leader from sampling on its own); `None`
/// without an OpenTelemetry layer.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    if span.is_disabled() {
        return None;
    }
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = One(None);
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.0
}

/// The remote parent named by a `traceparent` value, if it is valid.
pub fn parse(traceparent: &str) -> Option<Context> {
    let cx = TraceContextPropagator::new().extract(&One(Some(traceparent.to_owned())));
    cx.span().span_context().is_valid().then_some(cx)
}

/// The header value for a batch, `None` when no operation has a parent.
pub fn encode_batch<'a>(entries: impl ExactSizeIterator<Item = Option<&'a str>>) -> Option<String> {
    let mut out = String::new();
    let mut any = false;
    for (i, entry) in entries.enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match entry {
            Some(tp) if is_token(tp) => {
                out.push_str(tp);
                any = true;
            }
            _ => out.push('-'),
        }
    }
    any.then_some(out)
}

/// The entries of a header for a batch of `ops` operations: one per
/// operation, or all `None` when the header is absent or does not fit.
pub fn decode_batch(header: Option<&str>, ops: usize) -> Vec<Option<String>> {
    let none = || vec![None; ops];
    let Some(header) = header.filter(|h| h.len() <= MAX_HEADER) else {
        return none();
    };
    let entries: Vec<&str> = header.split(' ').collect();
    if entries.len() != ops {
        return none();
    }
    entries
        .into_iter()
        .map(|e| (e != "-" && is_token(e)).then(|| e.to_owned()))
        .collect()
}

/// Characters a `traceparent` is made of (hex digits and dashes).
fn is_token(v: &str) -> bool {
    !v.is_empty() && v.len() <= 55 && v.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_batch_header_keeps_one_entry_per_operation_in_order() {
        let header = encode_batch([Some(TP), None, Some("junk value")].into_iter());
        assert_eq!(header.as_deref(), Some(&*format!("{TP} - -")));
        assert_eq!(
            decode_batch(header.as_deref(), 3),
            vec![Some(TP.to_owned()), None, None]
        );
        assert_eq!(encode_batch([None, None].into_iter()), None);
    }

    #[test]
    fn a_header_that_does_not_fit_the_batch_is_ignored() {
        assert_eq!(decode_batch(Some(TP), 2), vec![None, None]);
        assert_eq!(decode_batch(None, 1), vec![None]);
        let long = vec![TP; 300].join(" ");
        assert_eq!(decode_batch(Some(&long), 300), vec![None; 300]);
    }

    #[test]
    fn only_valid_traceparents_name_a_parent() {
        let cx = parse(TP).expect("valid");
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none());
        assert!(parse("not-a-traceparent").is_none());
    }

    #[test]
    fn without_an_opentelemetry_layer_there_is_no_traceparent() {
        let span = tracing::info_span!("x");
        assert_eq!(traceparent(&span), None);
    }
}
