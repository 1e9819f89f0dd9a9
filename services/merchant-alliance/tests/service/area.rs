//! The service area: the convenience circle and merchants' places are served
//! only inside the district's box (`SHEQU_SERVICE_AREA`, Jinshui by
//! default), judged in WGS-84; a point outside it is refused naming the field
//! before the database does any work.

use shequ_chassis::config::CommonConfig;
use shequ_merchant_alliance::Config;
use shequ_merchant_alliance::domain::geo::{Point, wgs84_to_gcj02};
use shequ_proto::alliance::v1 as pb;
use shequ_proto::common::v1 as common;
use shequ_tests::Backend;
use tonic::Code;

use crate::support::{TestApp, dining, run_with, violated_field, wgs84};

shequ_tests::on_both_backends!(
    a_search_outside_the_service_area_is_refused_naming_the_point,
    a_merchant_outside_the_service_area_is_refused_naming_its_location,
    the_service_area_is_judged_in_wgs84_whatever_datum_a_point_came_in,
);

fn point(latitude: f64, longitude: f64, datum: common::Datum) -> common::GeoPoint {
    common::GeoPoint {
        latitude,
        longitude,
        datum: datum as i32,
    }
}

fn search(at: common::GeoPoint, walk_minutes: i32) -> pb::FindNearbyRequest {
    pb::FindNearbyRequest {
        point: Some(at),
        category: pb::Category::Dining as i32,
        walk_minutes,
        ..Default::default()
    }
}

fn located(name: &str, at: common::GeoPoint) -> pb::MerchantDetails {
    pb::MerchantDetails {
        location: Some(at),
        ..dining(name, 0.0, &[])
    }
}

async fn nearby_names(
    app: &mut TestApp,
    request: pb::FindNearbyRequest,
) -> anyhow::Result<Vec<String>> {
    let found = app.merchants.find_nearby(request).await?.into_inner();
    Ok(found
        .merchants
        .into_iter()
        .map(|n| n.merchant.unwrap_or_default().name)
        .collect())
}

async fn a_search_outside_the_service_area_is_refused_naming_the_point(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.register("r-1", dining("食堂", 0.0, &[])).await?;
    let outside = [
        // An hour's walk at a pole: every longitude, tens of thousands of cells.
        (
            "the north pole",
            point(89.99, 0.0, common::Datum::Wgs84),
            60,
        ),
        (
            "the south pole",
            point(-90.0, 0.0, common::Datum::Wgs84),
            60,
        ),
        // A circle across the ±180° meridian.
        (
            "the antimeridian",
            point(-16.5, -179.99995, common::Datum::Wgs84),
            15,
        ),
        ("London", point(51.5074, -0.1278, common::Datum::Wgs84), 15),
        (
            "just south of the district",
            point(34.70, 113.66, common::Datum::Gcj02),
            15,
        ),
    ];

    for (place, at, minutes) in outside {
        let status = app
            .merchants
            .find_nearby(search(at, minutes))
            .await
            .expect_err(place);
        assert_eq!(status.code(), Code::InvalidArgument, "{place}: {status:?}");
        assert_eq!(
            violated_field(&status).as_deref(),
            Some("point"),
            "{place}: {status:?}"
        );
    }
    assert_eq!(
        nearby_names(&mut app, search(wgs84(0.0), 60)).await?,
        ["食堂"],
        "inside the district an hour's walk is served"
    );
    Ok(())
}

async fn a_merchant_outside_the_service_area_is_refused_naming_its_location(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let outside = [
        ("London", point(51.5074, -0.1278, common::Datum::Wgs84)),
        // 11 m from the next case's searcher, across the ±180° meridian.
        ("Fiji", point(-16.5, 179.99995, common::Datum::Wgs84)),
        ("the north pole", point(90.0, 0.0, common::Datum::Wgs84)),
    ];
    for (n, (place, at)) in outside.iter().enumerate() {
        let status = app
            .merchants
            .register_merchant(pb::RegisterMerchantRequest {
                request_id: format!("r-out-{n}"),
                details: Some(located(place, *at)),
                actor: "operator-1".into(),
            })
            .await
            .expect_err(place);
        assert_eq!(status.code(), Code::InvalidArgument, "{place}: {status:?}");
        assert_eq!(
            violated_field(&status).as_deref(),
            Some("details.location"),
            "{place}: {status:?}"
        );
    }
    let merchant = app.register("r-in", dining("食堂", 0.0, &[])).await?;
    let moved = app
        .merchants
        .update_merchant(pb::UpdateMerchantRequest {
            merchant_id: merchant.id.clone(),
            details: Some(located("食堂", outside[0].1)),
            actor: "operator-1".into(),
        })
        .await
        .expect_err("moved to London");

    assert_eq!(
        violated_field(&moved).as_deref(),
        Some("details.location"),
        "{moved:?}"
    );
    let listed = app
        .merchants
        .list_merchants(pb::ListMerchantsRequest::default())
        .await?
        .into_inner()
        .merchants;
    assert_eq!(listed.len(), 1, "only the merchant inside was registered");
    assert_eq!(listed[0].location, merchant.location, "and it did not move");
    let events = app.wait_for_events(1).await?;
    assert_eq!(events.len(), 1, "only its registration was announced");
    Ok(())
}

/// A WGS-84 point just inside the east edge of Jinshui's box, and one just
/// outside its west edge, as a map app (GCJ-02) reports them.
fn edge_points() -> (common::GeoPoint, common::GeoPoint) {
    let gcj = |longitude| {
        let p = wgs84_to_gcj02(Point {
            latitude: 34.80,
            longitude,
        });
        point(p.latitude, p.longitude, common::Datum::Gcj02)
    };
    (gcj(113.7995), gcj(113.5795))
}

async fn the_service_area_is_judged_in_wgs84_whatever_datum_a_point_came_in(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let (inside, outside) = edge_points();
    // GCJ-02 is shifted east here: the first reads as outside the box and the
    // second as inside, until each is converted.
    assert!(inside.longitude > 113.80, "{inside:?}");
    assert!(outside.longitude > 113.58, "{outside:?}");

    app.register("r-east", located("东边的店", inside)).await?;
    let refused = app
        .merchants
        .register_merchant(pb::RegisterMerchantRequest {
            request_id: "r-west".into(),
            details: Some(located("西边的店", outside)),
            actor: "operator-1".into(),
        })
        .await
        .expect_err("west of the district");
    let far_search = app
        .merchants
        .find_nearby(search(outside, 15))
        .await
        .expect_err("west of the district");

    assert_eq!(
        violated_field(&refused).as_deref(),
        Some("details.location")
    );
    assert_eq!(violated_field(&far_search).as_deref(), Some("point"));
    let found = app
        .merchants
        .find_nearby(search(inside, 1))
        .await?
        .into_inner()
        .merchants;
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].distance_metres <= 1.0, "{found:?}");
    let location = found[0]
        .merchant
        .clone()
        .unwrap_or_default()
        .location
        .unwrap_or_default();
    assert_eq!(location.datum, common::Datum::Gcj02 as i32);
    assert!(
        (location.latitude - inside.latitude).abs() < 1e-7
            && (location.longitude - inside.longitude).abs() < 1e-7,
        "answered in the datum asked in: {location:?} for {inside:?}"
    );
    Ok(())
}

/// Dongcheng District, Beijing, as an operator would set it.
const DONGCHENG: &str = "39.86,116.38,39.97,116.45";

fn in_dongcheng(common: CommonConfig) -> anyhow::Result<Config> {
    Ok(Config {
        service_area: DONGCHENG.parse().map_err(anyhow::Error::msg)?,
        ..Config::new(common)
    })
}

mod configured_on_sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_operator_set_service_area_is_served_instead_of_jinshui() -> anyhow::Result<()> {
        super::run_with(
            super::Backend::Sqlite,
            super::in_dongcheng,
            super::an_operator_set_service_area_is_served_instead_of_jinshui,
        )
        .await
    }
}

mod configured_on_postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_operator_set_service_area_is_served_instead_of_jinshui() -> anyhow::Result<()> {
        super::run_with(
            super::Backend::Postgres,
            super::in_dongcheng,
            super::an_operator_set_service_area_is_served_instead_of_jinshui,
        )
        .await
    }
}

async fn an_operator_set_service_area_is_served_instead_of_jinshui(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let palace = wgs84_to_gcj02(Point {
        latitude: 39.9163,
        longitude: 116.3972,
    });
    let palace = point(palace.latitude, palace.longitude, common::Datum::Gcj02);

    let jinshui = app
        .merchants
        .register_merchant(pb::RegisterMerchantRequest {
            request_id: "r-jinshui".into(),
            details: Some(dining("金水的店", 0.0, &[])),
            actor: "operator-1".into(),
        })
        .await
        .expect_err("Jinshui is not served here");
    app.register("r-palace", located("故宫食堂", palace))
        .await?;
    let jinshui_search = app
        .merchants
        .find_nearby(search(wgs84(0.0), 15))
        .await
        .expect_err("Jinshui is not served here");

    assert_eq!(
        violated_field(&jinshui).as_deref(),
        Some("details.location")
    );
    assert_eq!(violated_field(&jinshui_search).as_deref(), Some("point"));
    assert_eq!(
        nearby_names(&mut app, search(palace, 1)).await?,
        ["故宫食堂"]
    );
    Ok(())
}

#[tokio::test]
async fn a_service_area_that_cannot_be_served_stops_the_service_at_start() -> anyhow::Result<()> {
    use clap::Parser;
    use shequ_chassis::runtime::App;
    use shequ_merchant_alliance::Application;

    let malformed =
        Config::try_parse_from(["merchant-alliance", "--service-area", "34.74,113.58,34.9"])
            .expect_err("three numbers");
    assert!(
        malformed.to_string().contains("--service-area")
            && malformed.to_string().contains("four numbers"),
        "{malformed}"
    );
    let parsed = Config::try_parse_from(["merchant-alliance", "--service-area", DONGCHENG])?;
    assert_eq!(parsed.service_area.to_string(), DONGCHENG);
    let default = Config::try_parse_from(["merchant-alliance"])?;
    assert_eq!(default.service_area.to_string(), "34.74,113.58,34.9,113.8");

    let data = tempfile::tempdir()?;
    for (area, metres_per_minute, why) in [
        // An hour's walk that far north is too many narrow columns of cells.
        ("74,20,75,21", 80.0, "index cells"),
        ("-17,179,-16,180", 80.0, "±180° meridian"),
        ("88,0,89,10", 80.0, "beyond ±80"),
        // Jinshui, at a cyclist's speed: 24 km circles.
        ("34.74,113.58,34.9,113.8", 400.0, "index cells"),
    ] {
        let config = Config {
            service_area: area.parse().map_err(anyhow::Error::msg)?,
            walk_metres_per_minute: metres_per_minute,
            // Refused before any connection is tried.
            ..Config::new(CommonConfig::new("nats://127.0.0.1:1", data.path()))
        };
        let clock = std::sync::Arc::new(shequ_chassis::clock::SystemClock);
        let error = Application::build(config, clock)
            .await
            .expect_err(area)
            .to_string();
        assert!(
            error.contains("SHEQU_SERVICE_AREA") && error.contains(why),
            "{area} at {metres_per_minute} m/min: {error}"
        );
    }
    Ok(())
}
