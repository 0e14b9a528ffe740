//! Logs and traces. Logs go to stderr as text or JSON lines (`log-format`,
//! filter `RSP_LOG`, default `info`). With `otlp-endpoint`, spans are also
//! exported over OTLP/HTTP (protobuf) to `{endpoint}/v1/traces` by a batch
//! exporter on its own thread, with resource `service.name=rsp` and the
//! node's id, zone and region; every HTTP request is one span named
//! `METHOD route` (the route template, e.g. `POST /t/{tenant}/token`, never
//! the raw path or query, which can carry tokens, codes and user names).
//!
//! The exporter is built before the async runtime starts and shut down
//! (flushing what is queued) after it ends: its blocking HTTP client must
//! not be created or dropped inside the runtime.

use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::Request;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
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
        .build();
    let tracer = provider.tracer("rsp");
    let spans = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(filter());
    tracing_subscriber::registry().with(logs).with(spans).init();
    Ok(Telemetry {
        provider: Some(provider),
    })
}

/// The span of one HTTP request: method and route template only.
pub fn request_span<B>(req: &Request<B>) -> Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    tracing::info_span!(
        "http",
        otel.name = %format!("{} {route}", req.method()),
        otel.kind = "server",
        http.request.method = %req.method(),
        http.route = route,
        http.response.status_code = tracing::field::Empty,
    )
}

/// Record the answer's status on the request's span.
pub fn record_status<B>(resp: &axum::http::Response<B>, _latency: Duration, span: &Span) {
    span.record("http.response.status_code", resp.status().as_u16());
}

#[cfg(test)]
mod tests {
    use super::*;

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
