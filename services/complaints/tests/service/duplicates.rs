//! Possible duplicates suggested at intake, as a client sees them: a street
//! lamp reported again within the radius or at the same building names the
//! open reports before it (on the complaint, in GetComplaint and in the
//! `submitted` event); another category, a closed or merged report, one past
//! the window, one in another community or beyond the radius is not named; a
//! GCJ-02 point meets a WGS-84 one; one merge folds the duplicate into its
//! original in the figures; a bad point is refused naming its field.

use chrono::Duration;
use shequ_chassis::geo::{Point, destination, wgs84_to_gcj02};
use shequ_proto::common::v1 as common;
use shequ_proto::complaints::v1 as pb;
use tonic::Code;

use crate::support::{TestApp, run, start_of_test, submission, violated_field};

mod on_sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nearby_open_reports_of_the_same_category_are_named_and_merge_folds_them()
    -> anyhow::Result<()> {
        super::run(shequ_tests::Backend::Sqlite, super::suggested_and_folded).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bad_point_is_refused_naming_its_field() -> anyhow::Result<()> {
        super::run(shequ_tests::Backend::Sqlite, super::bad_points).await
    }

    /// SQLite searches in the writer's unit: reports taken in together see
    /// each other in the order they were committed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reports_taken_in_together_name_those_committed_before_them() -> anyhow::Result<()> {
        super::run(shequ_tests::Backend::Sqlite, super::taken_in_together).await
    }
}

mod on_postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nearby_open_reports_of_the_same_category_are_named_and_merge_folds_them()
    -> anyhow::Result<()> {
        super::run(shequ_tests::Backend::Postgres, super::suggested_and_folded).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bad_point_is_refused_naming_its_field() -> anyhow::Result<()> {
        super::run(shequ_tests::Backend::Postgres, super::bad_points).await
    }
}

/// A lamp post on a Xinyuan street, in WGS-84.
const LAMP: Point = Point {
    latitude: 34.8003,
    longitude: 113.6611,
};

fn wgs84(point: Point) -> common::GeoPoint {
    common::GeoPoint {
        latitude: point.latitude,
        longitude: point.longitude,
        datum: common::Datum::Wgs84.into(),
    }
}

/// A street-lamp report (municipal facilities, given by the caller) in
/// `grid`, at `building` and `point` when given.
fn lamp(
    request_id: &str,
    grid: &str,
    building: &str,
    point: Option<common::GeoPoint>,
) -> pb::SubmitComplaintRequest {
    pb::SubmitComplaintRequest {
        category: pb::Category::MunicipalFacilities.into(),
        grid_id: if building.is_empty() {
            grid.into()
        } else {
            String::new()
        },
        building_id: building.into(),
        point,
        ..submission(request_id, "路灯不亮了")
    }
}

async fn submit(
    app: &mut TestApp,
    request: pb::SubmitComplaintRequest,
) -> anyhow::Result<pb::Complaint> {
    Ok(app
        .complaints
        .submit_complaint(request)
        .await?
        .into_inner()
        .complaint
        .unwrap_or_default())
}

fn named(c: &pb::Complaint) -> Vec<(&str, Option<f64>, bool)> {
    c.possible_duplicates
        .iter()
        .map(|d| (d.complaint_id.as_str(), d.distance_metres, d.same_building))
        .collect()
}

async fn suggested_and_folded(mut app: TestApp) -> anyhow::Result<()> {
    app.load_organisation().await?;

    let first = submit(&mut app, lamp("lamp-1", "xinyuan-1", "", Some(wgs84(LAMP)))).await?;
    assert!(
        first.possible_duplicates.is_empty(),
        "nothing before the first report"
    );
    assert_eq!(first.point, Some(wgs84(LAMP)), "the point is kept as given");

    // 30 m away, given in GCJ-02 as a map app reports it.
    app.clock.advance(Duration::hours(1));
    let thirty = destination(LAMP, 1.0, 30.0);
    let gcj = wgs84_to_gcj02(thirty);
    let gcj_point = common::GeoPoint {
        latitude: gcj.latitude,
        longitude: gcj.longitude,
        datum: common::Datum::Gcj02.into(),
    };
    let second = submit(&mut app, lamp("lamp-2", "xinyuan-1", "", Some(gcj_point))).await?;
    assert_eq!(named(&second), [(first.id.as_str(), Some(30.0), false)]);
    assert_eq!(
        second.point,
        Some(gcj_point),
        "returned in the datum it came in"
    );

    // Another category at the same spot, a report 80 m away, and one in
    // another community: none is a duplicate of the lamp.
    let rubbish = submit(
        &mut app,
        pb::SubmitComplaintRequest {
            category: pb::Category::EnvironmentSanitation.into(),
            ..lamp("rubbish", "xinyuan-1", "", Some(wgs84(LAMP)))
        },
    )
    .await?;
    assert!(
        rubbish.possible_duplicates.is_empty(),
        "{:?}",
        rubbish.possible_duplicates
    );
    let far = submit(
        &mut app,
        lamp(
            "lamp-far",
            "xinyuan-1",
            "",
            Some(wgs84(destination(LAMP, 0.0, 80.0))),
        ),
    )
    .await?;
    assert!(
        far.possible_duplicates.is_empty(),
        "80 m is beyond the 50 m radius"
    );
    let elsewhere = submit(
        &mut app,
        lamp("lamp-yaozhai", "yaozhai-1", "", Some(wgs84(LAMP))),
    )
    .await?;
    assert!(
        elsewhere.possible_duplicates.is_empty(),
        "another community's report"
    );

    // Same building, no point: matched by building (no distance).
    let at_b1 = submit(&mut app, lamp("lamp-b1", "", "xinyuan-b1", None)).await?;
    let again_b1 = submit(&mut app, lamp("lamp-b1-again", "", "xinyuan-b1", None)).await?;
    assert_eq!(named(&again_b1), [(at_b1.id.as_str(), None, true)]);

    // A third report near the lamp names both open ones, nearest first.
    let third = submit(
        &mut app,
        lamp(
            "lamp-3",
            "xinyuan-1",
            "",
            Some(wgs84(destination(LAMP, 1.0, 20.0))),
        ),
    )
    .await?;
    assert_eq!(
        named(&third),
        [
            (second.id.as_str(), Some(10.0), false),
            (first.id.as_str(), Some(20.0), false),
        ]
    );
    // GetComplaint and a retried submission answer the same.
    assert_eq!(named(&app.get(&third.id).await?), named(&third));
    let retried = submit(
        &mut app,
        lamp(
            "lamp-3",
            "xinyuan-1",
            "",
            Some(wgs84(destination(LAMP, 1.0, 20.0))),
        ),
    )
    .await?;
    assert_eq!(retried, third);

    // The submitted event carries them: ids and metres, no point.
    let events = app.wait_for_events(8).await?;
    let submitted = events
        .iter()
        .find(|e| e.event.subject == third.id)
        .expect("the third report's submitted event");
    assert_eq!(
        submitted.raw["data"]["possible_duplicates"],
        serde_json::json!([
            {"complaint_id": second.id, "distance_metres": 10.0, "same_building": false},
            {"complaint_id": first.id, "distance_metres": 20.0, "same_building": false},
        ])
    );
    assert!(submitted.raw["data"].get("point").is_none());
    let first_event = events
        .iter()
        .find(|e| e.event.subject == first.id)
        .expect("the first report's submitted event");
    assert!(first_event.raw["data"].get("possible_duplicates").is_none());

    // Staff merge the second into the first with one call; the figures
    // fold it: two reports, one case.
    app.complaints
        .merge_complaint(pb::MergeComplaintRequest {
            complaint_id: second.id.clone(),
            into_complaint_id: first.id.clone(),
            actor: "dispatcher".into(),
            ..Default::default()
        })
        .await?;
    let merged = app.get(&second.id).await?;
    assert_eq!(merged.status(), pb::Status::Merged);
    assert_eq!(merged.merged_into, first.id);
    let figures = app
        .complaints
        .get_figures(pb::GetFiguresRequest {
            community_id: "xinyuan".into(),
            period: Some(common::Period {
                from: Some(shequ_proto::time::timestamp(
                    start_of_test() - Duration::days(1),
                )),
                to: Some(shequ_proto::time::timestamp(
                    start_of_test() + Duration::days(1),
                )),
            }),
            ..Default::default()
        })
        .await?
        .into_inner()
        .figures
        .unwrap_or_default();
    // Xinyuan: lamp-1, lamp-2, rubbish, lamp-far, lamp-b1, lamp-b1-again, lamp-3.
    assert_eq!(
        (figures.submitted, figures.merged, figures.cases),
        (7, 1, 6)
    );

    // A merged report, a rejected one and one past the window are not named.
    let rejected_near =
        submit(&mut app, lamp("lamp-4", "xinyuan-1", "", Some(wgs84(LAMP)))).await?;
    app.complaints
        .reject_complaint(pb::RejectComplaintRequest {
            complaint_id: rejected_near.id.clone(),
            reason: "重复".into(),
            actor: "dispatcher".into(),
            ..Default::default()
        })
        .await?;
    let after = submit(&mut app, lamp("lamp-5", "xinyuan-1", "", Some(wgs84(LAMP)))).await?;
    let ids: Vec<&str> = after
        .possible_duplicates
        .iter()
        .map(|d| d.complaint_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [first.id.as_str(), third.id.as_str()],
        "open ones only"
    );

    app.clock.advance(Duration::days(8));
    let later = submit(&mut app, lamp("lamp-6", "xinyuan-1", "", Some(wgs84(LAMP)))).await?;
    assert!(
        later.possible_duplicates.is_empty(),
        "reports older than the 7-day window: {:?}",
        later.possible_duplicates
    );
    Ok(())
}

async fn bad_points(mut app: TestApp) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let cases = [
        (
            common::GeoPoint {
                latitude: 34.8,
                longitude: 113.66,
                datum: 0,
            },
            "point.datum",
        ),
        (
            common::GeoPoint {
                latitude: 91.0,
                ..wgs84(LAMP)
            },
            "point.latitude",
        ),
        (
            common::GeoPoint {
                longitude: f64::NAN,
                ..wgs84(LAMP)
            },
            "point.longitude",
        ),
    ];
    for (i, (point, field)) in cases.into_iter().enumerate() {
        let status = app
            .complaints
            .submit_complaint(lamp(&format!("bad-{i}"), "xinyuan-1", "", Some(point)))
            .await
            .expect_err("a bad point is refused");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            violated_field(&status).as_deref(),
            Some(field),
            "{status:?}"
        );
    }
    let listed = app
        .complaints
        .list_complaints(pb::ListComplaintsRequest::default())
        .await?
        .into_inner();
    assert!(listed.complaints.is_empty(), "nothing was taken in");
    Ok(())
}

async fn taken_in_together(mut app: TestApp) -> anyhow::Result<()> {
    app.load_organisation().await?;
    const REPORTS: usize = 6;
    let submissions = (0..REPORTS).map(|i| {
        let mut client = app.complaints.clone();
        async move {
            client
                .submit_complaint(lamp(&format!("together-{i}"), "", "xinyuan-b2", None))
                .await
                .map(|response| response.into_inner().complaint.unwrap_or_default())
        }
    });
    let mut reports = futures::future::try_join_all(submissions).await?;
    reports.sort_by_key(|c| c.possible_duplicates.len());
    let counts: Vec<usize> = reports
        .iter()
        .map(|c| c.possible_duplicates.len())
        .collect();
    assert_eq!(
        counts,
        (0..REPORTS).collect::<Vec<_>>(),
        "each names all before it"
    );
    for (k, report) in reports.iter().enumerate() {
        let mut named: Vec<&str> = report
            .possible_duplicates
            .iter()
            .map(|d| d.complaint_id.as_str())
            .collect();
        let mut before: Vec<&str> = reports[..k].iter().map(|c| c.id.as_str()).collect();
        named.sort_unstable();
        before.sort_unstable();
        assert_eq!(
            named, before,
            "report {k} names exactly those committed before it"
        );
    }
    Ok(())
}
