//! Pensioner care with its neighbours, in-process on one real NATS: a concern
//! visit files exactly one complaint even across a complaints-service outage and
//! retries, in the trace of the request that recorded the visit; a meal booking
//! picks the nearest eligible merchant, which the alliance then credits for the
//! discounted meal, once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use shequ_chassis::clock::{Clock, ManualClock, SystemClock};
use shequ_chassis::config::CommonConfig;
use shequ_chassis::trace::TraceContext;
use shequ_proto::alliance::v1 as alliance;
use shequ_proto::care::v1 as care;
use shequ_proto::common::v1 as common;
use shequ_proto::complaints::v1 as complaints;
use shequ_tests::service::TestService;
use shequ_tests::{NatsServer, eventually, free_port, stream_events};
use tonic::transport::Channel;

type Care = care::care_service_client::CareServiceClient<Channel>;
type Merchants = alliance::merchant_service_client::MerchantServiceClient<Channel>;
type Complaints = complaints::complaint_service_client::ComplaintServiceClient<Channel>;

fn common(nats: &NatsServer, dir: &std::path::Path, addr: SocketAddr) -> CommonConfig {
    let mut common = CommonConfig::new(nats.url(), dir);
    common.grpc_addr = Some(addr);
    common
}

fn any_port() -> SocketAddr {
    ([127, 0, 0, 1], 0).into()
}

/// Starts the complaints service on `addr` with the grid the elders live in.
async fn start_complaints(
    nats: &NatsServer,
    dir: &std::path::Path,
    addr: SocketAddr,
) -> anyhow::Result<(Complaints, TestService<shequ_complaints::Application>)> {
    let service = TestService::start(
        shequ_complaints::Config::new(common(nats, &dir.join("complaints"), addr)),
        Arc::new(SystemClock),
    )
    .await?;
    let mut organisation = complaints::organisation_service_client::OrganisationServiceClient::new(
        service.channel().await?,
    );
    organisation
        .load_organisation(complaints::LoadOrganisationRequest {
            organisation: Some(complaints::Organisation {
                district_handler: "jinshui-office".into(),
                communities: vec![complaints::Community {
                    id: "tongxin".into(),
                    name: "通信花园社区".into(),
                    committee_handler: "tongxin-committee".into(),
                    grids: vec![complaints::Grid {
                        id: "tongxin-1".into(),
                        name: "第一网格".into(),
                        worker: "worker-sun".into(),
                        branch_handler: "branch-zhang".into(),
                        building_ids: vec![],
                    }],
                }],
            }),
        })
        .await?;
    Ok((Complaints::new(service.channel().await?), service))
}

/// Starts merchant-alliance on a free port.
async fn start_alliance(
    nats: &NatsServer,
    dir: &std::path::Path,
) -> anyhow::Result<(
    Merchants,
    SocketAddr,
    TestService<shequ_merchant_alliance::Application>,
)> {
    let service = TestService::start(
        shequ_merchant_alliance::Config::new(common(nats, &dir.join("alliance"), any_port())),
        Arc::new(SystemClock),
    )
    .await?;
    Ok((
        Merchants::new(service.channel().await?),
        service.grpc_addr(),
        service,
    ))
}

/// Starts pensioner-care talking to the given neighbours, on a manual clock.
async fn start_care(
    nats: &NatsServer,
    dir: &std::path::Path,
    complaints_url: String,
    alliance_url: String,
    clock: Arc<ManualClock>,
) -> anyhow::Result<(
    Care,
    shequ_pensioner_care::FilingWorker,
    TestService<shequ_pensioner_care::Application>,
)> {
    let mut config = shequ_pensioner_care::Config::new(common(nats, &dir.join("care"), any_port()));
    config.complaints_url = complaints_url;
    config.alliance_url = alliance_url;
    config.call_timeout_ms = 500;
    let (service, worker) = TestService::start_with(
        config,
        clock,
        shequ_pensioner_care::Application::filing_worker,
    )
    .await?;
    Ok((Care::new(service.channel().await?), worker, service))
}

/// Lives 80 m south of the point the merchants are placed around (GCJ-02).
fn elder(name: &str) -> care::ElderDetails {
    care::ElderDetails {
        name: name.into(),
        birth_date: "1941-05-20".into(),
        gender: care::Gender::Female as i32,
        grid_id: "tongxin-1".into(),
        address: "通信花园 3 号楼 2 单元 401".into(),
        location: Some(point(-80.0)),
        living_situation: care::LivingSituation::Alone as i32,
        health_notes: "高血压".into(),
        consents_to_visits: true,
        ..Default::default()
    }
}

/// A GCJ-02 point `metres_north` of 34.7700, 113.6700.
fn point(metres_north: f64) -> common::GeoPoint {
    common::GeoPoint {
        latitude: 34.77 + metres_north / 111_195.0,
        longitude: 113.67,
        datum: common::Datum::Gcj02 as i32,
    }
}

async fn register_elder(care: &mut Care, name: &str) -> anyhow::Result<String> {
    let response = care
        .register_elder(care::RegisterElderRequest {
            request_id: format!("elder-{name}"),
            details: Some(elder(name)),
            actor: "staff-1".into(),
        })
        .await?;
    Ok(response.into_inner().elder.unwrap_or_default().id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concern_visit_files_exactly_one_complaint_across_a_complaints_outage()
-> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let dir = tempfile::tempdir()?;
    let complaints_addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
    let clock = ManualClock::new(Utc::now());
    let (mut care, worker, _care_stop) = start_care(
        &nats,
        dir.path(),
        format!("http://{complaints_addr}"),
        format!("http://127.0.0.1:{}", free_port()?),
        clock.clone(),
    )
    .await?;
    let elder_id = register_elder(&mut care, "李秀英").await?;
    let visit = care::RecordVisitRequest {
        request_id: "visit-1".into(),
        elder_id: elder_id.clone(),
        // Left out: the staff member recording it is the visitor.
        visitor: String::new(),
        kind: care::VisitKind::HomeVisit as i32,
        wellbeing: care::Wellbeing::Concern as i32,
        needs: vec!["屋顶漏水".into(), "需要助餐".into()],
        notes: "老人说晚上睡不好".into(),
        ..Default::default()
    };

    // The complaints service is down: the visit is saved, its complaint waits.
    let recorded = care
        .record_visit(visit.clone())
        .await?
        .into_inner()
        .visit
        .unwrap_or_default();
    assert_eq!(recorded.filing(), care::FilingStatus::Pending);
    worker.sweep_once().await?;
    clock.advance(chrono::Duration::minutes(10));
    worker.sweep_once().await?;
    let waiting = care.record_visit(visit.clone()).await?.into_inner();
    assert!(waiting.duplicate);
    let waiting = waiting.visit.unwrap_or_default();
    assert_eq!(
        waiting.filing(),
        care::FilingStatus::Pending,
        "still waiting: {}",
        waiting.filing_error
    );
    assert!(
        !waiting.filing_error.is_empty(),
        "the failed attempts are recorded"
    );

    // It comes back; the filing is retried (here by hand and by the worker at once).
    let (mut complaints, _complaints_stop) =
        start_complaints(&nats, dir.path(), complaints_addr).await?;
    clock.advance(chrono::Duration::minutes(10));
    let (first, second) = tokio::join!(worker.sweep_once(), worker.sweep_once());
    first?;
    second?;
    let filed = eventually(Duration::from_secs(20), || {
        let mut care = care.clone();
        let visit = visit.clone();
        async move {
            let visit = care
                .record_visit(visit)
                .await?
                .into_inner()
                .visit
                .unwrap_or_default();
            anyhow::ensure!(
                visit.filing() == care::FilingStatus::Filed,
                "filing {:?}",
                visit.filing()
            );
            Ok(visit)
        }
    })
    .await?;

    let listed = complaints
        .list_complaints(complaints::ListComplaintsRequest::default())
        .await?
        .into_inner()
        .complaints;
    assert_eq!(listed.len(), 1, "exactly one complaint for the visit");
    let complaint = &listed[0];
    assert_eq!(
        filed.complaint_id, complaint.id,
        "the visit keeps the complaint id"
    );
    assert_eq!(complaint.channel(), complaints::Channel::CareVisit);
    assert_eq!(
        complaint.category(),
        complaints::Category::ElderlyDisabilityServices
    );
    assert_eq!(complaint.elder_id, elder_id);
    assert!(
        !complaint.text.contains("李秀英"),
        "the complaint text names no elder: {}",
        complaint.text
    );

    // The complaint's outcome reaches the elder's timeline.
    complaints
        .accept_complaint(complaints::AcceptComplaintRequest {
            complaint_id: complaint.id.clone(),
            actor: "worker-sun".into(),
            ..Default::default()
        })
        .await?;
    complaints
        .resolve_complaint(complaints::ResolveComplaintRequest {
            complaint_id: complaint.id.clone(),
            actor: "worker-sun".into(),
            note: "已维修屋顶".into(),
            ..Default::default()
        })
        .await?;
    let timeline = eventually(Duration::from_secs(20), || {
        let mut care = care.clone();
        let elder_id = elder_id.clone();
        async move {
            let entries = care
                .get_timeline(care::GetTimelineRequest { elder_id })
                .await?
                .into_inner()
                .entries;
            anyhow::ensure!(
                entries.iter().any(|e| e.kind == "complaint_resolved"),
                "not yet resolved in the timeline"
            );
            Ok(entries)
        }
    })
    .await?;
    let filed_entries = timeline
        .iter()
        .filter(|e| e.kind == "complaint_filed")
        .count();
    assert_eq!(filed_entries, 1);
    Ok(())
}

/// The `traceparent` of the one event of `event_type` in `stream`, once it is there.
async fn traceparent_of(
    nats: &NatsServer,
    stream: &str,
    event_type: &str,
) -> anyhow::Result<TraceContext> {
    eventually(Duration::from_secs(20), || async {
        let found: Vec<_> = stream_events(&nats.url(), stream)
            .await?
            .into_iter()
            .filter(|e| e.event.event_type == event_type)
            .collect();
        anyhow::ensure!(found.len() == 1, "{} {event_type} events", found.len());
        let header = found[0]
            .traceparent
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("{event_type} has no traceparent"))?;
        TraceContext::parse(header)
            .ok_or_else(|| anyhow::anyhow!("{event_type}: malformed traceparent {header:?}"))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_complaint_filed_from_a_visit_continues_the_visits_trace() -> anyhow::Result<()> {
    // Arrange
    const CALLER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    let nats = NatsServer::start().await?;
    let dir = tempfile::tempdir()?;
    let complaints_addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
    let (_complaints, _complaints_stop) =
        start_complaints(&nats, dir.path(), complaints_addr).await?;
    let (mut care, _worker, _care_stop) = start_care(
        &nats,
        dir.path(),
        format!("http://{complaints_addr}"),
        format!("http://127.0.0.1:{}", free_port()?),
        ManualClock::new(Utc::now()),
    )
    .await?;
    let elder_id = register_elder(&mut care, "王桂兰").await?;
    let mut visit = tonic::Request::new(care::RecordVisitRequest {
        request_id: "visit-1".into(),
        elder_id,
        // Left out: the staff member recording it is the visitor.
        visitor: String::new(),
        kind: care::VisitKind::HomeVisit as i32,
        wellbeing: care::Wellbeing::Concern as i32,
        needs: vec!["屋顶漏水".into()],
        ..Default::default()
    });
    visit.metadata_mut().insert("traceparent", CALLER.parse()?);

    // Act: the visit is recorded, and the worker files its complaint later.
    care.record_visit(visit).await?;

    // Assert
    let recorded = traceparent_of(&nats, "CARE", "shequ.care.visit.recorded.v1").await?;
    let submitted = traceparent_of(
        &nats,
        "COMPLAINTS",
        "shequ.complaints.complaint.submitted.v1",
    )
    .await?;
    assert_eq!(recorded.trace_id_hex(), TRACE, "the visit's event");
    assert_eq!(
        submitted.trace_id_hex(),
        TRACE,
        "the complaint filed for it, through the worker and gRPC"
    );
    assert_ne!(submitted.parent_id, recorded.parent_id, "from another span");
    Ok(())
}

async fn register_merchant(
    merchants: &mut Merchants,
    name: &str,
    metres_north: f64,
    tags: &[&str],
) -> anyhow::Result<String> {
    let response = merchants
        .register_merchant(alliance::RegisterMerchantRequest {
            request_id: format!("merchant-{name}"),
            details: Some(alliance::MerchantDetails {
                name: name.into(),
                category: alliance::Category::Dining as i32,
                service_tags: tags.iter().map(|t| t.to_string()).collect(),
                location: Some(point(metres_north)),
                grid_id: "tongxin-1".into(),
                // Open round the clock: the booking below is an hour from now.
                opening_hours: vec![alliance::OpeningHours {
                    days: (1..=7).collect(),
                    opens: "00:00".into(),
                    closes: "24:00".into(),
                }],
                ..Default::default()
            }),
            actor: "operator-1".into(),
        })
        .await?;
    Ok(response.into_inner().merchant.unwrap_or_default().id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meal_booking_picks_the_nearest_elder_meal_merchant_and_credits_it_once_served()
-> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let dir = tempfile::tempdir()?;
    let (mut merchants, alliance_addr, _alliance_stop) = start_alliance(&nats, dir.path()).await?;
    let clock = ManualClock::new(Utc::now());
    let (mut care, _worker, _care_stop) = start_care(
        &nats,
        dir.path(),
        format!("http://127.0.0.1:{}", free_port()?),
        format!("http://{alliance_addr}"),
        clock.clone(),
    )
    .await?;
    // Nearest, but no elder meals; then the one to book; a closer one suspended;
    // one with elder meals beyond a 15-minute walk.
    register_merchant(&mut merchants, "面馆", 0.0, &[]).await?;
    let canteen = register_merchant(&mut merchants, "助老食堂", 300.0, &["elder_meals"]).await?;
    let suspended =
        register_merchant(&mut merchants, "暂停的食堂", 100.0, &["elder_meals"]).await?;
    register_merchant(&mut merchants, "远处食堂", 1500.0, &["elder_meals"]).await?;
    merchants
        .suspend_merchant(alliance::SuspendMerchantRequest {
            merchant_id: suspended,
            reason: "整改".into(),
            actor: "operator-1".into(),
        })
        .await?;
    let elder_id = register_elder(&mut care, "王桂兰").await?;
    let booking = care::BookServiceRequest {
        request_id: "meal-1".into(),
        elder_id,
        service: care::Service::MealAssistance as i32,
        scheduled_for: Some(prost_types::Timestamp {
            seconds: clock.now().timestamp() + 3600,
            nanos: 0,
        }),
        actor: "staff-1".into(),
    };

    let booked = care.book_service(booking.clone()).await?.into_inner();
    let again = care.book_service(booking).await?.into_inner();

    let booked = booked.booking.unwrap_or_default();
    assert_eq!(
        booked.status(),
        care::BookingStatus::Booked,
        "{}",
        booked.note
    );
    assert_eq!(booked.merchant_id, canteen);
    assert!(
        (booked.distance_metres - 380.0).abs() < 20.0,
        "{}",
        booked.distance_metres
    );
    assert!(again.duplicate);
    for key in ["served-1", "served-1"] {
        care.mark_booking_served(care::MarkBookingServedRequest {
            request_id: key.into(),
            booking_id: booked.id.clone(),
            ..Default::default()
        })
        .await?;
    }
    let ledger = eventually(Duration::from_secs(20), || {
        let mut merchants = merchants.clone();
        let canteen = canteen.clone();
        async move {
            let ledger = merchants
                .get_credit_ledger(alliance::GetCreditLedgerRequest {
                    merchant_id: canteen,
                })
                .await?
                .into_inner();
            anyhow::ensure!(!ledger.entries.is_empty(), "not credited yet");
            Ok(ledger)
        }
    })
    .await?;
    assert_eq!(ledger.entries.len(), 1, "credited once for one booking");
    assert_eq!(ledger.entries[0].reason, "elder_meal_discount");
    assert_eq!(ledger.entries[0].reference, booked.id);
    assert_eq!(ledger.score, 101);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_community_s_care_figures_follow_its_grids_and_a_hotline_complaint_about_an_elder_requests_a_visit()
-> anyhow::Result<()> {
    // Arrange: complaints (with the organisation) and pensioner-care, one NATS.
    let nats = NatsServer::start().await?;
    let dir = tempfile::tempdir()?;
    let complaints_addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
    let (mut complaints, _complaints_stop) =
        start_complaints(&nats, dir.path(), complaints_addr).await?;
    let (mut care, worker, _care_stop) = start_care(
        &nats,
        dir.path(),
        format!("http://{complaints_addr}"),
        format!("http://127.0.0.1:{}", free_port()?),
        ManualClock::new(Utc::now()),
    )
    .await?;
    let elder_id = register_elder(&mut care, "王桂兰").await?;
    care.register_elder(care::RegisterElderRequest {
        request_id: "elder-elsewhere".into(),
        details: Some(care::ElderDetails {
            grid_id: "yaozhai-1".into(),
            ..elder("刘凤英")
        }),
        actor: "staff-1".into(),
    })
    .await?;
    care.record_visit(care::RecordVisitRequest {
        request_id: "visit-1".into(),
        elder_id: elder_id.clone(),
        kind: care::VisitKind::HomeVisit as i32,
        wellbeing: care::Wellbeing::Concern as i32,
        needs: vec!["屋顶漏水".into()],
        ..Default::default()
    })
    .await?;
    worker.sweep_once().await?;

    // Act: the community's figures; a resident calls the hotline about her.
    let figures = care
        .get_care_figures(care::GetCareFiguresRequest {
            community_id: "tongxin".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .figures
        .unwrap_or_default();
    let unknown = care
        .get_care_figures(care::GetCareFiguresRequest {
            community_id: "nowhere".into(),
            ..Default::default()
        })
        .await
        .err()
        .map(|status| status.code());
    complaints
        .submit_complaint(complaints::SubmitComplaintRequest {
            request_id: "hotline-1".into(),
            text: "邻居反映王桂兰老人几天没出门".into(),
            channel: complaints::Channel::Hotline as i32,
            category: complaints::Category::ElderlyDisabilityServices as i32,
            grid_id: "tongxin-1".into(),
            elder_id: elder_id.clone(),
            ..Default::default()
        })
        .await?;

    // Assert
    assert_eq!(figures.scope, "community:tongxin");
    assert_eq!(
        figures.elders.unwrap_or_default().high,
        1,
        "only the community's grids: the elder elsewhere is not counted"
    );
    assert_eq!(figures.concern_visits, 1);
    let filed = figures.complaints.unwrap_or_default();
    assert_eq!((filed.filed, filed.open), (1, 1), "filed, no outcome yet");
    assert_eq!(unknown, Some(tonic::Code::NotFound));
    let requests = eventually(Duration::from_secs(20), || {
        let mut care = care.clone();
        async move {
            let requests = care
                .list_visit_requests(care::ListVisitRequestsRequest::default())
                .await?
                .into_inner()
                .requests;
            anyhow::ensure!(!requests.is_empty(), "no visit requested yet");
            Ok(requests)
        }
    })
    .await?;
    assert_eq!(
        requests.len(),
        1,
        "the hotline's, not the one filed from the visit"
    );
    assert_eq!(requests[0].elder_id, elder_id);
    assert_eq!(
        requests[0].reason,
        care::VisitRequestReason::Complaint as i32
    );
    Ok(())
}
