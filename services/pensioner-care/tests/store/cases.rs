//! The cases, each over [`Care`] only (and counts of what it stored); those
//! of idempotency keys reused for other requests in [`requests`].

mod figures;
mod requests;
pub(crate) use figures::*;
pub(crate) use requests::*;

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
use shequ_pensioner_care::domain::services::{
    Booking, BookingError, BookingStatus, Service, Settlement,
};
use shequ_pensioner_care::domain::timeline;
use shequ_pensioner_care::domain::visits::{Visitor, Wellbeing};
use shequ_pensioner_care::domain::{
    BookingId, ComplaintId, ElderId, GridId, MerchantId, Refusal, VisitId, VolunteerId,
};
use shequ_pensioner_care::store::{Care, ElderFilter, StoreError};
use shequ_proto::events::CloudEvent;

use crate::{Harness, days, details, key, request, start, visit, wang};

/// Whether `result` is the refusal of a key first used with a different
/// request: a field error naming `request_id`.
pub(crate) fn refused_naming_request_id<T>(result: &Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Field(error)) if error.field == "request_id")
}

pub(crate) async fn registered(h: &Harness, key: &str) -> anyhow::Result<ElderId> {
    let (elder, duplicate) = h
        .store
        .register_elder(&crate::key(key), wang(), "operator-1")
        .await?;
    ensure!(!duplicate, "{key} is new");
    Ok(elder.id)
}

fn grid(id: &str) -> GridId {
    GridId::from_stored(id)
}

pub(crate) async fn volunteer(h: &Harness, key: &str) -> anyhow::Result<VolunteerId> {
    let phone = Phone::parse("phone", "13900001111")?;
    let (volunteer, _) = h
        .store
        .register_volunteer(&crate::key(key), "张党员", &phone, &grid("xinyuan-1"), true)
        .await?;
    Ok(volunteer.id)
}

pub(crate) async fn a_registration_reads_back_as_answered_and_happens_once_per_request_id(
    h: Harness,
) -> anyhow::Result<()> {
    // A clock reading with nanoseconds: what is stored is whole milliseconds.
    h.clock.advance(chrono::Duration::nanoseconds(123_456_789));
    let wang_request = request("r-1", "RegisterElder 王秀英");
    let (answered, duplicate) = h
        .store
        .register_elder(&wang_request, wang(), "operator-1")
        .await?;
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

    // The same request again: the first registration.
    let (again, duplicate) = h
        .store
        .register_elder(&wang_request, wang(), "operator-1")
        .await?;
    assert!(duplicate);
    assert_eq!(again, answered, "the first registration");
    // Another elder under the key: refused.
    let other = details("赵桂兰", "1958-01-01", LivingSituation::WithFamily, true);
    let refused = h
        .store
        .register_elder(&request("r-1", "RegisterElder 赵桂兰"), other, "operator-2")
        .await;
    assert!(refused_naming_request_id(&refused), "{refused:?}");
    assert_eq!(h.count("SELECT COUNT(*) FROM elders").await?, 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM timeline").await?, 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox").await?, 1);

    let phone = Phone::parse("phone", "13900001111")?;
    let zhang = request("v-1", "RegisterVolunteer 张党员");
    let (first, duplicate) = h
        .store
        .register_volunteer(&zhang, "张党员", &phone, &grid("xinyuan-1"), true)
        .await?;
    assert!(!duplicate);
    let (again, duplicate) = h
        .store
        .register_volunteer(&zhang, "张党员", &phone, &grid("xinyuan-1"), true)
        .await?;
    assert!(duplicate);
    assert_eq!(again, first);
    let li = request("v-1", "RegisterVolunteer 李党员");
    let refused = h
        .store
        .register_volunteer(&li, "李党员", &phone, &grid("xinyuan-2"), false)
        .await;
    assert!(refused_naming_request_id(&refused), "{refused:?}");
    assert_eq!(h.count("SELECT COUNT(*) FROM volunteers").await?, 1);
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
            Err(StoreError::Rule(Refusal::Pairing(
                PairingError::VolunteerFull(_) | PairingError::Collided,
            ))) => {}
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
                .pair(&volunteer, &elder, "operator-1", Some(&key("p-1")))
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
        .unpair(&elder, "搬家", "operator-1", Some(&key("u-1")))
        .await?;
    assert_eq!(ended.ended_at, Some(h.store.now()));
    let again = h
        .store
        .unpair(&elder, "搬家", "operator-1", Some(&key("u-1")))
        .await?;
    assert_eq!(again, ended);
    assert!(matches!(
        h.store
            .unpair(&elder, "搬家", "operator-1", Some(&key("u-2")))
            .await,
        Err(StoreError::Rule(Refusal::Pairing(
            PairingError::NoVolunteer(_)
        )))
    ));
    // The slot is free again, and the elder too.
    h.store
        .pair(&volunteer, &elder, "operator-1", Some(&key("p-2")))
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
        .record_visit(&key("visit-1"), visit(&elder, visited, Wellbeing::Good))
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
        .record_visit(&key("visit-2"), visit(&elder, late, Wellbeing::Good))
        .await?;
    let kept = h.store.elder(&elder).await?;
    assert_eq!(kept.visit_anchor_at, visited, "the anchor stays");
    assert_eq!(kept.next_visit_due_at, visited + days(7));

    // The same request again: the first visit, and the anchor stays.
    let (again, duplicate) = h
        .store
        .record_visit(&key("visit-1"), visit(&elder, visited, Wellbeing::Good))
        .await?;
    assert!(duplicate);
    assert_eq!(again, recorded);
    assert_eq!(h.store.elder(&elder).await?.visit_anchor_at, visited);
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
    assert_eq!(h.store.booking_by_request(&key("b-1")).await?, None);
    let (first, duplicate) = h
        .store
        .book(
            &key("b-1"),
            booking(BookingStatus::Booked),
            true,
            "worker-li",
        )
        .await?;
    assert!(!duplicate);
    let (again, duplicate) = h
        .store
        .book(
            &key("b-1"),
            booking(BookingStatus::AllianceUnavailable),
            true,
            "worker-li",
        )
        .await?;
    assert!(duplicate);
    assert_eq!(again, first);
    assert_eq!(h.store.booking_by_request(&key("b-1")).await?, Some(first));
    // Not booked: recorded, not published.
    h.store
        .book(
            &key("b-2"),
            booking(BookingStatus::NoMerchantNearby),
            true,
            "worker-li",
        )
        .await?;
    assert_eq!(h.count("SELECT COUNT(*) FROM bookings").await?, 2);
    assert_eq!(
        h.count("SELECT COUNT(*) FROM outbox WHERE subject = 'shequ.care.service.booked.v1'")
            .await?,
        1
    );
    Ok(())
}

/// A meal booking for elder `elder` a day after the start, as the alliance's
/// answer made it.
pub(crate) fn meal(elder: &ElderId, status: BookingStatus) -> Booking {
    let merchant = status == BookingStatus::Booked;
    Booking {
        id: BookingId::generate(),
        elder_id: elder.clone(),
        service: Service::MealAssistance,
        scheduled_for: start() + days(1),
        status,
        merchant_id: merchant.then(|| MerchantId::from_stored("m-1")),
        merchant_name: merchant.then(|| "助老食堂".to_owned()),
        distance_metres: merchant.then_some(300.0),
    }
}

pub(crate) async fn outbox_of(h: &Harness, event_type: &str) -> anyhow::Result<i64> {
    h.count(&format!(
        "SELECT COUNT(*) FROM outbox WHERE subject = '{event_type}'"
    ))
    .await
}

pub(crate) async fn a_retry_of_a_booking_stored_as_alliance_unavailable_stores_the_new_outcome(
    h: Harness,
) -> anyhow::Result<()> {
    let elder = registered(&h, "r-1").await?;
    let (unavailable, duplicate) = h
        .store
        .book(
            &key("b-1"),
            meal(&elder, BookingStatus::AllianceUnavailable),
            true,
            "worker-li",
        )
        .await?;
    assert!(!duplicate);
    assert_eq!(outbox_of(&h, "shequ.care.service.booked.v1").await?, 0);

    // Still unavailable on the retry: nothing changes.
    let (again, duplicate) = h
        .store
        .book(
            &key("b-1"),
            meal(&elder, BookingStatus::AllianceUnavailable),
            true,
            "worker-li",
        )
        .await?;
    assert!(duplicate);
    assert_eq!(again, unavailable);

    // The alliance answers this time: the stored booking takes the outcome.
    let (booked, duplicate) = h
        .store
        .book(
            &key("b-1"),
            meal(&elder, BookingStatus::Booked),
            true,
            "worker-li",
        )
        .await?;
    assert!(duplicate, "the request id was seen before");
    assert_eq!(booked.id, unavailable.id, "the same booking");
    assert_eq!(booked.scheduled_for, unavailable.scheduled_for);
    assert_eq!(booked.status, BookingStatus::Booked);
    assert_eq!(booked.merchant_id, Some(MerchantId::from_stored("m-1")));
    assert_eq!(
        h.store.booking_by_request(&key("b-1")).await?,
        Some(booked.clone())
    );
    assert_eq!(outbox_of(&h, "shequ.care.service.booked.v1").await?, 1);

    // Decided now: a further retry answers with it, whatever it brings.
    let (stands, duplicate) = h
        .store
        .book(
            &key("b-1"),
            meal(&elder, BookingStatus::NoMerchantNearby),
            true,
            "worker-li",
        )
        .await?;
    assert!(duplicate);
    assert_eq!(stands, booked);
    assert_eq!(h.count("SELECT COUNT(*) FROM bookings").await?, 1);
    assert_eq!(outbox_of(&h, "shequ.care.service.booked.v1").await?, 1);
    let entries: Vec<String> = h
        .store
        .timeline(&elder)
        .await?
        .into_iter()
        .filter(|e| e.kind == "booking")
        .map(|e| e.summary)
        .collect();
    assert_eq!(entries.len(), 2, "unavailable, then booked: {entries:?}");
    assert!(entries[1].ends_with(": booked"), "{entries:?}");
    Ok(())
}

pub(crate) async fn a_booked_booking_is_served_cancelled_or_missed_once_per_key_and_only_from_booked(
    h: Harness,
) -> anyhow::Result<()> {
    let elder = registered(&h, "r-1").await?;
    let mut ids = Vec::new();
    for key in ["b-1", "b-2", "b-3"] {
        let (booking, _) = h
            .store
            .book(
                &crate::key(key),
                meal(&elder, BookingStatus::Booked),
                true,
                "worker-li",
            )
            .await?;
        ids.push(booking.id);
    }
    let (no_merchant, _) = h
        .store
        .book(
            &key("b-4"),
            meal(&elder, BookingStatus::NoMerchantNearby),
            true,
            "worker-li",
        )
        .await?;

    // Too early to serve or miss; cancelling is fine any time.
    let early = h
        .store
        .settle(&key("s-1"), &ids[0], Settlement::Served, "worker-li", true)
        .await;
    assert!(
        matches!(
            early,
            Err(StoreError::Rule(Refusal::Booking(
                BookingError::TooEarly { .. }
            )))
        ),
        "{early:?}"
    );
    let (cancelled, duplicate) = h
        .store
        .settle(
            &key("c-1"),
            &ids[2],
            Settlement::Cancelled,
            "worker-li",
            true,
        )
        .await?;
    assert!(!duplicate);
    assert_eq!(cancelled.status, BookingStatus::Cancelled);

    h.clock.advance(days(1));
    let (served, duplicate) = h
        .store
        .settle(&key("s-1"), &ids[0], Settlement::Served, "worker-li", true)
        .await?;
    assert!(!duplicate);
    assert_eq!(served.status, BookingStatus::Served);
    let (again, duplicate) = h
        .store
        .settle(&key("s-1"), &ids[0], Settlement::Served, "worker-li", true)
        .await?;
    assert!(
        duplicate,
        "the same key answers with the booking it settled"
    );
    assert_eq!(again, served);
    let (missed, _) = h
        .store
        .settle(&key("n-1"), &ids[1], Settlement::NoShow, "worker-li", true)
        .await?;
    assert_eq!(missed.status, BookingStatus::NoShow);

    // Only a booked booking moves, once.
    for (key, id, to) in [
        ("s-2", &ids[0], Settlement::Served),
        ("c-2", &ids[0], Settlement::Cancelled),
        ("s-3", &ids[1], Settlement::Served),
        ("n-2", &ids[2], Settlement::NoShow),
        ("s-4", &no_merchant.id, Settlement::Served),
    ] {
        let refused = h
            .store
            .settle(&crate::key(key), id, to, "worker-li", true)
            .await;
        assert!(
            matches!(
                refused,
                Err(StoreError::Rule(Refusal::Booking(
                    BookingError::NotBooked { .. }
                )))
            ),
            "{key}: {refused:?}"
        );
    }
    assert!(matches!(
        h.store
            .settle(
                &key("s-5"),
                &BookingId::from_stored("no-such"),
                Settlement::Served,
                "worker-li",
                true
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(outbox_of(&h, "shequ.care.booking.served.v1").await?, 1);
    assert_eq!(outbox_of(&h, "shequ.care.booking.cancelled.v1").await?, 1);
    assert_eq!(outbox_of(&h, "shequ.care.booking.no_show.v1").await?, 1);
    assert_eq!(
        h.store
            .booking_by_request(&key("b-1"))
            .await?
            .map(|b| b.status),
        Some(BookingStatus::Served)
    );
    let kinds: Vec<String> = h
        .store
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

pub(crate) async fn a_visit_by_a_volunteer_id_that_names_no_volunteer_is_refused_and_writes_nothing(
    h: Harness,
) -> anyhow::Result<()> {
    let elder = registered(&h, "r-1").await?;
    let named = |visitor: &str| {
        let mut visit = visit(&elder, h.store.now(), Wellbeing::Urgent);
        visit.visitor = Visitor::Volunteer(VolunteerId::from_stored(visitor));
        visit
    };

    for visitor in ["王建国", "volunteer-9"] {
        match h.store.record_visit(&key("visit-1"), named(visitor)).await {
            Err(StoreError::Field(error)) => assert_eq!(error.field, "visitor"),
            other => anyhow::bail!("{visitor}: {other:?}"),
        }
    }

    assert_eq!(h.count("SELECT COUNT(*) FROM visits").await?, 0);
    assert_eq!(h.store.elder(&elder).await?.last_visit_at, None);
    assert_eq!(h.count("SELECT COUNT(*) FROM complaint_filings").await?, 0);
    assert_eq!(outbox_of(&h, "shequ.care.visit.recorded.v1").await?, 0);
    assert_eq!(outbox_of(&h, "shequ.care.alert.raised.v1").await?, 0);
    // A registered volunteer's id is taken, and the key is still free.
    let volunteer = volunteer(&h, "v-1").await?;
    let (recorded, duplicate) = h
        .store
        .record_visit(&key("visit-1"), named(volunteer.as_str()))
        .await?;
    assert!(!duplicate);
    assert_eq!(recorded.visitor, volunteer.as_str());
    Ok(())
}

pub(crate) async fn a_change_of_details_publishes_elder_updated_with_the_change(
    h: Harness,
) -> anyhow::Result<()> {
    let elder = registered(&h, "r-1").await?;
    let with_family = details("王秀英", "1941-05-03", LivingSituation::WithFamily, true);

    let updated = h
        .store
        .update_elder(&elder, with_family, "worker-li")
        .await?;

    assert_eq!(updated.assessment.level, RiskLevel::Medium);
    assert_eq!(outbox_of(&h, "shequ.care.elder.updated.v1").await?, 1);
    assert_eq!(
        h.count("SELECT COUNT(*) FROM timeline WHERE kind = 'updated'")
            .await?,
        1,
        "in the same transaction as its timeline entry"
    );
    let unknown = h
        .store
        .update_elder(&ElderId::from_stored("no-such"), wang(), "worker-li")
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );
    assert_eq!(outbox_of(&h, "shequ.care.elder.updated.v1").await?, 1);
    Ok(())
}

pub(crate) async fn a_concern_visit_files_a_complaint_until_it_is_filed(
    h: Harness,
) -> anyhow::Result<()> {
    let elder = registered(&h, "r-1").await?;
    let waiting = h.store.filings_waiting();
    let (recorded, _) = h
        .store
        .record_visit(
            &key("visit-1"),
            visit(&elder, h.store.now(), Wellbeing::Concern),
        )
        .await?;
    assert_eq!(recorded.filing, Some(FilingStatus::Pending));
    tokio::time::timeout(std::time::Duration::from_secs(1), waiting.notified()).await?;
    h.store
        .record_visit(
            &key("visit-2"),
            visit(&elder, h.store.now(), Wellbeing::Good),
        )
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

pub(crate) fn event(id: &str) -> CloudEvent {
    CloudEvent {
        specversion: "1.0".into(),
        id: id.into(),
        source: "/shequ/complaints".into(),
        event_type: "shequ.complaints.complaint.resolved.v1".into(),
        time: start(),
        subject: "complaint-9".into(),
        datacontenttype: "application/json".into(),
        dataschema: None,
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
        .record_visit(
            &key("visit-1"),
            visit(&elder, h.store.now(), Wellbeing::Concern),
        )
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
                &key(&format!("r-{i}")),
                details(&format!("老人{i}"), birth, living, consents),
                "operator-1",
            )
            .await?;
        if i % 4 == 1 {
            h.store
                .record_visit(
                    &key(&format!("visit-{i}")),
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
