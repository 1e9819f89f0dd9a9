//! Complaint outcomes learned from the complaints stream into an elder's
//! timeline: the same fact announced twice (under two event ids: a bridge
//! re-publishing, an operator replaying, a producer restored from a backup)
//! adds one entry; an overdue visit raised again is the same event.

use std::time::Duration;

use chrono::Utc;
use shequ_chassis::events::new_event;
use shequ_chassis::nats::{StreamSpec, ensure_stream, jetstream};
use shequ_proto::events::{CloudEvent, EventData, care, complaints};
use shequ_tests::eventually;

use crate::support::{TestApp, wang};

shequ_tests::on_both_backends!(
    a_resolution_announced_twice_under_two_event_ids_is_one_timeline_entry,
    an_overdue_notice_raised_again_after_a_restore_is_the_same_event,
);

const COMPLAINTS: StreamSpec = StreamSpec {
    name: complaints::STREAM,
    subjects: complaints::SUBJECTS,
};

fn resolved(elder_id: &str, complaint_id: &str) -> anyhow::Result<CloudEvent> {
    let now = Utc::now();
    let mut data = shequ_tests::fixtures::resolved(
        complaint_id,
        complaints::Category::ElderlyDisabilityServices,
        complaints::Channel::CareVisit,
        now,
    );
    data.complaint.elder_id = Some(elder_id.into());
    Ok(new_event(complaints::SOURCE, complaint_id, now, &data)?)
}

async fn publish(app: &TestApp, event: &CloudEvent) -> anyhow::Result<()> {
    let client = async_nats::connect(app.nats.url()).await?;
    let js = jetstream(client, Duration::from_secs(5));
    ensure_stream(&js, COMPLAINTS).await?;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", event.id.as_str());
    eventually(Duration::from_secs(10), || async {
        js.publish_with_headers(
            event.event_type.clone(),
            headers.clone(),
            serde_json::to_vec(event)?.into(),
        )
        .await?
        .await?;
        Ok(())
    })
    .await
}

async fn a_resolution_announced_twice_under_two_event_ids_is_one_timeline_entry(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let elder = app.register("e-1", wang()).await?.id;
    let first = resolved(&elder, "complaint-1")?;
    let twin = CloudEvent {
        id: uuid::Uuid::now_v7().to_string(),
        ..first.clone()
    };
    publish(&app, &first).await?;
    publish(&app, &twin).await?;
    // A marker after them: once it is in the timeline, the twin was handled.
    let marker = resolved(&elder, "complaint-2")?;
    publish(&app, &marker).await?;

    let resolutions = eventually(Duration::from_secs(20), || {
        let mut care = app.care.clone();
        let elder = elder.clone();
        async move {
            let timeline = care
                .get_timeline(shequ_proto::care::v1::GetTimelineRequest { elder_id: elder })
                .await?
                .into_inner()
                .entries;
            let references: Vec<String> = timeline
                .into_iter()
                .filter(|entry| entry.kind == "complaint_resolved")
                .map(|entry| entry.reference)
                .collect();
            anyhow::ensure!(
                references.iter().any(|r| r == "complaint-2"),
                "marker not applied yet: {references:?}"
            );
            Ok(references)
        }
    })
    .await?;
    assert_eq!(
        resolutions,
        ["complaint-1", "complaint-2"],
        "one entry per resolution, the twin adds none"
    );
    Ok(())
}

async fn an_overdue_notice_raised_again_after_a_restore_is_the_same_event(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let elder = app.register("e-1", wang()).await?.id;
    app.clock.advance(chrono::Duration::days(40));
    app.sweeper.sweep_once().await?;
    let overdue = |events: &[shequ_tests::StoredEvent]| -> Vec<String> {
        events
            .iter()
            .filter(|e| e.event.event_type == care::VisitOverdue::TYPE && e.event.subject == elder)
            .map(|e| e.event.id.clone())
            .collect()
    };
    let before = overdue(&app.wait_for_events(2).await?);
    assert!(!before.is_empty(), "the elder is overdue");

    // The database as a backup from before the sweep has it: no notice, no
    // timeline entry or outbox row of it, the elder's next notice still due.
    app.execute("DELETE FROM overdue_notices WHERE elder_id = $1", &[&elder])
        .await?;
    app.execute(
        "DELETE FROM timeline WHERE elder_id = $1 AND kind = 'visit_overdue'",
        &[&elder],
    )
    .await?;
    app.execute(
        "DELETE FROM outbox WHERE subject = $1",
        &[care::VisitOverdue::TYPE],
    )
    .await?;
    app.execute(
        "UPDATE elders SET next_notice_at = next_visit_due_at WHERE id = $1",
        &[&elder],
    )
    .await?;
    let raised_again = app.sweeper.sweep_once().await?;
    assert!(
        raised_again.done > 0,
        "the restored database raises the notices again"
    );

    // Once the relay has sent the re-raised events, the stream keeps one of each.
    eventually(Duration::from_secs(20), || async {
        let pending = app
            .count("SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL")
            .await?;
        anyhow::ensure!(pending == 0, "{pending} outbox rows not yet published");
        Ok(())
    })
    .await?;
    let after = overdue(&shequ_tests::stream_events(&app.nats.url(), "CARE").await?);
    assert_eq!(after, before, "the same events, none new");
    Ok(())
}
