//! A whole pensioner-care service per test ([`shequ_tests::service::Harness`]): in-process on port 0, its own
//! `nats-server`, its own SQLite file or PostgreSQL database, a manual clock,
//! and the complaints and alliance services pointed at ports nobody listens on
//! — until a test starts the real alliance there ([`TestApp::start_alliance`]).

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use chrono::{DateTime, TimeZone, Utc};
use shequ_chassis::clock::Clock;
use shequ_chassis::config::CommonConfig;
use shequ_pensioner_care::{Application, Config, FilingWorker, Sweeper};
use shequ_proto::alliance::v1 as alliance;
use shequ_proto::care::v1 as pb;
use shequ_proto::common::v1 as common;
use shequ_tests::service::{Harness, TestService};
use shequ_tests::{Backend, StoredEvent, TestDatabase, free_port};
use tonic::transport::Channel;

pub(crate) type Care = pb::care_service_client::CareServiceClient<Channel>;
pub(crate) type Merchants = alliance::merchant_service_client::MerchantServiceClient<Channel>;

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

/// The service under test, and the client, sweeper and filing worker of its
/// running start.
#[derive(Debug)]
pub(crate) struct TestApp {
    harness: Harness<Application, (Sweeper, FilingWorker)>,
    pub(crate) care: Care,
    /// The running start's overdue sweeper, for passes on demand.
    pub(crate) sweeper: Sweeper,
    /// The running start's complaint-filing worker, for passes on demand.
    pub(crate) filings: FilingWorker,
    /// The token file, when the service checks tokens ([`run_with_auth`]).
    _tokens: Option<tempfile::TempDir>,
    /// Where the service looks for the alliance (nobody listens until
    /// [`TestApp::start_alliance`]).
    alliance_addr: SocketAddr,
    alliance: Option<(
        TestService<shequ_merchant_alliance::Application>,
        tempfile::TempDir,
    )>,
}

impl std::ops::Deref for TestApp {
    type Target = Harness<Application, (Sweeper, FilingWorker)>;

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

/// Runs `test` against a fresh service on `backend` that checks tokens: the
/// staff token [`STAFF_TOKEN`] is `worker-li`'s.
pub(crate) async fn run_with_auth<F, Fut>(backend: Backend, test: F) -> anyhow::Result<()>
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    shequ_tests::on_fresh_database(backend, TestApp::start_with_auth, test).await
}

/// The bearer token of staff member `worker-li` under [`run_with_auth`].
pub(crate) const STAFF_TOKEN: &str = "token-of-worker-li";

/// `message` as staff member `worker-li` sends it, with their token.
pub(crate) fn as_worker_li<T>(message: T) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {STAFF_TOKEN}").parse()?);
    Ok(request)
}

/// The config of each start, the alliance looked for at `alliance`.
fn config(common: CommonConfig, alliance: SocketAddr) -> anyhow::Result<Config> {
    let mut config = Config::new(common);
    // Nobody listens there: complaints is down, and the alliance until a
    // test starts it.
    config.complaints_url = format!("http://127.0.0.1:{}", free_port()?);
    config.alliance_url = format!("http://{alliance}");
    config.call_timeout_ms = 2000;
    // The background sweeper passes once at start (waited for), then not
    // again during a test: the tests run passes themselves.
    config.sweep_interval_secs = 3600;
    Ok(config)
}

fn jobs(app: &Application) -> (Sweeper, FilingWorker) {
    (app.sweeper(), app.filing_worker())
}

impl TestApp {
    async fn start(database: TestDatabase) -> anyhow::Result<Self> {
        let alliance_addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let (harness, (sweeper, filings)) = Harness::start(
            "pensioner-care",
            database,
            monday_ten(),
            move |common| config(common, alliance_addr),
            jobs,
            Some("overdue"),
        )
        .await?;
        Ok(Self {
            care: Care::new(harness.channel().await?),
            sweeper,
            filings,
            harness,
            _tokens: None,
            alliance_addr,
            alliance: None,
        })
    }

    /// Starts the real merchant-alliance where the service looks for it (on
    /// the test's NATS, with a SQLite file of its own); a client of it.
    pub(crate) async fn start_alliance(&mut self) -> anyhow::Result<Merchants> {
        let dir = tempfile::tempdir()?;
        let mut common = CommonConfig::new(self.nats.url(), dir.path());
        common.grpc_addr = Some(self.alliance_addr);
        let service = TestService::start(
            shequ_merchant_alliance::Config::new(common),
            std::sync::Arc::new(shequ_chassis::clock::SystemClock),
        )
        .await?;
        let merchants = Merchants::new(service.channel().await?);
        self.alliance = Some((service, dir));
        Ok(merchants)
    }

    /// As [`Self::start`], checking tokens: [`STAFF_TOKEN`] is `worker-li`'s.
    async fn start_with_auth(database: TestDatabase) -> anyhow::Result<Self> {
        let alliance_addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let tokens = tempfile::tempdir()?;
        let file =
            shequ_tests::auth::token_file(tokens.path(), &[("worker-li", "staff", STAFF_TOKEN)])?;
        let (harness, (sweeper, filings)) = Harness::start(
            "pensioner-care",
            database,
            monday_ten(),
            move |mut common| {
                common.auth.disabled = false;
                common.auth.tokens_file = Some(file.clone());
                config(common, alliance_addr)
            },
            jobs,
            Some("overdue"),
        )
        .await?;
        Ok(Self {
            care: Care::new(harness.channel().await?),
            sweeper,
            filings,
            harness,
            _tokens: Some(tokens),
            alliance_addr,
            alliance: None,
        })
    }

    /// Stops the service gracefully (as on SIGTERM) and builds a new one on the
    /// same database and NATS; the client and jobs are the new start's.
    pub(crate) async fn restart(&mut self) -> anyhow::Result<()> {
        let (sweeper, filings) = self.harness.restart_after(|_| Ok(())).await?;
        self.care = Care::new(self.harness.channel().await?);
        self.sweeper = sweeper;
        self.filings = filings;
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

    /// Records a home visit by the staff member calling, now.
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
        self.book_for(request_id, elder_id, service, tomorrow).await
    }

    /// Books `service` for `at`.
    pub(crate) async fn book_for(
        &mut self,
        request_id: &str,
        elder_id: &str,
        service: pb::Service,
        at: DateTime<Utc>,
    ) -> Result<pb::BookServiceResponse, tonic::Status> {
        self.care
            .book_service(pb::BookServiceRequest {
                request_id: request_id.into(),
                elder_id: elder_id.into(),
                service: service as i32,
                scheduled_for: Some(shequ_chassis::grpc::timestamp(at)),
                actor: "operator-1".into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Every event in the CARE stream once `expected` have arrived.
    pub(crate) async fn wait_for_events(
        &self,
        expected: usize,
    ) -> anyhow::Result<Vec<StoredEvent>> {
        self.harness.wait_for_events("CARE", expected).await
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

/// A home visit by the staff member calling (no volunteer named), now,
/// noting one need.
pub(crate) fn visit(
    request_id: &str,
    elder_id: &str,
    wellbeing: pb::Wellbeing,
) -> pb::RecordVisitRequest {
    pb::RecordVisitRequest {
        request_id: request_id.into(),
        elder_id: elder_id.into(),
        visitor: String::new(),
        kind: pb::VisitKind::HomeVisit as i32,
        visited_at: None,
        wellbeing: wellbeing as i32,
        needs: vec!["需要送餐".into()],
        notes: "老人说最近腿脚不便".into(),
        recorded_at: None,
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
pub(crate) use shequ_chassis::grpc::violated_field;

/// A timestamp as a UTC instant (the epoch when absent).
pub(crate) fn instant(at: Option<&prost_types::Timestamp>) -> DateTime<Utc> {
    at.and_then(shequ_proto::time::instant).unwrap_or_default()
}

/// The events of `event_type` in `events`.
pub(crate) fn of_type<'a>(events: &'a [StoredEvent], event_type: &str) -> Vec<&'a StoredEvent> {
    events
        .iter()
        .filter(|e| e.event.event_type == event_type)
        .collect()
}

/// A canteen with elder meals `metres_north` of [`home`], open on `days`
/// from `opens` to `closes` (district time).
pub(crate) fn canteen(
    name: &str,
    metres_north: f64,
    days: &[alliance::Weekday],
    opens: &str,
    closes: &str,
) -> alliance::MerchantDetails {
    alliance::MerchantDetails {
        name: name.into(),
        category: alliance::Category::Dining as i32,
        service_tags: vec!["elder_meals".into()],
        location: Some(common::GeoPoint {
            latitude: JINSHUI.0 + metres_north / 111_195.0,
            ..home()
        }),
        grid_id: "xinyuan-1".into(),
        opening_hours: vec![alliance::OpeningHours {
            days: days.iter().map(|day| *day as i32).collect(),
            opens: opens.into(),
            closes: closes.into(),
        }],
        ..Default::default()
    }
}

/// Monday to Friday.
pub(crate) const WEEKDAYS: [alliance::Weekday; 5] = [
    alliance::Weekday::Monday,
    alliance::Weekday::Tuesday,
    alliance::Weekday::Wednesday,
    alliance::Weekday::Thursday,
    alliance::Weekday::Friday,
];

/// Registers `details` with the alliance; the merchant's id.
pub(crate) async fn register_merchant(
    merchants: &mut Merchants,
    request_id: &str,
    details: alliance::MerchantDetails,
) -> anyhow::Result<String> {
    let response = merchants
        .register_merchant(alliance::RegisterMerchantRequest {
            request_id: request_id.into(),
            details: Some(details),
            actor: "operator-1".into(),
        })
        .await?
        .into_inner();
    Ok(response.merchant.context("no merchant in the response")?.id)
}
