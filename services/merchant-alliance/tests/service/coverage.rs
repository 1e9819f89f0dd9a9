//! Circle coverage over gRPC: building points loaded, coverage read per
//! district, grid and building from a known layout, and bad input refused
//! naming the field with nothing changed.
//!
//! The layout, on the meridian of the reference point (metres north): grid
//! `xinyuan-1` has buildings at 0 and 400 m, `xinyuan-2` one at 2,000 m,
//! `xililu-1` one at 6,000 m with a merchant of every basic service beside
//! it. A noodle shop stands at 100 m, a repairer at 1,500 m, a grocer at
//! 2,000 m.

use shequ_proto::alliance::v1 as pb;
use shequ_proto::common::v1 as common;
use tonic::Code;

use crate::support::{TestApp, dining, violated_field, wgs84};

shequ_tests::on_both_backends!(
    coverage_lists_gaps_first_with_each_buildings_nearest_and_walk,
    coverage_of_one_grid_or_building_and_unknown_ones,
    a_bad_load_of_buildings_is_refused_naming_the_field_and_changes_nothing,
);

fn building(id: &str, grid: &str, metres_north: f64) -> pb::Building {
    pb::Building {
        building_id: id.into(),
        grid_id: grid.into(),
        point: Some(wgs84(metres_north)),
    }
}

fn layout() -> Vec<pb::Building> {
    vec![
        building("xinyuan-b1", "xinyuan-1", 0.0),
        building("xinyuan-b2", "xinyuan-1", 400.0),
        building("xinyuan-b4", "xinyuan-2", 2000.0),
        building("xililu-b1", "xililu-1", 6000.0),
    ]
}

fn merchant(name: &str, category: pb::Category, metres_north: f64) -> pb::MerchantDetails {
    pb::MerchantDetails {
        category: category as i32,
        ..dining(name, metres_north, &[])
    }
}

/// The layout loaded and its merchants registered.
async fn district(app: &mut TestApp) -> anyhow::Result<()> {
    let loaded = app
        .merchants
        .load_buildings(pb::LoadBuildingsRequest {
            buildings: layout(),
        })
        .await?
        .into_inner();
    assert_eq!((loaded.buildings, loaded.grids), (4, 3));
    app.register(
        "r-noodles",
        merchant("老王面馆", pb::Category::Dining, 100.0),
    )
    .await?;
    app.register(
        "r-repair",
        merchant("张师傅维修", pb::Category::Repair, 1500.0),
    )
    .await?;
    app.register(
        "r-grocer",
        merchant("鲜丰超市", pb::Category::Grocery, 2000.0),
    )
    .await?;
    for (i, category) in [
        pb::Category::Dining,
        pb::Category::Repair,
        pb::Category::Grocery,
        pb::Category::Housekeeping,
        pb::Category::Health,
        pb::Category::ElderlyCare,
    ]
    .into_iter()
    .enumerate()
    {
        let metres = 6000.0 + 10.0 * i as f64;
        app.register(
            &format!("r-xililu-{i}"),
            merchant(&format!("西里路商户{i}"), category, metres),
        )
        .await?;
    }
    Ok(())
}

async fn coverage(
    app: &mut TestApp,
    grid_id: &str,
    building_id: &str,
) -> Result<pb::GetCircleCoverageResponse, tonic::Status> {
    app.merchants
        .get_circle_coverage(pb::GetCircleCoverageRequest {
            grid_id: grid_id.into(),
            building_id: building_id.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

fn kind(grid: &pb::GridCoverage, kind: pb::BasicService) -> &pb::KindCoverage {
    grid.kinds
        .iter()
        .find(|k| k.kind == kind as i32)
        .unwrap_or_else(|| panic!("{kind:?} in {}", grid.grid_id))
}

/// (reached, covered, longest walk's merchant and minutes, its building).
fn summary(
    grid: &pb::GridCoverage,
    k: pb::BasicService,
) -> (u32, bool, Option<(String, f64)>, String) {
    let k = kind(grid, k);
    (
        k.buildings_reached,
        k.covered,
        k.longest_walk
            .as_ref()
            .map(|n| (n.merchant_name.clone(), n.walk_minutes)),
        k.longest_walk_building_id.clone(),
    )
}

fn nearest(
    grid: &pb::GridCoverage,
    building: &str,
    k: pb::BasicService,
) -> Option<(String, f64, f64)> {
    let b = grid
        .buildings
        .iter()
        .find(|b| b.building_id == building)
        .unwrap_or_else(|| panic!("{building} in {}", grid.grid_id));
    b.kinds
        .iter()
        .find(|bk| bk.kind == k as i32)
        .and_then(|bk| bk.nearest.as_ref())
        .map(|n| (n.merchant_name.clone(), n.distance_metres, n.walk_minutes))
}

async fn coverage_lists_gaps_first_with_each_buildings_nearest_and_walk(
    mut app: TestApp,
) -> anyhow::Result<()> {
    district(&mut app).await?;

    let answer = coverage(&mut app, "", "").await?;
    assert_eq!((answer.walk_minutes, answer.radius_metres), (15, 1200.0));
    let order: Vec<(&str, bool)> = answer
        .grids
        .iter()
        .map(|g| (g.grid_id.as_str(), g.has_gap))
        .collect();
    assert_eq!(
        order,
        [
            ("xinyuan-1", true),
            ("xinyuan-2", true),
            ("xililu-1", false)
        ],
        "grids with a gap first, each group by id"
    );
    let xinyuan_1 = &answer.grids[0];
    assert_eq!(xinyuan_1.building_count, 2);
    assert_eq!(xinyuan_1.kinds.len(), 6, "one per basic service");
    use pb::BasicService as S;
    // The noodle shop: 100 m from b1, 300 m from b2 (3.75 minutes at 80 m/min).
    assert_eq!(
        summary(xinyuan_1, S::BreakfastDining),
        (2, true, Some(("老王面馆".into(), 3.8)), "xinyuan-b2".into())
    );
    // The repairer is 1,500 m from b1 (beyond the walk), 1,100 m from b2.
    assert_eq!(
        summary(xinyuan_1, S::Repair),
        (
            1,
            false,
            Some(("张师傅维修".into(), 13.8)),
            "xinyuan-b2".into()
        )
    );
    assert_eq!(
        summary(xinyuan_1, S::Housekeeping),
        (0, false, None, String::new())
    );
    assert_eq!(
        nearest(xinyuan_1, "xinyuan-b1", S::BreakfastDining),
        Some(("老王面馆".into(), 100.0, 1.3))
    );
    assert_eq!(nearest(xinyuan_1, "xinyuan-b1", S::Repair), None);
    assert_eq!(
        nearest(xinyuan_1, "xinyuan-b2", S::Repair),
        Some(("张师傅维修".into(), 1100.0, 13.8))
    );
    let ids: Vec<&str> = xinyuan_1
        .buildings
        .iter()
        .map(|b| b.building_id.as_str())
        .collect();
    assert_eq!(ids, ["xinyuan-b1", "xinyuan-b2"]);

    let xinyuan_2 = &answer.grids[1];
    assert_eq!(summary(xinyuan_2, S::GroceriesFreshFood).0, 1);
    assert_eq!(
        nearest(xinyuan_2, "xinyuan-b4", S::Repair),
        Some(("张师傅维修".into(), 500.0, 6.3))
    );
    assert_eq!(nearest(xinyuan_2, "xinyuan-b4", S::BreakfastDining), None);
    let xililu = &answer.grids[2];
    assert!(
        xililu
            .kinds
            .iter()
            .all(|k| k.covered && k.buildings_reached == 1)
    );
    Ok(())
}

async fn coverage_of_one_grid_or_building_and_unknown_ones(mut app: TestApp) -> anyhow::Result<()> {
    let empty = coverage(&mut app, "", "").await?;
    assert!(empty.grids.is_empty(), "no buildings loaded yet: no grids");
    district(&mut app).await?;

    let grid = coverage(&mut app, "xinyuan-1", "").await?;
    assert_eq!(grid.grids.len(), 1);
    assert_eq!(grid.grids[0].building_count, 2);
    let district = coverage(&mut app, "", "").await?;
    assert_eq!(
        grid.grids[0], district.grids[0],
        "the grid as in the district's answer"
    );

    let one = coverage(&mut app, "", "xinyuan-b1").await?;
    let only = &one.grids[0];
    assert_eq!(
        (only.grid_id.as_str(), only.building_count),
        ("xinyuan-1", 1)
    );
    let repair = kind(only, pb::BasicService::Repair);
    assert_eq!((repair.buildings_reached, repair.covered), (0, false));
    let dining = kind(only, pb::BasicService::BreakfastDining);
    assert_eq!((dining.buildings_reached, dining.covered), (1, true));

    for (grid_id, building_id, what) in [
        ("xinyuan-9", "", "grid xinyuan-9"),
        ("", "xinyuan-b9", "building xinyuan-b9"),
    ] {
        let error = coverage(&mut app, grid_id, building_id)
            .await
            .expect_err(what);
        assert_eq!(error.code(), Code::NotFound, "{error:?}");
        assert!(error.message().contains(what), "{}", error.message());
    }
    let both = coverage(&mut app, "xinyuan-1", "xinyuan-b1")
        .await
        .expect_err("both given");
    assert_eq!(both.code(), Code::InvalidArgument);
    assert_eq!(violated_field(&both).as_deref(), Some("building_id"));
    Ok(())
}

async fn a_bad_load_of_buildings_is_refused_naming_the_field_and_changes_nothing(
    mut app: TestApp,
) -> anyhow::Result<()> {
    district(&mut app).await?;
    let before = coverage(&mut app, "", "").await?;

    let london = common::GeoPoint {
        latitude: 51.5074,
        longitude: -0.1278,
        datum: common::Datum::Wgs84 as i32,
    };
    let cases: Vec<(Vec<pb::Building>, &str)> = vec![
        (vec![], "buildings"),
        (
            vec![building("b-1", "g-1", 0.0), building("b-1", "g-2", 10.0)],
            "buildings[1].building_id",
        ),
        (vec![building(" ", "g-1", 0.0)], "buildings[0].building_id"),
        (vec![building("b-1", "", 0.0)], "buildings[0].grid_id"),
        (
            vec![
                building("b-1", "g-1", 0.0),
                building("b-2", "g-1", 0.0),
                pb::Building {
                    point: Some(london),
                    ..building("b-3", "g-1", 0.0)
                },
            ],
            "buildings[2].point",
        ),
        (
            vec![
                building("b-1", "g-1", 0.0),
                building("b-2", "g-1", 0.0),
                building("b-3", "g-1", 0.0),
                pb::Building {
                    point: Some(common::GeoPoint {
                        latitude: 91.0,
                        ..wgs84(0.0)
                    }),
                    ..building("b-4", "g-1", 0.0)
                },
            ],
            "buildings[3].point.latitude",
        ),
        (
            vec![pb::Building {
                point: Some(common::GeoPoint {
                    datum: common::Datum::Unspecified as i32,
                    ..wgs84(0.0)
                }),
                ..building("b-1", "g-1", 0.0)
            }],
            "buildings[0].point.datum",
        ),
        (
            vec![pb::Building {
                point: None,
                ..building("b-1", "g-1", 0.0)
            }],
            "buildings[0].point",
        ),
    ];
    for (buildings, field) in cases {
        let error = app
            .merchants
            .load_buildings(pb::LoadBuildingsRequest { buildings })
            .await
            .expect_err(field);
        assert_eq!(error.code(), Code::InvalidArgument, "{field}: {error:?}");
        assert_eq!(violated_field(&error).as_deref(), Some(field), "{error:?}");
    }
    let after = coverage(&mut app, "", "").await?;
    assert_eq!(after, before, "the refused loads changed nothing");
    Ok(())
}
