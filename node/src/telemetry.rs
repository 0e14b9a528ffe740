//! Logs and traces. Logs go to stderr as text or JSON lines (`log-format`,
//! filter `RSP_LOG`, default `info`). With `otlp-endpoint`, spans are also
//! exported over OTLP/HTTP (protobuf) to `{endpoint}/v1/traces` by a batch
//! exporter on its own thread, with resource `service.name=rsp` and the
//! node's id, zone and region; every HTTP request is one span named
//! `METHOD route` (the route template, e.g. `POST /t/{tenant}/token`, never
//! the raw path or query, which can carry tokens, codes and user names).
//!
//! A request's W3C `traceparent` (and `tracestate`) header makes its span a
//! child of the caller's; the spans below it (Raft writes and their forward
//! to the leader, actor calls, password hashing, signing, Cedar) follow, on
//! the leader too (`rsp_consensus::trace_context`). Sampling is parent
//! based: a sampled caller's trace is always kept, an unsampled one never,
//! and a trace that starts here is kept with `otlp-sampling-ratio`.
//! docs/observability.md lists the spans and what they never record.
//!
//! The exporter is built before the async runtime starts and shut down
//! (flushing what is queued) after it ends: its blocking HTTP client must
//! not be created or dropped inside the runtime.

use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::HeaderMap;
use axum::http::Request;
use opentelemetry::KeyValue;
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::config::{LogFormat, Settings};

/// What must be shut down when the node stops.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flush queued spans (bounded wait) and stop the exporter.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown_with_timeout(Duration::from_secs(5))
        {
            eprintln!("rsp: flushing traces to the OTLP endpoint failed: {e}");
        }
    }
}

/// The OTLP/HTTP traces URL for an `otlp-endpoint`: the collector's base
/// URL gets `/v1/traces`; a URL that already names it is kept.
pub fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    }
}

/// Install the global subscriber: stderr logs, and OTLP trace export when
/// `otlp-endpoint` is set. Fails only if the exporter cannot be built.
pub fn init(settings: &Settings) -> Result<Telemetry, String> {
    let filter = || {
        EnvFilter::try_from_env("RSP_LOG")
            .unwrap_or_else(|_| EnvFilter::new("info,openraft=error,sled=warn"))
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let logs = match settings.log_format {
        LogFormat::Json => fmt.json().with_filter(filter()).boxed(),
        LogFormat::Text => fmt.with_filter(filter()).boxed(),
    };
    let Some(endpoint) = settings.otlp_endpoint.as_deref() else {
        tracing_subscriber::registry().with(logs).init();
        return Ok(Telemetry { provider: None });
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(traces_url(endpoint))
        .with_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("cannot build the OTLP exporter: {e}"))?;
    let mut attributes = vec![
        KeyValue::new("rsp.zone", settings.zone.clone()),
        KeyValue::new("rsp.region", settings.region.clone()),
    ];
    if let Some(id) = settings.node_id {
        attributes.push(KeyValue::new("service.instance.id", id.to_string()));
    }
    let resource = Resource::builder()
        .with_service_name("rsp")
        .with_attributes(attributes)
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .with_sampler(sampler(settings.otlp_sampling_ratio.get()))
        .build();
    let tracer = provider.tracer("rsp");
    // No per-span extras: source locations, thread ids, the target and
    // busy/idle times (two clock reads at every enter and exit) cost on
    // every span, sampled or not, and say nothing the span's name does not.
    let spans = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_filter(filter());
    tracing_subscriber::registry().with(logs).with(spans).init();
    Ok(Telemetry {
        provider: Some(provider),
    })
}

/// Parent based: a caller's sampled flag decides; a trace that starts
/// here is kept with probability `ratio`.
fn sampler(ratio: f64) -> Sampler {
    Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))
}

/// The request headers as an OpenTelemetry carrier.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The span of one HTTP request: method and route template only, a child
/// of the caller's span when the request carries a valid `traceparent`.
pub fn request_span<B>(req: &Request<B>) -> Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let span = tracing::info_span!(
        "http",
        otel.name = %format!("{} {route}", req.method()),
        otel.kind = "server",
        http.request.method = %req.method(),
        http.route = route,
        http.response.status_code = tracing::field::Empty,
    );
    if req.headers().contains_key("traceparent") {
        let parent = TraceContextPropagator::new().extract(&Headers(req.headers()));
        // Without an OpenTelemetry layer there is nothing to parent.
        let _ = span.set_parent(parent);
    }
    span
}

/// Record the answer's status on the request's span.
pub fn record_status<B>(resp: &axum::http::Response<B>, _latency: Duration, span: &Span) {
    span.record("http.response.status_code", resp.status().as_u16());
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt as _;

    #[test]
    fn sampling_follows_the_caller_and_the_ratio_only_for_new_traces() {
        use opentelemetry::trace::{SpanContext, SpanKind, TraceFlags};
        use opentelemetry::trace::{SpanId, TraceId, TraceState};
        use opentelemetry_sdk::trace::{SamplingDecision, ShouldSample as _};
        let trace_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("id");
        let parent = |flags| {
            opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
                trace_id,
                SpanId::from_hex("00f067aa0ba902b7").expect("id"),
                flags,
                true,
                TraceState::default(),
            ))
        };
        let decide = |ratio, cx: Option<&opentelemetry::Context>| {
            sampler(ratio)
                .should_sample(cx, trace_id, "http", &SpanKind::Server, &[], &[])
                .decision
        };
        let sampled = parent(TraceFlags::SAMPLED);
        let unsampled = parent(TraceFlags::default());
        assert_eq!(
            decide(0.0, Some(&sampled)),
            SamplingDecision::RecordAndSample
        );
        assert_eq!(decide(1.0, Some(&unsampled)), SamplingDecision::Drop);
        assert_eq!(decide(0.0, None), SamplingDecision::Drop);
        assert_eq!(decide(1.0, None), SamplingDecision::RecordAndSample);
    }

    #[test]
    fn a_traceparent_header_is_read_as_the_remote_parent() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .expect("header"),
        );
        headers.insert("tracestate", "vendor=value".parse().expect("header"));
        let cx = TraceContextPropagator::new().extract(&Headers(&headers));
        let span = cx.span();
        let parent = span.span_context();
        assert!(parent.is_remote() && parent.is_sampled());
        assert_eq!(
            parent.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(parent.span_id().to_string(), "00f067aa0ba902b7");
        assert_eq!(parent.trace_state().get("vendor"), Some("value"));
    }

    #[test]
    fn the_traces_path_is_added_once() {
        assert_eq!(
            traces_url("http://collector:4318"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://c.example/otlp/v1/traces"),
            "https://c.example/otlp/v1/traces"
        );
    }
}
