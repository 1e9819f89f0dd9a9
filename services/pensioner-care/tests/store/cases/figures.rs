//! The care figures from a known set of elders, visits, pairings and
//! outcomes; visit evidence; visits requested after a major event.

use chrono::{Duration, Utc};
use shequ_chassis::geo::{Location, Point};
use shequ_chassis::inbox::{Once, Outcome};
use shequ_pensioner_care::domain::elder::LivingSituation;
use shequ_pensioner_care::domain::figures::{self, ByRisk, ComplaintsFiled, Month};
use shequ_pensioner_care::domain::requests::{NewVisitRequest, VisitRequestReason};
use shequ_pensioner_care::domain::risk::RiskLevel;
use shequ_pensioner_care::domain::timeline;
use shequ_pensioner_care::domain::visits::{VisitKind, Visitor, Wellbeing};
use shequ_pensioner_care::domain::{ComplaintId, ElderId, GridId};
use shequ_pensioner_care::store::Care;

use super::{event, outbox_of, refused_naming_request_id, registered, volunteer};
use crate::{Harness, days, details, key, request, visit};

const NOVEMBER: Month = Month {
    year: 2026,
    month: 11,
};

/// The elders' home (as [`details`] places it) in WGS-84, and a point
/// 0.01° of latitude (about 1.1 km) north of it.
fn home_and_away() -> (Point, Point) {
    let home = details("x", "1941-05-03", LivingSituation::Alone, true)
        .location
        .map(Location::to_wgs84)
        .unwrap_or(Point {
            latitude: 0.0,
            longitude: 0.0,
        });
    let away = Point {
        latitude: home.latitude + 0.01,
        longitude: home.longitude,
    };
    (home, away)
}

async fn registered_as(
    h: &Harness,
    key: &str,
    birth: &str,
    living: LivingSituation,
    consents: bool,
) -> anyhow::Result<(ElderId, RiskLevel)> {
    let (elder, _) = h
        .store
        .register_elder(
            &crate::key(key),
            details("老人", birth, living, consents),
            "operator-1",
        )
        .await?;
    Ok((elder.id, elder.assessment.level))
}

pub(crate) async fn the_care_figures_of_a_month_follow_its_elders_visits_pairings_and_outcomes(
    h: Harness,
) -> anyhow::Result<()> {
    // Registered on Monday 2 November: a weekly one, a monthly one, and one
    // who does not consent to visits.
    let weekly = registered(&h, "r-1").await?;
    let (_monthly, risk) =
        registered_as(&h, "r-2", "1960-01-01", LivingSituation::WithFamily, true).await?;
    assert_eq!(risk, RiskLevel::Low, "the case needs a monthly elder");
    let (_refusing, risk) =
        registered_as(&h, "r-3", "1941-05-03", LivingSituation::Alone, false).await?;
    assert_eq!(risk, RiskLevel::High);
    let v1 = volunteer(&h, "v-1").await?;
    let _v2 = volunteer(&h, "v-2").await?;
    h.store.pair(&v1, &weekly, "operator-1", None).await?;

    let (_, away) = home_and_away();
    // 3 November: the volunteer's home visit, recorded 1.1 km from home.
    h.clock.advance(days(1));
    let mut by_volunteer = visit(&weekly, h.store.now(), Wellbeing::Good);
    by_volunteer.visitor = Visitor::Volunteer(v1.clone());
    by_volunteer.recorded_at = Some(away);
    h.store.record_visit(&key("visit-1"), by_volunteer).await?;
    // 5 November: staff find a concern; its complaint is filed and resolved.
    h.clock.advance(days(2));
    let (concern, _) = h
        .store
        .record_visit(
            &key("visit-2"),
            visit(&weekly, h.store.now(), Wellbeing::Concern),
        )
        .await?;
    let filing = h
        .store
        .due_filing(&concern.id, h.store.now())
        .await?
        .ok_or_else(|| anyhow::anyhow!("the concern files"))?;
    let complaint = ComplaintId::from_stored("complaint-1");
    h.store.filing_done(&filing, &complaint).await?;
    let resolved = timeline::complaint_outcome(
        &weekly,
        h.store.now(),
        "complaint_resolved",
        &complaint,
        "resolved",
        "1",
    );
    h.store
        .note_complaint_outcome(
            Once::new("care-test", &event("ev-1"), Utc::now()),
            Some(resolved),
        )
        .await?;
    // 14 November: a phone call, nine days after the visit before: late.
    h.clock.advance(days(9));
    let mut call = visit(&weekly, h.store.now(), Wellbeing::Good);
    call.kind = VisitKind::PhoneCall;
    h.store.record_visit(&key("visit-3"), call).await?;

    let now = h.store.now();
    let facts = h.store.care_facts(None).await?;
    let f = figures::figures(&facts, NOVEMBER, now);
    assert_eq!(f.as_of, now, "the current month is taken now");
    assert_eq!(
        f.elders,
        ByRisk {
            high: 2,
            medium: 0,
            low: 1
        }
    );
    assert_eq!(
        (f.due, f.due_visited),
        (1, 1),
        "the weekly elder was due and visited; the monthly one is first due in December"
    );
    assert_eq!(f.monthly_visit_rate(), Some(1.0));
    assert_eq!((f.visits, f.home_visits, f.phone_calls), (3, 2, 1));
    assert_eq!(f.visits_on_time, 2);
    assert_eq!(f.far_from_home, 1);
    assert_eq!(f.overdue.under_7_days + f.overdue.from_7_to_30_days, 0);
    assert_eq!(
        f.unpaired,
        ByRisk {
            high: 0,
            medium: 0,
            low: 1
        },
        "the monthly elder; the refusing one cannot be paired"
    );
    assert_eq!(
        (f.volunteers, f.paired_elders, f.volunteers_without_elders),
        (2, 1, 1)
    );
    assert_eq!(f.volunteer_visits, 1);
    assert_eq!((f.concern_visits, f.urgent_visits), (1, 0));
    assert_eq!(
        f.complaints,
        ComplaintsFiled {
            filed: 1,
            resolved: 1,
            ..ComplaintsFiled::default()
        }
    );

    // A month later the monthly elder is overdue, and December counts them due.
    h.clock.advance(days(30));
    let december = Month::parse("month", "2026-12")?;
    let f = figures::figures(&h.store.care_facts(None).await?, december, h.store.now());
    assert_eq!(f.due, 2);
    assert_eq!(f.due_visited, 0);
    assert_eq!(
        f.overdue.from_7_to_30_days, 2,
        "both elders, a week or more late"
    );

    // Another grid's figures hold none of them.
    let other = h
        .store
        .care_facts(Some(vec![GridId::from_stored("elsewhere")]))
        .await?;
    assert!(other.elders.is_empty() && other.visits.is_empty() && other.volunteers.is_empty());
    let own = h
        .store
        .care_facts(Some(vec![GridId::from_stored("xinyuan-1")]))
        .await?;
    assert_eq!((own.elders.len(), own.visits.len()), (3, 3));
    Ok(())
}

pub(crate) async fn a_home_visit_far_from_home_is_flagged_and_a_phone_call_never(
    h: Harness,
) -> anyhow::Result<()> {
    let elder = registered(&h, "r-1").await?;
    let (home, away) = home_and_away();
    let record = |id: &str, kind: VisitKind, at: Option<Point>| {
        let mut v = visit(&elder, h.store.now(), Wellbeing::Good);
        v.kind = kind;
        v.recorded_at = at;
        let store = h.store.clone();
        let id = key(id);
        async move { store.record_visit(&id, v).await.map(|(v, _)| v) }
    };
    let at_home = record("v-1", VisitKind::HomeVisit, Some(home)).await?;
    assert_eq!(at_home.distance_from_home_metres, Some(0.0));
    assert!(!at_home.far_from_home);
    let far = record("v-2", VisitKind::HomeVisit, Some(away)).await?;
    let distance = far.distance_from_home_metres.unwrap_or_default();
    assert!((1100.0..1125.0).contains(&distance), "{distance}");
    assert!(far.far_from_home);
    assert_eq!(h.store.visit(&far.id).await?, far, "as answered");
    let call = record("v-3", VisitKind::PhoneCall, Some(away)).await?;
    assert!(!call.far_from_home, "a phone call is never far from home");
    let unknown = record("v-4", VisitKind::HomeVisit, None).await?;
    assert_eq!(unknown.distance_from_home_metres, None);
    assert!(!unknown.far_from_home);

    assert_eq!(
        h.count(
            "SELECT COUNT(*) FROM outbox WHERE subject = 'shequ.care.visit.recorded.v1' \
             AND payload LIKE '%\"far_from_home\":true%'"
        )
        .await?,
        1,
        "the flag, on the far visit's event only"
    );
    assert_eq!(
        h.count("SELECT COUNT(*) FROM outbox WHERE payload LIKE '%latitude%' OR payload LIKE '%distance%'")
            .await?,
        0,
        "no place or distance leaves the service"
    );
    let timeline = h.store.timeline(&elder).await?;
    let flagged: Vec<_> = timeline
        .iter()
        .filter(|e| e.summary.contains("recorded far from home"))
        .map(|e| e.reference.clone())
        .collect();
    assert_eq!(flagged, [far.id.to_string()]);
    Ok(())
}

fn staff_request(elder: &ElderId, hours: u32) -> NewVisitRequest {
    NewVisitRequest {
        elder_id: elder.clone(),
        reason: VisitRequestReason::Operator,
        reference: None,
        note: Some("暴雨".into()),
        raised_by: "worker-li".into(),
        hours,
    }
}

pub(crate) async fn a_requested_visit_is_met_by_the_next_visit_or_found_overdue_once(
    h: Harness,
) -> anyhow::Result<()> {
    let elder = registered(&h, "r-1").await?;
    let raised_at = h.store.now();
    let first = request("rv-1", "RequestVisit 暴雨");
    let (raised, duplicate) = h
        .store
        .request_visit(&first, staff_request(&elder, 24))
        .await?;
    assert!(!duplicate);
    assert_eq!(raised.due_at, raised_at + Duration::hours(24));
    assert_eq!(raised.grid_id, GridId::from_stored("xinyuan-1"));
    let (again, duplicate) = h
        .store
        .request_visit(&first, staff_request(&elder, 24))
        .await?;
    assert!(duplicate);
    assert_eq!(again, raised, "answered as the first time");
    let other = h
        .store
        .request_visit(
            &request("rv-1", "RequestVisit 火灾"),
            staff_request(&elder, 24),
        )
        .await;
    assert!(refused_naming_request_id(&other));
    assert_eq!(
        outbox_of(&h, "shequ.care.visit_request.raised.v1").await?,
        1
    );

    assert!(
        h.store
            .visit_requests_owed(h.store.now(), None, 10)
            .await?
            .is_empty()
    );
    h.clock.advance(Duration::hours(25));
    let now = h.store.now();
    let owed = h.store.visit_requests_owed(now, None, 10).await?;
    assert_eq!(owed.len(), 1);
    assert_eq!(owed[0].id(), raised.id.as_str());
    assert!(h.store.escalate_visit_request(&raised.id, now).await?);
    assert!(
        !h.store.escalate_visit_request(&raised.id, now).await?,
        "once"
    );
    assert!(h.store.visit_requests_owed(now, None, 10).await?.is_empty());
    assert_eq!(
        outbox_of(&h, "shequ.care.visit_request.overdue.v1").await?,
        1
    );
    let (open, _) = h.store.visit_requests(None, true, 10, 0).await?;
    assert_eq!(open.len(), 1, "overdue is still open until a visit");
    assert_eq!(open[0].overdue_at, Some(now));

    // A visit recorded now but made before the event does not meet it.
    h.store
        .record_visit(
            &key("visit-0"),
            visit(&elder, raised_at - Duration::hours(1), Wellbeing::Good),
        )
        .await?;
    assert_eq!(h.store.visit_requests(None, true, 10, 0).await?.0.len(), 1);
    let (made, _) = h
        .store
        .record_visit(
            &key("visit-1"),
            visit(&elder, h.store.now(), Wellbeing::Good),
        )
        .await?;
    let (open, _) = h.store.visit_requests(None, true, 10, 0).await?;
    assert!(open.is_empty());
    let (all, _) = h
        .store
        .visit_requests(Some(&GridId::from_stored("xinyuan-1")), false, 10, 0)
        .await?;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].met_by, Some(made.id.clone()));
    assert_eq!(
        h.count(
            "SELECT COUNT(*) FROM outbox WHERE subject = 'shequ.care.visit_request.met.v1' \
             AND payload LIKE '%\"late\":true%'"
        )
        .await?,
        1
    );
    assert!(
        !h.store
            .escalate_visit_request(&raised.id, h.store.now())
            .await?
    );

    // Met in time: never overdue.
    let (soon, _) = h
        .store
        .request_visit(
            &request("rv-2", "RequestVisit 2h"),
            staff_request(&elder, 2),
        )
        .await?;
    h.clock.advance(Duration::hours(1));
    h.store
        .record_visit(
            &key("visit-2"),
            visit(&elder, h.store.now(), Wellbeing::Good),
        )
        .await?;
    h.clock.advance(Duration::hours(3));
    assert!(
        h.store
            .visit_requests_owed(h.store.now(), None, 10)
            .await?
            .is_empty()
    );
    assert!(
        !h.store
            .escalate_visit_request(&soon.id, h.store.now())
            .await?
    );
    assert_eq!(outbox_of(&h, "shequ.care.visit_request.met.v1").await?, 2);
    assert_eq!(
        outbox_of(&h, "shequ.care.visit_request.overdue.v1").await?,
        1
    );
    Ok(())
}

pub(crate) async fn an_urgent_visit_and_a_complaint_about_an_elder_each_request_one_visit(
    h: Harness,
) -> anyhow::Result<()> {
    let elder = registered(&h, "r-1").await?;
    let (urgent, _) = h
        .store
        .record_visit(
            &key("visit-1"),
            visit(&elder, h.store.now(), Wellbeing::Urgent),
        )
        .await?;
    let (requests, _) = h.store.visit_requests(None, true, 10, 0).await?;
    assert_eq!(
        requests.len(),
        1,
        "an urgent visit does not meet its own follow-up"
    );
    assert_eq!(requests[0].reason, VisitRequestReason::UrgentVisit);
    assert_eq!(requests[0].reference.as_deref(), Some(urgent.id.as_str()));
    assert_eq!(requests[0].raised_by, "pensioner-care");
    assert_eq!(requests[0].due_at, h.store.now() + Duration::hours(24));

    let from_complaint = |elder: &ElderId| NewVisitRequest {
        elder_id: elder.clone(),
        reason: VisitRequestReason::Complaint,
        reference: Some("complaint-7".into()),
        note: None,
        raised_by: "pensioner-care".into(),
        hours: 24,
    };
    let once = |id: &str| Once::new("care-test", &event(id), Utc::now());
    assert_eq!(
        h.store
            .request_visit_for_event(once("ev-1"), from_complaint(&elder))
            .await?,
        Outcome::Applied
    );
    assert_eq!(
        h.store
            .request_visit_for_event(once("ev-1"), from_complaint(&elder))
            .await?,
        Outcome::AlreadyProcessed
    );
    // The same complaint under a new event id: applied, nothing new.
    assert_eq!(
        h.store
            .request_visit_for_event(once("ev-2"), from_complaint(&elder))
            .await?,
        Outcome::Applied
    );
    // An elder this service does not know, and one who refuses visits.
    let (refusing, _) = h
        .store
        .register_elder(
            &key("r-2"),
            details("老人", "1941-05-03", LivingSituation::Alone, false),
            "operator-1",
        )
        .await?;
    for (event_id, elder) in [
        ("ev-3", ElderId::from_stored("elder-x")),
        ("ev-4", refusing.id.clone()),
    ] {
        let mut new = from_complaint(&elder);
        new.reference = Some(format!("complaint-{event_id}"));
        assert_eq!(
            h.store.request_visit_for_event(once(event_id), new).await?,
            Outcome::Applied
        );
    }
    let (requests, _) = h.store.visit_requests(None, false, 10, 0).await?;
    assert_eq!(requests.len(), 2);
    assert_eq!(
        outbox_of(&h, "shequ.care.visit_request.raised.v1").await?,
        2
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM visit_requests").await?, 2);
    Ok(())
}
