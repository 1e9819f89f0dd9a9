//! The pensioner-care store's conformance suite: every case is written once
//! over [`Care`](shequ_pensioner_care::store::Care) and run against both
//! implementations, SQLite (a file of its own) and PostgreSQL (a database of
//! its own; a failure, not a skip, under `CI=true` when no server answers).

use chrono::{DateTime, Duration, TimeZone, Utc};
use shequ_chassis::geo::{Datum, Point};
use shequ_chassis::outbox::OutboxSignal;
use shequ_pensioner_care::domain::elder::{
    BirthDate, ElderDetails, Gender, LivingSituation, Location, district_today, parse_contacts,
};
use shequ_pensioner_care::domain::visits::{NewVisit, VisitKind, VisitPolicy, Visitor, Wellbeing};
use shequ_pensioner_care::domain::{BuildingId, ElderId, GridId};
use shequ_pensioner_care::store::{RequestKey, Store};
use shequ_tests::TestDatabase;

mod cases;
mod release_data;

/// One case's store, on a fresh database.
pub(crate) type Harness = shequ_tests::db::StoreCase<Store>;

/// Monday 2026-11-02, 10:00 in the district.
pub(crate) fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 2, 0, 0)
        .single()
        .unwrap_or_default()
}

/// The store on `database`, its clock at [`start`].
pub(crate) async fn open(database: TestDatabase) -> anyhow::Result<Harness> {
    Harness::open(
        database,
        "pensioner-care",
        shequ_pensioner_care::IDENTITY.migrations,
        start(),
        |db, clock| Store::new(db, OutboxSignal::default(), clock, VisitPolicy::default()),
    )
    .await
}

shequ_tests::conformance!(
    a_registration_reads_back_as_answered_and_happens_once_per_request_id,
    a_volunteer_takes_at_most_two_elders_however_many_pairings_race,
    of_two_volunteers_racing_for_one_elder_exactly_one_wins,
    pair_and_unpair_keys_answer_a_retry_with_the_first_pairing,
    a_visit_moves_the_anchor_and_a_late_one_does_not_move_it_back,
    overdue_notices_are_raised_once_per_missed_period,
    a_booking_is_recorded_once_per_request_id,
    a_retry_of_a_booking_stored_as_alliance_unavailable_stores_the_new_outcome,
    a_booked_booking_is_served_cancelled_or_missed_once_per_key_and_only_from_booked,
    a_visit_by_a_volunteer_id_that_names_no_volunteer_is_refused_and_writes_nothing,
    a_change_of_details_publishes_elder_updated_with_the_change,
    a_concern_visit_files_a_complaint_until_it_is_filed,
    a_complaint_outcome_is_noted_once_per_event_and_per_fact,
    a_stored_value_that_does_not_decode_is_an_error_not_a_default,
    the_overdue_sql_agrees_with_the_overdue_predicate,
    a_key_reused_with_a_different_request_is_refused_and_writes_nothing,
    the_same_request_again_gets_the_first_answer_for_every_keyed_write,
    a_pair_key_and_an_unpair_key_are_not_interchangeable,
    a_booking_key_and_a_settlement_key_are_not_interchangeable,
    a_booking_stored_as_alliance_unavailable_is_searched_again_only_by_the_same_request,
    a_key_kept_before_digests_is_taken_as_the_same_request,
    racing_different_requests_under_one_key_one_wins_and_the_other_is_refused,
    the_care_figures_of_a_month_follow_its_elders_visits_pairings_and_outcomes,
    a_home_visit_far_from_home_is_flagged_and_a_phone_call_never,
    a_requested_visit_is_met_by_the_next_visit_or_found_overdue_once,
    an_urgent_visit_and_a_complaint_about_an_elder_each_request_one_visit,
);

// Shared by the cases.

/// The idempotency key `id` of a request the service makes itself (its
/// digest is the key): the same every time it is made.
pub(crate) fn key(id: &str) -> RequestKey {
    RequestKey::internal(id)
}

/// The idempotency key `id` of the request `what` (an RPC and what it asks,
/// in words, standing for the request as the service digests it): the same
/// `what` is the same request, another is a different one.
pub(crate) fn request(id: &str, what: &str) -> RequestKey {
    RequestKey::required(what, id, &()).unwrap_or_else(|e| panic!("{e}"))
}

/// An elder born `birth`, living as `living`, in grid `grid`.
pub(crate) fn details(
    name: &str,
    birth: &str,
    living: LivingSituation,
    consents: bool,
) -> ElderDetails {
    let today = district_today(start());
    let contacts = vec![(
        "李梅".to_owned(),
        "13812345678".to_owned(),
        "女儿".to_owned(),
    )];
    ElderDetails {
        name: name.into(),
        birth_date: BirthDate::parse("birth_date", birth, today).unwrap_or_else(|e| panic!("{e}")),
        gender: Gender::Female,
        grid_id: GridId::from_stored("xinyuan-1"),
        building_id: Some(BuildingId::from_stored("b-1")),
        address: Some("3 号楼 2 单元 401".into()),
        location: Some(Location {
            point: Point {
                latitude: 34.7786,
                longitude: 113.6812,
            },
            datum: Datum::Gcj02,
        }),
        living,
        has_disability: false,
        has_chronic_illness: true,
        health_notes: Some("高血压".into()),
        disability_notes: None,
        contacts: parse_contacts("contacts", &contacts).unwrap_or_else(|e| panic!("{e}")),
        consents_to_visits: consents,
    }
}

/// Over eighty and living alone: high risk, visited weekly.
pub(crate) fn wang() -> ElderDetails {
    details("王秀英", "1941-05-03", LivingSituation::Alone, true)
}

/// A visit by the staff member `worker-li`, recording it.
pub(crate) fn visit(elder_id: &ElderId, at: DateTime<Utc>, wellbeing: Wellbeing) -> NewVisit {
    NewVisit {
        elder_id: elder_id.clone(),
        visitor: Visitor::Staff("worker-li".into()),
        actor: "worker-li".into(),
        kind: VisitKind::HomeVisit,
        visited_at: at,
        wellbeing,
        needs: vec!["需要送餐".into()],
        notes: Some("精神不错".into()),
        recorded_at: None,
    }
}

pub(crate) fn days(n: i64) -> Duration {
    Duration::days(n)
}
