//! The cases, each over [`Care`] only (and counts of what it stored).

use std::collections::BTreeSet;

use anyhow::ensure;
use chrono::Utc;
use shequ_chassis::clock::{Clock, to_millis};
use shequ_chassis::database::DbError;
use shequ_chassis::inbox::{Once, Outcome};
use shequ_chassis::personal::Phone;
use shequ_pensioner_care::domain::elder::LivingSituation;
use shequ_pensioner_care::domain::filing::FilingStatus;
use shequ_pensioner_care::domain::pairing::PairingError;
use shequ_pensioner_care::domain::risk::RiskLevel;
use shequ_pensioner_care::domain::services::{Booking, BookingStatus, Service};
use shequ_pensioner_care::domain::timeline;
use shequ_pensioner_care::domain::visits::Wellbeing;
use shequ_pensioner_care::domain::{
    BookingId, ComplaintId, ElderId, GridId, MerchantId, VisitId, VolunteerId,
};
use shequ_pensioner_care::store::{Care, ElderFilter, StoreError};
use shequ_proto::events::CloudEvent;

use crate::{Harness, days, details, start, visit, wang};

async fn registered(h: &Harness, key: &str) -> anyhow::Result<ElderId> {
    let (elder, duplicate) = h.store.register_elder(key, wang(), "operator-1").await?;
    ensure!(!duplicate, "{key} is new");
    Ok(elder.id)
}

fn grid(id: &str) -> GridId {
    GridId::from_stored(id)
}

async fn volunteer(h: &Harness, key: &str) -> anyhow::Result<VolunteerId> {
    let phone = Phone::parse("phone", "13900001111")?;
    let (volunteer, _) = h
        .store
        .register_volunteer(key, "张党员", &phone, &grid("xinyuan-1"), true)
        .await?;
    Ok(volunteer.id)
}

pub(crate) async fn a_registration_reads_back_as_answered_and_happens_once_per_request_id(
    h: Harness,
) -> anyhow::Result<()> {
    // A clock reading with nanoseconds: what is stored is whole milliseconds.
    h.clock.advance(chrono::Duration::nanoseconds(123_456_789));
    let (answered, duplicate) = h.store.register_elder("r-1", wang(), "operator-1").await?;
    assert!(!duplicate);
    assert_eq!(answered.assessment.level, RiskLevel::High);
    assert_eq!(answered.visit_interval_days, 7);
    assert_eq!(
        answered.registered_at.timestamp_subsec_nanos() % 1_000_000,
        0
    );
    assert_eq!(
        h.store.elder(&answered.id).await?,
        answered,
        "every field as answered"
    );

    let other = details("赵桂兰", "1958-01-01", LivingSituation::WithFamily, true);
    let (again, duplicate) = h.store.register_elder("r-1", other, "operator-2").await?;
    assert!(duplicate);
    assert_eq!(again, answered, "the first registration");
    assert_eq!(h.count("SELECT COUNT(*) FROM elders").await?, 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM timeline").await?, 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox").await?, 1);

    let phone = Phone::parse("phone", "13900001111")?;
    let (first, duplicate) = h
        .store
        .register_volunteer("v-1", "张党员", &phone, &grid("xinyuan-1"), true)
        .await?;
    assert!(!duplicate);
    let (again, duplicate) = h
        .store
        .register_volunteer("v-1", "李党员", &phone, &grid("xinyuan-2"), false)
        .await?;
    assert!(duplicate);
    assert_eq!(again, first);
    assert_eq!(h.store.volunteer(&first.id).await?, first);
    Ok(())
}

pub(crate) async fn a_volunteer_takes_at_most_two_elders_however_many_pairings_race(
    h: Harness,
) -> anyhow::Result<()> {
    let volunteer = volunteer(&h, "v-1").await?;
    let mut elders = Vec::new();
    for i in 0..8 {
        elders.push(registered(&h, &format!("r-{i}")).await?);
    }
    let pairings = elders.iter().map(|elder| {
        let (store, volunteer, elder) = (h.store.clone(), volunteer.clone(), elder.clone());
        tokio::spawn(async move { store.pair(&volunteer, &elder, "operator-1", None).await })
    });
    let mut won = 0;
    for pairing in futures::future::join_all(pairings).await {
        match pairing? {
            Ok(_) => won += 1,
            Err(StoreError::Rule(PairingError::VolunteerFull(_) | PairingError::Collided)) => {}
            Err(other) => anyhow::bail!("unexpected: {other}"),
        }
    }
    assert_eq!(won, 2);
    assert_eq!(
        h.count("SELECT COUNT(*) FROM pairings WHERE ended_at IS NULL")
            .await?,
        2
    );
    let listed = h.store.volunteer(&volunteer).await?;
    assert_eq!(listed.elder_ids.len(), 2);
    let (unpaired, _) = h
        .store
        .elders(
            &ElderFilter {
                unpaired_only: true,
                ..ElderFilter::default()
            },
            h.store.now(),
            50,
            0,
        )
        .await?;
    assert_eq!(unpaired.len(), 6);
    Ok(())
}

pub(crate) async fn of_two_volunteers_racing_for_one_elder_exactly_one_wins(
    h: Harness,
) -> anyhow::Result<()> {
    let elder = registered(&h, "r-1").await?;
    let mut volunteers = Vec::new();
    for i in 0..4 {
        volunteers.push(volunteer(&h, &format!("v-{i}")).await?);
    }
    let pairings = volunteers.iter().map(|volunteer| {
        let (store, volunteer, elder) = (h.store.clone(), volunteer.clone(), elder.clone());
        tokio::spawn(async move { store.pair(&volunteer, &elder, "operator-1", None).await })
    });
    let results = futures::future::join_all(pairings).await;
    let won = results
        .into_iter()
        .filter(|result| matches!(result, Ok(Ok(_))))
        .count();
    assert_eq!(won, 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM pairings").await?, 1);
    Ok(())
}

pub(crate) async fn pair_and_unpair_keys_answer_a_retry_with_the_first_pairing(
    h: Harness,
) -> anyhow::Result<()> {
    let volunteer = volunteer(&h, "v-1").await?;
    let elder = registered(&h, "r-1").await?;
    let retries = (0..4).map(|_| {
        let (store, volunteer, elder) = (h.store.clone(), volunteer.clone(), elder.clone());
        tokio::spawn(async move {
            store
                .pair(&volunteer, &elder, "operator-1", Some("p-1"))
                .await
        })
    });
    let mut ids = BTreeSet::new();
    for pairing in futures::future::join_all(retries).await {
        ids.insert(pairing??.id);
    }
    assert_eq!(ids.len(), 1, "one pairing for one key");
    assert_eq!(
        h.store.elder(&elder).await?.volunteer_id.as_ref(),
        Some(&volunteer)
    );

    h.clock.advance(days(1));
    let ended = h
        .store
        .unpair(&elder, "搬家", "operator-1", Some("u-1"))
        .await?;
    assert_eq!(ended.ended_at, Some(h.store.now()));
    let again = h
        .store
        .unpair(&elder, "搬家", "operator-1", Some("u-1"))
        .await?;
    assert_eq!(again, ended);
    assert!(matches!(
        h.store
            .unpair(&elder, "搬家", "operator-1", Some("u-2"))
            .await,
        Err(StoreError::Rule(PairingError::NoVolunteer(_)))
    ));
    // The slot is free again, and the elder too.
    h.store
        .pair(&volunteer, &elder, "operator-1", Some("p-2"))
        .await?;
    assert_eq!(h.count("SELECT COUNT(*) FROM pairings").await?, 2);
    // Pairing created, ended, created again.
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox").await?, 1 + 3);
    Ok(())
}

pub(crate) async fn a_visit_moves_the_anchor_and_a_late_one_does_not_move_it_back(
    h: Harness,
) -> anyhow::Result<()> {
    let elder = registered(&h, "r-1").await?;
    h.clock.advance(days(3));
    let visited = h.store.now();
    let (recorded, duplicate) = h
        .store
        .record_visit("visit-1", visit(&elder, visited, Wellbeing::Good))
        .await?;
    assert!(!duplicate);
    assert_eq!(recorded.filing, None, "a good visit files nothing");
    let moved = h.store.elder(&elder).await?;
    assert_eq!(moved.last_visit_at, Some(visited));
    assert_eq!(moved.visit_anchor_at, visited);
    assert_eq!(moved.next_visit_due_at, visited + days(7));

    // Recorded now, made two days ago: before the last visit.
    h.clock.advance(days(1));
    let late = h.store.now() - days(2);
    h.store
        .record_visit("visit-2", visit(&elder, late, Wellbeing::Good))
        .await?;
    let kept = h.store.elder(&elder).await?;
    assert_eq!(kept.visit_anchor_at, visited, "the anchor stays");
    assert_eq!(kept.next_visit_due_at, visited + days(7));

    let (again, duplicate) = h
        .store
        .record_visit("visit-1", visit(&elder, h.store.now(), Wellbeing::Urgent))
        .await?;
    assert!(duplicate);
    assert_eq!(again, recorded);
    assert_eq!(h.count("SELECT COUNT(*) FROM visits").await?, 2);
    Ok(())
}

pub(crate) async fn overdue_notices_are_raised_once_per_missed_period(
    h: Harness,
) -> anyhow::Result<()> {
    let elder = registered(&h, "r-1").await?;
    let other = registered(&h, "r-2").await?;
    assert!(
        h.store
            .overdue_owed(h.store.now(), None, 10)
            .await?
            .is_empty()
    );
    h.clock.advance(days(15));
    let now = h.store.now();
    let owed = h.store.overdue_owed(now, None, 1).await?;
    assert_eq!(owed.len(), 1, "a page of one");
    let rest = h.store.overdue_owed(now, owed.last(), 10).await?;
    let listed: BTreeSet<ElderId> = owed
        .iter()
        .chain(&rest)
        .map(|due| ElderId::from_stored(due.id()))
        .collect();
    assert_eq!(listed, BTreeSet::from([elder.clone(), other.clone()]));

    assert_eq!(
        h.store.raise_overdue(&elder, now).await?,
        2,
        "two weeks missed"
    );
    assert_eq!(h.store.raise_overdue(&elder, now).await?, 0, "raised once");
    let owed = h.store.overdue_owed(now, None, 10).await?;
    assert_eq!(owed.len(), 1, "only the other elder is still owed");
    assert_eq!(other, owed[0].id());
    assert_eq!(h.count("SELECT COUNT(*) FROM overdue_notices").await?, 2);
    assert_eq!(
        h.count("SELECT COUNT(*) FROM outbox WHERE subject = 'shequ.care.visit.overdue.v1'")
            .await?,
        2
    );
    // A week later the third period is owed, and only that one is raised.
    h.clock.advance(days(7));
    let now = h.store.now();
    assert_eq!(h.store.overdue_owed(now, None, 10).await?.len(), 2);
    assert_eq!(h.store.raise_overdue(&elder, now).await?, 1);
    Ok(())
}

pub(crate) async fn a_booking_is_recorded_once_per_request_id(h: Harness) -> anyhow::Result<()> {
    let elder = registered(&h, "r-1").await?;
    let booking = |status| Booking {
        id: BookingId::generate(),
        elder_id: elder.clone(),
        service: Service::MealAssistance,
        scheduled_for: start() + days(1),
        status,
        merchant_id: Some(MerchantId::from_stored("m-1")),
        merchant_name: Some("老街饺子馆".into()),
        distance_metres: Some(420.5),
    };
    assert_eq!(h.store.booking_by_request("b-1").await?, None);
    let (first, duplicate) = h
        .store
        .book("b-1", booking(BookingStatus::Booked), true)
        .await?;
    assert!(!duplicate);
    let (again, duplicate) = h
        .store
        .book("b-1", booking(BookingStatus::AllianceUnavailable), true)
        .await?;
    assert!(duplicate);
    assert_eq!(again, first);
    assert_eq!(h.store.booking_by_request("b-1").await?, Some(first));
    // Not booked: recorded, not published.
    h.store
        .book("b-2", booking(BookingStatus::NoMerchantNearby), true)
        .await?;
    assert_eq!(h.count("SELECT COUNT(*) FROM bookings").await?, 2);
    assert_eq!(
        h.count("SELECT COUNT(*) FROM outbox WHERE subject = 'shequ.care.service.booked.v1'")
            .await?,
        1
    );
    Ok(())
}

pub(crate) async fn a_concern_visit_files_a_complaint_until_it_is_filed(
    h: Harness,
) -> anyhow::Result<()> {
    let elder = registered(&h, "r-1").await?;
    let waiting = h.store.filings_waiting();
    let (recorded, _) = h
        .store
        .record_visit("visit-1", visit(&elder, h.store.now(), Wellbeing::Concern))
        .await?;
    assert_eq!(recorded.filing, Some(FilingStatus::Pending));
    tokio::time::timeout(std::time::Duration::from_secs(1), waiting.notified()).await?;
    h.store
        .record_visit("visit-2", visit(&elder, h.store.now(), Wellbeing::Good))
        .await?;

    let now = h.store.now();
    let due = h.store.due_filings(now, None, 10).await?;
    assert_eq!(due.len(), 1, "only the concern files");
    let filing = h
        .store
        .due_filing(&VisitId::from_stored(due[0].id()), now)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the filing is due"))?;
    assert_eq!(filing.visit_id, recorded.id);
    assert_eq!(filing.text, "助老走访发现需求(需关注): 需要送餐");
    assert!(!filing.urgent);

    h.store
        .filing_failed(&filing, "Unavailable: down", false)
        .await?;
    assert!(
        h.store.due_filings(now, None, 10).await?.is_empty(),
        "backed off"
    );
    h.clock.advance(chrono::Duration::minutes(1));
    let now = h.store.now();
    let filing = h
        .store
        .due_filing(&recorded.id, now)
        .await?
        .ok_or_else(|| anyhow::anyhow!("due again"))?;
    assert_eq!(filing.attempts, 1);
    let complaint = ComplaintId::from_stored("complaint-9");
    h.store.filing_done(&filing, &complaint).await?;
    h.store.filing_done(&filing, &complaint).await?;
    let filed = h.store.visit(&recorded.id).await?;
    assert_eq!(filed.filing, Some(FilingStatus::Filed));
    assert_eq!(filed.complaint_id, Some(complaint));
    assert!(h.store.due_filings(now, None, 10).await?.is_empty());
    let timeline = h.store.timeline(&elder).await?;
    let filed_entries = timeline
        .iter()
        .filter(|e| e.kind == "complaint_filed")
        .count();
    assert_eq!(filed_entries, 1, "{timeline:?}");
    Ok(())
}

fn event(id: &str) -> CloudEvent {
    CloudEvent {
        specversion: "1.0".into(),
        id: id.into(),
        source: "/shequ/complaints".into(),
        event_type: "shequ.complaints.complaint.resolved.v1".into(),
        time: start(),
        subject: "complaint-9".into(),
        datacontenttype: "application/json".into(),
        data: serde_json::Value::Null,
    }
}

pub(crate) async fn a_complaint_outcome_is_noted_once_per_event_and_per_fact(
    h: Harness,
) -> anyhow::Result<()> {
    let elder = registered(&h, "r-1").await?;
    let complaint = ComplaintId::from_stored("complaint-9");
    let entry = |elder: &ElderId| {
        Some(timeline::complaint_outcome(
            elder,
            start(),
            "complaint_resolved",
            &complaint,
            "resolved",
            &to_millis(start()).to_string(),
        ))
    };
    let once = |id: &str| Once::new("care-test", &event(id), Utc::now());
    assert_eq!(
        h.store
            .note_complaint_outcome(once("e-1"), entry(&elder))
            .await?,
        Outcome::Applied
    );
    assert_eq!(
        h.store
            .note_complaint_outcome(once("e-1"), entry(&elder))
            .await?,
        Outcome::AlreadyProcessed
    );
    // The same fact under a new event id: applied, and nothing new.
    assert_eq!(
        h.store
            .note_complaint_outcome(once("e-2"), entry(&elder))
            .await?,
        Outcome::Applied
    );
    // An elder this service does not know, or none.
    assert_eq!(
        h.store
            .note_complaint_outcome(once("e-3"), entry(&ElderId::from_stored("elder-x")))
            .await?,
        Outcome::Applied
    );
    assert_eq!(
        h.store.note_complaint_outcome(once("e-4"), None).await?,
        Outcome::Applied
    );
    assert_eq!(
        h.count("SELECT COUNT(*) FROM timeline WHERE kind = 'complaint_resolved'")
            .await?,
        1
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM processed_events").await?, 4);
    Ok(())
}

pub(crate) async fn a_stored_value_that_does_not_decode_is_an_error_not_a_default(
    h: Harness,
) -> anyhow::Result<()> {
    let broken = [
        "UPDATE elders SET gender = 'unknown' WHERE id = $1",
        "UPDATE elders SET visit_interval_days = 0 WHERE id = $1",
        "UPDATE elders SET location_datum = 'bd09' WHERE id = $1",
        "UPDATE elders SET emergency_contacts = '{\"name\": \"李梅\"}' WHERE id = $1",
        "UPDATE elders SET risk = 'extreme' WHERE id = $1",
    ];
    for (i, sql) in broken.iter().enumerate() {
        let elder = registered(&h, &format!("r-{i}")).await?;
        assert_eq!(h.execute(sql, &[elder.as_str()]).await?, 1);
        match h.store.elder(&elder).await {
            Err(StoreError::Database(DbError::Decode(_))) => {}
            other => anyhow::bail!("{sql}: {other:?}"),
        }
    }
    let elder = registered(&h, "r-visit").await?;
    let (recorded, _) = h
        .store
        .record_visit("visit-1", visit(&elder, h.store.now(), Wellbeing::Concern))
        .await?;
    h.execute(
        "UPDATE complaint_filings SET status = 'lost' WHERE visit_id = $1",
        &[recorded.id.as_str()],
    )
    .await?;
    assert!(matches!(
        h.store.visit(&recorded.id).await,
        Err(StoreError::Database(DbError::Decode(_)))
    ));
    Ok(())
}

pub(crate) async fn the_overdue_sql_agrees_with_the_overdue_predicate(
    h: Harness,
) -> anyhow::Result<()> {
    // Elders registered a day apart, high and low risk, some not consenting,
    // some visited since.
    for i in 0..12 {
        let living = if i % 2 == 0 {
            LivingSituation::Alone
        } else {
            LivingSituation::WithFamily
        };
        let birth = if i % 3 == 0 {
            "1940-02-01"
        } else {
            "1960-02-01"
        };
        let consents = i % 5 != 4;
        let (elder, _) = h
            .store
            .register_elder(
                &format!("r-{i}"),
                details(&format!("老人{i}"), birth, living, consents),
                "operator-1",
            )
            .await?;
        if i % 4 == 1 {
            h.store
                .record_visit(
                    &format!("visit-{i}"),
                    visit(&elder.id, h.clock.now(), Wellbeing::Good),
                )
                .await?;
        }
        h.clock.advance(days(1));
    }
    let all = ElderFilter::default();
    let overdue = ElderFilter {
        overdue_only: true,
        ..ElderFilter::default()
    };
    let mut seen_both = (false, false);
    for offset in [0, 5, 7, 8, 12, 20, 30, 45] {
        let now = start() + days(offset);
        let (elders, _) = h.store.elders(&all, now, 200, 0).await?;
        assert_eq!(elders.len(), 12);
        let ruled: Vec<ElderId> = {
            let mut ruled: Vec<_> = elders.iter().filter(|e| e.is_overdue(now)).collect();
            ruled.sort_by_key(|e| (e.next_visit_due_at, e.id.clone()));
            ruled.into_iter().map(|e| e.id.clone()).collect()
        };
        let (listed, _) = h.store.elders(&overdue, now, 200, 0).await?;
        let listed: Vec<ElderId> = listed.into_iter().map(|e| e.id).collect();
        assert_eq!(listed, ruled, "as of {now}");
        seen_both.0 |= !listed.is_empty();
        seen_both.1 |= listed.len() < 12;
        // The edge: an elder due exactly now is overdue.
        for elder in &elders {
            let at = elder.next_visit_due_at;
            let (edge, _) = h.store.elders(&overdue, at, 200, 0).await?;
            assert_eq!(
                edge.iter().any(|e| e.id == elder.id),
                elder.is_overdue(at),
                "{} at its due instant",
                elder.id
            );
        }
    }
    assert!(seen_both.0 && seen_both.1, "some overdue and some not");
    Ok(())
}
