//! Visits: the due date they move, the overdue sweeper (one event per missed
//! period, across restarts), idempotency, complaint filings that wait while the
//! complaints service is down, and alerts from urgent visits.

use std::collections::BTreeSet;

use anyhow::Context;
use chrono::Duration;
use shequ_chassis::grpc::timestamp;
use shequ_proto::care::v1 as pb;
use shequ_proto::events::EventData;
use shequ_proto::events::care::{AlertRaised, VisitOverdue, VisitRecorded};

use crate::support::{
    CONTACT_PHONE, TestApp, WANG_ADDRESS, WANG_BIRTH, WANG_HEALTH, WANG_NAME, instant, of_type,
    visit, wang, zhao,
};

shequ_tests::on_both_backends!(
    a_visit_moves_the_next_due_date_by_the_interval,
    the_sweeper_raises_one_overdue_event_per_missed_period_even_across_a_restart,
    overdue_visits_are_listed_longest_overdue_first_by_grid,
    same_request_id_records_a_visit_once,
    a_concern_visit_keeps_its_filing_pending_while_complaints_is_down,
    an_urgent_visit_raises_an_alert_at_once_without_personal_data,
);

async fn a_visit_moves_the_next_due_date_by_the_interval(mut app: TestApp) -> anyhow::Result<()> {
    let high = app.register("r-wang", wang()).await?.id;
    let low = app.register("r-zhao", zhao()).await?.id;
    app.clock.advance(Duration::days(3));
    let visited_at = app.now();

    let recorded = app.visit("visit-1", &high, pb::Wellbeing::Good).await?;
    app.visit("visit-2", &low, pb::Wellbeing::Good).await?;

    let first = recorded.visit.unwrap_or_default();
    assert_eq!(
        instant(first.visited_at.as_ref()),
        visited_at,
        "absent: now"
    );
    assert_eq!(
        first.filing,
        pb::FilingStatus::Unspecified as i32,
        "good: nothing to file"
    );
    let elder = app.elder(&high).await?;
    assert_eq!(instant(elder.last_visit_at.as_ref()), visited_at);
    assert_eq!(
        instant(elder.next_visit_due_at.as_ref()),
        visited_at + Duration::days(7),
        "high risk: a week after the visit"
    );
    let elder = app.elder(&low).await?;
    assert_eq!(
        instant(elder.next_visit_due_at.as_ref()),
        visited_at + Duration::days(30),
        "low risk: a month after the visit"
    );
    // A visit recorded late, before the last one, does not move the due date back.
    let earlier = visited_at - Duration::days(2);
    app.care
        .record_visit(pb::RecordVisitRequest {
            visited_at: Some(timestamp(earlier)),
            ..visit("visit-3", &high, pb::Wellbeing::Good)
        })
        .await?;
    let elder = app.elder(&high).await?;
    assert_eq!(instant(elder.last_visit_at.as_ref()), visited_at);
    assert_eq!(
        instant(elder.next_visit_due_at.as_ref()),
        visited_at + Duration::days(7)
    );
    Ok(())
}

async fn overdue_list(app: &mut TestApp) -> anyhow::Result<Vec<pb::ElderSummary>> {
    Ok(app
        .care
        .list_overdue_visits(pb::ListOverdueVisitsRequest::default())
        .await?
        .into_inner()
        .elders)
}

async fn the_sweeper_raises_one_overdue_event_per_missed_period_even_across_a_restart(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let registered_at = app.now();
    let id = app.register("r-wang", wang()).await?.id;
    let not_due = app.register("r-zhao", zhao()).await?.id;
    let no_consent = pb::ElderDetails {
        consents_to_visits: false,
        ..wang()
    };
    let not_visited = app.register("r-no-consent", no_consent).await?.id;
    let week = Duration::days(7);

    app.clock.advance(week * 5 / 2);
    let first = app.sweeper.sweep_once().await?.done;
    let second = app.sweeper.sweep_once().await?.done;
    let overdue = overdue_list(&mut app).await?;
    app.restart().await?;
    let after_restart = app.sweeper.sweep_once().await?.done;
    app.clock.set(registered_at + week * 3);
    let third_period = app.sweeper.sweep_once().await?.done;
    app.visit("visit-1", &id, pb::Wellbeing::Good).await?;
    let after_visit = app.sweeper.sweep_once().await?.done;

    assert_eq!(first, 2, "two and a half weeks: two missed periods");
    assert_eq!(second, 0, "each period once");
    assert_eq!(overdue.len(), 1, "{overdue:?}");
    assert_eq!(overdue[0].id, id);
    assert!(overdue[0].overdue);
    assert!(![not_due, not_visited].contains(&overdue[0].id));
    assert_eq!(after_restart, 0, "a restart repeats nothing");
    assert_eq!(third_period, 1, "the third week passed");
    assert_eq!(after_visit, 0, "the visit starts the count again");
    assert!(overdue_list(&mut app).await?.is_empty());
    let events = app.wait_for_events(3 + 3 + 1).await?;
    let raised: Vec<(String, u32, chrono::DateTime<chrono::Utc>)> =
        of_type(&events, VisitOverdue::TYPE)
            .iter()
            .map(|e| {
                let data: VisitOverdue = e.event.data_as()?;
                Ok((data.elder_id, data.period, data.due_at))
            })
            .collect::<anyhow::Result<_>>()?;
    assert_eq!(
        raised,
        [
            (id.clone(), 1, registered_at + week),
            (id.clone(), 2, registered_at + week * 2),
            (id, 3, registered_at + week * 3),
        ]
    );
    Ok(())
}

async fn overdue_visits_are_listed_longest_overdue_first_by_grid(
    mut app: TestApp,
) -> anyhow::Result<()> {
    // Low risk, due in 30 days; high risk registered 24 days later, due 7 days after that.
    let low = app.register("r-zhao", zhao()).await?.id;
    app.clock.advance(Duration::days(24));
    let high = app.register("r-wang", wang()).await?.id;
    let elsewhere = pb::ElderDetails {
        grid_id: "yaozhai-1".into(),
        ..wang()
    };
    let other_grid = app.register("r-yaozhai", elsewhere).await?.id;
    app.clock.advance(Duration::days(8));

    let overdue = overdue_list(&mut app).await?;
    let in_grid = app
        .care
        .list_overdue_visits(pb::ListOverdueVisitsRequest {
            grid_id: "yaozhai-1".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .elders;

    // The low-risk elder is two days overdue, the high-risk ones one day.
    let ids: Vec<&str> = overdue.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 3, "{overdue:?}");
    assert_eq!(ids[0], low, "longest overdue first, whatever the risk");
    assert!(ids[1..].contains(&high.as_str()) && ids[1..].contains(&other_grid.as_str()));
    assert!(overdue.iter().all(|e| e.overdue));
    assert_eq!(
        in_grid.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        [other_grid.as_str()]
    );
    Ok(())
}

async fn same_request_id_records_a_visit_once(mut app: TestApp) -> anyhow::Result<()> {
    let id = app.register("r-wang", wang()).await?.id;
    let first = app.visit("visit-1", &id, pb::Wellbeing::Concern).await?;

    let again = app.visit("visit-1", &id, pb::Wellbeing::Concern).await?;

    assert!(!first.duplicate);
    assert!(again.duplicate);
    let visit_id = first.visit.unwrap_or_default().id;
    assert_eq!(again.visit.map(|v| v.id), Some(visit_id.clone()));
    let visits: Vec<String> = app
        .timeline(&id)
        .await?
        .into_iter()
        .filter(|e| e.kind == "visit")
        .map(|e| e.reference)
        .collect();
    assert_eq!(visits, std::slice::from_ref(&visit_id));
    // A later visit marks the point by which the first one's events are out.
    let marker = app
        .visit("visit-2", &id, pb::Wellbeing::Good)
        .await?
        .visit
        .unwrap_or_default()
        .id;
    // The same request sent twice at once is recorded once too.
    let calls: Vec<_> = (0..2)
        .map(|_| {
            let mut care = app.care.clone();
            let request = visit("visit-3", &id, pb::Wellbeing::Good);
            tokio::spawn(async move { care.record_visit(request).await })
        })
        .collect();
    let mut raced = Vec::new();
    for call in calls {
        raced.push(call.await??.into_inner());
    }
    let raced_ids: BTreeSet<String> = raced
        .iter()
        .map(|r| r.visit.clone().unwrap_or_default().id)
        .collect();
    assert_eq!(raced_ids.len(), 1, "{raced:?}");
    assert_eq!(raced.iter().filter(|r| r.duplicate).count(), 1);
    let events = app.wait_for_events(1 + 3).await?;
    let recorded: Vec<String> = of_type(&events, VisitRecorded::TYPE)
        .iter()
        .map(|e| e.event.subject.clone())
        .collect();
    let mut expected = vec![visit_id, marker];
    expected.extend(raced_ids);
    assert_eq!(recorded, expected, "one event per visit");
    Ok(())
}

async fn a_concern_visit_keeps_its_filing_pending_while_complaints_is_down(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let id = app.register("r-wang", wang()).await?.id;

    let recorded = app.visit("visit-1", &id, pb::Wellbeing::Concern).await?;
    let visit = recorded.visit.unwrap_or_default();
    // Past the retry backoff of any attempt the background worker made already.
    app.clock.advance(Duration::minutes(10));
    let filed = app.filings.sweep_once().await?.done;
    let later = app.visit("visit-1", &id, pb::Wellbeing::Concern).await?;

    assert_eq!(
        visit.filing,
        pb::FilingStatus::Pending as i32,
        "stored to file later"
    );
    assert!(visit.complaint_id.is_empty());
    assert_eq!(filed, 0, "complaints is down");
    assert!(later.duplicate);
    let later = later.visit.unwrap_or_default();
    assert_eq!(later.id, visit.id);
    assert_eq!(
        later.filing,
        pb::FilingStatus::Pending as i32,
        "still to file"
    );
    assert!(later.complaint_id.is_empty());
    assert!(
        !later.filing_error.is_empty(),
        "the failed attempt is recorded"
    );
    let elder = app.elder(&id).await?;
    assert!(elder.last_visit_at.is_some(), "the visit itself is saved");
    let kinds: Vec<String> = app
        .timeline(&id)
        .await?
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        ["registered", "visit"],
        "no complaint filed, no alert"
    );
    let events = app.wait_for_events(2).await?;
    let recorded: VisitRecorded = of_type(&events, VisitRecorded::TYPE)
        .first()
        .context("no visit.recorded event")?
        .event
        .data_as()?;
    assert!(recorded.files_complaint);
    assert_eq!(
        recorded.wellbeing,
        shequ_proto::events::care::Wellbeing::Concern
    );
    assert!(of_type(&events, AlertRaised::TYPE).is_empty());
    Ok(())
}

async fn an_urgent_visit_raises_an_alert_at_once_without_personal_data(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let id = app.register("r-wang", wang()).await?.id;
    let now = app.now();

    let visit = app
        .visit("visit-1", &id, pb::Wellbeing::Urgent)
        .await?
        .visit
        .unwrap_or_default();

    assert_eq!(
        visit.filing,
        pb::FilingStatus::Pending as i32,
        "urgent files too"
    );
    let events = app.wait_for_events(3).await?;
    let alerts = of_type(&events, AlertRaised::TYPE);
    assert_eq!(alerts.len(), 1, "{events:?}");
    let alert: AlertRaised = alerts[0].event.data_as()?;
    assert_eq!(alert.visit_id, visit.id);
    assert_eq!(alert.elder_id, id);
    assert_eq!(alert.grid_id, "xinyuan-1");
    assert_eq!(
        alert.raised_by, "anonymous",
        "the staff member recording it: anonymous with authentication off"
    );
    assert_eq!(alert.raised_at, now);
    let raw = alerts[0].raw.to_string();
    for personal in [
        WANG_NAME,
        WANG_BIRTH,
        WANG_ADDRESS,
        WANG_HEALTH,
        CONTACT_PHONE,
        "需要送餐",
        "腿脚不便",
    ] {
        assert!(!raw.contains(personal), "{personal} leaked: {raw}");
    }
    Ok(())
}
