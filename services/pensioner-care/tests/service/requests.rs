//! Idempotency keys over the API: the same `request_id` with the same
//! request is answered as the first time; with a different request (another
//! RPC, or the same RPC with another body) it is refused, InvalidArgument
//! naming `request_id`, and nothing changes.

use chrono::Duration;
use shequ_proto::care::v1 as pb;
use shequ_proto::events::EventData;
use shequ_proto::events::care::{AlertRaised, PairingCreated, PairingEnded, ServiceBooked};
use tonic::Code;

use crate::support::{TestApp, of_type, violated_field, visit, wang, zhao};

shequ_tests::on_both_backends!(
    a_visit_with_a_used_request_id_and_another_wellbeing_is_refused_naming_request_id,
    a_registration_with_a_used_request_id_and_other_details_is_refused_naming_request_id,
    a_pair_with_an_unpair_key_or_for_another_elder_is_refused_naming_request_id,
    a_booking_or_settlement_with_a_key_used_for_something_else_is_refused_naming_request_id,
    a_meal_stored_as_alliance_unavailable_is_searched_again_only_by_the_same_request,
);

/// Asserts `result` is the refusal of a key used before for a different
/// request.
fn assert_refused<T: std::fmt::Debug>(what: &str, result: Result<T, tonic::Status>) {
    let status = result.expect_err(what);
    assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
    assert_eq!(
        violated_field(&status).as_deref(),
        Some("request_id"),
        "{what}: {status:?}"
    );
    assert!(
        status.message().contains("already used"),
        "{what}: {status:?}"
    );
}

async fn a_visit_with_a_used_request_id_and_another_wellbeing_is_refused_naming_request_id(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let elder = app.register("r-wang", wang()).await?.id;
    let first = app.visit("visit-1", &elder, pb::Wellbeing::Good).await?;
    let first = first.visit.unwrap_or_default();

    let urgent = app
        .care
        .record_visit(visit("visit-1", &elder, pb::Wellbeing::Urgent))
        .await;
    assert_refused("another wellbeing", urgent);
    let other_notes = app
        .care
        .record_visit(pb::RecordVisitRequest {
            notes: "老人说一切都好".into(),
            ..visit("visit-1", &elder, pb::Wellbeing::Good)
        })
        .await;
    assert_refused("other notes", other_notes);
    // The same request again, later: the first visit.
    app.clock.advance(Duration::minutes(5));
    let again = app.visit("visit-1", &elder, pb::Wellbeing::Good).await?;
    assert!(again.duplicate);
    assert_eq!(again.visit, Some(first.clone()));

    let visits: Vec<String> = app
        .timeline(&elder)
        .await?
        .into_iter()
        .filter(|e| e.kind == "visit" || e.kind == "alert")
        .map(|e| e.reference)
        .collect();
    assert_eq!(visits, [first.id], "one visit, no alert");
    // By the time a later event is out, an alert would be too.
    app.register("r-zhao", zhao()).await?;
    let events = app.wait_for_events(3).await?;
    assert!(of_type(&events, AlertRaised::TYPE).is_empty(), "{events:?}");
    Ok(())
}

async fn a_registration_with_a_used_request_id_and_other_details_is_refused_naming_request_id(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let first = app.register("r-1", wang()).await?;
    let other = app
        .care
        .register_elder(pb::RegisterElderRequest {
            request_id: "r-1".into(),
            details: Some(zhao()),
            actor: "operator-1".into(),
        })
        .await;
    assert_refused("another elder", other);
    let again = app
        .care
        .register_elder(pb::RegisterElderRequest {
            request_id: "r-1".into(),
            details: Some(wang()),
            actor: "operator-1".into(),
        })
        .await?
        .into_inner();
    assert!(again.duplicate);
    assert_eq!(again.elder.map(|e| e.id), Some(first.id));
    assert_eq!(app.list_elders(Default::default()).await?.len(), 1);

    let volunteer = app.volunteer("v-1", "张志强").await?;
    let other = app
        .care
        .register_volunteer(pb::RegisterVolunteerRequest {
            request_id: "v-1".into(),
            name: "陈红".into(),
            phone: "13900002222".into(),
            grid_id: "xinyuan-1".into(),
            party_member: false,
            actor: "operator-1".into(),
        })
        .await;
    assert_refused("another volunteer", other);
    let again = app.volunteer("v-1", "张志强").await?;
    assert_eq!(again.id, volunteer.id);
    let listed = app
        .care
        .list_volunteers(pb::ListVolunteersRequest::default())
        .await?
        .into_inner()
        .volunteers;
    assert_eq!(listed.len(), 1);
    Ok(())
}

async fn a_pair_with_an_unpair_key_or_for_another_elder_is_refused_naming_request_id(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let wang_id = app.register("r-wang", wang()).await?.id;
    let zhao_id = app.register("r-zhao", zhao()).await?.id;
    let volunteer = app.volunteer("v-1", "张志强").await?.id;
    let pair = |elder_id: &str, request_id: &str| pb::PairRequest {
        volunteer_id: volunteer.clone(),
        elder_id: elder_id.into(),
        actor: "operator-1".into(),
        request_id: request_id.into(),
    };
    let unpair = |elder_id: &str, request_id: &str| pb::UnpairRequest {
        elder_id: elder_id.into(),
        reason: "志愿者搬离社区".into(),
        actor: "operator-1".into(),
        request_id: request_id.into(),
    };

    let first = app.care.pair(pair(&wang_id, "pair-1")).await?.into_inner();
    // The volunteer has a free slot: refused for the key, not the cap.
    let another_elder = app.care.pair(pair(&zhao_id, "pair-1")).await;
    assert_refused("Pair for another elder", another_elder);
    let ended = app
        .care
        .unpair(unpair(&wang_id, "unpair-1"))
        .await?
        .into_inner();
    let other_reason = app
        .care
        .unpair(pb::UnpairRequest {
            reason: "老人入住养老院".into(),
            ..unpair(&wang_id, "unpair-1")
        })
        .await;
    assert_refused("Unpair with another reason", other_reason);
    let unpair_key = app.care.pair(pair(&wang_id, "unpair-1")).await;
    assert_refused("Pair with an Unpair's key", unpair_key);
    // Paired again: an Unpair with the Pair's key is refused, and it stays.
    app.care.pair(pair(&wang_id, "pair-2")).await?;
    let pair_key = app.care.unpair(unpair(&wang_id, "pair-2")).await;
    assert_refused("Unpair with a Pair's key", pair_key);

    assert_eq!(app.elder(&wang_id).await?.volunteer_id, volunteer);
    assert!(app.elder(&zhao_id).await?.volunteer_id.is_empty());
    // The same requests again: the first answers.
    let again = app.care.pair(pair(&wang_id, "pair-1")).await?.into_inner();
    assert_eq!(again.pairing.map(|p| p.id), first.pairing.map(|p| p.id));
    let again = app
        .care
        .unpair(unpair(&wang_id, "unpair-1"))
        .await?
        .into_inner();
    assert_eq!(again.pairing, ended.pairing);
    // Two elders, one volunteer; paired, ended, paired again.
    let events = app.wait_for_events(2 + 3).await?;
    assert_eq!(of_type(&events, PairingCreated::TYPE).len(), 2);
    assert_eq!(of_type(&events, PairingEnded::TYPE).len(), 1);
    Ok(())
}

async fn a_booking_or_settlement_with_a_key_used_for_something_else_is_refused_naming_request_id(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let elder = app.register("r-wang", wang()).await?.id;
    let first = app.book("b-1", &elder, pb::Service::DayCare).await?;
    let first = first.booking.unwrap_or_default();
    let second = app.book("b-2", &elder, pb::Service::Bathing).await?;
    let second = second.booking.unwrap_or_default();

    assert_refused(
        "another service",
        app.book("b-1", &elder, pb::Service::HealthCheck).await,
    );
    let cancel = |request_id: &str, booking_id: &str| pb::CancelBookingRequest {
        request_id: request_id.into(),
        booking_id: booking_id.into(),
        actor: "worker-li".into(),
    };
    let cancelled = app
        .care
        .cancel_booking(cancel("c-1", &first.id))
        .await?
        .into_inner();
    assert_refused(
        "cancelling another booking",
        app.care.cancel_booking(cancel("c-1", &second.id)).await,
    );
    assert_refused(
        "another settlement",
        app.care
            .mark_booking_no_show(pb::MarkBookingNoShowRequest {
                request_id: "c-1".into(),
                booking_id: first.id.clone(),
                actor: "worker-li".into(),
            })
            .await,
    );
    assert_refused(
        "a booking with a settlement's key",
        app.book("c-1", &elder, pb::Service::DayCare).await,
    );
    assert_refused(
        "a settlement with a booking's key",
        app.care.cancel_booking(cancel("b-2", &second.id)).await,
    );

    let again = app
        .care
        .cancel_booking(cancel("c-1", &first.id))
        .await?
        .into_inner();
    assert!(again.duplicate);
    assert_eq!(again.booking, cancelled.booking);
    let kinds: Vec<String> = app
        .timeline(&elder)
        .await?
        .into_iter()
        .map(|e| e.kind)
        .filter(|kind| kind.starts_with("booking"))
        .collect();
    assert_eq!(kinds, ["booking", "booking", "booking_cancelled"]);
    let again = app.book("b-2", &elder, pb::Service::Bathing).await?;
    assert_eq!(
        again.booking.map(|b| b.status),
        Some(pb::BookingStatus::Booked as i32),
        "still booked"
    );
    Ok(())
}

async fn a_meal_stored_as_alliance_unavailable_is_searched_again_only_by_the_same_request(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let elder = app.register("r-wang", wang()).await?.id;
    let tomorrow = app.now() + Duration::days(1);
    let meal = pb::Service::MealAssistance;
    let unavailable = app.book_for("b-meal", &elder, meal, tomorrow).await?;
    let unavailable = unavailable.booking.unwrap_or_default();
    assert_eq!(
        unavailable.status,
        pb::BookingStatus::AllianceUnavailable as i32
    );

    // The alliance is back (with no canteen: a search would decide the
    // booking), but another meal under the key is refused, the stored one
    // untouched.
    app.start_alliance().await?;
    let day_after = tomorrow + Duration::days(1);
    assert_refused(
        "another meal",
        app.book_for("b-meal", &elder, meal, day_after).await,
    );
    let bookings = app
        .timeline(&elder)
        .await?
        .into_iter()
        .filter(|e| e.kind == "booking")
        .count();
    assert_eq!(bookings, 1, "nothing searched or stored");

    // The same request searches again and stores what it finds.
    let retried = app.book_for("b-meal", &elder, meal, tomorrow).await?;
    assert!(retried.duplicate);
    let decided = retried.booking.unwrap_or_default();
    assert_eq!(decided.id, unavailable.id);
    assert_eq!(
        decided.status,
        pb::BookingStatus::NoMerchantNearby as i32,
        "{}",
        decided.note
    );
    app.register("r-zhao", zhao()).await?;
    let events = app.wait_for_events(2).await?;
    assert!(of_type(&events, ServiceBooked::TYPE).is_empty());
    Ok(())
}
