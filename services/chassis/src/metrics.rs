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
//!   while this replica held the sweeper's lease);
//!   `shequ_sweeper_last_success_timestamp_seconds{sweeper}` when the last pass
//!   went through all it owed; `shequ_sweeper_done_total{sweeper}` what the
//!   passes did (escalations, overdue notices, complaints filed);
//!   `shequ_sweeper_backlog{sweeper}` and
//!   `shequ_sweeper_backlog_oldest_age_seconds{sweeper}` for work that keeps a
//!   backlog (care's filings), after each pass.
//! - `shequ_storage_commit_failures_total`, `shequ_storage_can_commit`: commits
//!   that failed for want of storage, and whether the database takes commits
//!   now ([`crate::storage::CommitHealth`], read at scrape time);
//!   `shequ_ready`: what `/readyz` answers, checked at scrape time.
//! - `shequ_lease_held{lease}`: 1 while this replica holds the named
//!   [`crate::lease::Lease`] (the outbox relay's, a sweeper's), else 0.
//! - `shequ_nats_connected`, `shequ_nats_disconnects_total`: the NATS
//!   connection, from its events ([`crate::nats::connect`]).
//! - `shequ_district_figure{figure}`: what a service reports of the district
//!   ([`Metrics::set_figure`]; complaints: the month's rates and backlog).
//! - `shequ_build_info{version}`: 1, naming the build.
//! - `process_cpu_seconds_total`, `process_resident_memory_bytes`,
//!   `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`,
//!   `process_start_time_seconds`: the standard process metrics, read from
//!   `/proc/self` at scrape time (Linux; absent elsewhere).

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
    sweeper_success: Family<f64>,
    sweeper_done: Family<u64>,
    sweeper_backlog: Family<f64>,
    sweeper_backlog_age: Family<f64>,
    nats_connected: Family<f64>,
    nats_disconnects: Family<u64>,
    build_info: Family<f64>,
    figures: Family<f64>,
    leases_held: Family<f64>,
    commit_failures: Family<u64>,
    can_commit: Family<f64>,
    ready: Family<f64>,
}

impl Metrics {
    pub fn new(service: impl Into<String>) -> Self {
        let metrics = Self(Arc::new(Inner {
            service: service.into(),
            grpc_requests: Family::new(
                "shequ_grpc_requests_total",
                "gRPC calls served, by method (/package.Service/Method) and grpc-status code (0 OK, 3 InvalidArgument, 5 NotFound, 7 PermissionDenied, 9 FailedPrecondition, 14 Unavailable, 16 Unauthenticated, ...).",
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
                "Outbox events published to JetStream and acknowledged, by subject (the event type, e.g. shequ.complaints.complaint.submitted.v1).",
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
                "Messages in the stream not yet delivered to the consumer (num_pending), by durable consumer name, refreshed every few seconds.",
                Kind::Gauge,
                &["consumer"],
            ),
            sweeper_runs: Family::new(
                "shequ_sweeper_runs_total",
                "Sweeper passes run, by sweeper (escalation, overdue, filing).",
                Kind::Counter,
                &["sweeper"],
            ),
            sweeper_success: Family::new(
                "shequ_sweeper_last_success_timestamp_seconds",
                "Unix time at which the sweeper's last pass went through all it owed, by sweeper (escalation, overdue, filing).",
                Kind::Gauge,
                &["sweeper"],
            ),
            sweeper_done: Family::new(
                "shequ_sweeper_done_total",
                "What the sweeper's passes did, by sweeper: escalation (complaints escalated past a time limit), overdue (overdue-visit notices raised), filing (complaints filed from visits).",
                Kind::Counter,
                &["sweeper"],
            ),
            sweeper_backlog: Family::new(
                "shequ_sweeper_backlog",
                "Items of a sweeper's work not yet done after its last pass, due or waiting out a retry (filing: complaints still to file).",
                Kind::Gauge,
                &["sweeper"],
            ),
            sweeper_backlog_age: Family::new(
                "shequ_sweeper_backlog_oldest_age_seconds",
                "Age of the oldest item of a sweeper's backlog after its last pass (0 when none).",
                Kind::Gauge,
                &["sweeper"],
            ),
            nats_connected: Family::new(
                "shequ_nats_connected",
                "1 while the connection to NATS is up, else 0 (the outbox holds events meanwhile).",
                Kind::Gauge,
                &[],
            ),
            nats_disconnects: Family::new(
                "shequ_nats_disconnects_total",
                "Times the connection to NATS was lost (it reconnects on its own).",
                Kind::Counter,
                &[],
            ),
            figures: Family::new(
                "shequ_district_figure",
                "The district's figures of the current month (Asia/Shanghai), recomputed every minute as GetFigures computes them: response_rate, on_time_resolution_rate, satisfaction_rate, reopen_rate (0-1, absent while nothing was counted), submitted, cases, open_under_1_day, open_1_to_3_days, open_3_to_7_days, open_over_7_days.",
                Kind::Gauge,
                &["figure"],
            ),
            build_info: Family::new(
                "shequ_build_info",
                "1, with the build's version as a label.",
                Kind::Gauge,
                &["version"],
            ),
            leases_held: Family::new(
                "shequ_lease_held",
                "1 while this replica holds the named lease (runs that singleton job), else 0: outbox-relay (every service), escalation-sweeper (complaints), overdue-sweeper and filing-worker (pensioner-care).",
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
            ready: Family::new(
                "shequ_ready",
                "1 when /readyz would answer 200 at scrape time (the database takes commits and answers, not shutting down), else 0.",
                Kind::Gauge,
                &[],
            ),
        }));
        metrics
            .0
            .build_info
            .update(&[env!("CARGO_PKG_VERSION")], |v| *v = 1.0);
        metrics
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

    /// A pass of `sweeper` that went through all it owed and did `done`.
    pub fn sweeper_succeeded(&self, sweeper: &str, done: usize) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64());
        self.0.sweeper_success.update(&[sweeper], |v| *v = now);
        self.0
            .sweeper_done
            .update(&[sweeper], |n| *n += done as u64);
    }

    /// What is left of `sweeper`'s work after a pass: `count` items, the
    /// oldest `oldest_age` old.
    pub fn set_sweeper_backlog(&self, sweeper: &str, count: u64, oldest_age: Duration) {
        self.0
            .sweeper_backlog
            .update(&[sweeper], |v| *v = count as f64);
        self.0
            .sweeper_backlog_age
            .update(&[sweeper], |v| *v = oldest_age.as_secs_f64());
    }

    /// Whether the service is ready (what `/readyz` answers).
    pub fn set_ready(&self, ready: bool) {
        self.0
            .ready
            .update(&[], |v| *v = if ready { 1.0 } else { 0.0 });
    }

    /// The district figure `figure`, or none (no series) when `value` is `None`.
    pub fn set_figure(&self, figure: &str, value: Option<f64>) {
        match value {
            Some(value) => self.0.figures.update(&[figure], |v| *v = value),
            None => self.0.figures.remove(&[figure]),
        }
    }

    /// Whether the NATS connection is up; a loss is counted.
    pub fn set_nats_connected(&self, connected: bool) {
        self.0
            .nats_connected
            .update(&[], |v| *v = if connected { 1.0 } else { 0.0 });
        if !connected {
            self.0.nats_disconnects.update(&[], |n| *n += 1);
        }
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
        inner.sweeper_success.render(&mut out, &service);
        inner.sweeper_done.render(&mut out, &service);
        inner.sweeper_backlog.render(&mut out, &service);
        inner.sweeper_backlog_age.render(&mut out, &service);
        inner.leases_held.render(&mut out, &service);
        inner.commit_failures.render(&mut out, &service);
        inner.can_commit.render(&mut out, &service);
        inner.ready.render(&mut out, &service);
        inner.nats_connected.render(&mut out, &service);
        inner.nats_disconnects.render(&mut out, &service);
        inner.figures.render(&mut out, &service);
        inner.build_info.render(&mut out, &service);
        process::render(&mut out, &service);
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
        change(series.entry(key(values)).or_default());
    }

    fn remove(&self, values: &[&str]) {
        let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        series.remove(&key(values));
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

/// A series' key: its label values, in the order of the family's labels.
fn key(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
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

pub(crate) fn grpc_code<R>(response: &http::Response<R>) -> String {
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

/// The standard process metrics of the Prometheus client libraries, read from
/// `/proc/self` when rendered (nothing is written where there is no `/proc`).
mod process {
    use std::fmt::Write as _;

    /// `/proc`'s clock ticks per second (USER_HZ, 100 on Linux's ABI).
    const TICKS_PER_SECOND: f64 = 100.0;

    pub(super) fn render(out: &mut String, service: &str) {
        let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
            return;
        };
        // The fields after the command name, which is in parentheses and may hold spaces.
        let Some(fields) = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect::<Vec<_>>())
        else {
            return;
        };
        // Numbered as in proc(5), field 3 (state) being fields[0].
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
        let mut metric = |name: &str, kind: &str, help: &str, value: Option<f64>| {
            if let Some(value) = value {
                let _ = writeln!(out, "# HELP {name} {help}");
                let _ = writeln!(out, "# TYPE {name} {kind}");
                let _ = writeln!(
                    out,
                    "{name}{{service=\"{service}\"}} {}",
                    super::number(value)
                );
            }
        };
        let cpu = field(14)
            .zip(field(15))
            .map(|(user, system)| (user + system) / TICKS_PER_SECOND);
        metric(
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent, in seconds.",
            cpu,
        );
        metric(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            resident_bytes(),
        );
        metric(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            field(23),
        );
        let open = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|dir| dir.count() as f64);
        metric("process_open_fds", "gauge", "Open file descriptors.", open);
        metric(
            "process_max_fds",
            "gauge",
            "The limit on open file descriptors.",
            max_fds(),
        );
        let started = boot_time()
            .zip(field(22))
            .map(|(boot, ticks)| boot + ticks / TICKS_PER_SECOND);
        metric(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch, in seconds.",
            started,
        );
    }

    /// `VmRSS` of `/proc/self/status` (in kB there), whatever the page size.
    fn resident_bytes() -> Option<f64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))?;
        let kilobytes: f64 = line.split_whitespace().next()?.parse().ok()?;
        Some(kilobytes * 1024.0)
    }

    /// The soft limit of `Max open files` in `/proc/self/limits`.
    fn max_fds() -> Option<f64> {
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let line = limits
            .lines()
            .find(|line| line.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse().ok()
    }

    /// `btime` of `/proc/stat`: the boot time, in seconds since the epoch.
    fn boot_time() -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        stat.lines()
            .find_map(|line| line.strip_prefix("btime ")?.trim().parse().ok())
    }
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
    fn sweepers_nats_and_the_build_are_reported() {
        let metrics = Metrics::new("pensioner-care");
        metrics.sweeper_succeeded("filing", 2);
        metrics.sweeper_succeeded("filing", 1);
        metrics.set_sweeper_backlog("filing", 4, Duration::from_secs(90));
        metrics.set_nats_connected(true);
        metrics.set_nats_connected(false);
        let text = metrics.render();
        let series = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.rsplit(' ').next())
                .and_then(|value| value.parse::<f64>().ok())
        };
        let labels = "{service=\"pensioner-care\",sweeper=\"filing\"}";
        assert_eq!(
            series(&format!("shequ_sweeper_done_total{labels}")),
            Some(3.0)
        );
        assert_eq!(series(&format!("shequ_sweeper_backlog{labels}")), Some(4.0));
        assert_eq!(
            series(&format!("shequ_sweeper_backlog_oldest_age_seconds{labels}")),
            Some(90.0)
        );
        let last = series(&format!(
            "shequ_sweeper_last_success_timestamp_seconds{labels}"
        ));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|since| since.as_secs_f64())
            .unwrap_or_default();
        assert!(
            last.is_some_and(|last| (now - last).abs() < 60.0),
            "{last:?}"
        );
        assert_eq!(
            series("shequ_nats_connected{service=\"pensioner-care\"}"),
            Some(0.0)
        );
        assert_eq!(
            series("shequ_nats_disconnects_total{service=\"pensioner-care\"}"),
            Some(1.0)
        );
        let build = format!(
            "shequ_build_info{{service=\"pensioner-care\",version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&build), "{text}");
    }

    /// Read from /proc on Linux, where the services run.
    #[cfg(target_os = "linux")]
    #[test]
    fn process_metrics_are_read_from_proc() {
        let text = Metrics::new("complaints").render();
        let value = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(&format!("{name}{{service=\"complaints\"}} ")))
                .and_then(|value| value.parse::<f64>().ok())
        };
        assert!(
            value("process_resident_memory_bytes").is_some_and(|rss| rss > 1e5),
            "{text}"
        );
        assert!(value("process_virtual_memory_bytes").is_some_and(|vm| vm > 1e5));
        let open = value("process_open_fds").unwrap_or_default();
        assert!(open >= 1.0 && value("process_max_fds").is_some_and(|max| max >= open));
        assert!(value("process_cpu_seconds_total").is_some_and(|cpu| cpu >= 0.0));
        assert!(value("process_start_time_seconds").is_some_and(|at| at > 1.6e9));
    }

    /// Every sample line follows its family's HELP and TYPE, as the text
    /// format 0.0.4 wants (promtool check metrics reads the same).
    #[test]
    fn every_series_is_announced_by_help_and_type() {
        let metrics = Metrics::new("complaints");
        metrics.grpc_request("/a.B/C", "0", Duration::from_millis(3));
        metrics.sweeper_succeeded("escalation", 1);
        let text = metrics.render();
        let (mut helped, mut typed) = (Vec::new(), Vec::new());
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                helped.push(rest.split(' ').next().unwrap_or_default().to_owned());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap_or_default();
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                assert_eq!(helped.last().map(String::as_str), Some(name), "{line}");
                typed.push(name.to_owned());
            } else {
                let name = line.split(['{', ' ']).next().unwrap_or_default();
                let family = typed.last().map(String::as_str).unwrap_or_default();
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix).filter(|base| *base == family))
                    .unwrap_or(name);
                assert_eq!(base, family, "{line} outside its family");
                let value = line.rsplit(' ').next().unwrap_or_default();
                assert!(
                    value.parse::<f64>().is_ok() || value.ends_with("Inf"),
                    "{line}"
                );
            }
        }
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
