//! The care figures over gRPC, visit evidence on the wire, and visits
//! requested after a major event: raised by staff, by a complaint event about
//! an elder and by an urgent visit; overdue once across a restart; met by the
//! next visit.

use std::time::Duration;

use chrono::Utc;
use shequ_chassis::events::new_event;
use shequ_chassis::nats::{StreamSpec, ensure_stream, jetstream};
use shequ_proto::care::v1 as pb;
use shequ_proto::common::v1 as common;
use shequ_proto::events::care::{
    VisitRecorded, VisitRequestMet, VisitRequestOverdue, VisitRequestRaised,
};
use shequ_proto::events::{CloudEvent, EventData, complaints};
use shequ_tests::eventually;
use tonic::Code;

use crate::support::{JINSHUI, TestApp, of_type, visit, wang, zhao};

shequ_tests::on_both_backends!(
    the_care_figures_of_the_month_answer_for_the_district_and_a_grid,
    a_home_visit_far_from_home_is_flagged_and_no_place_leaves_the_service,
    a_requested_visit_falls_overdue_once_across_a_restart_and_the_next_visit_meets_it,
    a_complaint_about_an_elder_requests_one_visit_however_often_it_is_delivered,
);

async fn figures(
    app: &mut TestApp,
    request: pb::GetCareFiguresRequest,
) -> Result<pb::CareFigures, tonic::Status> {
    Ok(app
        .care
        .get_care_figures(request)
        .await?
        .into_inner()
        .figures
        .unwrap_or_default())
}

/// The visit requests, newest first (open only).
async fn visit_requests(
    app: &mut TestApp,
    open_only: bool,
) -> anyhow::Result<Vec<pb::VisitRequest>> {
    Ok(app
        .care
        .list_visit_requests(pb::ListVisitRequestsRequest {
            open_only,
            ..Default::default()
        })
        .await?
        .into_inner()
        .requests)
}

async fn the_care_figures_of_the_month_answer_for_the_district_and_a_grid(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let weekly = app.register("r-wang", wang()).await?.id;
    let _monthly = app.register("r-zhao", zhao()).await?.id;
    app.clock.advance(chrono::Duration::days(2));
    app.visit("visit-1", &weekly, pb::Wellbeing::Good).await?;
    app.clock.advance(chrono::Duration::days(1));
    app.visit("visit-2", &weekly, pb::Wellbeing::Urgent).await?;

    let district = figures(
        &mut app,
        pb::GetCareFiguresRequest {
            month: "2026-11".into(),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(district.scope, "district");
    assert_eq!(district.month, "2026-11");
    let elders = district.elders.unwrap_or_default();
    assert_eq!((elders.high, elders.low), (1, 1));
    assert_eq!((district.due, district.due_visited), (1, 1));
    assert_eq!(district.monthly_visit_rate, Some(1.0));
    assert_eq!((district.visits, district.visits_on_time), (2, 2));
    assert_eq!(district.urgent_visits, 1);
    let complaints = district.complaints.unwrap_or_default();
    assert_eq!(
        complaints.pending, 1,
        "complaints is down: the urgent visit's filing waits"
    );
    assert_eq!(district.unpaired.unwrap_or_default().high, 1);
    let current = figures(&mut app, pb::GetCareFiguresRequest::default()).await?;
    assert_eq!(current.month, "2026-11", "empty: the current month");

    let other_grid = figures(
        &mut app,
        pb::GetCareFiguresRequest {
            grid_id: "yaozhai-1".into(),
            month: "2026-11".into(),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(other_grid.scope, "grid:yaozhai-1");
    assert_eq!((other_grid.visits, other_grid.due), (0, 0));
    assert_eq!(other_grid.monthly_visit_rate, None, "nobody due: no rate");

    for (request, field) in [
        (
            pb::GetCareFiguresRequest {
                month: "2026-13".into(),
                ..Default::default()
            },
            "month",
        ),
        (
            pb::GetCareFiguresRequest {
                grid_id: "xinyuan-1".into(),
                community_id: "xinyuan".into(),
                ..Default::default()
            },
            "community_id",
        ),
    ] {
        let status = figures(&mut app, request)
            .await
            .err()
            .map(|s| (s.code(), s.message().to_owned()));
        let (code, message) = status.unwrap_or((Code::Ok, String::new()));
        assert_eq!(code, Code::InvalidArgument, "{field}");
        assert!(message.contains(field), "{message}");
    }
    // A community's grids come from the complaints service, which is down.
    let status = figures(
        &mut app,
        pb::GetCareFiguresRequest {
            community_id: "xinyuan".into(),
            ..Default::default()
        },
    )
    .await
    .err()
    .map(|s| s.code());
    assert_eq!(status, Some(Code::Unavailable));
    Ok(())
}

async fn a_home_visit_far_from_home_is_flagged_and_no_place_leaves_the_service(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let elder = app.register("r-wang", wang()).await?.id;
    let away = common::GeoPoint {
        latitude: JINSHUI.0 + 0.01,
        longitude: JINSHUI.1,
        datum: common::Datum::Wgs84 as i32,
    };
    let far = app
        .care
        .record_visit(pb::RecordVisitRequest {
            recorded_at: Some(away),
            ..visit("visit-1", &elder, pb::Wellbeing::Good)
        })
        .await?
        .into_inner()
        .visit
        .unwrap_or_default();
    assert!(far.far_from_home);
    let metres = far.distance_from_home_metres.unwrap_or_default();
    assert!((1100.0..1125.0).contains(&metres), "{metres}");
    let call = app
        .care
        .record_visit(pb::RecordVisitRequest {
            recorded_at: Some(away),
            kind: pb::VisitKind::PhoneCall as i32,
            ..visit("visit-2", &elder, pb::Wellbeing::Good)
        })
        .await?
        .into_inner()
        .visit
        .unwrap_or_default();
    assert!(!call.far_from_home, "phone calls are exempt");
    let bad = app
        .care
        .record_visit(pb::RecordVisitRequest {
            recorded_at: Some(common::GeoPoint {
                latitude: 91.0,
                ..away
            }),
            ..visit("visit-3", &elder, pb::Wellbeing::Good)
        })
        .await
        .err()
        .map(|s| (s.code(), s.message().to_owned()));
    let (code, message) = bad.unwrap_or((Code::Ok, String::new()));
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("recorded_at.latitude"), "{message}");

    let month = figures(&mut app, pb::GetCareFiguresRequest::default()).await?;
    assert_eq!(month.far_from_home, 1);
    assert_eq!(month.visits, 2, "the refused visit was not recorded");

    let events = app.wait_for_events(3).await?;
    let flags: Vec<(String, bool)> = of_type(&events, VisitRecorded::TYPE)
        .iter()
        .map(|e| {
            let data: VisitRecorded = e.event.data_as()?;
            Ok((data.visit_id, data.far_from_home))
        })
        .collect::<anyhow::Result<_>>()?;
    assert_eq!(flags, [(far.id.clone(), true), (call.id.clone(), false)]);
    for event in &events {
        let data = event.event.data.to_string();
        assert!(
            !data.contains("latitude") && !data.contains("distance"),
            "{data}"
        );
    }
    Ok(())
}

async fn a_requested_visit_falls_overdue_once_across_a_restart_and_the_next_visit_meets_it(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let elder = app.register("r-wang", wang()).await?.id;
    let ask = |request_id: &str, elder: &str, hours| pb::RequestVisitRequest {
        request_id: request_id.into(),
        elder_id: elder.into(),
        hours,
        note: "暴雨".into(),
        actor: "worker-li".into(),
    };
    for (request, code, field) in [
        (ask("rv-x", &elder, 721), Code::InvalidArgument, "hours"),
        (ask("", &elder, 0), Code::InvalidArgument, "request_id"),
        (ask("rv-y", "", 0), Code::InvalidArgument, "elder_id"),
        (ask("rv-z", "elder-unknown", 0), Code::NotFound, ""),
    ] {
        let status = app.care.request_visit(request).await.err();
        let status = status.map(|s| (s.code(), s.message().to_owned()));
        let (got, message) = status.unwrap_or((Code::Ok, String::new()));
        assert_eq!(got, code, "{field}: {message}");
        assert!(message.contains(field), "{message}");
    }
    let raised = app
        .care
        .request_visit(ask("rv-1", &elder, 0))
        .await?
        .into_inner();
    let request = raised.request.unwrap_or_default();
    assert!(!raised.duplicate);
    let again = app
        .care
        .request_visit(ask("rv-1", &elder, 0))
        .await?
        .into_inner();
    assert!(again.duplicate);
    assert_eq!(again.request.unwrap_or_default().id, request.id);
    let due = crate::support::instant(request.due_at.as_ref());
    assert_eq!(
        due,
        app.now() + chrono::Duration::hours(24),
        "the policy's 24 hours"
    );

    app.clock.advance(chrono::Duration::hours(23));
    assert_eq!(app.sweeper.sweep_once().await?.done, 0, "not due yet");
    app.clock.advance(chrono::Duration::hours(2));
    assert_eq!(app.sweeper.sweep_once().await?.done, 1, "overdue");
    app.restart().await?;
    assert_eq!(
        app.sweeper.sweep_once().await?.done,
        0,
        "once, across a restart"
    );
    let open = visit_requests(&mut app, true).await?;
    assert_eq!(open.len(), 1);
    assert!(open[0].overdue_at.is_some());
    let made = app.visit("visit-1", &elder, pb::Wellbeing::Good).await?;
    let open = visit_requests(&mut app, true).await?;
    assert!(open.is_empty(), "the visit met it");

    // registered, raised, overdue, recorded, met
    let events = app.wait_for_events(5).await?;
    assert_eq!(of_type(&events, VisitRequestRaised::TYPE).len(), 1);
    let overdue = of_type(&events, VisitRequestOverdue::TYPE);
    assert_eq!(overdue.len(), 1, "one event per miss");
    let escalated: VisitRequestOverdue = overdue[0].event.data_as()?;
    assert_eq!(escalated.grid_id, "xinyuan-1");
    assert_eq!(escalated.request_id, request.id);
    let met = of_type(&events, VisitRequestMet::TYPE);
    assert_eq!(met.len(), 1);
    let met: VisitRequestMet = met[0].event.data_as()?;
    assert_eq!(met.visit_id, made.visit.unwrap_or_default().id);
    assert!(met.late);
    Ok(())
}

const COMPLAINTS: StreamSpec = StreamSpec {
    name: complaints::STREAM,
    subjects: complaints::SUBJECTS,
};

fn submitted(
    elder_id: &str,
    complaint_id: &str,
    channel: complaints::Channel,
) -> anyhow::Result<CloudEvent> {
    let now = Utc::now();
    let resolved = shequ_tests::fixtures::resolved(
        complaint_id,
        complaints::Category::ElderlyDisabilityServices,
        channel,
        now,
    );
    let mut complaint = resolved.complaint;
    complaint.status = complaints::Status::Submitted;
    complaint.elder_id = Some(elder_id.into());
    let data = complaints::Submitted {
        complaint,
        classified_by: "caller".into(),
        classification_pending: false,
        submitted_at: now,
        response_due_at: now,
        resolution_due_at: now,
        reporter_phone_masked: None,
        merchant_check: None,
        possible_duplicates: Vec::new(),
    };
    Ok(new_event(complaints::SOURCE, complaint_id, now, &data)?)
}

async fn a_complaint_about_an_elder_requests_one_visit_however_often_it_is_delivered(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let elder = app.register("r-wang", wang()).await?.id;
    let client = async_nats::connect(app.nats.url()).await?;
    let js = jetstream(client, Duration::from_secs(5));
    ensure_stream(&js, COMPLAINTS).await?;
    let first = submitted(&elder, "complaint-1", complaints::Channel::Hotline)?;
    let twin = CloudEvent {
        id: uuid::Uuid::now_v7().to_string(),
        ..first.clone()
    };
    // Filed by this service from a visit: that visit was made, nothing to request.
    let own = submitted(&elder, "complaint-2", complaints::Channel::CareVisit)?;
    // A marker after them: once it is in the timeline, all were handled.
    let mut marker = shequ_tests::fixtures::resolved(
        "complaint-marker",
        complaints::Category::ElderlyDisabilityServices,
        complaints::Channel::Hotline,
        Utc::now(),
    );
    marker.complaint.elder_id = Some(elder.clone());
    let marker = new_event(complaints::SOURCE, "complaint-marker", Utc::now(), &marker)?;
    for event in [&first, &first, &twin, &own, &marker] {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", uuid::Uuid::now_v7().to_string().as_str());
        js.publish_with_headers(
            event.event_type.clone(),
            headers,
            serde_json::to_vec(event)?.into(),
        )
        .await?
        .await?;
    }
    eventually(Duration::from_secs(20), || {
        let mut care = app.care.clone();
        let elder = elder.clone();
        async move {
            let timeline = care
                .get_timeline(pb::GetTimelineRequest { elder_id: elder })
                .await?
                .into_inner()
                .entries;
            anyhow::ensure!(
                timeline.iter().any(|e| e.reference == "complaint-marker"),
                "the marker is not applied yet"
            );
            Ok(())
        }
    })
    .await?;
    let requests = visit_requests(&mut app, false).await?;
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].reason, pb::VisitRequestReason::Complaint as i32);
    assert_eq!(requests[0].reference, "complaint-1");
    assert_eq!(requests[0].raised_by, "pensioner-care");
    Ok(())
}
