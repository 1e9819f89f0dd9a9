//! A whole merchant-alliance service per test: in-process on port 0, its own
//! `nats-server`, its own SQLite file or PostgreSQL database, a manual clock.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, TimeZone, Utc};
use shequ_chassis::clock::ManualClock;
use shequ_chassis::config::CommonConfig;
use shequ_merchant_alliance::{Application, Config};
use shequ_proto::alliance::v1 as pb;
use shequ_proto::common::v1 as common;
use shequ_tests::{Backend, NatsServer, StoredEvent, TestDatabase, eventually, stream_events};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

pub(crate) type Merchants = pb::merchant_service_client::MerchantServiceClient<Channel>;

/// Monday 2 November 2026, 10:00 in the district (02:00 UTC).
pub(crate) fn monday_ten() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 2, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Jinshui District, in WGS-84.
pub(crate) const JINSHUI: (f64, f64) = (34.80, 113.66);

#[derive(Debug)]
pub(crate) struct TestApp {
    pub(crate) merchants: Merchants,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) nats: NatsServer,
    /// Cancelled when the test ends, so the service stops with it.
    _shutdown: tokio_util::sync::DropGuard,
    _task: JoinHandle<Result<(), shequ_chassis::Error>>,
    _data: TempDir,
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
    let data = tempfile::tempdir()?;
    let nats = NatsServer::start().await?;
    let clock = ManualClock::new(monday_ten());
    let mut common = CommonConfig::new(nats.url(), data.path());
    common.database_url = database.url().map(str::to_owned);
    common.grpc_addr = Some("127.0.0.1:0".parse()?);
    let application = Application::build(Config::new(common), clock.clone()).await?;
    let addr = application.grpc_addr();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(application.run_until_stopped(shutdown.clone()));
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let app = TestApp {
        merchants: Merchants::new(channel),
        clock,
        nats,
        _shutdown: shutdown.drop_guard(),
        _task: task,
        _data: data,
        _database: database,
    };
    test(app).await
}

impl TestApp {
    pub(crate) async fn register(
        &mut self,
        request_id: &str,
        details: pb::MerchantDetails,
    ) -> anyhow::Result<pb::Merchant> {
        let response = self
            .merchants
            .register_merchant(pb::RegisterMerchantRequest {
                request_id: request_id.into(),
                details: Some(details),
                actor: "operator-1".into(),
            })
            .await?
            .into_inner();
        response.merchant.context("no merchant in the response")
    }

    /// Every event in the ALLIANCE stream once `expected` have arrived.
    pub(crate) async fn wait_for_events(
        &self,
        expected: usize,
    ) -> anyhow::Result<Vec<StoredEvent>> {
        let url = self.nats.url();
        eventually(Duration::from_secs(20), || async {
            let events = stream_events(&url, "ALLIANCE").await?;
            if events.len() >= expected {
                Ok(events)
            } else {
                bail!("{} of {expected} events in the stream", events.len())
            }
        })
        .await
    }
}

/// A point `metres_north` of Jinshui's reference point, in WGS-84.
pub(crate) fn wgs84(metres_north: f64) -> common::GeoPoint {
    common::GeoPoint {
        latitude: JINSHUI.0 + metres_north / 111_195.0,
        longitude: JINSHUI.1,
        datum: common::Datum::Wgs84 as i32,
    }
}

/// A dining merchant `metres_north` of the reference point, open 08:00-20:00 daily.
pub(crate) fn dining(name: &str, metres_north: f64, tags: &[&str]) -> pb::MerchantDetails {
    pb::MerchantDetails {
        name: name.into(),
        category: pb::Category::Dining as i32,
        service_tags: tags.iter().map(|t| t.to_string()).collect(),
        location: Some(wgs84(metres_north)),
        address: "金水区某路1号".into(),
        grid_id: "xinyuan-1".into(),
        opening_hours: vec![pb::OpeningHours {
            days: (1..=7).collect(),
            opens: "08:00".into(),
            closes: "20:00".into(),
        }],
        party_member_owner: true,
    }
}

/// The field named in an `InvalidArgument`'s BadRequest detail.
pub(crate) fn violated_field(status: &tonic::Status) -> Option<String> {
    shequ_chassis::grpc::violated_field(status)
}
