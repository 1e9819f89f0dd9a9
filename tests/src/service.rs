//! A shequ service run in the test's process, for every test that needs one:
//! [`TestService`] is one start of it (port 0, stopped when dropped);
//! [`Harness`] keeps one database, NATS server, data directory and manual
//! clock across restarts, for a service's own tests.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use shequ_chassis::clock::{ManualClock, SharedClock};
use shequ_chassis::config::CommonConfig;
use shequ_chassis::runtime::App;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::{NatsServer, StoredEvent, TestDatabase, eventually, stream_events};

/// One start of a service `A`, serving until [`TestService::stop`] or until
/// it is dropped.
pub struct TestService<A> {
    grpc_addr: SocketAddr,
    admin_addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), shequ_chassis::Error>>>,
    _app: std::marker::PhantomData<fn() -> A>,
}

impl<A: App> TestService<A> {
    /// Builds the service from `config` on `clock` and runs it.
    pub async fn start(config: A::Config, clock: SharedClock) -> anyhow::Result<Self> {
        Ok(Self::start_with(config, clock, |_| ()).await?.0)
    }

    /// [`TestService::start`], with what `inspect` takes from the built
    /// service before it runs (its sweeper, say).
    pub async fn start_with<H>(
        config: A::Config,
        clock: SharedClock,
        inspect: impl FnOnce(&A) -> H,
    ) -> anyhow::Result<(Self, H)> {
        let app = A::build(config, clock).await?;
        let taken = inspect(&app);
        let (grpc_addr, admin_addr) = (app.grpc_addr(), app.admin_addr());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        let service = Self {
            grpc_addr,
            admin_addr,
            shutdown,
            task: Some(task),
            _app: std::marker::PhantomData,
        };
        Ok((service, taken))
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// `http://` and its gRPC address, as the other services and `shequctl` take it.
    pub fn url(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// A connected channel to its gRPC port.
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        Ok(Channel::from_shared(self.url())?.connect().await?)
    }

    /// Stops it gracefully (as on SIGTERM) and waits until it has; its error, if it failed.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }
}

impl<A> std::fmt::Debug for TestService<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestService")
            .field("grpc_addr", &self.grpc_addr)
            .field("admin_addr", &self.admin_addr)
            .field("stopped", &self.task.is_none())
            .finish()
    }
}

impl<A> Drop for TestService<A> {
    fn drop(&mut self) {
        // The service stops with the test.
        self.shutdown.cancel();
    }
}

/// The config of one start, from the settings every service shares.
type Configure<A> = Box<dyn Fn(CommonConfig) -> anyhow::Result<<A as App>::Config> + Send + Sync>;

/// A service `A` under test, restartable: its own `nats-server`, its own
/// SQLite file (in its data directory) or PostgreSQL database, a manual clock;
/// each start on port 0 with the config `configure` makes. `H` is what each
/// start hands the test (its sweeper, say).
pub struct Harness<A: App, H = ()> {
    pub clock: Arc<ManualClock>,
    pub nats: NatsServer,
    configure: Configure<A>,
    inspect: fn(&A) -> H,
    /// The sweeper whose first pass each start waits for, so that a test
    /// moving the clock does not race it.
    first_sweep: Option<&'static str>,
    database_url: String,
    data: TempDir,
    service: Option<TestService<A>>,
    _database: TestDatabase,
}

impl<A: App, H> std::fmt::Debug for Harness<A, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("database_url", &self.database_url)
            .field("nats", &self.nats)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl<A: App, H> Harness<A, H> {
    /// Starts the service on `database` (a SQLite file `<name>.db` in a new
    /// data directory when it is not PostgreSQL) and a new NATS server, on a
    /// manual clock at `now`; returns it with what `inspect` took.
    pub async fn start(
        name: &str,
        database: TestDatabase,
        now: chrono::DateTime<chrono::Utc>,
        configure: impl Fn(CommonConfig) -> anyhow::Result<A::Config> + Send + Sync + 'static,
        inspect: fn(&A) -> H,
        first_sweep: Option<&'static str>,
    ) -> anyhow::Result<(Self, H)> {
        let data = tempfile::tempdir()?;
        let database_url = database.url_in(data.path(), name);
        let mut harness = Self {
            clock: ManualClock::new(now),
            nats: NatsServer::start().await?,
            configure: Box::new(configure),
            inspect,
            first_sweep,
            database_url,
            data,
            service: None,
            _database: database,
        };
        let taken = harness.boot().await?;
        Ok((harness, taken))
    }

    /// Starts the service (again) on the same database, NATS and clock.
    pub async fn boot(&mut self) -> anyhow::Result<H> {
        let mut common = CommonConfig::new(self.nats.url(), self.data.path());
        common.database_url = Some(self.database_url.clone());
        common.grpc_addr = Some("127.0.0.1:0".parse()?);
        let config = (self.configure)(common)?;
        let (service, taken) =
            TestService::start_with(config, self.clock.clone(), self.inspect).await?;
        if let Some(sweeper) = self.first_sweep {
            // The pass at start is over before the test moves the clock.
            crate::fixtures::first_sweep_done(service.admin_addr().port(), sweeper).await?;
        }
        self.service = Some(service);
        Ok(taken)
    }

    /// Stops the service gracefully (as on SIGTERM).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut service) = self.service.take() {
            service.stop().await?;
        }
        Ok(())
    }

    /// Stops the service gracefully, runs `meanwhile` on its data directory
    /// (where its SQLite file is: to put a backup back, say), and starts it again.
    pub async fn restart_after(
        &mut self,
        meanwhile: impl FnOnce(&Path) -> anyhow::Result<()>,
    ) -> anyhow::Result<H> {
        self.stop().await?;
        meanwhile(self.data.path())?;
        self.boot().await
    }

    /// The running start (an error when it is stopped).
    pub fn service(&self) -> anyhow::Result<&TestService<A>> {
        match &self.service {
            Some(service) => Ok(service),
            None => bail!("the service is stopped"),
        }
    }

    /// A connected channel to the running start's gRPC port.
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        self.service()?.channel().await
    }

    /// The service's database URL (for a second view of its store).
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// Runs `sql` on the service's database behind its back, with `args` bound
    /// as text to `$1`, `$2`, …: for a state no RPC makes (a row that does not
    /// decode, a lease another replica holds). Returns the rows affected.
    pub async fn execute(&self, sql: &str, args: &[&str]) -> anyhow::Result<u64> {
        crate::db::execute(&self.database_url, sql, args).await
    }

    /// The `n` that `sql` (`SELECT COUNT(*) AS n …`) answers on the service's database.
    pub async fn count(&self, sql: &str) -> anyhow::Result<i64> {
        crate::db::count(&self.database_url, sql).await
    }

    /// Another replica takes lease `name` for longer than any test runs, so
    /// this instance's job of that name stands by and only the test's own
    /// passes run.
    pub async fn hold_lease_elsewhere(&self, name: &str) -> anyhow::Result<()> {
        // 2100-01-01: far past anything the manual clock reaches.
        let expires = crate::db::instant(&self.database_url, 4_102_444_800_000);
        self.execute(
            &format!(
                "INSERT INTO leases (name, holder, expires_at) VALUES ($1, 'another-replica', {expires}) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at"
            ),
            &[name],
        )
        .await?;
        Ok(())
    }

    /// Every event in `stream` once `expected` have arrived.
    pub async fn wait_for_events(
        &self,
        stream: &str,
        expected: usize,
    ) -> anyhow::Result<Vec<StoredEvent>> {
        let url = self.nats.url();
        eventually(Duration::from_secs(20), || async {
            let events = stream_events(&url, stream).await?;
            if events.len() >= expected {
                Ok(events)
            } else {
                bail!("{} of {expected} events in {stream}", events.len())
            }
        })
        .await
    }
}
