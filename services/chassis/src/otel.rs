//! Spans exported over OTLP/gRPC, when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; off, and costing one check
//! per unit of work, otherwise.
//!
//! The trace itself stays [`crate::trace`]'s: a unit of work (a gRPC call
//! served, an event consumed, a background job) has a [`TraceContext`] whose
//! ids travel in `traceparent` headers. [`start`] exports a span with exactly
//! those ids (the work's trace id and span id, the caller's span as its
//! parent), so the spans of one request across the services and NATS form
//! one tree under one trace id in any OTLP backend. The standard `OTEL_*`
//! variables of the exporter and the batch processor apply
//! (`OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_BSP_SCHEDULE_DELAY`,
//! `OTEL_RESOURCE_ATTRIBUTES`, …); the resource's `service.name` is the
//! service's.

use std::cell::Cell;
use std::sync::OnceLock;

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    Tracer as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracer, SdkTracerProvider};

use crate::Error;
use crate::trace::TraceContext;

/// The variables that turn exporting on.
const ENDPOINTS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
];

static EXPORT: OnceLock<(SdkTracerProvider, SdkTracer)> = OnceLock::new();

/// Starts exporting when an endpoint is set (inside the tokio runtime, which
/// the gRPC exporter needs); `Ok(false)` when none is.
pub fn init(service: &'static str) -> Result<bool, Error> {
    let endpoint = ENDPOINTS
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()));
    let Some(endpoint) = endpoint else {
        return Ok(false);
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|error| {
            Error::Config(format!("OTEL_EXPORTER_OTLP_ENDPOINT={endpoint}: {error}"))
        })?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_id_generator(WorkIds)
        .with_resource(Resource::builder().with_service_name(service).build())
        .build();
    let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "shequ");
    if EXPORT.set((provider, tracer)).is_err() {
        return Err(Error::Config("the OTLP exporter was started twice".into()));
    }
    tracing::info!(%endpoint, "exporting spans over OTLP");
    Ok(true)
}

/// Exports what is left and stops exporting (at the end of `main`).
pub async fn shutdown() {
    if let Some((provider, _)) = EXPORT.get() {
        let provider = provider.clone();
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(error)) = flushed {
            tracing::warn!(%error, "spans not all exported at shutdown");
        }
    }
}

/// What a unit of work is, for its span.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A gRPC call served.
    Server,
    /// An event consumed from JetStream.
    Consumer,
    /// Background work (a sweep's item, a filing).
    Job,
}

/// The exported span of one unit of work, ended when dropped; nothing when
/// exporting is off.
#[derive(Debug)]
pub struct Span(Option<opentelemetry_sdk::trace::Span>);

impl Span {
    /// A span that exports nothing.
    pub const fn none() -> Self {
        Self(None)
    }

    pub fn set_attribute(&mut self, key: &'static str, value: impl Into<opentelemetry::Value>) {
        if let Some(span) = &mut self.0 {
            opentelemetry::trace::Span::set_attribute(span, KeyValue::new(key, value));
        }
    }

    /// The work failed with `message`.
    pub fn set_error(&mut self, message: String) {
        if let Some(span) = &mut self.0 {
            opentelemetry::trace::Span::set_status(span, Status::error(message));
        }
    }
}

/// Whether spans are exported.
pub fn enabled() -> bool {
    EXPORT.get().is_some()
}

/// The span of the work `work` (its trace id, and its own span id), a child
/// of the caller's span `parent` when the work continues one.
pub fn start(
    name: impl Into<std::borrow::Cow<'static, str>>,
    kind: Kind,
    work: &TraceContext,
    parent: Option<&TraceContext>,
) -> Span {
    let Some((_, tracer)) = EXPORT.get() else {
        return Span::none();
    };
    let context = parent.map_or_else(Context::new, |parent| {
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from_bytes(parent.trace_id),
            SpanId::from_bytes(parent.parent_id),
            TraceFlags::new(parent.flags),
            true,
            TraceState::default(),
        ))
    });
    let kind = match kind {
        Kind::Server => SpanKind::Server,
        Kind::Consumer => SpanKind::Consumer,
        Kind::Job => SpanKind::Internal,
    };
    let builder = tracer.span_builder(name).with_kind(kind);
    // The SDK takes new spans' ids from its generator: hand it the work's.
    NEXT.with(|next| next.set(Some((work.trace_id, work.parent_id))));
    let span = tracer.build_with_context(builder, &context);
    NEXT.with(|next| next.set(None));
    Span(Some(span))
}

thread_local! {
    /// The ids [`WorkIds`] gives the span [`start`] is building on this thread.
    static NEXT: Cell<Option<([u8; 16], [u8; 8])>> = const { Cell::new(None) };
}

/// The SDK's id generator: the ids of the work whose span is being built,
/// random ids otherwise.
#[derive(Debug)]
struct WorkIds;

impl IdGenerator for WorkIds {
    fn new_trace_id(&self) -> TraceId {
        NEXT.with(Cell::get).map_or_else(
            || RandomIdGenerator::default().new_trace_id(),
            |(trace, _)| TraceId::from_bytes(trace),
        )
    }

    fn new_span_id(&self) -> SpanId {
        NEXT.with(Cell::get).map_or_else(
            || RandomIdGenerator::default().new_span_id(),
            |(_, span)| SpanId::from_bytes(span),
        )
    }
}
