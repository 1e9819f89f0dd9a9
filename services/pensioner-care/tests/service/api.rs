//! The gRPC API around elders: risk and visit interval, personal data only where
//! it belongs, lists, validation, idempotency, unknown elders, service bookings
//! with the alliance down, and the timeline.

use chrono::Duration;
use shequ_chassis::grpc::timestamp;
use shequ_proto::care::v1 as pb;
use shequ_proto::common::v1 as common;
use shequ_proto::events::EventData;
use shequ_proto::events::care::{ElderRegistered, ServiceBooked};
use tonic::Code;

use crate::support::{
    CONTACT_PHONE, TestApp, WANG_ADDRESS, WANG_BIRTH, WANG_HEALTH, WANG_NAME, instant, liu,
    of_type, violated_field, visit, wang, zhao,
};

shequ_tests::on_both_backends!(
    an_elder_over_eighty_living_alone_is_high_risk_with_weekly_visits_and_reasons,
    an_elder_of_sixty_eight_with_family_is_low_risk_with_monthly_visits,
    get_elder_returns_the_personal_data_staff_need,
    list_elders_gives_summaries_highest_risk_first_filtered_by_risk_and_pairing,
    elders_are_listed_in_pages,
    updating_details_reassesses_the_risk_and_the_visit_interval,
    invalid_elder_details_are_refused_naming_the_field_and_write_nothing,
    invalid_visits_are_refused_naming_the_field_and_write_nothing,
    an_unknown_elder_is_not_found_and_nothing_is_written,
    same_request_id_registers_an_elder_once,
    a_meal_booking_with_the_alliance_down_is_saved_once_as_alliance_unavailable,
    a_day_care_booking_is_booked_and_published,
    a_meal_booking_for_an_elder_without_a_location_is_refused,
    the_timeline_lists_registration_pairing_visit_alert_follow_up_and_booking_in_order,
);

async fn an_elder_over_eighty_living_alone_is_high_risk_with_weekly_visits_and_reasons(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let registered_at = app.now();

    let elder = app.register("r-wang", wang()).await?;

    assert_eq!(elder.risk, pb::RiskLevel::High as i32);
    assert_eq!(elder.visit_interval_days, 7, "high risk: weekly");
    assert_eq!(
        elder.risk_reasons,
        ["80岁以上 (80+)", "独居 (living alone)"],
        "the reasons say why"
    );
    assert_eq!(instant(elder.registered_at.as_ref()), registered_at);
    assert_eq!(
        instant(elder.next_visit_due_at.as_ref()),
        registered_at + Duration::days(7)
    );
    assert!(elder.last_visit_at.is_none());
    assert!(elder.volunteer_id.is_empty());
    Ok(())
}

async fn an_elder_of_sixty_eight_with_family_is_low_risk_with_monthly_visits(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let registered_at = app.now();

    let elder = app.register("r-zhao", zhao()).await?;

    assert_eq!(elder.risk, pb::RiskLevel::Low as i32);
    assert_eq!(elder.visit_interval_days, 30, "low risk: monthly");
    assert!(elder.risk_reasons.is_empty(), "{:?}", elder.risk_reasons);
    assert_eq!(
        instant(elder.next_visit_due_at.as_ref()),
        registered_at + Duration::days(30)
    );
    let medium = app.register("r-liu", liu()).await?;
    assert_eq!(medium.risk, pb::RiskLevel::Medium as i32);
    assert_eq!(medium.visit_interval_days, 14, "medium risk: fortnightly");
    Ok(())
}

async fn get_elder_returns_the_personal_data_staff_need(mut app: TestApp) -> anyhow::Result<()> {
    let id = app.register("r-wang", wang()).await?.id;

    let elder = app.elder(&id).await?;

    let details = elder.details.unwrap_or_default();
    assert_eq!(details.name, WANG_NAME);
    assert_eq!(details.birth_date, WANG_BIRTH);
    assert_eq!(details.address, WANG_ADDRESS);
    assert_eq!(details.health_notes, WANG_HEALTH);
    assert_eq!(details.gender, pb::Gender::Female as i32);
    assert_eq!(details.living_situation, pb::LivingSituation::Alone as i32);
    assert!(details.consents_to_visits);
    let contacts: Vec<(String, String, String)> = details
        .emergency_contacts
        .into_iter()
        .map(|c| (c.name, c.phone, c.relation))
        .collect();
    assert_eq!(
        contacts,
        [(
            "李梅".to_owned(),
            CONTACT_PHONE.to_owned(),
            "女儿".to_owned()
        )]
    );
    let location = details.location.unwrap_or_default();
    assert_eq!(
        (location.latitude, location.longitude),
        crate::support::JINSHUI
    );
    assert_eq!(elder.risk, pb::RiskLevel::High as i32);
    Ok(())
}

async fn list_elders_gives_summaries_highest_risk_first_filtered_by_risk_and_pairing(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let low = app.register("r-zhao", zhao()).await?.id;
    let medium = app.register("r-liu", liu()).await?.id;
    let high = app.register("r-wang", wang()).await?.id;
    let volunteer = app.volunteer("v-1", "张志强").await?.id;
    app.pair(&volunteer, &high).await?;

    let all = app.list_elders(pb::ListEldersRequest::default()).await?;
    let only_high = app
        .list_elders(pb::ListEldersRequest {
            risk: pb::RiskLevel::High as i32,
            ..Default::default()
        })
        .await?;
    let unpaired = app
        .list_elders(pb::ListEldersRequest {
            unpaired_only: true,
            ..Default::default()
        })
        .await?;

    let ids = |list: &[pb::ElderSummary]| list.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&all),
        [high.clone(), medium.clone(), low.clone()],
        "highest risk first"
    );
    // A summary has no health, address or contact fields at all; what it has:
    let first = &all[0];
    assert_eq!(first.name, WANG_NAME);
    assert_eq!(first.age, 86);
    assert_eq!(first.risk, pb::RiskLevel::High as i32);
    assert_eq!(first.grid_id, "xinyuan-1");
    assert_eq!(first.volunteer_id, volunteer);
    assert!(!first.overdue);
    assert_eq!(
        all.iter().map(|e| (e.age, e.risk)).collect::<Vec<_>>(),
        [
            (86, pb::RiskLevel::High as i32),
            (75, pb::RiskLevel::Medium as i32),
            (68, pb::RiskLevel::Low as i32),
        ]
    );
    assert_eq!(ids(&only_high), [high]);
    assert_eq!(
        ids(&unpaired),
        [medium, low],
        "the paired elder is left out"
    );
    Ok(())
}

async fn elders_are_listed_in_pages(mut app: TestApp) -> anyhow::Result<()> {
    let low = app.register("r-zhao", zhao()).await?.id;
    let medium = app.register("r-liu", liu()).await?.id;
    let high = app.register("r-wang", wang()).await?.id;
    let page = |token: String| pb::ListEldersRequest {
        page: Some(common::PageRequest {
            page_size: 2,
            page_token: token,
        }),
        ..Default::default()
    };

    let first = app
        .care
        .list_elders(page(String::new()))
        .await?
        .into_inner();
    let token = first.page.clone().unwrap_or_default().next_page_token;
    let second = app
        .care
        .list_elders(page(token.clone()))
        .await?
        .into_inner();

    let ids = |list: &pb::ListEldersResponse| {
        list.elders.iter().map(|e| e.id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&first), [high, medium]);
    assert!(!token.is_empty());
    assert_eq!(ids(&second), [low]);
    assert!(second.page.unwrap_or_default().next_page_token.is_empty());
    let status = app
        .care
        .list_elders(page("not-a-token".into()))
        .await
        .expect_err("a token this service never gave out");
    assert_eq!(violated_field(&status).as_deref(), Some("page.page_token"));
    Ok(())
}

async fn updating_details_reassesses_the_risk_and_the_visit_interval(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let registered_at = app.now();
    let id = app.register("r-wang", wang()).await?.id;
    let moved_in_with_family = pb::ElderDetails {
        living_situation: pb::LivingSituation::WithFamily as i32,
        health_notes: "女儿已搬来同住".into(),
        ..wang()
    };

    let updated = app
        .care
        .update_elder(pb::UpdateElderRequest {
            elder_id: id.clone(),
            details: Some(moved_in_with_family),
            actor: "operator-1".into(),
        })
        .await?
        .into_inner()
        .elder
        .unwrap_or_default();

    assert_eq!(updated.risk, pb::RiskLevel::Medium as i32, "86 with family");
    assert_eq!(updated.risk_reasons, ["80岁以上 (80+)"]);
    assert_eq!(updated.visit_interval_days, 14);
    assert_eq!(
        instant(updated.next_visit_due_at.as_ref()),
        registered_at + Duration::days(14),
        "still counted from registration"
    );
    let stored = app.elder(&id).await?;
    assert_eq!(stored.risk, pb::RiskLevel::Medium as i32);
    assert_eq!(
        stored.details.unwrap_or_default().health_notes,
        "女儿已搬来同住"
    );
    let unknown = app
        .care
        .update_elder(pb::UpdateElderRequest {
            elder_id: "no-such-elder".into(),
            details: Some(wang()),
            actor: "operator-1".into(),
        })
        .await
        .expect_err("unknown elder");
    assert_eq!(unknown.code(), Code::NotFound);
    Ok(())
}

async fn invalid_elder_details_are_refused_naming_the_field_and_write_nothing(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let with = |change: fn(&mut pb::ElderDetails)| {
        let mut details = wang();
        change(&mut details);
        details
    };
    let cases: Vec<(&str, pb::ElderDetails)> = vec![
        (
            "details.birth_date",
            with(|d| d.birth_date = "2030-01-01".into()),
        ),
        (
            "details.birth_date",
            with(|d| d.birth_date = "1940-5-1".into()),
        ),
        (
            "details.birth_date",
            with(|d| d.birth_date = "01/05/1940".into()),
        ),
        ("details.birth_date", with(|d| d.birth_date = String::new())),
        ("details.name", with(|d| d.name = String::new())),
        ("details.name", with(|d| d.name = "   ".into())),
        ("details.gender", with(|d| d.gender = 9)),
        ("details.gender", with(|d| d.gender = 0)),
        (
            "details.living_situation",
            with(|d| d.living_situation = pb::LivingSituation::Unspecified as i32),
        ),
        (
            "details.living_situation",
            with(|d| d.living_situation = 42),
        ),
        ("details.grid_id", with(|d| d.grid_id = String::new())),
        (
            "details.building_id",
            with(|d| d.building_id = "b".repeat(65)),
        ),
        (
            "details.emergency_contacts[0].phone",
            with(|d| d.emergency_contacts[0].phone = "call my daughter".into()),
        ),
        (
            "details.emergency_contacts[0].name",
            with(|d| d.emergency_contacts[0].name = String::new()),
        ),
        (
            "details.location.latitude",
            with(|d| {
                if let Some(point) = d.location.as_mut() {
                    point.latitude = 91.0;
                }
            }),
        ),
    ];

    for (n, (field, details)) in cases.into_iter().enumerate() {
        let status = app
            .care
            .register_elder(pb::RegisterElderRequest {
                request_id: format!("r-{n}"),
                details: Some(details),
                actor: "operator-1".into(),
            })
            .await
            .expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(
            violated_field(&status).as_deref(),
            Some(field),
            "{status:?}"
        );
    }
    let status = app
        .care
        .register_elder(pb::RegisterElderRequest {
            request_id: "r-no-details".into(),
            details: None,
            actor: "operator-1".into(),
        })
        .await
        .expect_err("details are required");
    assert_eq!(violated_field(&status).as_deref(), Some("details"));

    let listed = app.list_elders(pb::ListEldersRequest::default()).await?;
    assert!(listed.is_empty(), "nothing written: {listed:?}");
    Ok(())
}

async fn invalid_visits_are_refused_naming_the_field_and_write_nothing(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let id = app.register("r-wang", wang()).await?.id;
    let in_an_hour = timestamp(app.now() + Duration::hours(1));
    let cases: Vec<(&str, pb::RecordVisitRequest)> = vec![
        (
            "wellbeing",
            pb::RecordVisitRequest {
                wellbeing: pb::Wellbeing::Unspecified as i32,
                ..visit("v-1", &id, pb::Wellbeing::Good)
            },
        ),
        (
            "wellbeing",
            // "fine" is not a wellbeing: an unknown number is refused, not guessed.
            pb::RecordVisitRequest {
                wellbeing: 99,
                ..visit("v-2", &id, pb::Wellbeing::Good)
            },
        ),
        (
            "visited_at",
            pb::RecordVisitRequest {
                visited_at: Some(in_an_hour),
                ..visit("v-3", &id, pb::Wellbeing::Good)
            },
        ),
        (
            "needs",
            pb::RecordVisitRequest {
                needs: (0..11).map(|n| format!("需求{n}")).collect(),
                ..visit("v-4", &id, pb::Wellbeing::Concern)
            },
        ),
        (
            "needs[1]",
            pb::RecordVisitRequest {
                needs: vec!["需要送餐".into(), "  ".into()],
                ..visit("v-5", &id, pb::Wellbeing::Concern)
            },
        ),
        (
            "kind",
            pb::RecordVisitRequest {
                kind: pb::VisitKind::Unspecified as i32,
                ..visit("v-6", &id, pb::Wellbeing::Good)
            },
        ),
        (
            "visitor",
            // A person's name is no volunteer's id.
            pb::RecordVisitRequest {
                visitor: "王建国".into(),
                ..visit("v-7", &id, pb::Wellbeing::Good)
            },
        ),
        (
            "request_id",
            pb::RecordVisitRequest {
                request_id: String::new(),
                ..visit("", &id, pb::Wellbeing::Good)
            },
        ),
        (
            "elder_id",
            pb::RecordVisitRequest {
                elder_id: "  ".into(),
                ..visit("v-8", &id, pb::Wellbeing::Good)
            },
        ),
    ];

    for (field, request) in cases {
        let status = app.care.record_visit(request).await.expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(
            violated_field(&status).as_deref(),
            Some(field),
            "{status:?}"
        );
    }

    let elder = app.elder(&id).await?;
    assert!(elder.last_visit_at.is_none(), "no visit recorded");
    let visits = app
        .timeline(&id)
        .await?
        .into_iter()
        .filter(|e| e.kind == "visit")
        .count();
    assert_eq!(visits, 0);
    // The refused request ids are free: nothing was stored under them.
    let again = app.visit("v-1", &id, pb::Wellbeing::Good).await?;
    assert!(!again.duplicate);
    Ok(())
}

async fn an_unknown_elder_is_not_found_and_nothing_is_written(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let volunteer = app.volunteer("v-1", "张志强").await?.id;

    let get = app
        .care
        .get_elder(pb::GetElderRequest {
            elder_id: "no-such-elder".into(),
        })
        .await
        .expect_err("unknown elder");
    let visited = app
        .care
        .record_visit(visit("visit-1", "no-such-elder", pb::Wellbeing::Concern))
        .await
        .expect_err("unknown elder");
    let paired = app
        .pair(&volunteer, "no-such-elder")
        .await
        .expect_err("unknown elder");
    let timeline = app
        .care
        .get_timeline(pb::GetTimelineRequest {
            elder_id: "no-such-elder".into(),
        })
        .await
        .expect_err("unknown elder");
    let booked = app
        .book("b-1", "no-such-elder", pb::Service::DayCare)
        .await
        .expect_err("unknown elder");

    for status in [&get, &visited, &paired, &timeline, &booked] {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    assert!(app.list_elders(Default::default()).await?.is_empty());
    assert!(
        app.listed_volunteer(&volunteer).await?.elder_ids.is_empty(),
        "no pairing written"
    );
    // Nothing was stored under the refused visit's request id.
    let elder = app.register("r-wang", wang()).await?.id;
    let recorded = app.visit("visit-1", &elder, pb::Wellbeing::Good).await?;
    assert!(!recorded.duplicate);
    assert_eq!(recorded.visit.unwrap_or_default().elder_id, elder);
    Ok(())
}

async fn same_request_id_registers_an_elder_once(mut app: TestApp) -> anyhow::Result<()> {
    let first = app.register("r-wang", wang()).await?;

    let again = app
        .care
        .register_elder(pb::RegisterElderRequest {
            request_id: "r-wang".into(),
            details: Some(wang()),
            actor: "operator-1".into(),
        })
        .await?
        .into_inner();

    assert!(again.duplicate);
    assert_eq!(again.elder.map(|e| e.id), Some(first.id.clone()));
    assert_eq!(app.list_elders(Default::default()).await?.len(), 1);
    // A later registration marks the point by which the first one's events are out.
    let marker = app.register("r-zhao", zhao()).await?.id;
    let events = app.wait_for_events(2).await?;
    let registered: Vec<String> = of_type(&events, ElderRegistered::TYPE)
        .iter()
        .map(|e| e.event.subject.clone())
        .collect();
    assert_eq!(registered, [first.id, marker], "one event per elder");
    Ok(())
}

async fn a_meal_booking_with_the_alliance_down_is_saved_once_as_alliance_unavailable(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let elder = app.register("r-wang", wang()).await?.id;

    let first = app
        .book("b-meal", &elder, pb::Service::MealAssistance)
        .await?;
    let again = app
        .book("b-meal", &elder, pb::Service::MealAssistance)
        .await?;

    assert!(!first.duplicate);
    let booking = first.booking.unwrap_or_default();
    assert_eq!(
        booking.status,
        pb::BookingStatus::AllianceUnavailable as i32
    );
    assert!(
        booking.note.contains("try again later"),
        "the note says what to do: {}",
        booking.note
    );
    assert!(booking.merchant_id.is_empty());
    assert_eq!(booking.service, pb::Service::MealAssistance as i32);
    assert!(again.duplicate, "saved once per request id");
    assert_eq!(again.booking.map(|b| b.id), Some(booking.id.clone()));
    let bookings: Vec<String> = app
        .timeline(&elder)
        .await?
        .into_iter()
        .filter(|e| e.kind == "booking")
        .map(|e| e.reference)
        .collect();
    assert_eq!(bookings, [booking.id], "recorded, once");
    // By the time a later event is out, a booked event would be too.
    app.register("r-zhao", zhao()).await?;
    let events = app.wait_for_events(2).await?;
    assert!(
        of_type(&events, ServiceBooked::TYPE).is_empty(),
        "nothing was booked: {events:?}"
    );
    Ok(())
}

async fn a_day_care_booking_is_booked_and_published(mut app: TestApp) -> anyhow::Result<()> {
    let elder = app.register("r-wang", wang()).await?.id;
    let booked_for = app.now() + Duration::days(1);

    let response = app.book("b-day", &elder, pb::Service::DayCare).await?;

    let booking = response.booking.unwrap_or_default();
    assert_eq!(booking.status, pb::BookingStatus::Booked as i32);
    assert_eq!(booking.service, pb::Service::DayCare as i32);
    assert!(booking.merchant_id.is_empty(), "the complex provides it");
    let events = app.wait_for_events(2).await?;
    let published = of_type(&events, ServiceBooked::TYPE);
    assert_eq!(published.len(), 1, "{events:?}");
    let data: ServiceBooked = published[0].event.data_as()?;
    assert_eq!(data.booking_id, booking.id);
    assert_eq!(data.elder_id, elder);
    assert_eq!(data.service, shequ_proto::events::care::Service::DayCare);
    assert_eq!(data.merchant_id, None);
    assert!(!data.discounted);
    assert_eq!(data.booked_for, booked_for);
    Ok(())
}

async fn a_meal_booking_for_an_elder_without_a_location_is_refused(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let elder = app
        .register(
            "r-wang",
            pb::ElderDetails {
                location: None,
                ..wang()
            },
        )
        .await?
        .id;

    let status = app
        .book("b-meal", &elder, pb::Service::MealAssistance)
        .await
        .expect_err("no location, no meal circle");

    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("location"), "{status:?}");
    let bookings = app
        .timeline(&elder)
        .await?
        .into_iter()
        .filter(|e| e.kind == "booking")
        .count();
    assert_eq!(bookings, 0, "nothing written");
    // Services the complex provides need no location.
    let day_care = app.book("b-day", &elder, pb::Service::DayCare).await?;
    assert_eq!(
        day_care.booking.map(|b| b.status),
        Some(pb::BookingStatus::Booked as i32)
    );
    Ok(())
}

async fn the_timeline_lists_registration_pairing_visit_alert_follow_up_and_booking_in_order(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let elder = app.register("r-wang", wang()).await?.id;
    let volunteer = app.volunteer("v-1", "张志强").await?.id;
    app.clock.advance(Duration::hours(1));
    let pairing = app.pair(&volunteer, &elder).await?.id;
    app.clock.advance(Duration::days(2));
    let visit_id = app
        .visit("visit-1", &elder, pb::Wellbeing::Urgent)
        .await?
        .visit
        .unwrap_or_default()
        .id;
    app.clock.advance(Duration::hours(1));
    let booking = app
        .book("b-day", &elder, pb::Service::DayCare)
        .await?
        .booking
        .unwrap_or_default()
        .id;

    let entries = app.timeline(&elder).await?;
    let follow_up = app
        .care
        .list_visit_requests(pb::ListVisitRequestsRequest::default())
        .await?
        .into_inner()
        .requests
        .pop()
        .unwrap_or_default()
        .id;

    let seen: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.kind.as_str(), e.reference.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("registered", elder.as_str()),
            ("paired", pairing.as_str()),
            ("visit", visit_id.as_str()),
            ("alert", visit_id.as_str()),
            ("visit_requested", follow_up.as_str()),
            ("booking", booking.as_str()),
        ]
    );
    let times: Vec<_> = entries.iter().map(|e| instant(e.at.as_ref())).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(entries.iter().all(|e| !e.summary.is_empty()));
    // The timeline is the elder's own.
    let other = app.register("r-zhao", zhao()).await?.id;
    let others = app.timeline(&other).await?;
    assert_eq!(
        others.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["registered"]
    );
    Ok(())
}
