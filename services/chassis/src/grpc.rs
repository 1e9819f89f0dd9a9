//! Serving a service's gRPC routes with `grpc.health.v1`, reflection (so `grpcurl`
//! works) and graceful shutdown, optionally over TLS ([`server_tls`]), within
//! limits (message and metadata size, call time, calls per connection), each
//! call traced ([`TraceLayer`]), counted and timed ([`GrpcMetricsLayer`]) and
//! checked against the service's access table ([`AuthLayer`]); calling the
//! other services with the trace and the service's token ([`Peers`]); plus the
//! error helpers every handler uses.

use std::future::Future;
use std::path::Path;
use std::task::{Context, Poll};
use std::time::Duration;

use chrono::{DateTime, Utc, Weekday};
use prost_types::Timestamp;
use shequ_proto::common::v1::GeoPoint;
use tokio::net::TcpListener;
use tokio::task::futures::TaskLocalFuture;
use tokio_util::sync::CancellationToken;
use tonic::codegen::http;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Routes;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{
    Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig,
};
use tonic::{Code, Status};
use tonic_health::ServingStatus;
use tonic_types::{ErrorDetails, StatusExt};
use tracing::Instrument;
use tracing::instrument::Instrumented;

use crate::Error;
use crate::auth::{AuthLayer, Caller, Guard};
use crate::config::CommonConfig;
use crate::fields::FieldError;
use crate::geo::{Datum, Location, Point};
use crate::metrics::{GrpcMetricsLayer, Metrics};
use crate::opening_hours::OpeningHours;
use crate::otel;
use crate::storage::{Rule, StoreError};
use crate::trace::{self, TraceContext};

/// The largest request a service decodes (each service's server is built with
/// it); larger ones are refused with `OutOfRange` before any handler runs.
/// The largest legitimate request, a whole district's organisation, is far below.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// The most metadata a call may carry (counted as HTTP/2 counts a header
/// list: each name and value plus 32 bytes); more is refused with
/// `ResourceExhausted` by [`MetadataLimitLayer`].
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// The header list HTTP/2 itself takes: beyond it the connection answers
/// HTTP 431 before any gRPC code runs (so no gRPC status can be given), which
/// is why it is well above [`MAX_METADATA_BYTES`].
const MAX_HEADER_LIST_BYTES: u32 = 256 * 1024;
/// How long a call may run before it is cancelled with `Cancelled`.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Calls one connection may have in flight; more wait.
const CONCURRENT_CALLS_PER_CONNECTION: usize = 256;

/// What [`serve`] needs besides the routes: who may call (the [`Guard`]),
/// TLS, and the metrics every call is recorded in.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub guard: Guard,
    pub tls: Option<ServerTlsConfig>,
    pub metrics: Metrics,
    /// When given, health reports NOT_SERVING while the database does not take
    /// commits, and SERVING again once it does.
    pub storage: Option<crate::storage::CommitHealth>,
}

/// Serves `routes` on `listener` until `shutdown`: health reports SERVING for
/// each of `service_names`, and NOT_SERVING as soon as shutdown begins; in-flight
/// calls are finished before this returns. Every call (health and reflection
/// too) runs in its trace ([`TraceLayer`]) and is recorded in the metrics;
/// every call but health checks needs a token the guard accepts.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    service_names: &[&str],
    options: ServeOptions,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in service_names {
        health
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    // Reflection in both versions: v1, and v1alpha, which grpcio-reflection,
    // Postman and older grpcurl builds still speak.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(shequ_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_error = |error| Error::Config(format!("gRPC reflection: {error}"));
    let reflection_v1 = reflection().build_v1().map_err(reflection_error)?;
    let reflection_v1alpha = reflection().build_v1alpha().map_err(reflection_error)?;
    let names: Vec<String> = service_names.iter().map(|name| name.to_string()).collect();
    let stopping = async move {
        if let Some(storage) = options.storage {
            follow_storage(&health, &names, storage, &shutdown).await;
        }
        shutdown.cancelled().await;
        for name in &names {
            health
                .set_service_status(name.as_str(), ServingStatus::NotServing)
                .await;
        }
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
    };
    let mut server = Server::builder();
    if let Some(tls) = options.tls {
        server = server
            .tls_config(tls)
            .map_err(|error| Error::Config(format!("gRPC TLS: {error}")))?;
    }
    server
        .timeout(CALL_TIMEOUT)
        .concurrency_limit_per_connection(CONCURRENT_CALLS_PER_CONNECTION)
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        .layer(MetadataLimitLayer)
        .layer(TraceLayer)
        .layer(GrpcMetricsLayer::new(options.metrics))
        .layer(AuthLayer::new(options.guard))
        .add_routes(
            routes
                .add_service(health_service)
                .add_service(reflection_v1)
                .add_service(reflection_v1alpha),
        )
        // Small unary replies must not wait for Nagle's algorithm (~40 ms each).
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            stopping,
        )
        .await?;
    Ok(())
}

/// Until `shutdown`: every service's health follows whether the database
/// takes commits.
async fn follow_storage(
    health: &tonic_health::server::HealthReporter,
    names: &[String],
    storage: crate::storage::CommitHealth,
    shutdown: &CancellationToken,
) {
    let mut state = storage.subscribe();
    loop {
        let status = match state.borrow_and_update().is_none() {
            true => ServingStatus::Serving,
            false => ServingStatus::NotServing,
        };
        for name in names.iter().map(String::as_str).chain([""]) {
            health.set_service_status(name, status).await;
        }
        tokio::select! {
            changed = state.changed() => if changed.is_err() { return },
            _ = shutdown.cancelled() => return,
        }
    }
}

/// The first tower layer of every call: metadata over [`MAX_METADATA_BYTES`]
/// is answered `ResourceExhausted` (a gRPC status clients can read, where the
/// HTTP/2 limit's 431 reaches them as `Unknown`).
#[derive(Debug, Clone, Copy, Default)]
pub struct MetadataLimitLayer;

impl<S> tower::Layer<S> for MetadataLimitLayer {
    type Service = MetadataLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetadataLimit { inner }
    }
}

/// See [`MetadataLimitLayer`].
#[derive(Debug, Clone)]
pub struct MetadataLimit<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for MetadataLimit<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    R: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let size: usize = request
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 32)
            .sum();
        if size > MAX_METADATA_BYTES {
            let status = Status::resource_exhausted(format!(
                "the call's metadata is {size} bytes, more than the {MAX_METADATA_BYTES} a call may carry"
            ));
            return Box::pin(async move { Ok(status.into_http()) });
        }
        Box::pin(self.inner.call(request))
    }
}

/// The tower layer [`serve`] wraps every gRPC route in: each call continues the
/// caller's trace (its `traceparent` request header) or, when that is absent or
/// malformed, starts a new one; a bad header never fails the call. The call
/// runs with that context as [`trace::current`] and inside a `tracing` span
/// `rpc` with the fields `trace_id` and `method` (the request path), so every
/// log line of the call names its trace.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceLayer;

impl<S> tower::Layer<S> for TraceLayer {
    type Service = TraceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceService { inner }
    }
}

/// See [`TraceLayer`].
#[derive(Debug, Clone)]
pub struct TraceService<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for TraceService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Instrumented<TaskLocalFuture<TraceContext, Exported<S::Future>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let incoming = request
            .headers()
            .get(trace::HEADER)
            .and_then(|value| value.to_str().ok());
        let parent = incoming.and_then(TraceContext::parse);
        let context = parent.map_or_else(TraceContext::new_root, |parent| parent.child());
        let method = request.uri().path();
        let span = tracing::info_span!(
            "rpc",
            trace_id = %context.trace_id_hex(),
            method = %method
        );
        if incoming.is_some() && parent.is_none() {
            span.in_scope(|| tracing::debug!("malformed traceparent ignored; new trace started"));
        }
        let exported = otel::enabled().then(|| {
            let mut exported = otel::start(
                method.to_owned(),
                otel::Kind::Server,
                &context,
                parent.as_ref(),
            );
            exported.set_attribute("rpc.system", "grpc");
            exported.set_attribute("rpc.method", method.to_owned());
            exported
        });
        let inner = &mut self.inner;
        let future = span.in_scope(|| trace::sync_scope(context, || inner.call(request)));
        let future = Exported {
            future,
            span: exported,
        };
        trace::scope(context, future).instrument(span)
    }
}

pin_project_lite::pin_project! {
    /// A call's future that ends its exported span with the call's
    /// grpc-status once the response is ready.
    pub struct Exported<F> {
        #[pin]
        future: F,
        span: Option<otel::Span>,
    }
}

impl<F, R, E> Future for Exported<F>
where
    F: Future<Output = Result<http::Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = std::task::ready!(this.future.poll(cx));
        if let Some(mut span) = this.span.take() {
            let code = match &output {
                Ok(response) => crate::metrics::grpc_code(response),
                Err(_) => "2".to_owned(),
            };
            if code != "0" {
                span.set_error(format!("grpc-status {code}"));
            }
            span.set_attribute("rpc.grpc.status_code", code);
        }
        Poll::Ready(output)
    }
}

/// A gRPC client's interceptor for calls to other shequ services: it passes the
/// current trace on (a `traceparent` header naming [`trace::current`]'s span as
/// the parent; none
/// when there is no current context or the call already has one) and presents
/// the service's bearer token, if it has one. Build clients with [`Peers`] (or
/// [`traced`] in tests).
#[derive(Debug, Clone, Default)]
pub struct OutgoingCall {
    authorization: Option<MetadataValue<Ascii>>,
}

impl tonic::service::Interceptor for OutgoingCall {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(authorization) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", authorization.clone());
        }
        if request.metadata().contains_key(trace::HEADER) {
            return Ok(request);
        }
        // The caller's span (the work this call is part of) is the parent.
        if let Some(context) = trace::current()
            && let Ok(value) = context.to_header().parse()
        {
            request.metadata_mut().insert(trace::HEADER, value);
        }
        Ok(request)
    }
}

/// A channel to another shequ service ([`OutgoingCall`] on every call).
pub type PeerChannel = InterceptedService<Channel, OutgoingCall>;

/// `channel` with the current trace added to each call, and no token.
pub fn traced(channel: Channel) -> PeerChannel {
    InterceptedService::new(channel, OutgoingCall::default())
}

/// How this service calls the others: the token it presents
/// (`SHEQU_SERVICE_TOKEN_FILE`) and the CA it trusts for TLS (`SHEQU_GRPC_TLS_CA_FILE`).
#[derive(Debug, Clone, Default)]
pub struct Peers {
    call: OutgoingCall,
    tls: Option<ClientTlsConfig>,
}

impl Peers {
    pub fn from_config(common: &CommonConfig) -> Result<Self, Error> {
        let authorization = common
            .auth
            .service_token()?
            .map(|token| {
                format!("Bearer {token}").parse().map_err(|_| {
                    Error::Config(
                        "SHEQU_SERVICE_TOKEN_FILE holds characters a header cannot".into(),
                    )
                })
            })
            .transpose()?;
        let tls = common
            .grpc_tls
            .tls_ca_file
            .as_deref()
            .map(|path| {
                read_pem("SHEQU_GRPC_TLS_CA_FILE", path)
                    .map(|ca| ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)))
            })
            .transpose()?;
        Ok(Self {
            call: OutgoingCall { authorization },
            tls,
        })
    }

    /// A lazily connecting channel to the service at `url` (named by the setting
    /// `setting` in errors): the peer need not be up yet. `https://` URLs use TLS.
    pub fn channel(
        &self,
        setting: &str,
        url: &str,
        timeout: Duration,
    ) -> Result<PeerChannel, Error> {
        let bad =
            |error: &dyn std::fmt::Display| Error::Config(format!("{setting} {url:?}: {error}"));
        let mut endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|error| bad(&error))?
            .connect_timeout(timeout)
            .timeout(timeout);
        if let Some(tls) = &self.tls {
            endpoint = endpoint
                .tls_config(tls.clone())
                .map_err(|error| bad(&error))?;
        }
        Ok(InterceptedService::new(
            endpoint.connect_lazy(),
            self.call.clone(),
        ))
    }
}

/// The server's TLS from `SHEQU_GRPC_TLS_CERT_FILE` / `_KEY_FILE` (and, to
/// require client certificates, `_CLIENT_CA_FILE`); `None` serves plaintext.
pub fn server_tls(common: &CommonConfig) -> Result<Option<ServerTlsConfig>, Error> {
    let tls = &common.grpc_tls;
    let (Some(cert), Some(key)) = (&tls.tls_cert_file, &tls.tls_key_file) else {
        return Ok(None);
    };
    let identity = Identity::from_pem(
        read_pem("SHEQU_GRPC_TLS_CERT_FILE", cert)?,
        read_pem("SHEQU_GRPC_TLS_KEY_FILE", key)?,
    );
    let mut config = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &tls.tls_client_ca_file {
        let ca = read_pem("SHEQU_GRPC_TLS_CLIENT_CA_FILE", ca)?;
        config = config.client_ca_root(Certificate::from_pem(ca));
    }
    Ok(Some(config))
}

fn read_pem(setting: &str, path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io {
        context: format!("reading {setting} {}", path.display()),
        source,
    })
}

/// `Internal` for a storage failure: logged here with its cause, which the
/// caller does not see.
/// `Unavailable` for a request whose writes were not stored because the
/// database could not take them just now (full, away, a failed commit): the
/// caller may retry the same request (with its `request_id`) later.
pub fn not_stored(error: &dyn std::fmt::Display) -> Status {
    tracing::warn!(%error, "request not stored: the database does not take commits");
    Status::unavailable("not stored, retry: the database cannot store it just now")
}

/// The status for a database error: [`not_stored`] when the database was
/// unavailable ([`crate::storage::is_unavailable`]), else [`storage_failed`].
pub fn database_failed(error: &sqlx::Error) -> Status {
    if crate::storage::is_unavailable(error) {
        not_stored(error)
    } else {
        storage_failed(error)
    }
}

/// The status for a storage error ([`crate::database::DbError`], or a bare
/// `sqlx::Error`): [`not_stored`] when the database was unavailable, else
/// [`storage_failed`].
pub fn storage_error(error: &(dyn std::error::Error + 'static)) -> Status {
    let unavailable = match error.downcast_ref::<crate::database::DbError>() {
        Some(error) => error.is_unavailable(),
        None => error
            .downcast_ref::<sqlx::Error>()
            .is_some_and(crate::storage::is_unavailable),
    };
    if unavailable {
        not_stored(&error)
    } else {
        storage_failed(&error)
    }
}

/// A storage operation's failure as the caller hears it, for every service:
/// `NotFound`, the rule's own status (`FailedPrecondition` unless it says
/// otherwise), `InvalidArgument` naming the field, [`storage_error`] for the
/// database, [`not_stored`] for a failed group commit, and [`storage_failed`]
/// for a value that does not encode.
impl<R: Rule> From<StoreError<R>> for Status {
    fn from(error: StoreError<R>) -> Self {
        match error {
            StoreError::NotFound(what) => Status::not_found(format!("{what} not found")),
            StoreError::Rule(rule) => rule.status(),
            StoreError::Field(error) => error.into(),
            StoreError::Database(error) => storage_error(&error),
            StoreError::Commit(error) => not_stored(&error),
            StoreError::Encoding(error) => storage_failed(&error),
        }
    }
}

pub fn storage_failed(error: &dyn std::fmt::Display) -> Status {
    tracing::error!(%error, "storage failed");
    Status::internal("storage failed; the request was not applied")
}

/// The authenticated caller of `request`; `None` only when authentication is
/// disabled (development).
pub fn caller<T>(request: &tonic::Request<T>) -> Option<&Caller> {
    request.extensions().get::<Caller>()
}

/// The actor recorded when authentication is off and the request names none.
pub const ANONYMOUS: &str = "anonymous";

/// Who makes the change `request` asks for, as history and events record it:
/// the authenticated caller's token name, an audit trail rather than a claim
/// (a request's own `actor` field is then ignored). With authentication
/// disabled (development only) it is the request's `claimed` actor, which must
/// be an account id rather than a person's name, or [`ANONYMOUS`].
pub fn actor<T>(
    request: &tonic::Request<T>,
    claimed: impl FnOnce(&T) -> &str,
) -> Result<String, Status> {
    if let Some(caller) = caller(request) {
        return Ok(caller.name.clone());
    }
    let claimed = claimed(request.get_ref());
    if claimed.trim().is_empty() {
        return Ok(ANONYMOUS.to_owned());
    }
    Ok(crate::fields::account("actor", claimed)?)
}

/// `InvalidArgument` naming the offending field, with a `BadRequest` detail.
pub fn invalid_argument(field: &str, description: impl Into<String>) -> Status {
    let description = description.into();
    Status::with_error_details(
        Code::InvalidArgument,
        format!("{field}: {description}"),
        ErrorDetails::with_bad_request_violation(field, description),
    )
}

/// The field named by an `InvalidArgument` status, if it carries a `BadRequest`.
pub fn violated_field(status: &Status) -> Option<String> {
    status
        .get_error_details()
        .bad_request()
        .and_then(|bad| bad.field_violations.first())
        .map(|violation| violation.field.clone())
}

/// A proto enum value as a domain value, matched by name (`CATEGORY_OTHER` ↔
/// `other`): `convert` is a `named_enum!`'s `from_proto_number`.
pub fn optional_enum<T>(
    field: &str,
    value: i32,
    convert: fn(i32) -> Option<Option<T>>,
) -> Result<Option<T>, Status> {
    convert(value).ok_or_else(|| invalid_argument(field, format!("unknown value {value}")))
}

pub fn required_enum<T>(
    field: &str,
    value: i32,
    convert: fn(i32) -> Option<Option<T>>,
) -> Result<T, Status> {
    optional_enum(field, value, convert)?.ok_or_else(|| invalid_argument(field, "is required"))
}

pub use shequ_proto::time::timestamp;

/// A required `GeoPoint` field as a [`Location`]: a datum named and
/// coordinates in range; errors name `{field}`, `{field}.datum`,
/// `{field}.latitude` or `{field}.longitude`.
pub fn location(field: &str, point: Option<GeoPoint>) -> Result<Location, Status> {
    let point = point.ok_or_else(|| invalid_argument(field, "is required"))?;
    let datum = required_enum(
        &format!("{field}.datum"),
        point.datum,
        Datum::from_proto_number,
    )?;
    Ok(Location {
        point: Point::parse(field, point.latitude, point.longitude)?,
        datum,
    })
}

/// A [`Location`] as a `GeoPoint`, in its own datum.
pub fn geo_point(location: Location) -> GeoPoint {
    GeoPoint {
        latitude: location.point.latitude,
        longitude: location.point.longitude,
        datum: location.datum.proto_number(),
    }
}

/// One span of the contract's opening hours (`shequ.alliance.v1.OpeningHours`)
/// as [`OpeningHours`]; errors name `{field}.days`, `{field}.opens` or
/// `{field}.closes`.
pub fn opening_hours(
    field: &str,
    hours: &shequ_proto::alliance::v1::OpeningHours,
) -> Result<OpeningHours, FieldError> {
    use shequ_proto::alliance::v1::Weekday as Day;
    let days = hours
        .days
        .iter()
        .map(|value| {
            Ok(match Day::try_from(*value) {
                Ok(Day::Monday) => Weekday::Mon,
                Ok(Day::Tuesday) => Weekday::Tue,
                Ok(Day::Wednesday) => Weekday::Wed,
                Ok(Day::Thursday) => Weekday::Thu,
                Ok(Day::Friday) => Weekday::Fri,
                Ok(Day::Saturday) => Weekday::Sat,
                Ok(Day::Sunday) => Weekday::Sun,
                _ => {
                    return Err(FieldError::new(
                        format!("{field}.days"),
                        format!("unknown weekday {value}"),
                    ));
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    OpeningHours::parse(field, days, &hours.opens, &hours.closes)
}

/// [`OpeningHours`] as the contract's message.
pub fn opening_hours_to_proto(hours: &OpeningHours) -> shequ_proto::alliance::v1::OpeningHours {
    shequ_proto::alliance::v1::OpeningHours {
        // chrono counts Monday as 1, like the proto enum.
        days: hours
            .days
            .iter()
            .map(|day| i32::try_from(day.number_from_monday()).unwrap_or(0))
            .collect(),
        opens: hours.opens_text(),
        closes: hours.closes_text(),
    }
}

/// A required timestamp field as a UTC instant.
pub fn required_time(field: &str, at: Option<Timestamp>) -> Result<DateTime<Utc>, Status> {
    let at = at.ok_or_else(|| invalid_argument(field, "is required"))?;
    shequ_proto::time::instant(&at).ok_or_else(|| invalid_argument(field, "is not a valid time"))
}

/// Page sizes of list calls: 0 means the default.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 200;

/// The page size asked for, refused above [`MAX_PAGE_SIZE`].
pub fn page_size(page: &shequ_proto::common::v1::PageRequest) -> Result<u32, Status> {
    match page.page_size {
        0 => Ok(DEFAULT_PAGE_SIZE),
        size if size <= MAX_PAGE_SIZE => Ok(size),
        size => Err(invalid_argument(
            "page.page_size",
            format!("must be at most {MAX_PAGE_SIZE}, got {size}"),
        )),
    }
}
