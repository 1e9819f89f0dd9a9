//! The merchant-alliance store's conformance suite: every case is written
//! once over [`Alliance`](shequ_merchant_alliance::store::Alliance) and run
//! against both implementations, SQLite (a file of its own) and PostgreSQL (a
//! database of its own; a failure, not a skip, under `CI=true` when no server
//! answers).

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc, Weekday};
use shequ_chassis::inbox::Once;
use shequ_chassis::outbox::OutboxSignal;
use shequ_merchant_alliance::domain::GridId;
use shequ_merchant_alliance::domain::credit::CreditRules;
use shequ_merchant_alliance::domain::geo::Point;
use shequ_merchant_alliance::domain::merchant::{Category, MerchantDetails, ServiceTag};
use shequ_merchant_alliance::domain::opening_hours::OpeningHours;
use shequ_merchant_alliance::store::{RequestKey, Store};
use shequ_proto::events::CloudEvent;
use shequ_tests::TestDatabase;

mod cases;
mod coverage;
mod release_data;

/// One case's store, on a fresh database.
pub(crate) type Harness = shequ_tests::db::StoreCase<Store>;

/// Monday 2 November 2026, 10:00 in the district (02:00 UTC).
pub(crate) fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 2, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Jinshui District, in WGS-84.
pub(crate) const JINSHUI: Point = Point {
    latitude: 34.80,
    longitude: 113.66,
};

/// The store on `database`, its clock at [`start`].
pub(crate) async fn open(database: TestDatabase) -> anyhow::Result<Harness> {
    Harness::open(
        database,
        "merchant-alliance",
        shequ_merchant_alliance::IDENTITY.migrations,
        start(),
        |db, clock| {
            Store::new(
                db,
                OutboxSignal::default(),
                clock,
                Arc::new(CreditRules::default()),
            )
        },
    )
    .await
}

/// The claim of event `id` by `consumer`.
pub(crate) fn once(consumer: &str, id: &str) -> Once {
    Once::new(consumer, &event(id), start())
}

/// An event with id `id` (only its id matters to a claim).
pub(crate) fn event(id: &str) -> CloudEvent {
    CloudEvent {
        specversion: "1.0".into(),
        id: id.into(),
        source: "/shequ/test".into(),
        event_type: "shequ.test.thing.happened.v1".into(),
        time: start(),
        subject: "thing".into(),
        datacontenttype: "application/json".into(),
        dataschema: None,
        data: serde_json::Value::Null,
    }
}

shequ_tests::conformance!(
    a_registration_is_once_per_request_id_and_reads_back_as_answered,
    update_suspend_and_reinstate_change_the_merchant_and_announce_each,
    the_list_filters_and_pages_without_gaps_or_repeats,
    nearby_finds_active_merchants_of_the_category_within_the_walk_nearest_first,
    nearby_by_tag_agrees_with_what_each_merchant_offers,
    nearby_open_now_follows_the_opening_hours,
    an_activity_credits_once_per_request_id_and_the_ledger_adds_up,
    a_deduction_is_applied_once_per_resolution_and_given_back_by_a_later_one,
    a_meal_discount_credits_once_per_booking,
    awards_are_once_per_merchant_and_period_with_the_records_they_judge,
    a_stored_value_that_does_not_decode_is_an_error_not_a_default,
    a_registration_key_reused_for_a_different_request_is_refused_and_writes_nothing,
    an_activity_key_reused_for_a_different_request_is_refused_and_writes_nothing,
    concurrent_uses_of_a_key_write_once_and_refuse_the_different_request,
    a_load_of_buildings_replaces_the_whole_set_and_reads_back_by_scope,
    coverage_reads_the_active_merchants_only_with_their_kinds,
    coverage_applied_writes_its_rows_and_one_event_per_flip,
    a_stored_coverage_row_that_does_not_decode_is_an_error,
);

// Shared by the cases.

/// An idempotency key a case uses; the same text is the same request.
pub(crate) fn request(id: &str) -> RequestKey {
    RequestKey::internal(id)
}

/// Key `id` on the request `body`: the same key and body are the same
/// request, another body under the key a different one (as the gRPC adapter
/// digests a whole request).
pub(crate) fn keyed(id: &str, body: &str) -> RequestKey {
    // A `google.protobuf.StringValue` of the body.
    RequestKey::required("Case", id, &body.to_owned()).unwrap_or_else(|error| panic!("{error}"))
}

/// A point `metres_north` of Jinshui's reference point.
pub(crate) fn north(metres_north: f64) -> Point {
    Point {
        latitude: JINSHUI.latitude + metres_north / 111_195.0,
        longitude: JINSHUI.longitude,
    }
}

fn all_week() -> Vec<Weekday> {
    vec![
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ]
}

pub(crate) fn hours(opens: &str, closes: &str) -> OpeningHours {
    OpeningHours::parse("opening_hours", all_week(), opens, closes)
        .unwrap_or_else(|error| panic!("{error}"))
}

pub(crate) fn tag(value: &str) -> ServiceTag {
    ServiceTag::parse("tag", value).unwrap_or_else(|error| panic!("{error}"))
}

/// A dining merchant `metres_north` of the reference point, open 08:00-20:00
/// daily, owned by a party member.
pub(crate) fn dining(name: &str, metres_north: f64, tags: &[&str]) -> MerchantDetails {
    MerchantDetails {
        name: name.into(),
        category: Category::Dining,
        service_tags: tags.iter().map(|t| tag(t)).collect(),
        location: north(metres_north),
        address: Some("金水区某路1号".into()),
        grid_id: GridId::from_stored("xinyuan-1"),
        opening_hours: vec![hours("08:00", "20:00")],
        party_member_owner: true,
    }
}
