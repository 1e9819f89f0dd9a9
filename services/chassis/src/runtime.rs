//! The parts every service runs on, assembled once: its database, its NATS
//! connection, its outbox relay, its gRPC port, and the shutdown order.

use std::net::SocketAddr;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::service::Routes;

use crate::Error;
use crate::clock::SharedClock;
use crate::config::CommonConfig;
use crate::nats::{self, StreamSpec};
use crate::outbox::{OutboxSignal, Relay};
use crate::storage::{Database, Migrations};

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
    listener: TcpListener,
    grpc_addr: SocketAddr,
}

impl Runtime {
    /// Opens the database (running migrations), connects to NATS in the
    /// background, and binds the gRPC port (`default_grpc_addr` unless the
    /// config names one; port 0 picks a free one).
    pub async fn start(
        service: &str,
        common: &CommonConfig,
        default_grpc_addr: &str,
        migrations: &Migrations,
        clock: SharedClock,
    ) -> Result<Self, Error> {
        let url = common.database_url(service)?;
        let db = Database::connect(&url, migrations).await?;
        let client = nats::connect(&common.nats_url, service).await?;
        let js = nats::jetstream(client.clone(), JETSTREAM_TIMEOUT);
        let addr = match common.grpc_addr {
            Some(addr) => addr,
            None => default_grpc_addr
                .parse()
                .map_err(|error| Error::Config(format!("default gRPC address: {error}")))?,
        };
        let listener = TcpListener::bind(addr).await.map_err(|source| Error::Io {
            context: format!("binding the gRPC address {addr}"),
            source,
        })?;
        let grpc_addr = listener.local_addr().map_err(|source| Error::Io {
            context: "reading the bound gRPC address".into(),
            source,
        })?;
        Ok(Self {
            db,
            client,
            js,
            outbox: OutboxSignal::default(),
            clock,
            listener,
            grpc_addr,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// Serves `routes` and runs the outbox relay (into `stream`) and `tasks`
    /// until `shutdown`; then stops taking requests, finishes those in flight,
    /// stops the tasks, flushes the outbox and the NATS connection, and closes
    /// the database.
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
        let relay = Relay::new(self.db.clone(), self.js, stream, self.outbox, self.clock);
        tracker.spawn(relay.run(workers.clone()));
        for task in tasks {
            tracker.spawn(task(workers.clone()));
        }
        tracker.close();
        let served = crate::grpc::serve(self.listener, routes, service_names, shutdown).await;
        workers.cancel();
        tracker.wait().await;
        if tokio::time::timeout(Duration::from_secs(2), self.client.flush())
            .await
            .is_err()
        {
            tracing::warn!("NATS flush timed out");
        }
        self.db.close().await;
        served
    }
}
