//! A whole complaints service per test: in-process on port 0, its own
//! `nats-server`, its own SQLite file or PostgreSQL database, a manual clock.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, TimeZone, Utc};
use shequ_chassis::clock::ManualClock;
use shequ_chassis::config::CommonConfig;
use shequ_complaints::sweeper::Sweeper;
use shequ_complaints::{Application, Config};
use shequ_proto::complaints::v1 as pb;
use shequ_tests::{
    Backend, NatsServer, StoredEvent, TestDatabase, eventually, free_port, stream_events,
};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

pub(crate) type Complaints = pb::complaint_service_client::ComplaintServiceClient<Channel>;
pub(crate) type OrganisationClient =
    pb::organisation_service_client::OrganisationServiceClient<Channel>;

/// 09:00 UTC on a Monday; tests move the clock from here.
pub(crate) fn start_of_test() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

#[derive(Debug)]
pub(crate) struct TestApp {
    pub(crate) complaints: Complaints,
    pub(crate) organisation: OrganisationClient,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) nats: NatsServer,
    pub(crate) sweeper: Sweeper,
    pub(crate) addr: SocketAddr,
    database_url: String,
    data: TempDir,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), shequ_chassis::Error>>>,
    _database: TestDatabase,
}

/// Runs `test` against a fresh service on `backend`; on PostgreSQL it is skipped
/// (with a note) when no server answers.
pub(crate) async fn run<F, Fut>(backend: Backend, test: F) -> anyhow::Result<()>
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let Some(database) = TestDatabase::create(backend).await? else {
        return Ok(());
    };
    let app = TestApp::start(database).await?;
    test(app).await
}

impl TestApp {
    async fn start(database: TestDatabase) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let database_url = match database.url() {
            Some(url) => url.to_owned(),
            None => format!("sqlite://{}/complaints.db?mode=rwc", data.path().display()),
        };
        let nats = NatsServer::start().await?;
        let clock = ManualClock::new(start_of_test());
        let running = Running::boot(&nats, &data, &database_url, &clock).await?;
        Ok(Self {
            complaints: running.complaints,
            organisation: running.organisation,
            sweeper: running.sweeper,
            addr: running.addr,
            shutdown: running.shutdown,
            task: Some(running.task),
            clock,
            nats,
            database_url,
            data,
            _database: database,
        })
    }

    async fn boot(&mut self) -> anyhow::Result<()> {
        let running =
            Running::boot(&self.nats, &self.data, &self.database_url, &self.clock).await?;
        self.complaints = running.complaints;
        self.organisation = running.organisation;
        self.sweeper = running.sweeper;
        self.addr = running.addr;
        self.shutdown = running.shutdown;
        self.task = Some(running.task);
        Ok(())
    }

    /// Stops the service gracefully (as on SIGTERM) and starts it again on the
    /// same database and NATS.
    pub(crate) async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await?;
        self.boot().await
    }

    /// Stops the service gracefully, runs `meanwhile` on its data directory
    /// (where its SQLite file is: to put a backup back, say), and starts it again.
    pub(crate) async fn restart_after(
        &mut self,
        meanwhile: impl FnOnce(&std::path::Path) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.stop().await?;
        meanwhile(self.data.path())?;
        self.boot().await
    }

    pub(crate) async fn stop(&mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }

    /// Loads the sample organisation: Xinyuan with two grids, Yaozhai with one.
    pub(crate) async fn load_organisation(&mut self) -> anyhow::Result<()> {
        self.organisation
            .load_organisation(pb::LoadOrganisationRequest {
                organisation: Some(sample_organisation()),
            })
            .await?;
        Ok(())
    }

    /// Submits a complaint in grid `xinyuan-1` with keyword-classified text.
    pub(crate) async fn submit(
        &mut self,
        request_id: &str,
        text: &str,
    ) -> anyhow::Result<pb::Complaint> {
        let response = self
            .complaints
            .submit_complaint(submission(request_id, text))
            .await?
            .into_inner();
        response.complaint.context("no complaint in the response")
    }

    pub(crate) async fn get(&mut self, id: &str) -> anyhow::Result<pb::Complaint> {
        let response = self
            .complaints
            .get_complaint(pb::GetComplaintRequest {
                complaint_id: id.into(),
            })
            .await?;
        response
            .into_inner()
            .complaint
            .context("no complaint in the response")
    }

    /// Runs `sql` on the service's database behind its back, with `args` bound
    /// as text to `$1`, `$2`, …: for a state no RPC makes (a row that does not
    /// decode, a lease another replica holds). Returns the rows affected.
    pub(crate) async fn execute(&self, sql: &str, args: &[&str]) -> anyhow::Result<u64> {
        shequ_tests::db::execute(&self.database_url, sql, args).await
    }

    /// The service's database URL (for a second view of its store).
    pub(crate) fn database_url(&self) -> &str {
        &self.database_url
    }

    /// The `n` that `sql` (`SELECT COUNT(*) AS n …`) answers on the service's
    /// database.
    pub(crate) async fn count(&self, sql: &str) -> anyhow::Result<i64> {
        shequ_tests::db::count(&self.database_url, sql).await
    }

    /// Every event in the COMPLAINTS stream once `expected` have arrived.
    pub(crate) async fn wait_for_events(
        &self,
        expected: usize,
    ) -> anyhow::Result<Vec<StoredEvent>> {
        let url = self.nats.url();
        eventually(Duration::from_secs(20), || async {
            let events = stream_events(&url, "COMPLAINTS").await?;
            if events.len() >= expected {
                Ok(events)
            } else {
                bail!("{} of {expected} events in the stream", events.len())
            }
        })
        .await
    }
}

/// One start of the service.
struct Running {
    complaints: Complaints,
    organisation: OrganisationClient,
    sweeper: Sweeper,
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), shequ_chassis::Error>>,
}

impl Running {
    async fn boot(
        nats: &NatsServer,
        data: &TempDir,
        database_url: &str,
        clock: &Arc<ManualClock>,
    ) -> anyhow::Result<Self> {
        let mut common = CommonConfig::new(nats.url(), data.path());
        common.database_url = Some(database_url.to_owned());
        common.grpc_addr = Some("127.0.0.1:0".parse()?);
        let mut config = Config::new(common);
        // Nobody listens there: merchant checks find the alliance down.
        config.alliance_url = format!("http://127.0.0.1:{}", free_port()?);
        config.alliance_timeout_ms = 500;
        // The background sweeper passes once at start (waited for below), then
        // not again during a test: the tests run passes themselves.
        config.sweep_interval_secs = 3600;
        let application = Application::build(config, clock.clone()).await?;
        let addr = application.grpc_addr();
        let sweeper = application.sweeper();
        let admin_port = application.admin_addr().port();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(application.run_until_stopped(shutdown.clone()));
        // The pass at start is over before the test moves the clock.
        shequ_tests::fixtures::first_sweep_done(admin_port, "escalation").await?;
        let channel = Channel::from_shared(format!("http://{addr}"))?
            .connect()
            .await?;
        Ok(Self {
            complaints: Complaints::new(channel.clone()),
            organisation: OrganisationClient::new(channel),
            sweeper,
            addr,
            shutdown,
            task,
        })
    }
}

/// A submission from the mini-program in grid `xinyuan-1`, with a reporter.
pub(crate) fn submission(request_id: &str, text: &str) -> pb::SubmitComplaintRequest {
    pb::SubmitComplaintRequest {
        request_id: request_id.into(),
        text: text.into(),
        channel: pb::Channel::MiniProgram as i32,
        reporter: Some(pb::Reporter {
            name: "张三".into(),
            phone: "13812345678".into(),
        }),
        grid_id: "xinyuan-1".into(),
        location: "3号楼东侧".into(),
        ..Default::default()
    }
}

pub(crate) fn sample_organisation() -> pb::Organisation {
    let grid = |id: &str, worker: &str, buildings: &[&str]| pb::Grid {
        id: id.into(),
        name: format!("{id} 网格"),
        worker: worker.into(),
        branch_handler: format!("{id}-branch"),
        building_ids: buildings.iter().map(|b| b.to_string()).collect(),
    };
    pb::Organisation {
        district_handler: "jinshui-office".into(),
        communities: vec![
            pb::Community {
                id: "xinyuan".into(),
                name: "鑫苑社区".into(),
                committee_handler: "xinyuan-committee".into(),
                grids: vec![
                    grid("xinyuan-1", "worker-li", &["xinyuan-b1", "xinyuan-b2"]),
                    grid("xinyuan-2", "worker-zhou", &["xinyuan-b3"]),
                ],
            },
            pb::Community {
                id: "yaozhai".into(),
                name: "姚砦社区".into(),
                committee_handler: "yaozhai-committee".into(),
                grids: vec![grid("yaozhai-1", "worker-chen", &["yaozhai-b1"])],
            },
        ],
    }
}

/// The field named in an `InvalidArgument`'s BadRequest detail.
pub(crate) fn violated_field(status: &tonic::Status) -> Option<String> {
    shequ_chassis::grpc::violated_field(status)
}
