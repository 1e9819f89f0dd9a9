//! A service's Prometheus metrics: a small registry of labelled counters, gauges
//! and histograms, rendered in the text exposition format 0.0.4 by the admin port.
//!
//! Every series is prefixed `shequ_` and carries `service="<name>"`. What is
//! measured, and where:
//! - `shequ_grpc_requests_total{method,code}` and
//!   `shequ_grpc_request_duration_seconds{method}`: every gRPC call, by a tower
//!   layer in [`crate::grpc::serve`] (see [`GrpcMetricsLayer`] for how the code is read).
//! - `shequ_events_published_total{subject}`, `shequ_events_publish_failures_total`:
//!   the outbox relay, per acknowledged event and per failed publish.
//! - `shequ_outbox_backlog`, `shequ_outbox_oldest_age_seconds`: read from the
//!   database at scrape time ([`crate::outbox::backlog`]).
//! - `shequ_events_consumed_total{consumer,outcome}` (`applied`, `ignored`, `duplicate`,
//!   `parked`, `retried`): each inbox message.
//! - `shequ_consumer_pending{consumer}`: the consumer's `num_pending`, refreshed by
//!   the inbox loop every few seconds while it runs.
//! - `shequ_sweeper_runs_total{sweeper}`: [`Metrics::sweeper_ran`] (a pass run
//!   while this replica held the sweeper's lease).
//! - `shequ_storage_commit_failures_total`, `shequ_storage_can_commit`: commits
//!   that failed for want of storage, and whether the database takes commits
//!   now ([`crate::storage::CommitHealth`], read at scrape time).
//! - `shequ_lease_held{lease}`: 1 while this replica holds the named
//!   [`crate::lease::Lease`] (the outbox relay's, a sweeper's), else 0.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tonic::codegen::http;

/// Upper bounds of the gRPC duration histogram, in seconds.
pub const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// What becomes of one consumed event, as counted in `shequ_events_consumed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumed {
    Applied,
    /// Of a type its handler does not want: acked, nothing written.
    Ignored,
    Duplicate,
    /// Set aside in `parked_events`: it can never apply as it is.
    Parked,
    Retried,
}

impl Consumed {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Ignored => "ignored",
            Self::Duplicate => "duplicate",
            Self::Parked => "parked",
            Self::Retried => "retried",
        }
    }
}

/// The registry of one service; cheap to clone, shared by every part.
#[derive(Debug, Clone)]
pub struct Metrics(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    service: String,
    grpc_requests: Family<u64>,
    grpc_duration: Family<Histogram>,
    events_published: Family<u64>,
    publish_failures: Family<u64>,
    outbox_backlog: Family<f64>,
    outbox_oldest_age: Family<f64>,
    events_consumed: Family<u64>,
    consumer_pending: Family<f64>,
    sweeper_runs: Family<u64>,
    leases_held: Family<f64>,
    commit_failures: Family<u64>,
    can_commit: Family<f64>,
}

impl Metrics {
    pub fn new(service: impl Into<String>) -> Self {
        Self(Arc::new(Inner {
            service: service.into(),
            grpc_requests: Family::new(
                "shequ_grpc_requests_total",
                "gRPC calls served, by method and grpc-status code.",
                Kind::Counter,
                &["method", "code"],
            ),
            grpc_duration: Family::new(
                "shequ_grpc_request_duration_seconds",
                "Time from a gRPC call's arrival to its response headers.",
                Kind::Histogram,
                &["method"],
            ),
            events_published: Family::new(
                "shequ_events_published_total",
                "Outbox events published to JetStream and acknowledged, by subject.",
                Kind::Counter,
                &["subject"],
            ),
            publish_failures: Family::new(
                "shequ_events_publish_failures_total",
                "Outbox relay passes that failed to publish (the events are retried).",
                Kind::Counter,
                &[],
            ),
            outbox_backlog: Family::new(
                "shequ_outbox_backlog",
                "Outbox events not yet published, read at scrape time.",
                Kind::Gauge,
                &[],
            ),
            outbox_oldest_age: Family::new(
                "shequ_outbox_oldest_age_seconds",
                "Age of the oldest unpublished outbox event (0 when none), read at scrape time.",
                Kind::Gauge,
                &[],
            ),
            events_consumed: Family::new(
                "shequ_events_consumed_total",
                "Events received by a consumer, by outcome (applied, ignored, duplicate, parked, retried).",
                Kind::Counter,
                &["consumer", "outcome"],
            ),
            consumer_pending: Family::new(
                "shequ_consumer_pending",
                "Messages in the stream not yet delivered to the consumer (num_pending), refreshed every few seconds.",
                Kind::Gauge,
                &["consumer"],
            ),
            sweeper_runs: Family::new(
                "shequ_sweeper_runs_total",
                "Sweeper passes run, by sweeper.",
                Kind::Counter,
                &["sweeper"],
            ),
            leases_held: Family::new(
                "shequ_lease_held",
                "1 while this replica holds the named lease (runs that singleton job), else 0.",
                Kind::Gauge,
                &["lease"],
            ),
            commit_failures: Family::new(
                "shequ_storage_commit_failures_total",
                "Commits that failed for want of storage (disk full, I/O error, connection lost): nothing of them was stored.",
                Kind::Counter,
                &[],
            ),
            can_commit: Family::new(
                "shequ_storage_can_commit",
                "1 while the database takes commits, 0 from a failed commit until one succeeds (readiness follows it).",
                Kind::Gauge,
                &[],
            ),
        }))
    }

    pub fn service(&self) -> &str {
        &self.0.service
    }

    /// One gRPC call answered with `code` (the grpc-status) after `elapsed`.
    pub fn grpc_request(&self, method: &str, code: &str, elapsed: Duration) {
        self.0.grpc_requests.update(&[method, code], |n| *n += 1);
        self.0
            .grpc_duration
            .update(&[method], |h| h.observe(elapsed.as_secs_f64()));
    }

    pub fn event_published(&self, subject: &str) {
        self.0.events_published.update(&[subject], |n| *n += 1);
    }

    pub fn publish_failed(&self) {
        self.0.publish_failures.update(&[], |n| *n += 1);
    }

    /// The outbox's backlog, as [`crate::outbox::backlog`] reports it.
    pub fn set_outbox_backlog(&self, count: i64, oldest_age_ms: i64) {
        self.0.outbox_backlog.update(&[], |v| *v = count as f64);
        self.0
            .outbox_oldest_age
            .update(&[], |v| *v = oldest_age_ms as f64 / 1000.0);
    }

    pub fn event_consumed(&self, consumer: &str, outcome: Consumed) {
        self.0
            .events_consumed
            .update(&[consumer, outcome.as_str()], |n| *n += 1);
    }

    pub fn set_consumer_pending(&self, consumer: &str, pending: u64) {
        self.0
            .consumer_pending
            .update(&[consumer], |v| *v = pending as f64);
    }

    /// One pass of the sweeper named `sweeper` (`"escalation"`, `"overdue"`).
    pub fn sweeper_ran(&self, sweeper: &str) {
        self.0.sweeper_runs.update(&[sweeper], |n| *n += 1);
    }

    /// Whether this replica holds the lease named `lease`.
    pub fn set_lease_held(&self, lease: &str, held: bool) {
        self.0
            .leases_held
            .update(&[lease], |v| *v = if held { 1.0 } else { 0.0 });
    }

    /// The database's commit health, as [`crate::storage::CommitHealth`] says.
    pub fn set_storage(&self, health: &crate::storage::CommitHealth) {
        let failures = health.failures();
        self.0.commit_failures.update(&[], |n| *n = failures);
        let can = if health.failing().is_none() { 1.0 } else { 0.0 };
        self.0.can_commit.update(&[], |v| *v = can);
    }

    /// Every series in the text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let inner = &self.0;
        let mut out = String::new();
        let service = escape(&inner.service);
        inner.grpc_requests.render(&mut out, &service);
        inner.grpc_duration.render(&mut out, &service);
        inner.events_published.render(&mut out, &service);
        inner.publish_failures.render(&mut out, &service);
        inner.outbox_backlog.render(&mut out, &service);
        inner.outbox_oldest_age.render(&mut out, &service);
        inner.events_consumed.render(&mut out, &service);
        inner.consumer_pending.render(&mut out, &service);
        inner.sweeper_runs.render(&mut out, &service);
        inner.leases_held.render(&mut out, &service);
        inner.commit_failures.render(&mut out, &service);
        inner.can_commit.render(&mut out, &service);
        out
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// One metric name: its series, keyed by label values in the order of `labels`.
#[derive(Debug)]
struct Family<V> {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    series: Mutex<BTreeMap<Vec<String>, V>>,
}

impl<V: Value> Family<V> {
    fn new(
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: &'static [&'static str],
    ) -> Self {
        let mut series = BTreeMap::new();
        // A family without labels always has its one series, starting at zero.
        if labels.is_empty() {
            series.insert(Vec::new(), V::default());
        }
        Self {
            name,
            help,
            kind,
            labels,
            series: Mutex::new(series),
        }
    }

    fn update(&self, values: &[&str], change: impl FnOnce(&mut V)) {
        debug_assert_eq!(values.len(), self.labels.len(), "{}", self.name);
        let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        change(series.entry(key).or_default());
    }

    fn render(&self, out: &mut String, service: &str) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind.as_str());
        let series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        for (values, value) in series.iter() {
            let mut labels = format!("service=\"{service}\"");
            for (name, v) in self.labels.iter().zip(values) {
                let _ = write!(labels, ",{name}=\"{}\"", escape(v));
            }
            value.render(out, self.name, &labels);
        }
    }
}

trait Value: Default {
    fn render(&self, out: &mut String, name: &str, labels: &str);
}

impl Value for u64 {
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let _ = writeln!(out, "{name}{{{labels}}} {self}");
    }
}

impl Value for f64 {
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let _ = writeln!(out, "{name}{{{labels}}} {}", number(*self));
    }
}

#[derive(Debug)]
struct Histogram {
    /// Observations per bucket (not cumulative), one per [`DURATION_BUCKETS`] entry.
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: vec![0; DURATION_BUCKETS.len()],
            count: 0,
            sum: 0.0,
        }
    }
}

impl Histogram {
    fn observe(&mut self, value: f64) {
        if let Some(i) = DURATION_BUCKETS.iter().position(|bound| value <= *bound) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += value;
    }
}

impl Value for Histogram {
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, n) in DURATION_BUCKETS.iter().zip(&self.buckets) {
            cumulative += n;
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{}\"}} {cumulative}",
                number(*bound)
            );
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", number(self.sum));
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{value}")
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The tower layer [`crate::grpc::serve`] wraps every gRPC route in: counts each
/// call in `shequ_grpc_requests_total` and times it.
///
/// `method` is the request path (`/package.Service/Method`). `code` is the
/// `grpc-status` header of the response: tonic puts it there for every unary
/// call that fails (a trailers-only response). A layer cannot see trailers, so a
/// response without the header is recorded as `0` (OK) when it is HTTP 200 — a
/// successful unary call, or a stream whose final status (in its trailers) is
/// not inspected; any other HTTP status without the header is mapped to a gRPC
/// code as the gRPC spec does. The duration runs to the response headers, which
/// for a unary call is when the handler finished.
#[derive(Debug, Clone)]
pub struct GrpcMetricsLayer {
    metrics: Metrics,
}

impl GrpcMetricsLayer {
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// See [`GrpcMetricsLayer`].
#[derive(Debug, Clone)]
pub struct GrpcMetricsService<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, B, R> tower::Service<http::Request<B>> for GrpcMetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let metrics = self.metrics.clone();
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            let code = match &response {
                Ok(response) => grpc_code(response),
                // The connection failed under the call: UNKNOWN.
                Err(_) => "2".to_owned(),
            };
            metrics.grpc_request(&method, &code, started.elapsed());
            response
        })
    }
}

fn grpc_code<R>(response: &http::Response<R>) -> String {
    if let Some(code) = response
        .headers()
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
    {
        return code.to_owned();
    }
    // https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md
    match response.status().as_u16() {
        200 => "0",
        400 => "13",
        401 => "16",
        403 => "7",
        404 => "12",
        429 | 502..=504 => "14",
        _ => "2",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_help_type_and_labelled_series() {
        let metrics = Metrics::new("complaints");
        metrics.grpc_request("/a.B/C", "0", Duration::from_millis(3));
        metrics.grpc_request("/a.B/C", "0", Duration::from_secs(5));
        metrics.event_consumed("care", Consumed::Duplicate);
        metrics.sweeper_ran("esc\"alation");
        metrics.set_lease_held("outbox-relay", true);
        metrics.set_lease_held("escalation-sweeper", false);
        let text = metrics.render();
        assert!(text.contains("# TYPE shequ_grpc_requests_total counter\n"));
        assert!(text.contains(
            "shequ_grpc_requests_total{service=\"complaints\",method=\"/a.B/C\",code=\"0\"} 2\n"
        ));
        assert!(text.contains("shequ_grpc_request_duration_seconds_bucket{service=\"complaints\",method=\"/a.B/C\",le=\"0.001\"} 0\n"));
        assert!(text.contains("shequ_grpc_request_duration_seconds_bucket{service=\"complaints\",method=\"/a.B/C\",le=\"0.005\"} 1\n"));
        assert!(text.contains("shequ_grpc_request_duration_seconds_bucket{service=\"complaints\",method=\"/a.B/C\",le=\"2.5\"} 1\n"));
        assert!(text.contains("shequ_grpc_request_duration_seconds_bucket{service=\"complaints\",method=\"/a.B/C\",le=\"+Inf\"} 2\n"));
        assert!(text.contains("shequ_grpc_request_duration_seconds_count{service=\"complaints\",method=\"/a.B/C\"} 2\n"));
        assert!(text.contains("shequ_events_publish_failures_total{service=\"complaints\"} 0\n"));
        assert!(text.contains("shequ_outbox_backlog{service=\"complaints\"} 0\n"));
        assert!(text.contains(
            "shequ_events_consumed_total{service=\"complaints\",consumer=\"care\",outcome=\"duplicate\"} 1\n"
        ));
        assert!(text.contains("sweeper=\"esc\\\"alation\"} 1\n"));
        assert!(text.contains("# TYPE shequ_lease_held gauge\n"));
        assert!(
            text.contains("shequ_lease_held{service=\"complaints\",lease=\"outbox-relay\"} 1\n")
        );
        assert!(
            text.contains(
                "shequ_lease_held{service=\"complaints\",lease=\"escalation-sweeper\"} 0\n"
            )
        );
    }

    #[test]
    fn status_code_comes_from_the_header_or_the_http_status() {
        let with_header = http::Response::builder()
            .header("grpc-status", "5")
            .body(())
            .expect("response");
        assert_eq!(grpc_code(&with_header), "5");
        let ok = http::Response::builder().body(()).expect("response");
        assert_eq!(grpc_code(&ok), "0");
        let unavailable = http::Response::builder()
            .status(503)
            .body(())
            .expect("response");
        assert_eq!(grpc_code(&unavailable), "14");
    }
}
