//! A whole complaints service per test ([`shequ_tests::service::Harness`]):
//! in-process on port 0, its own `nats-server`, its own SQLite file or
//! PostgreSQL database, a manual clock; the clients and the sweeper of the
//! running start.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use chrono::{DateTime, TimeZone, Utc};
use shequ_complaints::{Application, Config, Sweeper};
use shequ_proto::complaints::v1 as pb;
use shequ_tests::service::Harness;
use shequ_tests::{Backend, StoredEvent, TestDatabase, free_port};
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

/// The service under test, and the clients and sweeper of its running start.
#[derive(Debug)]
pub(crate) struct TestApp {
    harness: Harness<Application, Sweeper>,
    pub(crate) complaints: Complaints,
    pub(crate) organisation: OrganisationClient,
    pub(crate) sweeper: Sweeper,
    pub(crate) addr: SocketAddr,
    /// The token file of a service checking tokens.
    _tokens: Option<tempfile::TempDir>,
}

impl std::ops::Deref for TestApp {
    type Target = Harness<Application, Sweeper>;

    fn deref(&self) -> &Self::Target {
        &self.harness
    }
}

impl std::ops::DerefMut for TestApp {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.harness
    }
}

/// Runs `test` against a fresh service on `backend`; on PostgreSQL it is skipped
/// (with a note) when no server answers.
pub(crate) async fn run<F, Fut>(backend: Backend, test: F) -> anyhow::Result<()>
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    shequ_tests::on_fresh_database(backend, TestApp::start, test).await
}

/// The config of each start.
fn config(common: shequ_chassis::config::CommonConfig) -> anyhow::Result<Config> {
    let mut config = Config::new(common);
    // Nobody listens there: merchant checks find the alliance down.
    config.alliance_url = format!("http://127.0.0.1:{}", free_port()?);
    config.alliance_timeout_ms = 500;
    // The background sweeper passes once at start (waited for), then not
    // again during a test: the tests run passes themselves.
    config.sweep_interval_secs = 3600;
    Ok(config)
}

impl TestApp {
    async fn start(database: TestDatabase) -> anyhow::Result<Self> {
        let (harness, sweeper) = Harness::start(
            "complaints",
            database,
            start_of_test(),
            config,
            Application::sweeper,
            Some("escalation"),
        )
        .await?;
        Self::connect(harness, sweeper, None).await
    }

    /// A service reading its rules from the files of `rules` that exist:
    /// time limits and working calendar from `time-limits.json` and
    /// `working-calendar.json` (read again at each restart), classifier
    /// weights from `classifier.tsv` (watched).
    pub(crate) async fn with_rules(
        database: TestDatabase,
        rules: std::path::PathBuf,
    ) -> anyhow::Result<Self> {
        let (harness, sweeper) = Harness::start(
            "complaints",
            database,
            start_of_test(),
            move |common| {
                let mut config = config(common)?;
                let file = |name: &str| Some(rules.join(name)).filter(|path| path.exists());
                config.time_limits_file = file("time-limits.json");
                config.working_calendar_file = file("working-calendar.json");
                config.classifier_file = file("classifier.tsv");
                Ok(config)
            },
            Application::sweeper,
            Some("escalation"),
        )
        .await?;
        Self::connect(harness, sweeper, None).await
    }

    /// A service on SQLite checking bearer tokens, as in production: one
    /// `(account, role, token)` per caller.
    pub(crate) async fn checking_tokens(callers: &[(&str, &str, &str)]) -> anyhow::Result<Self> {
        let tokens = tempfile::tempdir()?;
        let file = shequ_tests::auth::token_file(tokens.path(), callers)?;
        let (harness, sweeper) = Harness::start(
            "complaints",
            TestDatabase::Sqlite,
            start_of_test(),
            move |mut common| {
                common.auth.disabled = false;
                common.auth.tokens_file = Some(file.clone());
                config(common)
            },
            Application::sweeper,
            Some("escalation"),
        )
        .await?;
        Self::connect(harness, sweeper, Some(tokens)).await
    }

    async fn connect(
        harness: Harness<Application, Sweeper>,
        sweeper: Sweeper,
        tokens: Option<tempfile::TempDir>,
    ) -> anyhow::Result<Self> {
        let channel = harness.channel().await?;
        Ok(Self {
            complaints: Complaints::new(channel.clone()),
            organisation: OrganisationClient::new(channel),
            addr: harness.service()?.grpc_addr(),
            sweeper,
            harness,
            _tokens: tokens,
        })
    }

    async fn reconnect(&mut self, sweeper: Sweeper) -> anyhow::Result<()> {
        let channel = self.harness.channel().await?;
        self.complaints = Complaints::new(channel.clone());
        self.organisation = OrganisationClient::new(channel);
        self.addr = self.harness.service()?.grpc_addr();
        self.sweeper = sweeper;
        Ok(())
    }

    /// Stops the service gracefully (as on SIGTERM) and starts it again on the
    /// same database and NATS.
    pub(crate) async fn restart(&mut self) -> anyhow::Result<()> {
        self.restart_after(|_| Ok(())).await
    }

    /// Stops the service gracefully, runs `meanwhile` on its data directory
    /// (where its SQLite file is: to put a backup back, say), and starts it again.
    pub(crate) async fn restart_after(
        &mut self,
        meanwhile: impl FnOnce(&std::path::Path) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let sweeper = self.harness.restart_after(meanwhile).await?;
        self.reconnect(sweeper).await
    }

    pub(crate) async fn stop(&mut self) -> anyhow::Result<()> {
        self.harness.stop().await
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

    /// Every event in the COMPLAINTS stream once `expected` have arrived.
    pub(crate) async fn wait_for_events(
        &self,
        expected: usize,
    ) -> anyhow::Result<Vec<StoredEvent>> {
        self.harness.wait_for_events("COMPLAINTS", expected).await
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
pub(crate) use shequ_chassis::grpc::violated_field;
