//! The coverage cases, each over [`Alliance`] only (and counts of what it
//! stored): building points, the merchants coverage reads, and the coverage
//! as applied with its events, from a known set of merchants.
//!
//! The layout, on the meridian of the reference point (metres north):
//! grid `g-served` has buildings at 0 and 200 m, grid `g-gap` one at 3,000 m;
//! a repairer stands at 100 m (reaching both `g-served` buildings), a grocer
//! at 2,500 m (reaching `g-gap`'s only), a pharmacy at 5,000 m (reaching no
//! one).

use std::collections::BTreeSet;

use anyhow::ensure;
use shequ_merchant_alliance::domain::basic_services::{BasicService, BasicServices, DEFAULT_JSON};
use shequ_merchant_alliance::domain::coverage::{self, Building, Change, Trigger};
use shequ_merchant_alliance::domain::geo::BoundingBox;
use shequ_merchant_alliance::domain::merchant::{Category, MerchantDetails};
use shequ_merchant_alliance::domain::{BuildingId, GridId, MerchantId};
use shequ_merchant_alliance::store::{Alliance, BuildingsLoaded, CoverageScope, StoreError};

use crate::{Harness, dining, north, request};

const EVENTS: &str =
    "SELECT COUNT(*) AS n FROM outbox WHERE subject = 'shequ.alliance.circle.coverage_changed.v1'";
/// The walk: 15 minutes at 80 m per minute.
const RADIUS: f64 = 1200.0;

fn building(id: &str, grid: &str, metres_north: f64) -> Building {
    Building {
        id: BuildingId::from_stored(id),
        grid_id: GridId::from_stored(grid),
        point: north(metres_north),
    }
}

fn layout() -> Vec<Building> {
    vec![
        building("b-2", "g-served", 200.0),
        building("b-1", "g-served", 0.0),
        building("b-3", "g-gap", 3000.0),
    ]
}

fn merchant(name: &str, category: Category, metres_north: f64, tags: &[&str]) -> MerchantDetails {
    MerchantDetails {
        category,
        ..dining(name, metres_north, tags)
    }
}

async fn registered(
    h: &Harness,
    key: &str,
    details: MerchantDetails,
) -> anyhow::Result<MerchantId> {
    let (merchant, duplicate) = h
        .store
        .register(&request(key), details, "operator-1")
        .await?;
    ensure!(!duplicate, "{key} is new");
    Ok(merchant.id)
}

/// What the coverage watcher does: the district computed from what the
/// store hands over, and applied.
async fn recompute(h: &Harness, trigger: Trigger) -> anyhow::Result<Vec<Change>> {
    let buildings = h.store.buildings(&CoverageScope::District).await?;
    let merchants = h.store.circle_merchants(None).await?;
    let services = BasicServices::from_json(DEFAULT_JSON).map_err(anyhow::Error::msg)?;
    let computed = coverage::coverage(&buildings, &merchants, &services, RADIUS);
    Ok(h.store.apply_coverage(computed, trigger).await?)
}

fn flips(changes: &[Change]) -> Vec<(String, BasicService, bool, Option<String>)> {
    changes
        .iter()
        .filter(|c| c.flipped)
        .map(|c| {
            (
                c.state.grid_id.to_string(),
                c.state.kind,
                c.state.covered,
                c.merchant_id.as_ref().map(ToString::to_string),
            )
        })
        .collect()
}

fn ids(buildings: &[Building]) -> Vec<&str> {
    buildings.iter().map(|b| b.id.as_str()).collect()
}

pub(crate) async fn a_load_of_buildings_replaces_the_whole_set_and_reads_back_by_scope(
    h: Harness,
) -> anyhow::Result<()> {
    let loaded = h.store.load_buildings(layout()).await?;
    assert_eq!(
        loaded,
        BuildingsLoaded {
            buildings: 3,
            grids: 2
        }
    );
    let district = h.store.buildings(&CoverageScope::District).await?;
    assert_eq!(
        ids(&district),
        ["b-3", "b-1", "b-2"],
        "by grid, then building"
    );
    assert_eq!(
        district[0],
        building("b-3", "g-gap", 3000.0),
        "every field as loaded"
    );
    let grid = h
        .store
        .buildings(&CoverageScope::Grid(GridId::from_stored("g-served")))
        .await?;
    assert_eq!(ids(&grid), ["b-1", "b-2"]);
    let one = h
        .store
        .buildings(&CoverageScope::Building(BuildingId::from_stored("b-2")))
        .await?;
    assert_eq!(one, [building("b-2", "g-served", 200.0)]);
    for unknown in [
        CoverageScope::Grid(GridId::from_stored("g-nowhere")),
        CoverageScope::Building(BuildingId::from_stored("b-nowhere")),
    ] {
        assert!(h.store.buildings(&unknown).await?.is_empty(), "{unknown:?}");
    }

    // Replaced whole: b-1 moves grid, b-2 and b-3 are gone, b-4 is new.
    let again = vec![
        building("b-1", "g-new", 10.0),
        building("b-4", "g-new", 20.0),
    ];
    let loaded = h.store.load_buildings(again.clone()).await?;
    assert_eq!((loaded.buildings, loaded.grids), (2, 1));
    assert_eq!(h.store.buildings(&CoverageScope::District).await?, again);
    assert_eq!(h.count("SELECT COUNT(*) AS n FROM buildings").await?, 2);
    assert_eq!(
        h.count("SELECT COUNT(*) AS n FROM outbox").await?,
        0,
        "a load publishes nothing itself"
    );
    Ok(())
}

pub(crate) async fn coverage_reads_the_active_merchants_only_with_their_kinds(
    h: Harness,
) -> anyhow::Result<()> {
    let repairer = registered(
        &h,
        "r-1",
        merchant("张师傅维修", Category::Repair, 100.0, &["home_repair"]),
    )
    .await?;
    let grocer = registered(
        &h,
        "r-2",
        merchant("生鲜超市", Category::Grocery, 2500.0, &[]),
    )
    .await?;
    let closed = registered(
        &h,
        "r-3",
        merchant("停业药店", Category::Health, 300.0, &[]),
    )
    .await?;
    h.store
        .suspend(&closed, "整改".into(), "operator-1")
        .await?;

    let all = h.store.circle_merchants(None).await?;
    let found: BTreeSet<&MerchantId> = all.iter().map(|m| &m.id).collect();
    assert_eq!(
        found,
        BTreeSet::from([&repairer, &grocer]),
        "the suspended one is out"
    );
    let repair = all.iter().find(|m| m.id == repairer).expect("the repairer");
    assert_eq!(repair.name, "张师傅维修");
    assert_eq!(repair.category, Category::Repair);
    assert_eq!(repair.service_tags[0].as_str(), "home_repair");
    assert_eq!(repair.location, north(100.0));

    let near: BoundingBox = coverage::reach(&[building("b-1", "g", 0.0)], RADIUS).expect("a box");
    let within = h.store.circle_merchants(Some(near)).await?;
    assert_eq!(within.len(), 1);
    assert_eq!(within[0].id, repairer, "the grocer is 2.5 km away");
    Ok(())
}

pub(crate) async fn coverage_applied_writes_its_rows_and_one_event_per_flip(
    h: Harness,
) -> anyhow::Result<()> {
    h.store.load_buildings(layout()).await?;
    registered(
        &h,
        "r-1",
        merchant("张师傅维修", Category::Repair, 100.0, &[]),
    )
    .await?;
    let grocer = registered(
        &h,
        "r-2",
        merchant("生鲜超市", Category::Grocery, 2500.0, &[]),
    )
    .await?;
    registered(
        &h,
        "r-3",
        merchant("远处药店", Category::Health, 5000.0, &[]),
    )
    .await?;
    let registrations = h.count("SELECT COUNT(*) AS n FROM outbox").await?;

    // First pass: a row for every grid and service; repair gained in
    // g-served, groceries in g-gap; nothing else reaches every building.
    let first = recompute(&h, Trigger::default()).await?;
    assert_eq!(first.len(), 12);
    assert_eq!(
        flips(&first),
        [
            (
                "g-gap".to_owned(),
                BasicService::GroceriesFreshFood,
                true,
                None
            ),
            ("g-served".to_owned(), BasicService::Repair, true, None),
        ]
    );
    let state = h.store.coverage_state().await?;
    assert_eq!(state.len(), 12);
    let repair = state
        .iter()
        .find(|s| s.grid_id == "g-served" && s.kind == BasicService::Repair)
        .expect("the repair row");
    assert_eq!(
        (repair.covered, repair.buildings_reached, repair.buildings),
        (true, 2, 2)
    );
    let pharmacy = state
        .iter()
        .find(|s| s.grid_id == "g-served" && s.kind == BasicService::PharmacyHealth)
        .expect("the pharmacy row");
    assert_eq!((pharmacy.covered, pharmacy.buildings_reached), (false, 0));
    assert_eq!(h.count(EVENTS).await?, 2);
    assert_eq!(
        h.count("SELECT COUNT(*) AS n FROM outbox").await?,
        registrations + 2
    );

    // Nothing changed: nothing written, nothing announced.
    assert_eq!(recompute(&h, Trigger::default()).await?, []);
    assert_eq!(h.count(EVENTS).await?, 2);

    // g-served's buildings are gone: its rows go, and it loses repair.
    h.store
        .load_buildings(vec![building("b-3", "g-gap", 3000.0)])
        .await?;
    let reload = Trigger {
        merchants: BTreeSet::new(),
        buildings_loaded: true,
    };
    let removed = recompute(&h, reload).await?;
    assert_eq!(removed.len(), 6);
    assert!(
        removed
            .iter()
            .all(|c| c.removed && c.state.grid_id == "g-served")
    );
    assert_eq!(
        flips(&removed),
        [("g-served".to_owned(), BasicService::Repair, false, None)]
    );
    assert_eq!(h.store.coverage_state().await?.len(), 6);
    assert_eq!(h.count(EVENTS).await?, 3);

    // The grocer suspended: g-gap loses groceries, because of it.
    h.store
        .suspend(&grocer, "整改".into(), "operator-1")
        .await?;
    let suspension = Trigger {
        merchants: BTreeSet::from([grocer.clone()]),
        buildings_loaded: false,
    };
    let lost = recompute(&h, suspension).await?;
    assert_eq!(
        flips(&lost),
        [(
            "g-gap".to_owned(),
            BasicService::GroceriesFreshFood,
            false,
            Some(grocer.to_string())
        )]
    );
    assert_eq!(h.count(EVENTS).await?, 4);
    let announced = h
        .count(&format!(
            "SELECT COUNT(*) AS n FROM outbox WHERE subject = \
             'shequ.alliance.circle.coverage_changed.v1' AND payload LIKE '%\"merchant_id\":\"{grocer}\"%' \
             AND payload LIKE '%\"covered\":false%' AND payload LIKE '%\"kind\":\"groceries_fresh_food\"%'"
        ))
        .await?;
    assert_eq!(
        announced, 1,
        "the event says what flipped and who caused it"
    );
    assert!(
        !recompute(&h, Trigger::default())
            .await?
            .iter()
            .any(|c| c.flipped),
        "the repairer still reaches no building of g-gap"
    );
    Ok(())
}

pub(crate) async fn a_stored_coverage_row_that_does_not_decode_is_an_error(
    h: Harness,
) -> anyhow::Result<()> {
    h.store.load_buildings(layout()).await?;
    recompute(&h, Trigger::default()).await?;
    h.execute(
        "UPDATE grid_coverage SET kind = 'karaoke' WHERE grid_id = $1 AND kind = 'repair'",
        &["g-served"],
    )
    .await?;
    let read = h.store.coverage_state().await;
    assert!(
        matches!(&read, Err(StoreError::Database(_))),
        "an unknown kind is an error: {read:?}"
    );
    Ok(())
}
