//! Circle coverage end to end: merchant-alliance in-process on a real NATS,
//! building points loaded and merchants registered over gRPC, coverage read
//! back against values worked out by hand from the layout, and the
//! `circle.coverage_changed` events the coverage watcher publishes on NATS as
//! merchants are registered, suspended and moved: one per grid and service
//! that flipped, none for a change that flips nothing or a refused load.
//!
//! The layout, on the meridian of 34.80 N 113.66 E (metres north):
//! - grid `xinyuan-1`: buildings at 0 and 400 m;
//! - grid `xinyuan-2`: one building at 2,000 m;
//! - grid `xililu-1`: one building at 6,000 m, with a merchant of every basic
//!   service beside it (so it has no gap and is listed last).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use shequ_chassis::clock::SystemClock;
use shequ_chassis::config::CommonConfig;
use shequ_chassis::grpc::violated_field;
use shequ_proto::alliance::v1 as pb;
use shequ_proto::common::v1 as common;
use shequ_proto::events::CloudEvent;
use shequ_proto::events::alliance::{BasicService, CoverageChanged};
use shequ_tests::service::TestService;
use shequ_tests::{EventSchemas, NatsServer, stream_events};
use tokio::sync::mpsc;
use tonic::Code;
use tonic::transport::Channel;

type Merchants = pb::merchant_service_client::MerchantServiceClient<Channel>;

const TYPE: &str = "shequ.alliance.circle.coverage_changed.v1";
/// How long to wait for an event the watcher owes.
const WITHIN: Duration = Duration::from_secs(15);
/// How long to watch for an event it must not publish.
const QUIET: Duration = Duration::from_millis(1500);

fn point(metres_north: f64) -> common::GeoPoint {
    common::GeoPoint {
        latitude: 34.80 + metres_north / 111_195.0,
        longitude: 113.66,
        datum: common::Datum::Wgs84 as i32,
    }
}

fn building(id: &str, grid: &str, metres_north: f64) -> pb::Building {
    pb::Building {
        building_id: id.into(),
        grid_id: grid.into(),
        point: Some(point(metres_north)),
    }
}

fn details(name: &str, category: pb::Category, metres_north: f64) -> pb::MerchantDetails {
    pb::MerchantDetails {
        name: name.into(),
        category: category as i32,
        location: Some(point(metres_north)),
        grid_id: "xinyuan-1".into(),
        ..Default::default()
    }
}

/// merchant-alliance on NATS, with a subscriber of its coverage events.
struct Alliance {
    merchants: Merchants,
    events: mpsc::UnboundedReceiver<CloudEvent>,
    nats: NatsServer,
    _service: TestService<shequ_merchant_alliance::Application>,
    _data: tempfile::TempDir,
}

impl Alliance {
    async fn start() -> anyhow::Result<Self> {
        let nats = NatsServer::start().await?;
        let data = tempfile::tempdir()?;
        let mut common = CommonConfig::new(nats.url(), data.path());
        common.grpc_addr = Some(([127, 0, 0, 1], 0).into());
        let service = TestService::<shequ_merchant_alliance::Application>::start(
            shequ_merchant_alliance::Config::new(common),
            Arc::new(SystemClock),
        )
        .await?;
        let client = async_nats::connect(nats.url()).await?;
        let mut subscription = client.subscribe(TYPE).await?;
        client.flush().await?;
        let (sender, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let _client = client;
            while let Some(message) = subscription.next().await {
                if let Ok(event) = serde_json::from_slice::<CloudEvent>(&message.payload) {
                    let _ = sender.send(event);
                }
            }
        });
        Ok(Self {
            merchants: Merchants::new(service.channel().await?),
            events,
            nats,
            _service: service,
            _data: data,
        })
    }

    async fn register(
        &mut self,
        key: &str,
        details: pb::MerchantDetails,
    ) -> anyhow::Result<String> {
        let merchant = self
            .merchants
            .register_merchant(pb::RegisterMerchantRequest {
                request_id: key.into(),
                details: Some(details),
                actor: "operator-1".into(),
            })
            .await?
            .into_inner()
            .merchant
            .unwrap_or_default();
        Ok(merchant.id)
    }

    /// The next `n` coverage events (each checked to read as one), and no
    /// other within [`QUIET`] after them.
    async fn exactly(&mut self, n: usize) -> anyhow::Result<Vec<(CloudEvent, CoverageChanged)>> {
        let mut got = Vec::new();
        while got.len() < n {
            let event = tokio::time::timeout(WITHIN, self.events.recv())
                .await
                .map_err(|_| {
                    anyhow::anyhow!("{} of {n} coverage events within {WITHIN:?}", got.len())
                })?
                .ok_or_else(|| anyhow::anyhow!("the subscription ended"))?;
            let data: CoverageChanged = event.data_as()?;
            got.push((event, data));
        }
        if let Ok(Some(extra)) = tokio::time::timeout(QUIET, self.events.recv()).await {
            anyhow::bail!(
                "one more coverage event than the {n} owed: {:?}",
                extra.data
            );
        }
        Ok(got)
    }

    async fn coverage(&mut self) -> anyhow::Result<pb::GetCircleCoverageResponse> {
        Ok(self
            .merchants
            .get_circle_coverage(pb::GetCircleCoverageRequest::default())
            .await?
            .into_inner())
    }
}

/// (grid, service, covered, merchant) of an event, its subject checked.
fn flip(event: &(CloudEvent, CoverageChanged)) -> (String, BasicService, bool, Option<String>) {
    let (envelope, data) = event;
    assert_eq!(envelope.subject, data.grid_id, "the subject is the grid");
    assert_eq!(envelope.source, "/shequ/merchant-alliance");
    (
        data.grid_id.clone(),
        data.kind,
        data.covered,
        data.merchant_id.clone(),
    )
}

fn kind(grid: &pb::GridCoverage, kind: pb::BasicService) -> &pb::KindCoverage {
    grid.kinds
        .iter()
        .find(|k| k.kind == kind as i32)
        .unwrap_or_else(|| panic!("{kind:?} in {}", grid.grid_id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coverage_is_read_as_worked_out_and_each_flip_is_announced_once() -> anyhow::Result<()> {
    let mut alliance = Alliance::start().await?;

    // The buildings, and every service beside xililu-1's: six gains there.
    let loaded = alliance
        .merchants
        .load_buildings(pb::LoadBuildingsRequest {
            buildings: vec![
                building("xinyuan-b1", "xinyuan-1", 0.0),
                building("xinyuan-b2", "xinyuan-1", 400.0),
                building("xinyuan-b4", "xinyuan-2", 2000.0),
                building("xililu-b1", "xililu-1", 6000.0),
            ],
        })
        .await?
        .into_inner();
    assert_eq!((loaded.buildings, loaded.grids), (4, 3));
    for (i, category) in [
        pb::Category::Dining,
        pb::Category::Repair,
        pb::Category::Grocery,
        pb::Category::Housekeeping,
        pb::Category::Health,
        pb::Category::ElderlyCare,
    ]
    .into_iter()
    .enumerate()
    {
        alliance
            .register(
                &format!("xililu-{i}"),
                details(
                    &format!("西里路商户{i}"),
                    category,
                    6000.0 + 10.0 * i as f64,
                ),
            )
            .await?;
    }
    let gains = alliance.exactly(6).await?;
    assert!(
        gains
            .iter()
            .all(|e| e.1.grid_id == "xililu-1" && e.1.covered)
    );
    assert_eq!((gains[0].1.buildings, gains[0].1.buildings_reached), (1, 1));

    // A noodle shop 100 m north: xinyuan-1 gains breakfast and dining.
    let noodles = alliance
        .register("noodles", details("老王面馆", pb::Category::Dining, 100.0))
        .await?;
    let gained = alliance.exactly(1).await?;
    assert_eq!(
        flip(&gained[0]),
        (
            "xinyuan-1".into(),
            BasicService::BreakfastDining,
            true,
            Some(noodles.clone())
        )
    );
    assert_eq!(
        (gained[0].1.buildings_reached, gained[0].1.buildings),
        (2, 2)
    );

    // A grocer at xinyuan-2's building, and a pharmacy 5 km north that
    // reaches no building: one gain.
    let grocer = alliance
        .register("grocer", details("鲜丰超市", pb::Category::Grocery, 2000.0))
        .await?;
    let pharmacy = alliance
        .register(
            "pharmacy",
            details("远方药房", pb::Category::Health, 5000.0),
        )
        .await?;
    let gained = alliance.exactly(1).await?;
    // Both registrations may fall into one recomputation: then the event
    // names no merchant (it cannot tell which of the two it was).
    let (grid, service, covered, _) = flip(&gained[0]);
    assert_eq!(
        (grid.as_str(), service, covered),
        ("xinyuan-2", BasicService::GroceriesFreshFood, true)
    );

    // Read back, as worked out by hand.
    let answer = alliance.coverage().await?;
    let order: Vec<(&str, bool)> = answer
        .grids
        .iter()
        .map(|g| (g.grid_id.as_str(), g.has_gap))
        .collect();
    assert_eq!(
        order,
        [
            ("xinyuan-1", true),
            ("xinyuan-2", true),
            ("xililu-1", false)
        ],
        "grids with a gap first"
    );
    let xinyuan_1 = &answer.grids[0];
    let dining = kind(xinyuan_1, pb::BasicService::BreakfastDining);
    assert_eq!((dining.buildings_reached, dining.covered), (2, true));
    let longest = dining.longest_walk.clone().unwrap_or_default();
    // 300 m from xinyuan-b2 at 80 m a minute: 3.75 minutes.
    assert_eq!(
        (
            dining.longest_walk_building_id.as_str(),
            longest.merchant_id.as_str(),
            longest.merchant_name.as_str(),
            longest.distance_metres,
            longest.walk_minutes
        ),
        ("xinyuan-b2", noodles.as_str(), "老王面馆", 300.0, 3.8)
    );
    let b1 = &xinyuan_1.buildings[0];
    assert_eq!(b1.building_id, "xinyuan-b1");
    let b1_dining = b1
        .kinds
        .iter()
        .find(|k| k.kind == pb::BasicService::BreakfastDining as i32)
        .and_then(|k| k.nearest.clone())
        .unwrap_or_default();
    assert_eq!(
        (b1_dining.distance_metres, b1_dining.walk_minutes),
        (100.0, 1.3)
    );
    let pharmacy_here = kind(xinyuan_1, pb::BasicService::PharmacyHealth);
    assert_eq!(
        (pharmacy_here.buildings_reached, pharmacy_here.covered),
        (0, false)
    );

    // A refused load changes nothing and announces nothing.
    let refused = alliance
        .merchants
        .load_buildings(pb::LoadBuildingsRequest {
            buildings: vec![
                building("xinyuan-b1", "xinyuan-1", 0.0),
                building("xinyuan-b1", "xinyuan-2", 10.0),
            ],
        })
        .await
        .expect_err("a building named twice");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        violated_field(&refused).as_deref(),
        Some("buildings[1].building_id")
    );
    assert_eq!(alliance.coverage().await?, answer, "nothing changed");
    alliance.exactly(0).await?;

    // The grocer suspended: xinyuan-2 loses groceries, once, because of it.
    alliance
        .merchants
        .suspend_merchant(pb::SuspendMerchantRequest {
            merchant_id: grocer.clone(),
            reason: "食品安全检查".into(),
            actor: "operator-1".into(),
        })
        .await?;
    let lost = alliance.exactly(1).await?;
    assert_eq!(
        flip(&lost[0]),
        (
            "xinyuan-2".into(),
            BasicService::GroceriesFreshFood,
            false,
            Some(grocer.clone())
        )
    );
    assert_eq!((lost[0].1.buildings_reached, lost[0].1.buildings), (0, 1));

    // The pharmacy moves 200 m north of the reference: xinyuan-1 gains
    // pharmacy and health, once, because of it.
    alliance
        .merchants
        .update_merchant(pb::UpdateMerchantRequest {
            merchant_id: pharmacy.clone(),
            details: Some(details("远方药房", pb::Category::Health, 200.0)),
            actor: "operator-1".into(),
        })
        .await?;
    let gained = alliance.exactly(1).await?;
    assert_eq!(
        flip(&gained[0]),
        (
            "xinyuan-1".into(),
            BasicService::PharmacyHealth,
            true,
            Some(pharmacy)
        )
    );

    // What the stream kept: the same events, each valid against its schema.
    let schemas = EventSchemas::load()?;
    let kept: Vec<_> = stream_events(&alliance.nats.url(), "ALLIANCE")
        .await?
        .into_iter()
        .filter(|e| e.event.event_type == TYPE)
        .collect();
    assert_eq!(kept.len(), 10, "6 + 1 + 1 + 1 lost + 1 gained");
    for event in &kept {
        schemas.check(event)?;
    }
    Ok(())
}
