//! Bookings: for a time to come within the horizon, a meal with the nearest
//! canteen open at the meal's time (the real alliance), a booking the alliance
//! could not be asked about searched again on a retry, and booked → served |
//! cancelled | no_show once each with its event; a meal credits its canteen
//! when it is served, not when it is booked.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use shequ_proto::alliance::v1 as alliance;
use shequ_proto::care::v1 as pb;
use shequ_proto::events::EventData;
use shequ_proto::events::care::{BookingCancelled, BookingNoShow, BookingServed, ServiceBooked};
use shequ_tests::eventually;
use tonic::Code;

use crate::support::{
    Merchants, TestApp, WEEKDAYS, canteen, monday_ten, of_type, register_merchant, violated_field,
    wang, zhao,
};

shequ_tests::on_both_backends!(
    a_booking_for_yesterday_now_or_beyond_thirty_days_is_refused_naming_scheduled_for,
    a_lunch_booking_goes_to_the_nearest_canteen_open_at_lunch_not_a_nearer_closed_one,
    a_retry_of_a_booking_stored_as_alliance_unavailable_searches_again_and_stores_the_outcome,
    a_booked_service_is_served_cancelled_or_missed_once_each_publishing_its_event,
    a_meal_credits_its_canteen_once_when_served_and_not_when_booked,
);

/// `hour`:00 in the district on the day `days` after Monday 2 November 2026.
fn district(days: i64, hour: i64) -> DateTime<Utc> {
    // monday_ten is 10:00 in the district.
    monday_ten() + Duration::days(days) + Duration::hours(hour - 10)
}

async fn serve(
    app: &mut TestApp,
    request_id: &str,
    booking_id: &str,
) -> Result<pb::MarkBookingServedResponse, tonic::Status> {
    app.care
        .mark_booking_served(pb::MarkBookingServedRequest {
            request_id: request_id.into(),
            booking_id: booking_id.into(),
            actor: "worker-li".into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn cancel(
    app: &mut TestApp,
    request_id: &str,
    booking_id: &str,
) -> Result<pb::CancelBookingResponse, tonic::Status> {
    app.care
        .cancel_booking(pb::CancelBookingRequest {
            request_id: request_id.into(),
            booking_id: booking_id.into(),
            actor: "worker-li".into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn no_show(
    app: &mut TestApp,
    request_id: &str,
    booking_id: &str,
) -> Result<pb::MarkBookingNoShowResponse, tonic::Status> {
    app.care
        .mark_booking_no_show(pb::MarkBookingNoShowRequest {
            request_id: request_id.into(),
            booking_id: booking_id.into(),
            actor: "worker-li".into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

fn booking_of(response: pb::BookServiceResponse) -> pb::Booking {
    response.booking.unwrap_or_default()
}

async fn bookings_in_timeline(app: &mut TestApp, elder: &str) -> anyhow::Result<usize> {
    Ok(app
        .timeline(elder)
        .await?
        .into_iter()
        .filter(|e| e.kind == "booking")
        .count())
}

async fn a_booking_for_yesterday_now_or_beyond_thirty_days_is_refused_naming_scheduled_for(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let elder = app.register("r-wang", wang()).await?.id;
    let now = app.now();

    for (n, at) in [
        now - Duration::days(1),
        now,
        now + Duration::days(30) + Duration::minutes(1),
    ]
    .into_iter()
    .enumerate()
    {
        let status = app
            .book_for(&format!("b-{n}"), &elder, pb::Service::DayCare, at)
            .await
            .expect_err("not a time to book for");
        assert_eq!(status.code(), Code::InvalidArgument, "{at}: {status:?}");
        assert_eq!(violated_field(&status).as_deref(), Some("scheduled_for"));
    }
    assert_eq!(
        bookings_in_timeline(&mut app, &elder).await?,
        0,
        "nothing written"
    );
    // The refused keys are free; an hour from now and 30 days ahead are fine.
    let soon = app
        .book_for(
            "b-0",
            &elder,
            pb::Service::DayCare,
            now + Duration::hours(1),
        )
        .await?;
    assert!(!soon.duplicate);
    let far = app
        .book_for(
            "b-2",
            &elder,
            pb::Service::Bathing,
            now + Duration::days(30),
        )
        .await?;
    assert_eq!(booking_of(far).status, pb::BookingStatus::Booked as i32);
    Ok(())
}

/// Registers the canteens of the tests: the nearest (100 m) open evenings
/// only, one at 400 m open weekday lunchtimes.
async fn canteens(merchants: &mut Merchants) -> anyhow::Result<(String, String)> {
    let evenings = register_merchant(
        merchants,
        "m-evenings",
        canteen("晚间食堂", 100.0, &WEEKDAYS, "17:00", "20:00"),
    )
    .await?;
    let lunch = register_merchant(
        merchants,
        "m-lunch",
        canteen("午间助老食堂", 400.0, &WEEKDAYS, "10:30", "13:30"),
    )
    .await?;
    Ok((evenings, lunch))
}

async fn a_lunch_booking_goes_to_the_nearest_canteen_open_at_lunch_not_a_nearer_closed_one(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let mut merchants = app.start_alliance().await?;
    let (evenings, lunch) = canteens(&mut merchants).await?;
    let elder = app.register("r-wang", wang()).await?.id;

    let monday_lunch = booking_of(
        app.book_for(
            "b-lunch",
            &elder,
            pb::Service::MealAssistance,
            district(0, 12),
        )
        .await?,
    );
    let monday_dinner = booking_of(
        app.book_for(
            "b-dinner",
            &elder,
            pb::Service::MealAssistance,
            district(0, 18),
        )
        .await?,
    );
    let saturday_lunch = booking_of(
        app.book_for(
            "b-saturday",
            &elder,
            pb::Service::MealAssistance,
            district(5, 12),
        )
        .await?,
    );

    assert_eq!(
        monday_lunch.status,
        pb::BookingStatus::Booked as i32,
        "{}",
        monday_lunch.note
    );
    assert_eq!(
        monday_lunch.merchant_id, lunch,
        "the nearer one is closed at noon"
    );
    assert_eq!(monday_lunch.merchant_name, "午间助老食堂");
    assert!(
        (monday_lunch.distance_metres - 400.0).abs() < 20.0,
        "{}",
        monday_lunch.distance_metres
    );
    assert_eq!(
        monday_dinner.merchant_id, evenings,
        "the nearest, open at six"
    );
    assert_eq!(
        saturday_lunch.status,
        pb::BookingStatus::NoMerchantOpen as i32,
        "both closed on Saturday"
    );
    assert!(saturday_lunch.merchant_id.is_empty());
    assert!(
        saturday_lunch.note.contains("open at the booked time"),
        "{}",
        saturday_lunch.note
    );
    Ok(())
}

async fn a_retry_of_a_booking_stored_as_alliance_unavailable_searches_again_and_stores_the_outcome(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let elder = app.register("r-wang", wang()).await?.id;
    let lunch_time = district(1, 12);

    // The alliance is down: stored as unavailable, "try again later".
    let first = app
        .book_for("b-meal", &elder, pb::Service::MealAssistance, lunch_time)
        .await?;
    let unavailable = booking_of(first.clone());
    assert_eq!(
        unavailable.status,
        pb::BookingStatus::AllianceUnavailable as i32
    );
    assert!(
        unavailable.note.contains("try again later"),
        "{}",
        unavailable.note
    );
    assert!(!first.duplicate);

    // It is back: the same request id searches again.
    let mut merchants = app.start_alliance().await?;
    let (_, lunch) = canteens(&mut merchants).await?;
    let retried = app
        .book_for("b-meal", &elder, pb::Service::MealAssistance, lunch_time)
        .await?;
    assert!(retried.duplicate, "the request id was seen before");
    let booked = booking_of(retried);
    assert_eq!(booked.id, unavailable.id, "the same booking");
    assert_eq!(
        booked.status,
        pb::BookingStatus::Booked as i32,
        "{}",
        booked.note
    );
    assert_eq!(booked.merchant_id, lunch);

    // Decided now: a further retry answers from what was stored.
    let again = booking_of(
        app.book_for("b-meal", &elder, pb::Service::MealAssistance, lunch_time)
            .await?,
    );
    assert_eq!(again, booked);
    assert_eq!(
        bookings_in_timeline(&mut app, &elder).await?,
        2,
        "the unavailable attempt and the booking"
    );
    app.register("r-zhao", zhao()).await?;
    let events = app.wait_for_events(3).await?;
    let published: Vec<String> = of_type(&events, ServiceBooked::TYPE)
        .iter()
        .map(|e| e.event.subject.clone())
        .collect();
    assert_eq!(published, [booked.id], "booked once it was");
    Ok(())
}

async fn a_booked_service_is_served_cancelled_or_missed_once_each_publishing_its_event(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let elder = app.register("r-wang", wang()).await?.id;
    let tomorrow = app.now() + Duration::days(1);
    let mut ids = Vec::new();
    for key in ["b-1", "b-2", "b-3"] {
        let booked = booking_of(
            app.book_for(key, &elder, pb::Service::DayCare, tomorrow)
                .await?,
        );
        ids.push(booked.id);
    }

    // Cancelled any time; served and missed only once the time has come.
    let cancelled = cancel(&mut app, "c-1", &ids[2]).await?;
    assert!(!cancelled.duplicate);
    assert_eq!(
        cancelled.booking.map(|b| b.status),
        Some(pb::BookingStatus::Cancelled as i32)
    );
    let early = serve(&mut app, "s-1", &ids[0])
        .await
        .expect_err("too early");
    assert_eq!(early.code(), Code::FailedPrecondition, "{early:?}");
    let early = no_show(&mut app, "n-1", &ids[1])
        .await
        .expect_err("too early");
    assert_eq!(early.code(), Code::FailedPrecondition, "{early:?}");

    app.clock.advance(Duration::days(1));
    let served = serve(&mut app, "s-1", &ids[0]).await?;
    assert!(!served.duplicate);
    let served = served.booking.unwrap_or_default();
    assert_eq!(served.status, pb::BookingStatus::Served as i32);
    assert!(served.note.contains("given"), "{}", served.note);
    let again = serve(&mut app, "s-1", &ids[0]).await?;
    assert!(again.duplicate, "the same request id");
    assert_eq!(again.booking, Some(served.clone()));
    let missed = no_show(&mut app, "n-1", &ids[1]).await?;
    assert_eq!(
        missed.booking.map(|b| b.status),
        Some(pb::BookingStatus::NoShow as i32)
    );

    // Each moves once, and only from booked.
    for refused in [
        serve(&mut app, "s-2", &ids[0]).await.map(|_| ()),
        cancel(&mut app, "c-2", &ids[0]).await.map(|_| ()),
        serve(&mut app, "s-3", &ids[1]).await.map(|_| ()),
        no_show(&mut app, "n-2", &ids[2]).await.map(|_| ()),
    ] {
        let status = refused.expect_err("not booked any more");
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    }
    let unknown = serve(&mut app, "s-4", "no-such-booking")
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);
    let blank = cancel(&mut app, "", &ids[0])
        .await
        .expect_err("no request id");
    assert_eq!(violated_field(&blank).as_deref(), Some("request_id"));
    let blank = no_show(&mut app, "n-3", " ")
        .await
        .expect_err("no booking id");
    assert_eq!(violated_field(&blank).as_deref(), Some("booking_id"));

    // booked ×3, then cancelled, served and missed: one event each.
    let events = app.wait_for_events(1 + 3 + 3).await?;
    let subjects = |event_type: &str| -> Vec<String> {
        of_type(&events, event_type)
            .iter()
            .map(|e| e.event.subject.clone())
            .collect()
    };
    assert_eq!(subjects(BookingCancelled::TYPE), [ids[2].clone()]);
    assert_eq!(subjects(BookingServed::TYPE), [ids[0].clone()]);
    assert_eq!(subjects(BookingNoShow::TYPE), [ids[1].clone()]);
    let data: BookingServed = of_type(&events, BookingServed::TYPE)[0].event.data_as()?;
    assert_eq!(data.elder_id, elder);
    assert_eq!(data.scheduled_for, tomorrow);
    assert_eq!(data.served_at, app.now());
    assert_eq!(data.actor, "worker-li");
    assert_eq!(data.merchant_id, None);
    assert!(!data.discounted);
    let kinds: Vec<String> = app
        .timeline(&elder)
        .await?
        .into_iter()
        .map(|e| e.kind)
        .filter(|kind| kind.starts_with("booking_"))
        .collect();
    assert_eq!(
        kinds,
        ["booking_cancelled", "booking_served", "booking_no_show"]
    );
    Ok(())
}

/// The canteen's ledger once it has `entries` entries.
async fn ledger_with(
    merchants: &Merchants,
    merchant_id: &str,
    entries: usize,
) -> anyhow::Result<alliance::GetCreditLedgerResponse> {
    eventually(StdDuration::from_secs(20), || {
        let mut merchants = merchants.clone();
        async move {
            let ledger = merchants
                .get_credit_ledger(alliance::GetCreditLedgerRequest {
                    merchant_id: merchant_id.into(),
                })
                .await?
                .into_inner();
            anyhow::ensure!(
                ledger.entries.len() >= entries,
                "{} entries",
                ledger.entries.len()
            );
            Ok(ledger)
        }
    })
    .await
}

async fn a_meal_credits_its_canteen_once_when_served_and_not_when_booked(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let mut merchants = app.start_alliance().await?;
    let (_, lunch) = canteens(&mut merchants).await?;
    let elder = app.register("r-wang", wang()).await?.id;
    let mut meals = Vec::new();
    for (key, day) in [("b-1", 0), ("b-2", 1), ("b-3", 2)] {
        let booked = booking_of(
            app.book_for(key, &elder, pb::Service::MealAssistance, district(day, 12))
                .await?,
        );
        assert_eq!(booked.merchant_id, lunch, "{}", booked.note);
        meals.push(booked.id);
    }

    // Monday's and Wednesday's are served (the first twice over); Tuesday's
    // is only booked.
    app.clock.advance(Duration::hours(2));
    serve(&mut app, "s-1", &meals[0]).await?;
    serve(&mut app, "s-1", &meals[0]).await?;
    app.clock.advance(Duration::days(2));
    serve(&mut app, "s-3", &meals[2]).await?;

    let ledger = ledger_with(&merchants, &lunch, 2).await?;
    let references: Vec<(&str, &str)> = ledger
        .entries
        .iter()
        .map(|e| (e.reason.as_str(), e.reference.as_str()))
        .collect();
    assert_eq!(
        references,
        [
            ("elder_meal_discount", meals[0].as_str()),
            ("elder_meal_discount", meals[2].as_str())
        ],
        "the booked-only meal and the retried serve add nothing"
    );
    assert_eq!(ledger.score, 102);
    Ok(())
}
