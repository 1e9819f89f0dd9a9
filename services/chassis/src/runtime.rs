//! The parts every service runs on, assembled once: its database, its NATS
//! connection, its outbox relay, its gRPC port, its admin HTTP port (health,
//! readiness, metrics), and the shutdown order.
//!
//! A service is built the same way every time: [`Runtime::start`] with its
//! [`Identity`] (name, ports, migrations, stream), then what is its own added
//! to the runtime ([`Runtime::serve`] its gRPC services,
//! [`Runtime::consume`] its consumers, [`Runtime::sweep`] its sweepers,
//! [`Runtime::spawn`] any other task), then [`Runtime::run`]. An [`App`] is a
//! service built so; [`main`] is every service's `main`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::Routes;

use crate::Error;
use crate::admin::{self, AdminState};
use crate::auth::{Access, OPERATOR};
use crate::clock::SharedClock;
use crate::config::{CommonConfig, ConsumerRetry, StreamSettings};
use crate::database::Database;
use crate::grpc::{Peers, ServeOptions, server_tls};
use crate::inbox::{Apply, ConsumerSpec, Consumers, Inbox};
use crate::metrics::Metrics;
use crate::nats::{self, StreamSpec};
use crate::outbox::{OutboxSignal, Relay};
use crate::parked::{self, ParkedEvents};
use crate::storage::Migrations;
use crate::sweeper::{Sweeper, Work};

/// How long a JetStream publish or API call may take before it is retried.
const JETSTREAM_TIMEOUT: Duration = Duration::from_secs(5);

/// A background task: runs until the token is cancelled.
type Task = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// What makes a service itself, for the chassis to start and run it.
#[derive(Debug)]
pub struct Identity {
    /// `complaints`: in metrics, logs, the database's default file name and
    /// the NATS connection's name.
    pub name: &'static str,
    /// Where gRPC listens unless the config says otherwise.
    pub grpc_addr: &'static str,
    /// Where `/healthz`, `/readyz` and `/metrics` listen unless the config says otherwise.
    pub admin_addr: &'static str,
    /// The service's migrations, one directory per backend.
    pub migrations: &'static Migrations,
    /// The stream its outbox relay publishes into.
    pub stream: StreamSpec,
}

/// A service the chassis builds and runs: what `main` and test harnesses start.
pub trait App: Sized + Send + 'static {
    /// The service's settings: [`CommonConfig`] and its own.
    type Config: clap::Parser + Send + 'static;

    /// Its name, default ports, migrations and stream.
    fn identity() -> &'static Identity;

    /// Opens the database (running migrations), connects to NATS in the
    /// background, and binds the ports (port 0 picks a free one).
    fn build(
        config: Self::Config,
        clock: SharedClock,
    ) -> impl Future<Output = Result<Self, Error>> + Send;

    /// The settings every service shares, in its config.
    fn common(config: &Self::Config) -> &CommonConfig;

    /// The runtime it was built on.
    fn runtime(&self) -> &Runtime;

    /// The runtime, to run.
    fn into_runtime(self) -> Runtime;

    fn grpc_addr(&self) -> SocketAddr {
        self.runtime().grpc_addr()
    }

    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    fn admin_addr(&self) -> SocketAddr {
        self.runtime().admin_addr()
    }

    /// Serves until `shutdown`; then stops in order ([`Runtime::run`]).
    fn run_until_stopped(
        self,
        shutdown: CancellationToken,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        self.into_runtime().run(shutdown)
    }
}

/// Every service's `main`: reads the config from flags and environment, sets
/// up logging, builds the service and runs it until SIGTERM or SIGINT.
pub async fn main<A: App>() -> ExitCode {
    let command = <A::Config as clap::CommandFactory>::command();
    let matches = command.clone().get_matches();
    let config = <A::Config as clap::FromArgMatches>::from_arg_matches(&matches)
        .unwrap_or_else(|error| error.exit());
    crate::telemetry::init(A::common(&config).log_format);
    let name = A::identity().name;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        settings = %crate::config::effective_settings(&command, &matches),
        "{name} starting"
    );
    if let Err(error) = crate::otel::init(name) {
        eprintln!("Error: {name} could not start: {error}");
        return ExitCode::FAILURE;
    }
    let app = match A::build(config, Arc::new(crate::clock::SystemClock)).await {
        Ok(app) => app,
        Err(error) => {
            eprintln!("Error: {name} could not start: {error}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(grpc = %app.grpc_addr(), admin = %app.admin_addr(), "{name} listening");
    let stopped = app.run_until_stopped(crate::shutdown::on_signal()).await;
    crate::otel::shutdown().await;
    match stopped {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {name}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A service's shared parts, ready for it to build its API and tasks on, and
/// what it adds to them, run by [`Runtime::run`].
#[derive(Debug)]
pub struct Runtime {
    identity: &'static Identity,
    pub db: Database,
    pub client: async_nats::Client,
    pub js: async_nats::jetstream::Context,
    pub outbox: OutboxSignal,
    pub clock: SharedClock,
    /// The service's metrics, served on the admin port.
    pub metrics: Metrics,
    /// How to call the other services (token, TLS).
    pub peers: Peers,
    /// The consumers made with [`Runtime::inbox`], for replaying parked events.
    consumers: Consumers,
    retry: ConsumerRetry,
    /// The operator's settings of the stream this service produces into.
    stream_settings: StreamSettings,
    serving: ServeOptions,
    listener: TcpListener,
    grpc_addr: SocketAddr,
    admin_listener: TcpListener,
    admin_addr: SocketAddr,
    /// The gRPC services added with [`Runtime::serve`], and their names.
    routes: Routes,
    service_names: Vec<&'static str>,
    /// The tasks added with [`Runtime::consume`], [`Runtime::sweep`] and [`Runtime::spawn`].
    tasks: Tasks,
}

/// The background tasks a service runs.
#[derive(Default)]
struct Tasks(Vec<Task>);

impl std::fmt::Debug for Tasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} tasks", self.0.len())
    }
}

impl Runtime {
    /// Opens the database (running migrations), connects to NATS in the
    /// background, and binds the gRPC port and the admin HTTP port (the
    /// identity's unless the config names them; port 0 picks a free one).
    /// Calls are checked against `access` with the configured tokens (or not
    /// at all when auth is disabled).
    pub async fn start(
        identity: &'static Identity,
        common: &CommonConfig,
        access: Access,
        clock: SharedClock,
    ) -> Result<Self, Error> {
        let service = identity.name;
        let metrics = Metrics::new(service);
        let access = access.service(
            parked::SERVICE,
            &[
                ("ListParkedEvents", OPERATOR),
                ("ReplayParkedEvent", OPERATOR),
            ],
        );
        let guard = common.auth.guard(access)?;
        let tls = server_tls(common)?;
        let peers = Peers::from_config(common)?;
        let url = common.database_url(service)?;
        let db = Database::connect(&url, identity.migrations).await?;
        let serving = ServeOptions {
            guard,
            tls,
            metrics: metrics.clone(),
            storage: Some(db.health().clone()),
        };
        let client = nats::connect(&common.nats_url, &common.nats, service, &metrics).await?;
        let js = nats::jetstream(client.clone(), JETSTREAM_TIMEOUT);
        let (listener, grpc_addr) = bind("gRPC", common.grpc_addr, identity.grpc_addr).await?;
        let (admin_listener, admin_addr) =
            bind("admin", common.admin_addr, identity.admin_addr).await?;
        Ok(Self {
            identity,
            db,
            client,
            js,
            outbox: OutboxSignal::default(),
            clock,
            metrics,
            peers,
            consumers: Consumers::default(),
            retry: common.consumer_retry,
            stream_settings: common.stream,
            serving,
            listener,
            grpc_addr,
            admin_listener,
            admin_addr,
            routes: Routes::default(),
            service_names: Vec::new(),
            tasks: Tasks::default(),
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }
}

impl Runtime {
    /// Serves `server` on the gRPC port (with health reporting it serving).
    pub fn serve<S>(&mut self, server: S)
    where
        S: tower::Service<tonic::codegen::http::Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.routes = std::mem::take(&mut self.routes).add_service(server);
        self.service_names.push(S::NAME);
    }

    /// Runs a consumer of `spec` applying events with `handler` ([`Runtime::consumer`]).
    pub fn consume<H: Apply>(&mut self, spec: ConsumerSpec, handler: H) {
        let inbox = self.consumer(spec, handler);
        self.spawn(move |stop| inbox.run(stop));
    }

    /// A sweeper of `work` every `interval` on this service's database,
    /// clock and metrics, to run with [`Runtime::sweep`].
    pub fn sweeper<W: Work>(&self, work: W, interval: Duration) -> Sweeper<W> {
        Sweeper::new(
            work,
            self.db.clone(),
            self.clock.clone(),
            interval,
            self.metrics.clone(),
        )
    }

    /// Runs `sweeper` while the service runs.
    pub fn sweep<W: Work>(&mut self, sweeper: Sweeper<W>) {
        self.spawn(move |stop| sweeper.run(stop));
    }

    /// Runs `task` while the service runs; it is to return soon after its
    /// token is cancelled.
    pub fn spawn<F, Fut>(&mut self, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tasks
            .0
            .push(Box::new(move |stop| Box::pin(task(stop))));
    }

    /// A consumer of `spec` applying events with `handler`, parking on this
    /// service's database, on its NATS, clock and metrics, retrying as
    /// configured, and known to the parked-events service (so its parked
    /// events can be replayed).
    pub fn consumer<H: Apply>(&self, mut spec: ConsumerSpec, handler: H) -> Inbox<H> {
        spec.retry = self.retry;
        Inbox::new(
            self.db.clone(),
            self.js.clone(),
            spec,
            handler,
            self.clock.clone(),
            self.outbox.clone(),
        )
        .with_metrics(self.metrics.clone())
        .registered_in(&self.consumers)
    }
}

impl Runtime {
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Serves the services added (and the parked-events service) and the
    /// admin port, and runs the outbox relay (into the identity's stream) and
    /// the tasks added until `shutdown`; then `/readyz` answers 503, the gRPC
    /// port stops taking requests and finishes those in flight, the tasks
    /// stop, the outbox and the NATS connection are flushed, the admin port
    /// closes, and the database is closed.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let name = self.identity.name;
        let stream = self.identity.stream;
        let workers = CancellationToken::new();
        let tracker = TaskTracker::new();
        let admin_stop = CancellationToken::new();
        let admin = tokio::spawn(admin::serve(
            self.admin_listener,
            AdminState {
                db: self.db.clone(),
                clock: self.clock.clone(),
                metrics: self.metrics.clone(),
                shutdown: shutdown.clone(),
            },
            admin_stop.clone().cancelled_owned(),
        ));
        let parked = ParkedEvents::new(self.db.clone(), self.consumers, self.clock.clone());
        let routes = self.routes.add_service(parked.into_server());
        let mut service_names = self.service_names;
        service_names.push(parked::SERVICE);
        let relay = Relay::new(self.db.clone(), self.js, stream, self.outbox, self.clock)
            .with_stream_settings(self.stream_settings)
            .with_metrics(self.metrics.clone());
        tracker.spawn(relay.run(workers.clone()));
        tracker.spawn(crate::database::probe_while_failing(
            self.db.clone(),
            workers.clone(),
        ));
        for task in self.tasks.0 {
            tracker.spawn(task(workers.clone()));
        }
        tracker.close();
        let served = crate::grpc::serve(
            self.listener,
            routes,
            &service_names,
            self.serving,
            shutdown,
        )
        .await;
        workers.cancel();
        tracker.wait().await;
        if tokio::time::timeout(Duration::from_secs(2), self.client.flush())
            .await
            .is_err()
        {
            tracing::warn!("NATS flush timed out");
        }
        admin_stop.cancel();
        let mut admin = admin;
        match tokio::time::timeout(Duration::from_secs(2), &mut admin).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!(%error, "admin port failed"),
            Ok(Err(error)) => tracing::warn!(%error, "admin port task failed"),
            Err(_) => {
                tracing::warn!("admin port did not close in time");
                admin.abort();
            }
        }
        self.db.close().await;
        tracing::info!("{name} stopped");
        served
    }
}

/// Binds `configured`, or else `default` (`what` names the port in errors).
async fn bind(
    what: &str,
    configured: Option<SocketAddr>,
    default: &str,
) -> Result<(TcpListener, SocketAddr), Error> {
    let addr = match configured {
        Some(addr) => addr,
        None => default
            .parse()
            .map_err(|error| Error::Config(format!("default {what} address: {error}")))?,
    };
    let listener = TcpListener::bind(addr).await.map_err(|source| Error::Io {
        context: format!("binding the {what} address {addr}"),
        source,
    })?;
    let bound = listener.local_addr().map_err(|source| Error::Io {
        context: format!("reading the bound {what} address"),
        source,
    })?;
    Ok((listener, bound))
}
