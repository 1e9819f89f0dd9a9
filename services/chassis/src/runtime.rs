//! The parts every service runs on, assembled once: its database, its NATS
//! connection, its outbox relay, its gRPC port, its admin HTTP port (health,
//! readiness, metrics), and the shutdown order.

use std::net::SocketAddr;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::service::Routes;

use crate::Error;
use crate::admin::{self, AdminState};
use crate::auth::{Access, OPERATOR};
use crate::clock::SharedClock;
use crate::config::{CommonConfig, ConsumerRetry};
use crate::database::Database;
use crate::grpc::{Peers, ServeOptions, server_tls};
use crate::inbox::{Apply, ConsumerSpec, Consumers, Inbox};
use crate::metrics::Metrics;
use crate::nats::{self, StreamSpec};
use crate::outbox::{OutboxSignal, Relay};
use crate::parked::{self, ParkedEvents};
use crate::storage::Migrations;

/// How long a JetStream publish or API call may take before it is retried.
const JETSTREAM_TIMEOUT: Duration = Duration::from_secs(5);

/// A background task: runs until the token is cancelled.
pub type Task = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// A service's shared parts, ready for it to build its API and tasks on.
#[derive(Debug)]
pub struct Runtime {
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
    serving: ServeOptions,
    listener: TcpListener,
    grpc_addr: SocketAddr,
    admin_listener: TcpListener,
    admin_addr: SocketAddr,
}

impl Runtime {
    /// Opens the database (running migrations), connects to NATS in the
    /// background, and binds the gRPC port and the admin HTTP port
    /// (`default_grpc_addr` and `default_admin_addr` unless the config names
    /// them; port 0 picks a free one). Calls are checked against `access`
    /// with the configured tokens (or not at all when auth is disabled).
    pub async fn start(
        service: &str,
        common: &CommonConfig,
        default_grpc_addr: &str,
        default_admin_addr: &str,
        migrations: &Migrations,
        access: Access,
        clock: SharedClock,
    ) -> Result<Self, Error> {
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
        let db = Database::connect(&url, migrations).await?;
        let serving = ServeOptions {
            guard,
            tls,
            metrics: metrics.clone(),
            storage: Some(db.health().clone()),
        };
        let client = nats::connect(&common.nats_url, &common.nats, service).await?;
        let js = nats::jetstream(client.clone(), JETSTREAM_TIMEOUT);
        let (listener, grpc_addr) = bind("gRPC", common.grpc_addr, default_grpc_addr).await?;
        let (admin_listener, admin_addr) =
            bind("admin", common.admin_addr, default_admin_addr).await?;
        Ok(Self {
            db,
            client,
            js,
            outbox: OutboxSignal::default(),
            clock,
            metrics,
            peers,
            consumers: Consumers::default(),
            retry: common.consumer_retry,
            serving,
            listener,
            grpc_addr,
            admin_listener,
            admin_addr,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }
}

impl Runtime {
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

    /// Serves `routes` (and the parked-events service) and the admin port, and runs the outbox relay (into
    /// `stream`) and `tasks` until `shutdown`; then `/readyz` answers 503, the
    /// gRPC port stops taking requests and finishes those in flight, the tasks
    /// stop, the outbox and the NATS connection are flushed, the admin port
    /// closes, and the database is closed.
    pub async fn run(
        self,
        stream: StreamSpec,
        routes: Routes,
        service_names: &[&str],
        tasks: Vec<Task>,
        shutdown: CancellationToken,
    ) -> Result<(), Error> {
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
        let routes = routes.add_service(parked.into_server());
        let service_names: Vec<&str> = service_names
            .iter()
            .copied()
            .chain([parked::SERVICE])
            .collect();
        let relay = Relay::new(self.db.clone(), self.js, stream, self.outbox, self.clock)
            .with_metrics(self.metrics.clone());
        tracker.spawn(relay.run(workers.clone()));
        tracker.spawn(crate::database::probe_while_failing(
            self.db.clone(),
            workers.clone(),
        ));
        for task in tasks {
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
