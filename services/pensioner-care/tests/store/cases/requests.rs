//! Idempotency keys and the requests they were first used with: the same
//! request again is answered as the first time, a different request under
//! the key (another write, another body) is refused naming `request_id` and
//! writes nothing, whichever path finds the key taken.

use std::sync::Arc;

use futures::future::join_all;
use shequ_chassis::personal::Phone;
use shequ_pensioner_care::domain::elder::LivingSituation;
use shequ_pensioner_care::domain::services::{Booking, BookingStatus, Service, Settlement};
use shequ_pensioner_care::domain::visits::Wellbeing;
use shequ_pensioner_care::domain::{BookingId, ElderId, GridId};
use shequ_pensioner_care::store::{Care, RequestKey, StoreError};
use tokio::sync::Barrier;

use super::{meal, outbox_of, refused_naming_request_id, registered, volunteer};
use crate::{Harness, days, details, key, request, start, visit};

/// A day-care booking for `elder`, `in_days` after the start.
fn day_care(elder: &ElderId, in_days: i64) -> Booking {
    Booking {
        id: BookingId::generate(),
        elder_id: elder.clone(),
        service: Service::DayCare,
        scheduled_for: start() + days(in_days),
        status: BookingStatus::Booked,
        merchant_id: None,
        merchant_name: None,
        distance_metres: None,
    }
}

/// How many rows each table the keyed writes touch holds, and the events.
async fn written(h: &Harness) -> anyhow::Result<Vec<i64>> {
    let mut counts = Vec::new();
    for table in [
        "elders",
        "volunteers",
        "pairings",
        "visits",
        "complaint_filings",
        "bookings",
        "timeline",
        "outbox",
    ] {
        counts.push(h.count(&format!("SELECT COUNT(*) FROM {table}")).await?);
    }
    Ok(counts)
}

fn assert_refused<T: std::fmt::Debug>(what: &str, result: &Result<T, StoreError>) {
    assert!(
        refused_naming_request_id(result),
        "{what}: refused naming request_id, not {result:?}"
    );
}

pub(crate) async fn a_key_reused_with_a_different_request_is_refused_and_writes_nothing(
    h: Harness,
) -> anyhow::Result<()> {
    let elder = registered(&h, "r-1").await?;
    let other_elder = registered(&h, "r-2").await?;
    let volunteer = volunteer(&h, "v-1").await?;
    let visited = h.store.now();
    h.store
        .record_visit(
            &request("visit-1", "RecordVisit good"),
            visit(&elder, visited, Wellbeing::Good),
        )
        .await?;
    h.store
        .pair(
            &volunteer,
            &elder,
            "operator-1",
            Some(&request("p-1", "Pair v-1 r-1")),
        )
        .await?;
    h.store
        .unpair(
            &elder,
            "搬家",
            "operator-1",
            Some(&request("u-1", "Unpair r-1 搬家")),
        )
        .await?;
    h.store
        .pair(
            &volunteer,
            &other_elder,
            "operator-1",
            Some(&request("p-2", "Pair v-1 r-2")),
        )
        .await?;
    let (booked, _) = h
        .store
        .book(
            &request("b-1", "BookService day care"),
            day_care(&elder, 1),
            false,
            "worker-li",
        )
        .await?;
    let (second, _) = h
        .store
        .book(
            &request("b-2", "BookService day care, later"),
            day_care(&elder, 2),
            false,
            "worker-li",
        )
        .await?;
    h.store
        .settle(
            &request("c-1", "CancelBooking b-1"),
            &booked.id,
            Settlement::Cancelled,
            "worker-li",
            true,
        )
        .await?;
    let before = written(&h).await?;
    h.clock.advance(days(1));

    let phone = Phone::parse("phone", "13900002222")?;
    let zhao = details("赵桂兰", "1958-01-01", LivingSituation::WithFamily, true);
    assert_refused(
        "RegisterElder",
        &h.store
            .register_elder(&request("r-1", "RegisterElder 赵桂兰"), zhao, "operator-1")
            .await,
    );
    assert_refused(
        "RegisterVolunteer",
        &h.store
            .register_volunteer(
                &request("v-1", "RegisterVolunteer 李党员"),
                "李党员",
                &phone,
                &GridId::from_stored("xinyuan-2"),
                false,
            )
            .await,
    );
    assert_refused(
        "RecordVisit",
        &h.store
            .record_visit(
                &request("visit-1", "RecordVisit urgent"),
                visit(&elder, h.store.now(), Wellbeing::Urgent),
            )
            .await,
    );
    assert_refused(
        "Pair",
        &h.store
            .pair(
                &volunteer,
                &elder,
                "operator-1",
                Some(&request("p-1", "Pair v-1 r-1, again")),
            )
            .await,
    );
    assert_refused(
        "Unpair",
        &h.store
            .unpair(
                &other_elder,
                "搬家",
                "operator-1",
                Some(&request("u-1", "Unpair r-2 搬家")),
            )
            .await,
    );
    assert_refused(
        "BookService",
        &h.store
            .book(
                &request("b-1", "BookService bathing"),
                day_care(&other_elder, 3),
                false,
                "worker-li",
            )
            .await,
    );
    assert_refused(
        "the booking of a key",
        &h.store
            .booking_by_request(&request("b-1", "BookService bathing"))
            .await,
    );
    assert_refused(
        "CancelBooking",
        &h.store
            .settle(
                &request("c-1", "CancelBooking b-2"),
                &second.id,
                Settlement::Cancelled,
                "worker-li",
                true,
            )
            .await,
    );
    assert_refused(
        "MarkBookingServed",
        &h.store
            .settle(
                &request("c-1", "MarkBookingServed b-1"),
                &booked.id,
                Settlement::Served,
                "worker-li",
                true,
            )
            .await,
    );

    assert_eq!(written(&h).await?, before, "nothing written");
    let stored = h.store.elder(&elder).await?;
    assert_eq!(stored.last_visit_at, Some(visited), "the anchor stays");
    assert_eq!(stored.volunteer_id, None);
    assert_eq!(
        h.store.elder(&other_elder).await?.volunteer_id,
        Some(volunteer),
        "still paired"
    );
    assert_eq!(
        h.store
            .booking_by_request(&request("b-2", "BookService day care, later"))
            .await?
            .map(|b| b.status),
        Some(BookingStatus::Booked),
        "still booked"
    );
    assert_eq!(outbox_of(&h, "shequ.care.alert.raised.v1").await?, 0);
    Ok(())
}

pub(crate) async fn the_same_request_again_gets_the_first_answer_for_every_keyed_write(
    h: Harness,
) -> anyhow::Result<()> {
    let phone = Phone::parse("phone", "13900001111")?;
    let grid = GridId::from_stored("xinyuan-1");
    let wang = || details("王秀英", "1941-05-03", LivingSituation::Alone, true);
    let elder_key = request("r-1", "RegisterElder 王秀英");
    let volunteer_key = request("v-1", "RegisterVolunteer 张党员");
    let visit_key = request("visit-1", "RecordVisit concern");
    let pair_key = request("p-1", "Pair v-1 r-1");
    let unpair_key = request("u-1", "Unpair r-1 搬家");
    let book_key = request("b-1", "BookService day care");
    let settle_key = request("s-1", "MarkBookingServed b-1");

    let (elder, _) = h
        .store
        .register_elder(&elder_key, wang(), "operator-1")
        .await?;
    let (volunteer, _) = h
        .store
        .register_volunteer(&volunteer_key, "张党员", &phone, &grid, true)
        .await?;
    let visited = h.store.now();
    let (visited_once, _) = h
        .store
        .record_visit(&visit_key, visit(&elder.id, visited, Wellbeing::Concern))
        .await?;
    let paired = h
        .store
        .pair(&volunteer.id, &elder.id, "operator-1", Some(&pair_key))
        .await?;
    let (booked, _) = h
        .store
        .book(&book_key, day_care(&elder.id, 1), false, "worker-li")
        .await?;
    h.clock.advance(days(1));
    let (served, _) = h
        .store
        .settle(
            &settle_key,
            &booked.id,
            Settlement::Served,
            "worker-li",
            true,
        )
        .await?;
    let ended = h
        .store
        .unpair(&elder.id, "搬家", "operator-1", Some(&unpair_key))
        .await?;
    let before = written(&h).await?;

    h.clock.advance(days(1));
    let (again, duplicate) = h
        .store
        .register_elder(&elder_key, wang(), "operator-1")
        .await?;
    assert!(duplicate);
    assert_eq!(
        again,
        h.store.elder(&elder.id).await?,
        "the elder registered"
    );
    let (again, duplicate) = h
        .store
        .register_volunteer(&volunteer_key, "张党员", &phone, &grid, true)
        .await?;
    assert!(duplicate);
    assert_eq!(again.id, volunteer.id);
    let (again, duplicate) = h
        .store
        .record_visit(&visit_key, visit(&elder.id, visited, Wellbeing::Concern))
        .await?;
    assert!(duplicate);
    assert_eq!(again.id, visited_once.id);
    // The pairing it made, ended since.
    let again = h
        .store
        .pair(&volunteer.id, &elder.id, "operator-1", Some(&pair_key))
        .await?;
    assert_eq!((again.id, again.ended_at), (paired.id, ended.ended_at));
    let again = h
        .store
        .unpair(&elder.id, "搬家", "operator-1", Some(&unpair_key))
        .await?;
    assert_eq!(again, ended);
    let (again, duplicate) = h
        .store
        .book(&book_key, day_care(&elder.id, 1), false, "worker-li")
        .await?;
    assert!(duplicate);
    assert_eq!(again, served, "the booking it made, as it stands");
    let (again, duplicate) = h
        .store
        .settle(
            &settle_key,
            &booked.id,
            Settlement::Served,
            "worker-li",
            true,
        )
        .await?;
    assert!(duplicate);
    assert_eq!(again, served);

    assert_eq!(written(&h).await?, before, "nothing written again");
    Ok(())
}

pub(crate) async fn a_pair_key_and_an_unpair_key_are_not_interchangeable(
    h: Harness,
) -> anyhow::Result<()> {
    let elder = registered(&h, "r-1").await?;
    let volunteer = volunteer(&h, "v-1").await?;
    h.store
        .pair(&volunteer, &elder, "operator-1", Some(&key("p-1")))
        .await?;
    h.store
        .unpair(&elder, "搬家", "operator-1", Some(&key("u-1")))
        .await?;

    // The elder is free: a Pair under the Unpair's key is refused all the same.
    assert_refused(
        "Pair with an Unpair's key",
        &h.store
            .pair(&volunteer, &elder, "operator-1", Some(&key("u-1")))
            .await,
    );
    assert_eq!(h.store.elder(&elder).await?.volunteer_id, None);
    let again = h
        .store
        .pair(&volunteer, &elder, "operator-1", Some(&key("p-2")))
        .await?;
    // Paired again: an Unpair under a Pair's key (the first's, this one's) is refused.
    for pair_key in ["p-1", "p-2"] {
        assert_refused(
            pair_key,
            &h.store
                .unpair(&elder, "搬家", "operator-1", Some(&key(pair_key)))
                .await,
        );
    }
    assert_eq!(
        h.store.elder(&elder).await?.volunteer_id,
        Some(volunteer),
        "still paired"
    );
    assert!(again.ended_at.is_none());
    assert_eq!(h.count("SELECT COUNT(*) FROM pairings").await?, 2);
    // Created, ended, created.
    assert_eq!(
        outbox_of(&h, "shequ.care.pairing.created.v1").await?
            + outbox_of(&h, "shequ.care.pairing.ended.v1").await?,
        3
    );
    Ok(())
}

pub(crate) async fn a_booking_key_and_a_settlement_key_are_not_interchangeable(
    h: Harness,
) -> anyhow::Result<()> {
    let elder = registered(&h, "r-1").await?;
    let (first, _) = h
        .store
        .book(&key("b-1"), day_care(&elder, 1), false, "worker-li")
        .await?;
    let (second, _) = h
        .store
        .book(&key("b-2"), day_care(&elder, 2), false, "worker-li")
        .await?;
    h.store
        .settle(
            &key("c-1"),
            &first.id,
            Settlement::Cancelled,
            "worker-li",
            true,
        )
        .await?;
    let before = written(&h).await?;

    assert_refused(
        "BookService with a settlement's key",
        &h.store
            .book(&key("c-1"), day_care(&elder, 3), false, "worker-li")
            .await,
    );
    assert_refused(
        "the booking of a settlement's key",
        &h.store.booking_by_request(&key("c-1")).await,
    );
    for booking_key in ["b-1", "b-2"] {
        assert_refused(
            booking_key,
            &h.store
                .settle(
                    &key(booking_key),
                    &second.id,
                    Settlement::Cancelled,
                    "worker-li",
                    true,
                )
                .await,
        );
    }
    assert_eq!(written(&h).await?, before, "nothing written");
    assert_eq!(
        h.store
            .booking_by_request(&key("b-2"))
            .await?
            .map(|b| b.status),
        Some(BookingStatus::Booked)
    );
    Ok(())
}

pub(crate) async fn a_booking_stored_as_alliance_unavailable_is_searched_again_only_by_the_same_request(
    h: Harness,
) -> anyhow::Result<()> {
    let elder = registered(&h, "r-1").await?;
    let lunch = request("b-1", "BookService meal tomorrow");
    let (unavailable, _) = h
        .store
        .book(
            &lunch,
            meal(&elder, BookingStatus::AllianceUnavailable),
            true,
            "worker-li",
        )
        .await?;
    let before = written(&h).await?;

    // Another meal under the key, with a merchant found: refused, and the
    // stored booking stays as it was.
    let other = request("b-1", "BookService meal the day after");
    let mut later = meal(&elder, BookingStatus::Booked);
    later.scheduled_for += days(1);
    assert_refused(
        "a different booking",
        &h.store.book(&other, later, true, "worker-li").await,
    );
    assert_refused(
        "the booking of a different request",
        &h.store.booking_by_request(&other).await,
    );
    assert_eq!(written(&h).await?, before, "nothing written");
    assert_eq!(
        h.store.booking_by_request(&lunch).await?,
        Some(unavailable.clone())
    );
    assert_eq!(outbox_of(&h, "shequ.care.service.booked.v1").await?, 0);

    // The same request, decided this time: the stored booking takes it.
    let (booked, duplicate) = h
        .store
        .book(
            &lunch,
            meal(&elder, BookingStatus::Booked),
            true,
            "worker-li",
        )
        .await?;
    assert!(duplicate);
    assert_eq!(booked.id, unavailable.id);
    assert_eq!(booked.status, BookingStatus::Booked);
    assert_eq!(outbox_of(&h, "shequ.care.service.booked.v1").await?, 1);
    Ok(())
}

pub(crate) async fn a_key_kept_before_digests_is_taken_as_the_same_request(
    h: Harness,
) -> anyhow::Result<()> {
    let elder = registered(&h, "r-1").await?;
    let volunteer = volunteer(&h, "v-1").await?;
    let (visited, _) = h
        .store
        .record_visit(
            &key("visit-1"),
            visit(&elder, h.store.now(), Wellbeing::Good),
        )
        .await?;
    let paired = h
        .store
        .pair(&volunteer, &elder, "operator-1", Some(&key("p-1")))
        .await?;
    let (booked, _) = h
        .store
        .book(&key("b-1"), day_care(&elder, 1), false, "worker-li")
        .await?;
    let (cancelled, _) = h
        .store
        .settle(
            &key("c-1"),
            &booked.id,
            Settlement::Cancelled,
            "worker-li",
            true,
        )
        .await?;
    // As a release before digests left them.
    for sql in [
        "UPDATE elders SET request_digest = NULL",
        "UPDATE volunteers SET request_digest = NULL",
        "UPDATE visits SET request_digest = NULL",
        "UPDATE pairings SET request_digest = NULL, end_request_digest = NULL",
        "UPDATE bookings SET request_digest = NULL, settle_request_digest = NULL",
    ] {
        h.execute(sql, &[]).await?;
    }
    let before = written(&h).await?;

    let retry = |id: &str| request(id, "a retry, digested now");
    let (again, duplicate) = h
        .store
        .register_elder(&retry("r-1"), crate::wang(), "operator-1")
        .await?;
    assert!(duplicate);
    assert_eq!(again.id, elder);
    let phone = Phone::parse("phone", "13900001111")?;
    let grid = GridId::from_stored("xinyuan-1");
    let (again, duplicate) = h
        .store
        .register_volunteer(&retry("v-1"), "张党员", &phone, &grid, true)
        .await?;
    assert!(duplicate);
    assert_eq!(again.id, volunteer);
    let (again, duplicate) = h
        .store
        .record_visit(
            &retry("visit-1"),
            visit(&elder, h.store.now(), Wellbeing::Good),
        )
        .await?;
    assert!(duplicate);
    assert_eq!(again.id, visited.id);
    let again = h
        .store
        .pair(&volunteer, &elder, "operator-1", Some(&retry("p-1")))
        .await?;
    assert_eq!(again, paired);
    let (again, duplicate) = h
        .store
        .book(&retry("b-1"), day_care(&elder, 1), false, "worker-li")
        .await?;
    assert!(duplicate);
    assert_eq!(again, cancelled);
    let (again, duplicate) = h
        .store
        .settle(
            &retry("c-1"),
            &booked.id,
            Settlement::Cancelled,
            "worker-li",
            true,
        )
        .await?;
    assert!(duplicate);
    assert_eq!(again, cancelled);
    // A Pair's key is still no Unpair's.
    assert_refused(
        "Unpair with a Pair's key",
        &h.store
            .unpair(&elder, "搬家", "operator-1", Some(&retry("p-1")))
            .await,
    );
    assert_eq!(written(&h).await?, before, "nothing written");
    Ok(())
}

/// A start for two racing requests, so that they overlap.
fn start_line() -> Arc<Barrier> {
    Arc::new(Barrier::new(2))
}

/// Of two results of racing requests under one key, one is `Ok` and the
/// other refused naming `request_id` (never a database error).
fn one_won<T: std::fmt::Debug>(
    what: &str,
    results: Vec<Result<Result<T, StoreError>, tokio::task::JoinError>>,
) -> anyhow::Result<()> {
    let (mut won, mut refused) = (0, 0);
    for result in results {
        match result? {
            Ok(_) => won += 1,
            other if refused_naming_request_id(&other) => refused += 1,
            other => anyhow::bail!("{what}: {other:?}"),
        }
    }
    assert_eq!((won, refused), (1, 1), "{what}");
    Ok(())
}

pub(crate) async fn racing_different_requests_under_one_key_one_wins_and_the_other_is_refused(
    h: Harness,
) -> anyhow::Result<()> {
    let elders = [registered(&h, "r-1").await?, registered(&h, "r-2").await?];
    let volunteers = [volunteer(&h, "v-1").await?, volunteer(&h, "v-2").await?];
    let now = h.store.now();

    let start = start_line();
    let visits = elders.iter().map(|elder| {
        let (store, elder, start) = (h.store.clone(), elder.clone(), Arc::clone(&start));
        let key = request("visit-1", &format!("RecordVisit {elder}"));
        tokio::spawn(async move {
            start.wait().await;
            store
                .record_visit(&key, visit(&elder, now, Wellbeing::Good))
                .await
        })
    });
    one_won("RecordVisit", join_all(visits).await)?;
    assert_eq!(h.count("SELECT COUNT(*) FROM visits").await?, 1);

    let start = start_line();
    let pairings = elders.iter().zip(&volunteers).map(|(elder, volunteer)| {
        let (store, start) = (h.store.clone(), Arc::clone(&start));
        let (elder, volunteer) = (elder.clone(), volunteer.clone());
        let key = request("p-1", &format!("Pair {volunteer} {elder}"));
        tokio::spawn(async move {
            start.wait().await;
            store
                .pair(&volunteer, &elder, "operator-1", Some(&key))
                .await
        })
    });
    one_won("Pair", join_all(pairings).await)?;
    assert_eq!(h.count("SELECT COUNT(*) FROM pairings").await?, 1);
    // Both paired (the loser under a key of its own), for the Unpairs.
    for (elder, volunteer) in elders.iter().zip(&volunteers) {
        if h.store.elder(elder).await?.volunteer_id.is_none() {
            h.store
                .pair(volunteer, elder, "operator-1", Some(&key("p-2")))
                .await?;
        }
    }
    let start = start_line();
    let unpairings = elders.iter().map(|elder| {
        let (store, elder, start) = (h.store.clone(), elder.clone(), Arc::clone(&start));
        let key = request("u-1", &format!("Unpair {elder}"));
        tokio::spawn(async move {
            start.wait().await;
            store.unpair(&elder, "搬家", "operator-1", Some(&key)).await
        })
    });
    one_won("Unpair", join_all(unpairings).await)?;
    assert_eq!(
        h.count("SELECT COUNT(*) FROM pairings WHERE ended_at IS NOT NULL")
            .await?,
        1
    );

    let start = start_line();
    let bookings = elders.iter().map(|elder| {
        let (store, elder, start) = (h.store.clone(), elder.clone(), Arc::clone(&start));
        let key = request("b-1", &format!("BookService {elder}"));
        tokio::spawn(async move {
            start.wait().await;
            store
                .book(&key, day_care(&elder, 1), false, "worker-li")
                .await
        })
    });
    one_won("BookService", join_all(bookings).await)?;
    assert_eq!(h.count("SELECT COUNT(*) FROM bookings").await?, 1);

    let mut booked = Vec::new();
    for (n, elder) in elders.iter().enumerate() {
        let (booking, _) = h
            .store
            .book(
                &key(&format!("b-{}", n + 2)),
                day_care(elder, 1),
                false,
                "worker-li",
            )
            .await?;
        booked.push(booking.id);
    }
    let start = start_line();
    let settlements = booked.iter().map(|id| {
        let (store, id, start) = (h.store.clone(), id.clone(), Arc::clone(&start));
        let key: RequestKey = request("c-1", &format!("CancelBooking {id}"));
        tokio::spawn(async move {
            start.wait().await;
            store
                .settle(&key, &id, Settlement::Cancelled, "worker-li", true)
                .await
        })
    });
    one_won("CancelBooking", join_all(settlements).await)?;
    assert_eq!(
        h.count("SELECT COUNT(*) FROM bookings WHERE status = 'cancelled'")
            .await?,
        1
    );
    Ok(())
}
