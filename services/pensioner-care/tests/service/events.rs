//! The events pensioner-care emits: each valid against its published JSON
//! Schema, every type covered, none carrying an elder's personal data.

use std::collections::BTreeSet;

use chrono::Duration;
use shequ_proto::care::v1 as pb;
use shequ_proto::events::care::ALL_TYPES;
use shequ_tests::{Backend, EventSchemas};

use crate::support::{
    CONTACT_NAME, CONTACT_PHONE, TestApp, VOLUNTEER_PHONE, WANG_ADDRESS, WANG_BIRTH, WANG_HEALTH,
    WANG_NAME, run, wang,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_emitted_event_matches_its_schema_and_carries_no_personal_data() -> anyhow::Result<()>
{
    run(Backend::Sqlite, emit_every_type).await
}

/// Drives every event type: the booked services are day care (a meal booking
/// with a merchant needs the alliance, which is tested in `bookings`).
async fn emit_every_type(mut app: TestApp) -> anyhow::Result<()> {
    let elder = app.register("r-wang", wang()).await?.id; // elder.registered
    let volunteer = app.volunteer("v-1", "张志强").await?.id;
    app.pair(&volunteer, &elder).await?; // pairing.created
    app.care
        .unpair(pb::UnpairRequest {
            elder_id: elder.clone(),
            reason: "志愿者搬离社区".into(),
            actor: "operator-1".into(),
            ..Default::default()
        })
        .await?; // pairing.ended
    app.clock.advance(Duration::days(8));
    assert_eq!(app.sweeper.sweep_once().await?.done, 1); // visit.overdue
    app.visit("visit-1", &elder, pb::Wellbeing::Urgent).await?; // visit.recorded, alert.raised, visit_request.raised
    app.clock.advance(Duration::hours(25));
    assert_eq!(app.sweeper.sweep_once().await?.done, 1); // visit_request.overdue
    app.visit("visit-2", &elder, pb::Wellbeing::Good).await?; // visit.recorded, visit_request.met
    app.care
        .update_elder(pb::UpdateElderRequest {
            elder_id: elder.clone(),
            details: Some(wang()),
            actor: "operator-1".into(),
        })
        .await?; // elder.updated
    let mut bookings = Vec::new();
    for key in ["b-served", "b-cancelled", "b-missed"] {
        let booked = app.book(key, &elder, pb::Service::DayCare).await?; // service.booked
        bookings.push(booked.booking.unwrap_or_default().id);
    }
    app.care
        .cancel_booking(pb::CancelBookingRequest {
            request_id: "c-1".into(),
            booking_id: bookings[1].clone(),
            actor: "operator-1".into(),
        })
        .await?; // booking.cancelled
    app.clock.advance(Duration::days(1));
    app.care
        .mark_booking_served(pb::MarkBookingServedRequest {
            request_id: "s-1".into(),
            booking_id: bookings[0].clone(),
            actor: "operator-1".into(),
        })
        .await?; // booking.served
    app.care
        .mark_booking_no_show(pb::MarkBookingNoShowRequest {
            request_id: "n-1".into(),
            booking_id: bookings[2].clone(),
            actor: "operator-1".into(),
        })
        .await?; // booking.no_show

    let events = app.wait_for_events(17).await?;

    let schemas = EventSchemas::load()?;
    let mut seen = BTreeSet::new();
    for event in &events {
        schemas.check(event)?;
        let text = event.raw.to_string();
        for personal in [
            WANG_NAME,
            WANG_ADDRESS,
            WANG_HEALTH,
            WANG_BIRTH,
            CONTACT_NAME,
            CONTACT_PHONE,
            VOLUNTEER_PHONE,
            "需要送餐",
            "腿脚不便",
        ] {
            assert!(
                !text.contains(personal),
                "{personal:?} stays in the service: {text}"
            );
        }
        seen.insert(event.event.event_type.clone());
    }
    let all: BTreeSet<String> = ALL_TYPES.iter().map(|t| t.to_string()).collect();
    assert_eq!(seen, all, "the drive covers every event type");
    assert_eq!(
        events.len(),
        17,
        "one event each, two visits, three bookings: {events:?}"
    );
    Ok(())
}
