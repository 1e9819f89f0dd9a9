//! A whole merchant-alliance service per test ([`shequ_tests::service::Harness`]):
//! in-process on port 0, its own `nats-server`, its own SQLite file or
//! PostgreSQL database, a manual clock.

use std::future::Future;

use anyhow::Context;
use chrono::{DateTime, TimeZone, Utc};
use shequ_chassis::config::CommonConfig;
use shequ_merchant_alliance::{Application, Config};
use shequ_proto::alliance::v1 as pb;
use shequ_proto::common::v1 as common;
use shequ_tests::service::Harness;
use shequ_tests::{Backend, StoredEvent, TestDatabase};
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

/// The service under test, and a client of its running start.
#[derive(Debug)]
pub(crate) struct TestApp {
    harness: Harness<Application>,
    pub(crate) merchants: Merchants,
}

impl std::ops::Deref for TestApp {
    type Target = Harness<Application>;

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
    run_with(backend, |common| Ok(Config::new(common)), test).await
}

/// [`run`], the service started with the config `configure` makes of the
/// test defaults (a service area of its own, authentication on).
pub(crate) async fn run_with<C, F, Fut>(
    backend: Backend,
    configure: C,
    test: F,
) -> anyhow::Result<()>
where
    C: Fn(CommonConfig) -> anyhow::Result<Config> + Send + Sync + 'static,
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    shequ_tests::on_fresh_database(
        backend,
        |database| TestApp::start(database, configure),
        test,
    )
    .await
}

impl TestApp {
    async fn start<C>(database: TestDatabase, configure: C) -> anyhow::Result<Self>
    where
        C: Fn(CommonConfig) -> anyhow::Result<Config> + Send + Sync + 'static,
    {
        let (harness, ()) = Harness::start(
            "merchant-alliance",
            database,
            monday_ten(),
            configure,
            |_| (),
            None,
        )
        .await?;
        Ok(Self {
            merchants: Merchants::new(harness.channel().await?),
            harness,
        })
    }

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

    /// The service's (manual) clock.
    pub(crate) fn clock_now(&self) -> DateTime<Utc> {
        use shequ_chassis::clock::Clock;
        self.clock.now()
    }

    /// Every event in the ALLIANCE stream once `expected` have arrived.
    pub(crate) async fn wait_for_events(
        &self,
        expected: usize,
    ) -> anyhow::Result<Vec<StoredEvent>> {
        self.harness.wait_for_events("ALLIANCE", expected).await
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
pub(crate) use shequ_chassis::grpc::violated_field;
