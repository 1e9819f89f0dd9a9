//! The events merchant-alliance emits: each valid against its published JSON
//! Schema, carrying no owner's personal data.

use std::collections::BTreeSet;

use chrono::Duration;
use prost_types::Timestamp;
use shequ_proto::alliance::v1 as pb;
use shequ_proto::events::alliance::ALL_TYPES;
use shequ_tests::{Backend, EventSchemas};

use crate::support::{TestApp, dining, run, wgs84};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_emitted_event_matches_its_schema() -> anyhow::Result<()> {
    run(Backend::Sqlite, emit_every_type).await
}

async fn emit_every_type(mut app: TestApp) -> anyhow::Result<()> {
    // A building beside the canteen: its registration gives the grid
    // breakfast and dining (circle.coverage_changed).
    app.merchants
        .load_buildings(pb::LoadBuildingsRequest {
            buildings: vec![pb::Building {
                building_id: "xinyuan-b1".into(),
                grid_id: "xinyuan-1".into(),
                point: Some(wgs84(10.0)),
            }],
        })
        .await?;
    let id = app
        .register("r-1", dining("幸福食堂", 0.0, &["elder_meals"]))
        .await?
        .id;
    app.merchants
        .update_merchant(pb::UpdateMerchantRequest {
            merchant_id: id.clone(),
            details: Some(dining("幸福助老食堂", 5.0, &["elder_meals"])),
            actor: "operator-1".into(),
        })
        .await?;
    for n in 0..2 {
        let at = shequ_chassis::grpc::timestamp(monday_minus_a_day(&app));
        app.merchants
            .record_activity(pb::RecordActivityRequest {
                request_id: format!("a-{n}"),
                merchant_id: id.clone(),
                kind: pb::ActivityKind::Welfare as i32,
                description: "为独居老人送餐".into(),
                happened_at: Some(Timestamp { ..at }),
                actor: "operator-1".into(),
            })
            .await?;
    }
    app.merchants
        .evaluate_model_merchants(pb::EvaluateModelMerchantsRequest {
            period: "2026-Q4".into(),
            award: true,
            actor: "operator-1".into(),
        })
        .await?;
    app.merchants
        .suspend_merchant(pb::SuspendMerchantRequest {
            merchant_id: id.clone(),
            reason: "整改".into(),
            actor: "operator-1".into(),
        })
        .await?;
    app.merchants
        .reinstate_merchant(pb::ReinstateMerchantRequest {
            merchant_id: id,
            actor: "operator-1".into(),
        })
        .await?;

    let events = app.wait_for_events(8).await?;

    let schemas = EventSchemas::load()?;
    let mut seen = BTreeSet::new();
    for event in &events {
        schemas.check(event)?;
        let text = event.raw.to_string();
        assert!(
            !text.contains("为独居老人送餐") && !text.contains("整改"),
            "free text stays in the service: {text}"
        );
        seen.insert(event.event.event_type.clone());
    }
    let all: BTreeSet<String> = ALL_TYPES.iter().map(|t| t.to_string()).collect();
    assert_eq!(seen, all, "the drive covers every event type");
    Ok(())
}

fn monday_minus_a_day(app: &TestApp) -> chrono::DateTime<chrono::Utc> {
    use shequ_chassis::clock::Clock;
    app.clock.now() - Duration::days(1)
}
