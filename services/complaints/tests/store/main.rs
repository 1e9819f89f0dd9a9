//! The complaints store's conformance suite: every case is written once over
//! [`Complaints`] and run against both implementations, SQLite (a file of its
//! own) and PostgreSQL (a database of its own; a failure, not a skip, under
//! `CI=true` when no server answers).

use chrono::{DateTime, Duration, TimeZone, Utc};
use shequ_chassis::outbox::OutboxSignal;
use shequ_complaints::domain::classification::Classification;
use shequ_complaints::domain::complaint::{Intake, Satisfaction};
use shequ_complaints::domain::kinds::{Category, Channel, MerchantCheck, Priority};
use shequ_complaints::domain::organisation::{Community, Grid, Organisation};
use shequ_complaints::domain::reporter::Reporter;
use shequ_complaints::domain::{BuildingId, MerchantId};
use shequ_complaints::store::{RequestKey, Store};
use shequ_tests::TestDatabase;

mod cases;
mod release_data;

/// One case's store, on a fresh database.
pub(crate) type Harness = shequ_tests::db::StoreCase<Store>;

pub(crate) fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

/// The store on `database`, its clock at [`start`].
pub(crate) async fn open(database: TestDatabase) -> anyhow::Result<Harness> {
    Harness::open(
        database,
        "complaints",
        shequ_complaints::IDENTITY.migrations,
        start(),
        |db, clock| Store::new(db, OutboxSignal::default(), clock),
    )
    .await
}

shequ_tests::conformance!(
    a_submission_reads_back_as_it_was_answered,
    a_repeated_request_id_returns_the_first_complaint,
    concurrent_submissions_are_each_stored_once_with_their_history_and_event,
    a_submission_to_an_unknown_grid_or_building_stores_nothing,
    a_transition_is_stored_with_its_history_and_event_and_its_request_id_once,
    a_refused_transition_changes_nothing,
    a_merge_reads_its_target_in_the_same_transaction,
    escalations_are_owed_once_per_breach_and_cycle_and_paged_in_due_order,
    the_list_filters_and_pages_without_gaps_or_repeats,
    the_figures_counted_by_the_database_agree_with_the_rules,
    the_organisation_is_replaced_whole_and_reads_back_in_order,
    a_stored_value_that_does_not_decode_is_an_error_not_a_default,
    a_submission_is_routed_by_the_organisation_as_it_stands,
);

// Shared by the cases.
pub(crate) fn organisation() -> Organisation {
    let grid = |id: &str, worker: &str, buildings: &[&str]| Grid {
        id: id.into(),
        name: format!("网格 {id}"),
        worker: worker.into(),
        branch_handler: format!("branch-{id}"),
        building_ids: buildings.iter().map(|b| (*b).to_owned()).collect(),
    };
    Organisation {
        district_handler: "jinshui-office".into(),
        communities: vec![
            Community {
                id: "xinyuan".into(),
                name: "信缘社区".into(),
                committee_handler: "xinyuan-committee".into(),
                grids: vec![
                    grid("xinyuan-1", "worker-li", &["b-1", "b-2"]),
                    grid("xinyuan-2", "worker-zhao", &["b-3"]),
                ],
            },
            Community {
                id: "yaozhai".into(),
                name: "姚寨社区".into(),
                committee_handler: "yaozhai-committee".into(),
                grids: vec![grid("yaozhai-1", "worker-sun", &[])],
            },
        ],
    }
}

pub(crate) fn intake(text: &str, building: Option<&str>) -> Intake {
    Intake {
        text: text.into(),
        channel: Channel::Hotline,
        classification: Classification::by_caller(Category::EnvironmentSanitation),
        priority: Priority::Normal,
        reporter: Reporter::parse("张阿姨", "13800138000")
            .unwrap_or_else(|error| panic!("{error}")),
        building_id: building.map(BuildingId::from_stored),
        location: Some("3 号楼东侧".into()),
        point: None,
        merchant_id: Some(MerchantId::from_stored("m-1")),
        merchant_check: Some(MerchantCheck::Verified),
        elder_id: None,
    }
}

pub(crate) fn satisfaction(score: u32) -> Satisfaction {
    Satisfaction::parse("satisfaction", score).unwrap_or_else(|error| panic!("{error}"))
}

pub(crate) fn hours(n: i64) -> Duration {
    Duration::hours(n)
}

/// The account a case's submissions are made by.
pub(crate) const CLERK: &str = "hotline-desk";

/// An idempotency key a case uses; the same text is the same request.
pub(crate) fn request(id: &str) -> RequestKey {
    RequestKey::internal(id)
}
