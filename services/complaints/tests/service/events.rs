//! The events the service emits: one per transition, each valid against its
//! published JSON Schema, deduplicable by `Nats-Msg-Id`, free of personal data.

use std::collections::BTreeSet;

use chrono::Duration;
use shequ_proto::complaints::v1 as pb;
use shequ_proto::events::complaints::ALL_TYPES;
use shequ_tests::{Backend, EventSchemas};

use crate::support::{TestApp, run, submission};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_emitted_event_matches_its_schema_and_carries_no_personal_data() -> anyhow::Result<()>
{
    run(Backend::Sqlite, drive_every_transition).await
}

async fn drive_every_transition(mut app: TestApp) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let about_merchant = pb::SubmitComplaintRequest {
        merchant_id: "merchant-7".into(),
        elder_id: "elder-3".into(),
        ..submission("r-1", "饭店占道经营，油烟很大")
    };
    let id = app
        .complaints
        .submit_complaint(about_merchant)
        .await?
        .into_inner()
        .complaint
        .unwrap_or_default()
        .id;
    let actor = "worker-li".to_string();
    app.complaints
        .reclassify_complaint(pb::ReclassifyComplaintRequest {
            complaint_id: id.clone(),
            category: pb::Category::MerchantConduct as i32,
            priority: pb::Priority::Urgent as i32,
            actor: actor.clone(),
            ..Default::default()
        })
        .await?;
    app.clock.advance(Duration::hours(3));
    app.sweeper.sweep_once().await?;
    app.complaints
        .accept_complaint(pb::AcceptComplaintRequest {
            complaint_id: id.clone(),
            actor: actor.clone(),
            ..Default::default()
        })
        .await?;
    app.complaints
        .start_complaint(pb::StartComplaintRequest {
            complaint_id: id.clone(),
            actor: actor.clone(),
            ..Default::default()
        })
        .await?;
    let resolve = pb::ResolveComplaintRequest {
        complaint_id: id.clone(),
        actor: actor.clone(),
        note: "商户已整改".into(),
        merchant_at_fault: true,
        ..Default::default()
    };
    app.complaints.resolve_complaint(resolve.clone()).await?;
    let follow_up = |satisfaction| pb::RecordFollowUpRequest {
        complaint_id: id.clone(),
        actor: "visitor".into(),
        satisfaction,
        ..Default::default()
    };
    app.complaints.record_follow_up(follow_up(1)).await?;
    app.complaints.resolve_complaint(resolve).await?;
    app.complaints.record_follow_up(follow_up(5)).await?;
    let rejected = app.submit("r-2", "咨询").await?.id;
    app.complaints
        .reject_complaint(pb::RejectComplaintRequest {
            complaint_id: rejected,
            actor: actor.clone(),
            reason: "非社区职责".into(),
            ..Default::default()
        })
        .await?;
    let original = app.submit("r-3", "路灯不亮").await?.id;
    let duplicate = app.submit("r-4", "路灯坏了").await?.id;
    app.complaints
        .merge_complaint(pb::MergeComplaintRequest {
            complaint_id: duplicate,
            into_complaint_id: original,
            actor,
            ..Default::default()
        })
        .await?;

    let events = app.wait_for_events(14).await?;

    let schemas = EventSchemas::load()?;
    let mut seen = BTreeSet::new();
    for stored in &events {
        schemas.check(stored)?;
        let event_type = stored.event.event_type.as_str();
        let text = stored.raw.to_string();
        for personal in [
            "张三",
            "13812345678",
            "占道经营",
            "商户已整改",
            "非社区职责",
        ] {
            assert!(
                !text.contains(personal),
                "{event_type} carries {personal:?}: {text}"
            );
        }
        seen.insert(event_type.to_owned());
    }
    let all: BTreeSet<String> = ALL_TYPES.iter().map(|t| t.to_string()).collect();
    assert_eq!(seen, all, "the drive covers every event type");
    let resolved = events
        .iter()
        .find(|e| e.event.event_type.ends_with("resolved.v1"))
        .map(|e| e.raw["data"].clone())
        .unwrap_or_default();
    assert_eq!(resolved["merchant_id"], "merchant-7");
    assert_eq!(resolved["merchant_at_fault"], true);
    assert_eq!(resolved["elder_id"], "elder-3");
    let submitted = &events[0].raw["data"];
    assert_eq!(submitted["reporter_phone_masked"], "138****5678");
    Ok(())
}
