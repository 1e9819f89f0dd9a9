//! A whole pensioner-care service per test: in-process on port 0, its own
//! `nats-server`, its own SQLite file or PostgreSQL database, a manual clock,
//! and the complaints and alliance services pointed at ports nobody listens on.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, TimeZone, Utc};
use shequ_chassis::clock::{Clock, ManualClock};
use shequ_chassis::config::CommonConfig;
use shequ_pensioner_care::filing_worker::FilingWorker;
use shequ_pensioner_care::sweeper::Sweeper;
use shequ_pensioner_care::{Application, Config};
use shequ_proto::care::v1 as pb;
use shequ_proto::common::v1 as common;
use shequ_tests::{
    Backend, NatsServer, StoredEvent, TestDatabase, eventually, free_port, stream_events,
};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

pub(crate) type Care = pb::care_service_client::CareServiceClient<Channel>;

/// Monday 2 November 2026, 10:00 in the district (02:00 UTC).
pub(crate) fn monday_ten() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 2, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Jinshui District, in WGS-84.
pub(crate) const JINSHUI: (f64, f64) = (34.80, 113.66);

/// The personal data of [`wang`], which only the elder RPCs may return.
pub(crate) const WANG_NAME: &str = "王秀英";
pub(crate) const WANG_BIRTH: &str = "1940-05-01";
pub(crate) const WANG_ADDRESS: &str = "金水区鑫苑路8号院3号楼2单元401";
pub(crate) const WANG_HEALTH: &str = "高血压, 每日服用降压药";
pub(crate) const CONTACT_NAME: &str = "李梅";
pub(crate) const CONTACT_PHONE: &str = "13812345678";
pub(crate) const VOLUNTEER_PHONE: &str = "13900001111";

#[derive(Debug)]
pub(crate) struct TestApp {
    pub(crate) care: Care,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) nats: NatsServer,
    /// The running instance's overdue sweeper, for passes on demand.
    pub(crate) sweeper: Sweeper,
    /// The running instance's complaint-filing worker, for passes on demand.
    pub(crate) filings: FilingWorker,
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

impl Drop for TestApp {
    fn drop(&mut self) {
        // The service stops with the test.
        self.shutdown.cancel();
    }
}

impl TestApp {
    async fn start(database: TestDatabase) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let database_url = match database.url() {
            Some(url) => url.to_owned(),
            None => format!(
                "sqlite://{}/pensioner-care.db?mode=rwc",
                data.path().display()
            ),
        };
        let nats = NatsServer::start().await?;
        let clock = ManualClock::new(monday_ten());
        let running = Running::boot(&nats, &data, &database_url, &clock).await?;
        Ok(Self {
            care: running.care,
            sweeper: running.sweeper,
            filings: running.filings,
            shutdown: running.shutdown,
            task: Some(running.task),
            clock,
            nats,
            database_url,
            data,
            _database: database,
        })
    }

    /// Stops the service gracefully (as on SIGTERM) and builds a new one on the
    /// same database and NATS; the clients and handles are the new instance's.
    pub(crate) async fn restart(&mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await??;
        }
        let running =
            Running::boot(&self.nats, &self.data, &self.database_url, &self.clock).await?;
        self.care = running.care;
        self.sweeper = running.sweeper;
        self.filings = running.filings;
        self.shutdown = running.shutdown;
        self.task = Some(running.task);
        Ok(())
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Registers an elder as `operator-1`.
    pub(crate) async fn register(
        &mut self,
        request_id: &str,
        details: pb::ElderDetails,
    ) -> anyhow::Result<pb::Elder> {
        let response = self
            .care
            .register_elder(pb::RegisterElderRequest {
                request_id: request_id.into(),
                details: Some(details),
                actor: "operator-1".into(),
            })
            .await?
            .into_inner();
        response.elder.context("no elder in the response")
    }

    pub(crate) async fn elder(&mut self, elder_id: &str) -> anyhow::Result<pb::Elder> {
        let response = self
            .care
            .get_elder(pb::GetElderRequest {
                elder_id: elder_id.into(),
            })
            .await?
            .into_inner();
        response.elder.context("no elder in the response")
    }

    pub(crate) async fn list_elders(
        &mut self,
        request: pb::ListEldersRequest,
    ) -> anyhow::Result<Vec<pb::ElderSummary>> {
        Ok(self.care.list_elders(request).await?.into_inner().elders)
    }

    /// Registers a party-member volunteer in grid `xinyuan-1`.
    pub(crate) async fn volunteer(
        &mut self,
        request_id: &str,
        name: &str,
    ) -> anyhow::Result<pb::Volunteer> {
        let response = self
            .care
            .register_volunteer(pb::RegisterVolunteerRequest {
                request_id: request_id.into(),
                name: name.into(),
                phone: VOLUNTEER_PHONE.into(),
                grid_id: "xinyuan-1".into(),
                party_member: true,
                actor: "operator-1".into(),
            })
            .await?
            .into_inner();
        response.volunteer.context("no volunteer in the response")
    }

    /// The volunteer as listed, with its elders.
    pub(crate) async fn listed_volunteer(
        &mut self,
        volunteer_id: &str,
    ) -> anyhow::Result<pb::Volunteer> {
        let listed = self
            .care
            .list_volunteers(pb::ListVolunteersRequest::default())
            .await?
            .into_inner();
        listed
            .volunteers
            .into_iter()
            .find(|v| v.id == volunteer_id)
            .with_context(|| format!("volunteer {volunteer_id} is not listed"))
    }

    pub(crate) async fn pair(
        &mut self,
        volunteer_id: &str,
        elder_id: &str,
    ) -> Result<pb::Pairing, tonic::Status> {
        pair(&mut self.care, volunteer_id, elder_id).await
    }

    /// Records a home visit by `volunteer-1`, now.
    pub(crate) async fn visit(
        &mut self,
        request_id: &str,
        elder_id: &str,
        wellbeing: pb::Wellbeing,
    ) -> anyhow::Result<pb::RecordVisitResponse> {
        Ok(self
            .care
            .record_visit(visit(request_id, elder_id, wellbeing))
            .await?
            .into_inner())
    }

    pub(crate) async fn timeline(
        &mut self,
        elder_id: &str,
    ) -> anyhow::Result<Vec<pb::TimelineEntry>> {
        Ok(self
            .care
            .get_timeline(pb::GetTimelineRequest {
                elder_id: elder_id.into(),
            })
            .await?
            .into_inner()
            .entries)
    }

    /// Books `service` for tomorrow.
    pub(crate) async fn book(
        &mut self,
        request_id: &str,
        elder_id: &str,
        service: pb::Service,
    ) -> Result<pb::BookServiceResponse, tonic::Status> {
        let tomorrow = self.now() + chrono::Duration::days(1);
        self.care
            .book_service(pb::BookServiceRequest {
                request_id: request_id.into(),
                elder_id: elder_id.into(),
                service: service as i32,
                scheduled_for: Some(shequ_chassis::grpc::timestamp(tomorrow)),
                actor: "operator-1".into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Runs `sql` on the service's database behind its back, with `args` bound
    /// as text to `$1`, `$2`, …: for a state no RPC makes (a row that does not
    /// decode, a lease another replica holds). Returns the rows affected.
    pub(crate) async fn execute(&self, sql: &str, args: &[&str]) -> anyhow::Result<u64> {
        shequ_tests::db::execute(&self.database_url, sql, args).await
    }

    /// The `n` that `sql` (`SELECT COUNT(*) AS n …`) answers on the service's
    /// database.
    pub(crate) async fn count(&self, sql: &str) -> anyhow::Result<i64> {
        shequ_tests::db::count(&self.database_url, sql).await
    }

    /// Another replica takes lease `name` for longer than any test runs, so
    /// this instance's job of that name stands by and only the test's own
    /// passes run.
    pub(crate) async fn hold_lease_elsewhere(&self, name: &str) -> anyhow::Result<()> {
        // 2100-01-01: far past anything the manual clock reaches.
        let expires = shequ_tests::db::instant(&self.database_url, 4_102_444_800_000);
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

    /// Every event in the CARE stream once `expected` have arrived.
    pub(crate) async fn wait_for_events(
        &self,
        expected: usize,
    ) -> anyhow::Result<Vec<StoredEvent>> {
        let url = self.nats.url();
        eventually(Duration::from_secs(20), || async {
            let events = stream_events(&url, "CARE").await?;
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
    care: Care,
    sweeper: Sweeper,
    filings: FilingWorker,
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
        // Nobody listens there: complaints and the alliance are down.
        config.complaints_url = format!("http://127.0.0.1:{}", free_port()?);
        config.alliance_url = format!("http://127.0.0.1:{}", free_port()?);
        config.call_timeout_ms = 300;
        // The background sweeper passes once at start (waited for below), then
        // not again during a test: the tests run passes themselves.
        config.sweep_interval_secs = 3600;
        let application = Application::build(config, clock.clone()).await?;
        let addr = application.grpc_addr();
        let sweeper = application.sweeper();
        let filings = application.filing_worker();
        let admin_port = application.admin_addr().port();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(application.run_until_stopped(shutdown.clone()));
        // The pass at start is over before the test moves the clock.
        shequ_tests::fixtures::first_sweep_done(admin_port, "overdue").await?;
        let channel = Channel::from_shared(format!("http://{addr}"))?
            .connect()
            .await?;
        Ok(Self {
            care: Care::new(channel),
            sweeper,
            filings,
            shutdown,
            task,
        })
    }
}

pub(crate) async fn pair(
    care: &mut Care,
    volunteer_id: &str,
    elder_id: &str,
) -> Result<pb::Pairing, tonic::Status> {
    care.pair(pb::PairRequest {
        volunteer_id: volunteer_id.into(),
        elder_id: elder_id.into(),
        actor: "operator-1".into(),
        ..Default::default()
    })
    .await?
    .into_inner()
    .pairing
    .ok_or_else(|| tonic::Status::internal("no pairing in the response"))
}

/// A home visit by `volunteer-1`, now, noting one need.
pub(crate) fn visit(
    request_id: &str,
    elder_id: &str,
    wellbeing: pb::Wellbeing,
) -> pb::RecordVisitRequest {
    pb::RecordVisitRequest {
        request_id: request_id.into(),
        elder_id: elder_id.into(),
        visitor: "volunteer-1".into(),
        kind: pb::VisitKind::HomeVisit as i32,
        visited_at: None,
        wellbeing: wellbeing as i32,
        needs: vec!["需要送餐".into()],
        notes: "老人说最近腿脚不便".into(),
    }
}

/// Jinshui's reference point, in WGS-84.
pub(crate) fn home() -> common::GeoPoint {
    common::GeoPoint {
        latitude: JINSHUI.0,
        longitude: JINSHUI.1,
        datum: common::Datum::Wgs84 as i32,
    }
}

/// An elder born on `birth_date` in grid `xinyuan-1`, with a home location,
/// health notes and one emergency contact, consenting to visits.
pub(crate) fn elder(name: &str, birth_date: &str, living: pb::LivingSituation) -> pb::ElderDetails {
    pb::ElderDetails {
        name: name.into(),
        birth_date: birth_date.into(),
        gender: pb::Gender::Female as i32,
        grid_id: "xinyuan-1".into(),
        building_id: "xinyuan-b3".into(),
        address: WANG_ADDRESS.into(),
        location: Some(home()),
        living_situation: living as i32,
        has_disability: false,
        has_chronic_illness: false,
        health_notes: WANG_HEALTH.into(),
        disability_notes: String::new(),
        emergency_contacts: vec![pb::EmergencyContact {
            name: CONTACT_NAME.into(),
            phone: CONTACT_PHONE.into(),
            relation: "女儿".into(),
        }],
        consents_to_visits: true,
    }
}

/// 86 and living alone: high risk, visited weekly.
pub(crate) fn wang() -> pb::ElderDetails {
    elder(WANG_NAME, WANG_BIRTH, pb::LivingSituation::Alone)
}

/// 68 and living with family: low risk, visited monthly.
pub(crate) fn zhao() -> pb::ElderDetails {
    elder("赵建国", "1958-03-15", pb::LivingSituation::WithFamily)
}

/// 75, empty nest, with a chronic illness: medium risk, visited fortnightly.
pub(crate) fn liu() -> pb::ElderDetails {
    pb::ElderDetails {
        has_chronic_illness: true,
        ..elder("刘桂兰", "1951-01-01", pb::LivingSituation::EmptyNest)
    }
}

/// The field named in an `InvalidArgument`'s BadRequest detail.
pub(crate) fn violated_field(status: &tonic::Status) -> Option<String> {
    shequ_chassis::grpc::violated_field(status)
}

/// A timestamp as a UTC instant (the epoch when absent).
pub(crate) fn instant(at: Option<&prost_types::Timestamp>) -> DateTime<Utc> {
    at.and_then(|at| {
        DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).unwrap_or_default())
    })
    .unwrap_or_default()
}

/// The events of `event_type` in `events`.
pub(crate) fn of_type<'a>(events: &'a [StoredEvent], event_type: &str) -> Vec<&'a StoredEvent> {
    events
        .iter()
        .filter(|e| e.event.event_type == event_type)
        .collect()
}
