//! The cases, each over [`Alliance`] only (and counts of what it stored).

use std::collections::BTreeSet;

use anyhow::ensure;
use chrono::Duration;
use shequ_chassis::clock::Clock;
use shequ_chassis::database::DbError;
use shequ_chassis::inbox::Outcome;
use shequ_merchant_alliance::domain::awards::Period;
use shequ_merchant_alliance::domain::cells;
use shequ_merchant_alliance::domain::credit::{ComplaintResolution, CreditReason, MealBooking};
use shequ_merchant_alliance::domain::merchant::{ActivityKind, Category, MerchantStatus};
use shequ_merchant_alliance::domain::nearby::{Search, select};
use shequ_merchant_alliance::domain::{BookingId, ComplaintId, GridId, MerchantId};
use shequ_merchant_alliance::store::{Alliance, ListFilter, StoreError};

pub(crate) use crate::coverage::{
    a_load_of_buildings_replaces_the_whole_set_and_reads_back_by_scope,
    a_stored_coverage_row_that_does_not_decode_is_an_error,
    coverage_applied_writes_its_rows_and_one_event_per_flip,
    coverage_reads_the_active_merchants_only_with_their_kinds,
};
use crate::{Harness, JINSHUI, dining, hours, keyed, north, request, start, tag};

const COMPLAINTS: &str = "merchant-alliance-complaints";
const CARE: &str = "merchant-alliance-care";

async fn registered(
    h: &Harness,
    key: &str,
    details: shequ_merchant_alliance::domain::merchant::MerchantDetails,
) -> anyhow::Result<MerchantId> {
    let (merchant, duplicate) = h
        .store
        .register(&request(key), details, "operator-1")
        .await?;
    ensure!(!duplicate, "{key} is new");
    Ok(merchant.id)
}

/// No merchant of the alliance.
fn stranger() -> MerchantId {
    MerchantId::from_stored("not-in-the-alliance")
}

/// A search of the 15-minute circle (1,200 m) around the reference point.
async fn nearby(
    h: &Harness,
    category: Category,
    tag_asked: Option<&str>,
    open_now: bool,
) -> anyhow::Result<Vec<MerchantId>> {
    let search = Search {
        center: JINSHUI,
        tag: tag_asked.map(tag),
        walk_minutes: 15,
        open_now,
        limit: 20,
    };
    let radius = search.radius_metres(80.0);
    let cells = cells::covering(JINSHUI, radius);
    let found = h.store.nearby(&search, category, &cells, radius).await?;
    Ok(found.into_iter().map(|f| f.merchant.id).collect())
}

pub(crate) async fn a_registration_is_once_per_request_id_and_reads_back_as_answered(
    h: Harness,
) -> anyhow::Result<()> {
    // A clock reading with nanoseconds: what is stored is whole milliseconds.
    h.clock.advance(Duration::nanoseconds(123_456_789));
    let (answered, duplicate) = h
        .store
        .register(
            &request("r-1"),
            dining("老王面馆", 100.0, &["elder_meals", "takeaway"]),
            "operator-1",
        )
        .await?;
    assert!(!duplicate);
    assert_eq!(answered.credit_score, 100);
    assert_eq!(
        answered.registered_at.timestamp_subsec_nanos() % 1_000_000,
        0
    );
    assert_eq!(
        h.store.get(&answered.id).await?,
        answered,
        "every field as answered"
    );
    let (again, duplicate) = h
        .store
        .register(
            &request("r-1"),
            dining("老王面馆", 100.0, &["elder_meals", "takeaway"]),
            "operator-1",
        )
        .await?;
    assert!(duplicate, "the same request again");
    assert_eq!(again, answered, "the first registration");
    assert_eq!(h.count("SELECT COUNT(*) FROM merchants").await?, 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox").await?, 1);
    let missing = h.store.get(&stranger()).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
    Ok(())
}

pub(crate) async fn update_suspend_and_reinstate_change_the_merchant_and_announce_each(
    h: Harness,
) -> anyhow::Result<()> {
    let id = registered(&h, "r-1", dining("老王面馆", 100.0, &[])).await?;
    h.clock.advance(Duration::minutes(5));
    let mut details = dining("老王面馆（新店）", 250.0, &["elder_meals"]);
    details.opening_hours = vec![hours("06:00", "14:00"), hours("17:00", "02:00")];
    details.address = None;
    let updated = h.store.update(&id, details.clone(), "operator-1").await?;
    assert_eq!(updated.details, details);
    assert_eq!(updated.updated_at, h.store.now());
    assert_eq!(h.store.get(&id).await?, updated);

    let suspended = h
        .store
        .suspend(&id, "卫生检查未通过".into(), "operator-1")
        .await?;
    assert_eq!(suspended.status, MerchantStatus::Suspended);
    assert_eq!(
        suspended.suspended_reason.as_deref(),
        Some("卫生检查未通过")
    );
    let again = h.store.suspend(&id, "again".into(), "operator-1").await;
    assert!(matches!(again, Err(StoreError::Rule(_))), "{again:?}");
    assert_eq!(
        h.store.get(&id).await?,
        suspended,
        "a refused change changes nothing"
    );

    let reinstated = h.store.reinstate(&id, "operator-1").await?;
    assert_eq!(reinstated.status, MerchantStatus::Active);
    assert_eq!(reinstated.suspended_reason, None);
    let again = h.store.reinstate(&id, "operator-1").await;
    assert!(matches!(again, Err(StoreError::Rule(_))), "{again:?}");
    // registered, updated, suspended, reinstated.
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox").await?, 4);
    let missing = h
        .store
        .update(&stranger(), dining("x", 0.0, &[]), "operator-1")
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
    Ok(())
}

pub(crate) async fn the_list_filters_and_pages_without_gaps_or_repeats(
    h: Harness,
) -> anyhow::Result<()> {
    let mut ids = Vec::new();
    for i in 0..7 {
        let mut details = dining(&format!("商户 {i}"), f64::from(i) * 10.0, &[]);
        if i % 2 == 1 {
            details.grid_id = GridId::from_stored("xinyuan-2");
            details.category = Category::Repair;
        }
        ids.push(registered(&h, &format!("r-{i}"), details).await?);
    }
    h.store
        .suspend(&ids[2], "closed".into(), "operator-1")
        .await?;
    let mut seen = Vec::new();
    let mut after: Option<MerchantId> = None;
    loop {
        let (page, next) = h
            .store
            .list(&ListFilter::default(), 3, after.as_ref())
            .await?;
        ensure!(page.len() <= 3, "a page of at most 3");
        seen.extend(page.into_iter().map(|m| m.id));
        match next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "every merchant once, in id order");
    let grid = ListFilter {
        grid_id: Some(GridId::from_stored("xinyuan-2")),
        ..ListFilter::default()
    };
    let (in_grid, next) = h.store.list(&grid, 10, None).await?;
    assert_eq!(in_grid.len(), 3);
    assert!(next.is_none());
    let active_dining = ListFilter {
        category: Some(Category::Dining),
        status: Some(MerchantStatus::Active),
        ..ListFilter::default()
    };
    let (found, _) = h.store.list(&active_dining, 10, None).await?;
    let found: BTreeSet<MerchantId> = found.into_iter().map(|m| m.id).collect();
    let expected: BTreeSet<MerchantId> = [0, 4, 6].iter().map(|i| ids[*i].clone()).collect();
    assert_eq!(found, expected);
    Ok(())
}

pub(crate) async fn nearby_finds_active_merchants_of_the_category_within_the_walk_nearest_first(
    h: Harness,
) -> anyhow::Result<()> {
    let far = registered(&h, "r-far", dining("远", 900.0, &[])).await?;
    let near = registered(&h, "r-near", dining("近", 100.0, &[])).await?;
    let middle = registered(&h, "r-middle", dining("中", 400.0, &[])).await?;
    registered(&h, "r-outside", dining("太远", 1_500.0, &[])).await?;
    let suspended = registered(&h, "r-suspended", dining("停业", 50.0, &[])).await?;
    h.store
        .suspend(&suspended, "closed".into(), "operator-1")
        .await?;
    let mut repair = dining("修理铺", 20.0, &[]);
    repair.category = Category::Repair;
    let repair = registered(&h, "r-repair", repair).await?;
    assert_eq!(
        nearby(&h, Category::Dining, None, false).await?,
        vec![near, middle, far]
    );
    assert_eq!(
        nearby(&h, Category::Repair, None, false).await?,
        vec![repair]
    );
    assert!(nearby(&h, Category::Health, None, false).await?.is_empty());
    Ok(())
}

pub(crate) async fn nearby_by_tag_agrees_with_what_each_merchant_offers(
    h: Harness,
) -> anyhow::Result<()> {
    // Tags that are prefixes, suffixes and look-alikes of each other: the
    // database's match (`json_each` on SQLite, `text[]` on PostgreSQL) must
    // say what `Merchant::offers` says, no more and no less.
    let tag_sets: [&[&str]; 7] = [
        &["elder_meals"],
        &["elder_meals_plus"],
        &["takeaway", "elder_meals"],
        &["elder"],
        &["elderxmeals"],
        &[],
        &["takeaway"],
    ];
    for (i, tags) in tag_sets.iter().enumerate() {
        registered(
            &h,
            &format!("r-{i}"),
            dining(&format!("商户 {i}"), 50.0 * i as f64 + 10.0, tags),
        )
        .await?;
    }
    let (all, _) = h.store.list(&ListFilter::default(), 100, None).await?;
    for asked in ["elder_meals", "takeaway", "elder", "meals", "elder_"] {
        let search = Search {
            center: JINSHUI,
            tag: Some(tag(asked)),
            walk_minutes: 15,
            open_now: false,
            limit: 20,
        };
        let expected: Vec<MerchantId> = select(&search, 1_200.0, all.clone(), h.clock.now())
            .into_iter()
            .map(|f| f.merchant.id)
            .collect();
        let found = nearby(&h, Category::Dining, Some(asked), false).await?;
        assert_eq!(found, expected, "tag {asked}");
    }
    assert_eq!(
        nearby(&h, Category::Dining, Some("elder_meals"), false)
            .await?
            .len(),
        2
    );
    Ok(())
}

pub(crate) async fn nearby_open_now_follows_the_opening_hours(h: Harness) -> anyhow::Result<()> {
    let day = registered(&h, "r-day", dining("白天", 100.0, &["elder_meals"])).await?;
    let mut evening = dining("夜宵", 200.0, &[]);
    evening.opening_hours = vec![hours("18:00", "02:00")];
    let evening = registered(&h, "r-evening", evening).await?;
    let mut no_hours = dining("不详", 300.0, &[]);
    no_hours.opening_hours = Vec::new();
    let no_hours = registered(&h, "r-none", no_hours).await?;
    // Monday 10:00 in the district.
    assert_eq!(
        nearby(&h, Category::Dining, None, true).await?,
        vec![day.clone()]
    );
    assert_eq!(
        nearby(&h, Category::Dining, None, false).await?,
        vec![day.clone(), evening.clone(), no_hours]
    );
    // 23:00, and 03:00 when nothing is open.
    h.clock.advance(Duration::hours(13));
    assert_eq!(
        nearby(&h, Category::Dining, None, true).await?,
        vec![evening]
    );
    assert!(
        nearby(&h, Category::Dining, Some("elder_meals"), true)
            .await?
            .is_empty()
    );
    h.clock.advance(Duration::hours(4));
    assert!(nearby(&h, Category::Dining, None, true).await?.is_empty());
    Ok(())
}

pub(crate) async fn an_activity_credits_once_per_request_id_and_the_ledger_adds_up(
    h: Harness,
) -> anyhow::Result<()> {
    let id = registered(&h, "r-1", dining("老王面馆", 100.0, &[])).await?;
    let at = h.store.now() - Duration::days(1);
    let (first, duplicate) = h
        .store
        .record_activity(
            &request("a-1"),
            &id,
            ActivityKind::Welfare,
            "义务理发",
            at,
            "operator-1",
        )
        .await?;
    assert!(!duplicate);
    assert_eq!((first.seq, first.delta, first.score_after), (1, 2, 102));
    assert_eq!(first.reason, CreditReason::WelfareActivity);
    let (again, duplicate) = h
        .store
        .record_activity(
            &request("a-1"),
            &id,
            ActivityKind::Welfare,
            "义务理发",
            at,
            "operator-1",
        )
        .await?;
    assert!(duplicate, "the same request again");
    assert_eq!(again, first);
    let (second, _) = h
        .store
        .record_activity(
            &request("a-2"),
            &id,
            ActivityKind::Environment,
            "清理楼道",
            at,
            "operator-1",
        )
        .await?;
    assert_eq!((second.seq, second.score_after), (2, 104));
    let (score, entries) = h.store.ledger(&id).await?;
    assert_eq!(score, 104);
    assert_eq!(entries, vec![first, second]);
    assert_eq!(entries.iter().map(|e| e.delta).sum::<i32>() + 100, score);
    let (fresh, _) = {
        let other = registered(&h, "r-2", dining("新店", 100.0, &[])).await?;
        h.store.ledger(&other).await?
    };
    assert_eq!(fresh, 100);
    let missing = h
        .store
        .record_activity(
            &request("a-3"),
            &stranger(),
            ActivityKind::Welfare,
            "x",
            at,
            "operator-1",
        )
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
    assert!(matches!(
        h.store.ledger(&stranger()).await,
        Err(StoreError::NotFound(_))
    ));
    // registered twice, two credit changes.
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox").await?, 4);
    Ok(())
}

pub(crate) async fn a_deduction_is_applied_once_per_resolution_and_given_back_by_a_later_one(
    h: Harness,
) -> anyhow::Result<()> {
    let id = registered(&h, "r-1", dining("老王面馆", 100.0, &[])).await?;
    let first_resolution = start() + Duration::milliseconds(1_500);
    let resolution = |at, at_fault| ComplaintResolution {
        merchant_id: id.clone(),
        complaint_id: ComplaintId::from_stored("c-1"),
        resolved_at: at,
        at_fault,
    };
    let (outcome, entry) = h
        .store
        .resolve_complaint(
            crate::once(COMPLAINTS, "e-1"),
            &resolution(first_resolution, true),
            "e-1",
        )
        .await?;
    assert_eq!(outcome, Outcome::Applied);
    let entry = entry.ok_or_else(|| anyhow::anyhow!("no deduction"))?;
    assert_eq!((entry.delta, entry.score_after), (-10, 90));
    assert_eq!(entry.reason, CreditReason::ComplaintAtFault);
    assert_eq!(entry.source_event_id.as_deref(), Some("e-1"));
    // The same event again: claimed before.
    let (outcome, entry) = h
        .store
        .resolve_complaint(
            crate::once(COMPLAINTS, "e-1"),
            &resolution(first_resolution, true),
            "e-1",
        )
        .await?;
    assert_eq!((outcome, entry), (Outcome::AlreadyProcessed, None));
    // The same resolution under a new event id: the business key holds.
    let (outcome, entry) = h
        .store
        .resolve_complaint(
            crate::once(COMPLAINTS, "e-2"),
            &resolution(first_resolution, true),
            "e-2",
        )
        .await?;
    assert_eq!((outcome, entry), (Outcome::Applied, None));
    assert_eq!(h.store.ledger(&id).await?.0, 90);
    // A later resolution finding no fault gives the deduction back.
    let (_, entry) = h
        .store
        .resolve_complaint(
            crate::once(COMPLAINTS, "e-3"),
            &resolution(first_resolution + Duration::hours(2), false),
            "e-3",
        )
        .await?;
    let entry = entry.ok_or_else(|| anyhow::anyhow!("no reversal"))?;
    assert_eq!((entry.delta, entry.score_after), (10, 100));
    assert_eq!(entry.reason, CreditReason::ComplaintFaultReversed);
    // An older one arriving late changes nothing.
    let (_, entry) = h
        .store
        .resolve_complaint(
            crate::once(COMPLAINTS, "e-4"),
            &resolution(first_resolution + Duration::hours(1), true),
            "e-4",
        )
        .await?;
    assert_eq!(entry, None);
    // A complaint about a merchant not in the alliance changes nothing.
    let stranger = ComplaintResolution {
        merchant_id: stranger(),
        ..resolution(first_resolution, true)
    };
    let (outcome, entry) = h
        .store
        .resolve_complaint(crate::once(COMPLAINTS, "e-5"), &stranger, "e-5")
        .await?;
    assert_eq!((outcome, entry), (Outcome::Applied, None));
    let (score, entries) = h.store.ledger(&id).await?;
    assert_eq!(score, 100);
    assert_eq!(entries.len(), 2);
    assert_eq!(h.count("SELECT COUNT(*) FROM processed_events").await?, 5);
    // registered, deducted, given back.
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox").await?, 3);
    Ok(())
}

pub(crate) async fn a_meal_discount_credits_once_per_booking(h: Harness) -> anyhow::Result<()> {
    let id = registered(&h, "r-1", dining("老王面馆", 100.0, &["elder_meals"])).await?;
    let booking = MealBooking {
        merchant_id: id.clone(),
        booking_id: BookingId::from_stored("b-1"),
        booked_for: start() + Duration::hours(2),
    };
    let (outcome, entry) = h
        .store
        .credit_meal_discount(crate::once(CARE, "e-1"), &booking, "e-1")
        .await?;
    assert_eq!(outcome, Outcome::Applied);
    let entry = entry.ok_or_else(|| anyhow::anyhow!("no credit"))?;
    assert_eq!((entry.delta, entry.score_after), (1, 101));
    assert_eq!(entry.reason, CreditReason::ElderMealDiscount);
    assert_eq!(entry.reference, "b-1");
    let (outcome, _) = h
        .store
        .credit_meal_discount(crate::once(CARE, "e-1"), &booking, "e-1")
        .await?;
    assert_eq!(outcome, Outcome::AlreadyProcessed);
    // The booking announced again under a new event id credits nothing.
    let (outcome, entry) = h
        .store
        .credit_meal_discount(crate::once(CARE, "e-2"), &booking, "e-2")
        .await?;
    assert_eq!((outcome, entry), (Outcome::Applied, None));
    let other = MealBooking {
        booking_id: BookingId::from_stored("b-2"),
        ..booking.clone()
    };
    let (_, entry) = h
        .store
        .credit_meal_discount(crate::once(CARE, "e-3"), &other, "e-3")
        .await?;
    assert_eq!(entry.map(|e| e.score_after), Some(102));
    let unknown = MealBooking {
        merchant_id: stranger(),
        ..booking
    };
    let (outcome, entry) = h
        .store
        .credit_meal_discount(crate::once(CARE, "e-4"), &unknown, "e-4")
        .await?;
    assert_eq!((outcome, entry), (Outcome::Applied, None));
    assert_eq!(h.count("SELECT COUNT(*) FROM activities").await?, 2);
    assert_eq!(h.store.ledger(&id).await?.0, 102);
    Ok(())
}

pub(crate) async fn awards_are_once_per_merchant_and_period_with_the_records_they_judge(
    h: Harness,
) -> anyhow::Result<()> {
    let model = registered(&h, "r-1", dining("模范", 100.0, &[])).await?;
    let mut plain = dining("普通", 200.0, &[]);
    plain.party_member_owner = false;
    let plain = registered(&h, "r-2", plain).await?;
    let now = h.store.now();
    for (key, at) in [
        ("a-1", now),
        ("a-2", now - Duration::hours(1)),
        ("a-old", now - Duration::days(60)),
    ] {
        h.store
            .record_activity(
                &request(key),
                &model,
                ActivityKind::Welfare,
                "义务劳动",
                at,
                "operator-1",
            )
            .await?;
    }
    h.store
        .resolve_complaint(
            crate::once(COMPLAINTS, "e-1"),
            &ComplaintResolution {
                merchant_id: plain.clone(),
                complaint_id: ComplaintId::from_stored("c-1"),
                resolved_at: now,
                at_fault: true,
            },
            "e-1",
        )
        .await?;
    let period = Period::parse("period", "2026-Q4")?;
    let records = h.store.award_records(&period).await?;
    let record = |id: &MerchantId| {
        records
            .iter()
            .find(|(merchant, _, _)| merchant.id == *id)
            .map(|(_, record, already)| (record.clone(), *already))
            .ok_or_else(|| anyhow::anyhow!("no record of {id}"))
    };
    let (model_record, already) = record(&model)?;
    assert!(!already);
    assert_eq!(
        model_record.welfare_activities, 2,
        "the one before the period does not count"
    );
    assert_eq!(model_record.at_fault_complaints, 0);
    assert_eq!(model_record.credit_score, 106);
    assert!(model_record.party_member_owner);
    let (plain_record, _) = record(&plain)?;
    assert_eq!(plain_record.at_fault_complaints, 1);
    assert_eq!(plain_record.credit_score, 90);
    assert!(!plain_record.party_member_owner);

    let (merchant, _, _) = records
        .iter()
        .find(|(merchant, _, _)| merchant.id == model)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no model"))?;
    assert!(
        h.store
            .award(&merchant, &model_record, &period, "operator-1")
            .await?
    );
    assert!(
        !h.store
            .award(&merchant, &model_record, &period, "operator-1")
            .await?
    );
    let records = h.store.award_records(&period).await?;
    assert!(
        records
            .iter()
            .any(|(m, _, already)| m.id == model && *already)
    );
    assert!(
        records
            .iter()
            .any(|(m, _, already)| m.id == plain && !*already)
    );
    let next = Period::parse("period", "2027-Q1")?;
    assert!(
        h.store
            .award_records(&next)
            .await?
            .iter()
            .all(|(_, record, already)| {
                !already && record.welfare_activities == 0 && record.at_fault_complaints == 0
            })
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM awards").await?, 1);
    assert_eq!(
        h.count("SELECT COUNT(*) FROM outbox WHERE subject LIKE 'shequ.alliance.model_merchant%'")
            .await?,
        1
    );
    Ok(())
}

fn undecodable<T: std::fmt::Debug>(result: Result<T, StoreError>) -> anyhow::Result<()> {
    ensure!(
        matches!(result, Err(StoreError::Database(DbError::Decode(_)))),
        "expected a decoding error, got {result:?}"
    );
    Ok(())
}

pub(crate) async fn a_stored_value_that_does_not_decode_is_an_error_not_a_default(
    h: Harness,
) -> anyhow::Result<()> {
    let id = registered(&h, "r-1", dining("老王面馆", 100.0, &["elder_meals"])).await?;
    let (entry, _) = h
        .store
        .record_activity(
            &request("a-1"),
            &id,
            ActivityKind::Welfare,
            "义务劳动",
            h.store.now(),
            "operator-1",
        )
        .await?;
    assert_eq!(entry.score_after, 102);
    // A score out of range is not 0.
    h.execute(
        "UPDATE merchants SET credit_score = 99999999999 WHERE id = $1",
        &[id.as_str()],
    )
    .await?;
    undecodable(h.store.get(&id).await)?;
    undecodable(h.store.ledger(&id).await)?;
    undecodable(h.store.list(&ListFilter::default(), 10, None).await)?;
    h.execute(
        "UPDATE merchants SET credit_score = 102, category = 'bakery' WHERE id = $1",
        &[id.as_str()],
    )
    .await?;
    undecodable(h.store.get(&id).await)?;
    h.execute(
        "UPDATE merchants SET category = 'dining', status = 'closed' WHERE id = $1",
        &[id.as_str()],
    )
    .await?;
    undecodable(h.store.get(&id).await)?;
    h.execute(
        "UPDATE merchants SET status = 'active' WHERE id = $1",
        &[id.as_str()],
    )
    .await?;
    assert_eq!(h.store.get(&id).await?.credit_score, 102, "readable again");
    // A ledger entry with a reason no rule gives.
    h.execute(
        "UPDATE credit_ledger SET reason = 'bribe' WHERE merchant_id = $1",
        &[id.as_str()],
    )
    .await?;
    undecodable(h.store.ledger(&id).await)?;
    // A tag the domain refuses, found by a nearby search: an error, not a miss.
    let bad_tags = if h.url.starts_with("sqlite:") {
        "UPDATE merchants SET service_tags = '[\"Elder Meals\"]' WHERE id = $1"
    } else {
        "UPDATE merchants SET service_tags = ARRAY['Elder Meals'] WHERE id = $1"
    };
    h.execute(bad_tags, &[id.as_str()]).await?;
    let search = Search {
        center: north(0.0),
        tag: None,
        walk_minutes: 15,
        open_now: false,
        limit: 20,
    };
    let cells = cells::covering(search.center, 1_200.0);
    undecodable(
        h.store
            .nearby(&search, Category::Dining, &cells, 1_200.0)
            .await,
    )?;
    // Opening hours that are not hours.
    let bad_hours = if h.url.starts_with("sqlite:") {
        "UPDATE merchants SET service_tags = '[]', opening_hours = '[{\"days\":[\"mon\"],\"opens\":\"25:00\",\"closes\":\"26:00\"}]' WHERE id = $1"
    } else {
        "UPDATE merchants SET service_tags = '{}', opening_hours = '[{\"days\":[\"mon\"],\"opens\":\"25:00\",\"closes\":\"26:00\"}]'::jsonb WHERE id = $1"
    };
    h.execute(bad_hours, &[id.as_str()]).await?;
    undecodable(h.store.get(&id).await)?;
    let open_now = Search {
        open_now: true,
        ..search
    };
    undecodable(
        h.store
            .nearby(&open_now, Category::Dining, &cells, 1_200.0)
            .await,
    )?;
    if h.url.starts_with("sqlite:") {
        // SQLite's own encodings: a flag is 0 or 1, an instant milliseconds.
        h.execute(
            "UPDATE merchants SET opening_hours = '[]', party_member_owner = 2 WHERE id = $1",
            &[id.as_str()],
        )
        .await?;
        undecodable(h.store.get(&id).await)?;
        h.execute(
            "UPDATE merchants SET party_member_owner = 1, registered_at = 9223372036854775807 WHERE id = $1",
            &[id.as_str()],
        )
        .await?;
        undecodable(h.store.get(&id).await)?;
    }
    Ok(())
}

/// Whether `result` is the refusal of a key reused for a different request.
fn refused_as_reused<T: std::fmt::Debug>(result: &Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Field(error)) if error.field == "request_id")
}

pub(crate) async fn a_registration_key_reused_for_a_different_request_is_refused_and_writes_nothing(
    h: Harness,
) -> anyhow::Result<()> {
    let (first, duplicate) = h
        .store
        .register(
            &keyed("r-1", "老王面馆"),
            dining("老王面馆", 100.0, &[]),
            "operator-1",
        )
        .await?;
    assert!(!duplicate);
    let reused = h
        .store
        .register(
            &keyed("r-1", "另一家"),
            dining("另一家", 300.0, &[]),
            "operator-1",
        )
        .await;
    assert!(refused_as_reused(&reused), "{reused:?}");
    assert_eq!(h.count("SELECT COUNT(*) FROM merchants").await?, 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox").await?, 1);
    assert_eq!(h.store.get(&first.id).await?, first, "unchanged");

    // The same request again, after the refusal: the first answer.
    let (again, duplicate) = h
        .store
        .register(
            &keyed("r-1", "老王面馆"),
            dining("老王面馆", 100.0, &[]),
            "operator-1",
        )
        .await?;
    assert!(duplicate);
    assert_eq!(again, first);

    // A key kept before digests (none stored) is taken as the same request.
    h.execute(
        "UPDATE merchants SET request_digest = NULL WHERE id = $1",
        &[first.id.as_str()],
    )
    .await?;
    let (kept, duplicate) = h
        .store
        .register(
            &keyed("r-1", "另一家"),
            dining("另一家", 300.0, &[]),
            "operator-1",
        )
        .await?;
    assert!(duplicate);
    assert_eq!(kept, first);
    assert_eq!(h.count("SELECT COUNT(*) FROM merchants").await?, 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox").await?, 1);
    Ok(())
}

pub(crate) async fn an_activity_key_reused_for_a_different_request_is_refused_and_writes_nothing(
    h: Harness,
) -> anyhow::Result<()> {
    let id = registered(&h, "r-1", dining("老王面馆", 100.0, &[])).await?;
    let other = registered(&h, "r-2", dining("新店", 200.0, &[])).await?;
    let at = h.store.now() - Duration::days(1);
    let (first, duplicate) = h
        .store
        .record_activity(
            &keyed("a-1", "义务理发"),
            &id,
            ActivityKind::Welfare,
            "义务理发",
            at,
            "operator-1",
        )
        .await?;
    assert!(!duplicate);
    // Another body under the key, for this merchant or another: refused.
    for merchant in [&id, &other] {
        let reused = h
            .store
            .record_activity(
                &keyed("a-1", "清理楼道"),
                merchant,
                ActivityKind::Environment,
                "清理楼道",
                at,
                "operator-1",
            )
            .await;
        assert!(refused_as_reused(&reused), "{reused:?}");
    }
    assert_eq!(h.count("SELECT COUNT(*) FROM activities").await?, 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM credit_ledger").await?, 1);
    // Two registrations, one credit change.
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox").await?, 3);
    assert_eq!(h.store.ledger(&id).await?, (102, vec![first.clone()]));
    assert_eq!(h.store.ledger(&other).await?, (100, Vec::new()));

    // The same request again, after the refusals: the first answer.
    let (again, duplicate) = h
        .store
        .record_activity(
            &keyed("a-1", "义务理发"),
            &id,
            ActivityKind::Welfare,
            "义务理发",
            at,
            "operator-1",
        )
        .await?;
    assert!(duplicate);
    assert_eq!(again, first);

    // A key kept before digests (none stored) is taken as the same request.
    h.execute("UPDATE activities SET request_digest = NULL", &[])
        .await?;
    let (kept, duplicate) = h
        .store
        .record_activity(
            &keyed("a-1", "清理楼道"),
            &id,
            ActivityKind::Environment,
            "清理楼道",
            at,
            "operator-1",
        )
        .await?;
    assert!(duplicate);
    assert_eq!(kept, first);
    assert_eq!(h.count("SELECT COUNT(*) FROM credit_ledger").await?, 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox").await?, 3);
    Ok(())
}

/// An attempt with a key: its body, and what the store answered (the answer
/// and whether it was a duplicate).
type Attempt<'a, T> = (&'a str, Result<(T, bool), StoreError>);

/// Of `attempts` with one key, each with its body: exactly one wrote, every
/// other with its body was answered with what it wrote, every other body
/// was refused. The body that wrote, and its answer.
fn one_wrote<T: Clone + PartialEq + std::fmt::Debug>(
    attempts: &[Attempt<'_, T>],
) -> anyhow::Result<(String, T)> {
    let written: Vec<_> = attempts
        .iter()
        .filter_map(|(body, result)| match result {
            Ok((answer, false)) => Some((body.to_string(), answer.clone())),
            _ => None,
        })
        .collect();
    let [(winner, answer)] = &written[..] else {
        anyhow::bail!("one attempt writes, got {attempts:?}");
    };
    for (body, result) in attempts {
        match result {
            Ok((got, _)) => ensure!(
                body == winner && got == answer,
                "only the same request is answered, and with the first answer: {attempts:?}"
            ),
            Err(_) => ensure!(
                body != winner && refused_as_reused(result),
                "only a different request is refused: {attempts:?}"
            ),
        }
    }
    Ok((winner.clone(), answer.clone()))
}

pub(crate) async fn concurrent_uses_of_a_key_write_once_and_refuse_the_different_request(
    h: Harness,
) -> anyhow::Result<()> {
    // Sent together, so some find the key free before another takes it (the
    // conflict path in the transaction), some find it taken (the read first).
    let bodies = ["甲", "乙", "甲", "乙", "甲", "乙", "甲", "乙"];
    let registrations = bodies.iter().map(|&body| {
        let store = h.store.clone();
        async move {
            let result = store
                .register(
                    &keyed("r-race", body),
                    dining(body, 100.0, &[]),
                    "operator-1",
                )
                .await;
            (body, result)
        }
    });
    let registrations = futures::future::join_all(registrations).await;
    let (_, merchant) = one_wrote(&registrations)?;
    assert_eq!(h.count("SELECT COUNT(*) FROM merchants").await?, 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox").await?, 1);

    let at = h.store.now() - Duration::hours(1);
    let activities = bodies.iter().map(|&body| {
        let store = h.store.clone();
        let merchant_id = merchant.id.clone();
        async move {
            let result = store
                .record_activity(
                    &keyed("a-race", body),
                    &merchant_id,
                    ActivityKind::Welfare,
                    body,
                    at,
                    "operator-1",
                )
                .await;
            (body, result)
        }
    });
    let activities = futures::future::join_all(activities).await;
    let (_, entry) = one_wrote(&activities)?;
    assert_eq!(h.store.ledger(&merchant.id).await?, (102, vec![entry]));
    assert_eq!(h.count("SELECT COUNT(*) FROM activities").await?, 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox").await?, 2);
    Ok(())
}
