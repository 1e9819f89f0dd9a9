//! The gRPC API: registration, the convenience circle, datums, validation,
//! suspension, activities and the ledger, model-merchant awards.

use chrono::Duration;
use shequ_proto::alliance::v1 as pb;
use shequ_proto::common::v1 as common;
use tonic::Code;

use crate::support::{JINSHUI, TestApp, dining, violated_field, wgs84};

shequ_tests::on_both_backends!(
    nearby_lists_merchants_within_the_walk_nearest_first_with_distances,
    a_point_given_in_gcj02_meets_a_merchant_placed_in_wgs84,
    nearby_narrows_by_category_tag_open_now_and_status,
    nearby_reads_on_past_the_nearest_until_the_rules_have_found_enough,
    same_request_id_registers_once,
    a_request_id_reused_for_a_different_request_is_refused_naming_it_and_changes_nothing,
    invalid_input_is_refused_naming_the_field_and_writes_nothing,
    suspension_and_reinstatement_follow_the_status,
    an_activity_raises_the_score_once_with_a_ledger_entry,
    model_merchants_are_evaluated_with_reasons_and_awarded_once,
    merchants_are_listed_by_grid_category_and_status_in_pages,
);

fn nearby(point: common::GeoPoint, minutes: i32) -> pb::FindNearbyRequest {
    pb::FindNearbyRequest {
        point: Some(point),
        category: pb::Category::Dining as i32,
        walk_minutes: minutes,
        ..Default::default()
    }
}

async fn names(app: &mut TestApp, request: pb::FindNearbyRequest) -> anyhow::Result<Vec<String>> {
    let found = app.merchants.find_nearby(request).await?.into_inner();
    Ok(found
        .merchants
        .into_iter()
        .map(|n| n.merchant.unwrap_or_default().name)
        .collect())
}

async fn nearby_lists_merchants_within_the_walk_nearest_first_with_distances(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.register("r-far", dining("far", 1100.0, &[])).await?;
    app.register("r-near", dining("near", 150.0, &[])).await?;
    app.register("r-out", dining("outside", 1300.0, &[]))
        .await?;

    let found = app
        .merchants
        .find_nearby(nearby(wgs84(0.0), 0))
        .await?
        .into_inner();

    assert_eq!(
        found.radius_metres, 1200.0,
        "15 minutes at 80 m per minute by default"
    );
    let listed: Vec<(String, f64)> = found
        .merchants
        .iter()
        .map(|n| {
            (
                n.merchant.clone().unwrap_or_default().name,
                n.distance_metres,
            )
        })
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0].0, "near");
    assert!((listed[0].1 - 150.0).abs() <= 2.0, "{listed:?}");
    assert_eq!(listed[1].0, "far");
    assert!(
        (found.merchants[0].walk_minutes - 1.9).abs() < 0.11,
        "{:?}",
        found.merchants[0].walk_minutes
    );
    assert_eq!(
        names(&mut app, nearby(wgs84(0.0), 20)).await?,
        ["near", "far", "outside"]
    );
    Ok(())
}

async fn a_point_given_in_gcj02_meets_a_merchant_placed_in_wgs84(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let merchant = app.register("r-1", dining("食堂", 0.0, &[])).await?;
    // The same place as a map SDK reports it: GCJ-02 is offset by hundreds of metres.
    let gcj = app
        .merchants
        .get_merchant(pb::GetMerchantRequest {
            merchant_id: merchant.id.clone(),
            datum: common::Datum::Gcj02 as i32,
        })
        .await?
        .into_inner()
        .merchant
        .unwrap_or_default()
        .location
        .unwrap_or_default();
    assert_eq!(gcj.datum, common::Datum::Gcj02 as i32);
    assert!(
        (gcj.latitude - JINSHUI.0).abs() + (gcj.longitude - JINSHUI.1).abs() > 0.001,
        "GCJ-02 differs: {gcj:?}"
    );

    let found = app
        .merchants
        .find_nearby(nearby(gcj, 1))
        .await?
        .into_inner();

    assert_eq!(
        found.merchants.len(),
        1,
        "within a minute's walk despite the offset"
    );
    assert!(
        found.merchants[0].distance_metres <= 1.0,
        "{}",
        found.merchants[0].distance_metres
    );
    let returned = found.merchants[0]
        .merchant
        .clone()
        .unwrap_or_default()
        .location
        .unwrap_or_default();
    assert_eq!(
        returned.datum,
        common::Datum::Gcj02 as i32,
        "answered in the datum asked in"
    );
    Ok(())
}

async fn nearby_narrows_by_category_tag_open_now_and_status(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.register("r-1", dining("meals", 300.0, &["elder_meals"]))
        .await?;
    let mut evening = dining("evening-meals", 100.0, &["elder_meals"]);
    evening.opening_hours[0].opens = "17:00".into();
    evening.opening_hours[0].closes = "02:00".into();
    app.register("r-2", evening).await?;
    let suspended = app
        .register("r-3", dining("suspended-meals", 50.0, &["elder_meals"]))
        .await?;
    let mut repair = dining("repair-shop", 20.0, &["elder_meals"]);
    repair.category = pb::Category::Repair as i32;
    app.register("r-4", repair).await?;
    app.register("r-5", dining("no-tag", 10.0, &[])).await?;
    app.merchants
        .suspend_merchant(pb::SuspendMerchantRequest {
            merchant_id: suspended.id,
            reason: "卫生检查不合格".into(),
            actor: "operator-1".into(),
        })
        .await?;
    let meals = |open_now| pb::FindNearbyRequest {
        service_tag: "elder_meals".into(),
        open_now,
        ..nearby(wgs84(0.0), 15)
    };

    assert_eq!(
        names(&mut app, meals(false)).await?,
        ["evening-meals", "meals"]
    );
    assert_eq!(
        names(&mut app, meals(true)).await?,
        ["meals"],
        "Monday 10:00: the evening one is closed"
    );
    app.clock.advance(Duration::hours(15)); // Tuesday 01:00: only the overnight one is open.
    assert_eq!(names(&mut app, meals(true)).await?, ["evening-meals"]);
    Ok(())
}

async fn nearby_reads_on_past_the_nearest_until_the_rules_have_found_enough(
    mut app: TestApp,
) -> anyhow::Result<()> {
    // 60 untagged merchants nearer than any tagged one: the tagged ones are
    // only found on later pages of candidates. The nearest 50 open only in
    // the evening.
    for i in 0..60 {
        let metres = 10.0 + 8.0 * f64::from(i);
        let mut plain = dining(&format!("plain-{i:02}"), metres, &[]);
        if i < 50 {
            plain.opening_hours[0].opens = "17:00".into();
            plain.opening_hours[0].closes = "21:00".into();
        }
        app.register(&format!("r-{i}"), plain).await?;
    }
    // A tag that `elder_meals` would match if `_` were a wildcard.
    app.register("r-x", dining("elderxmeals", 5.0, &["elderxmeals"]))
        .await?;
    for (name, metres) in [
        ("meals-far", 1000.0),
        ("meals-near", 700.0),
        ("meals-mid", 800.0),
    ] {
        app.register(name, dining(name, metres, &["elder_meals"]))
            .await?;
    }
    let meals = pb::FindNearbyRequest {
        service_tag: "elder_meals".into(),
        limit: 2,
        ..nearby(wgs84(0.0), 15)
    };
    assert_eq!(names(&mut app, meals).await?, ["meals-near", "meals-mid"]);

    let nearest = pb::FindNearbyRequest {
        limit: 3,
        ..nearby(wgs84(0.0), 15)
    };
    assert_eq!(
        names(&mut app, nearest).await?,
        ["elderxmeals", "plain-00", "plain-01"]
    );
    let open = pb::FindNearbyRequest {
        limit: 3,
        open_now: true,
        ..nearby(wgs84(0.0), 15)
    };
    assert_eq!(
        names(&mut app, open).await?,
        ["elderxmeals", "plain-50", "plain-51"],
        "Monday 10:00: the nearest 50 plain ones are closed"
    );
    let everything = pb::FindNearbyRequest {
        limit: 100,
        ..nearby(wgs84(0.0), 15)
    };
    let all = names(&mut app, everything).await?;
    assert_eq!(all.len(), 64, "every merchant within 1,200 m");
    assert_eq!(
        &all[59..],
        [
            "plain-58",
            "plain-59",
            "meals-near",
            "meals-mid",
            "meals-far"
        ]
    );
    Ok(())
}

async fn same_request_id_registers_once(mut app: TestApp) -> anyhow::Result<()> {
    let first = app.register("r-1", dining("一家店", 0.0, &[])).await?;
    let again = app
        .merchants
        .register_merchant(pb::RegisterMerchantRequest {
            request_id: "r-1".into(),
            details: Some(dining("一家店", 0.0, &[])),
            actor: "operator-1".into(),
        })
        .await?
        .into_inner();

    assert!(again.duplicate);
    assert_eq!(again.merchant.map(|m| m.id), Some(first.id));
    let listed = app
        .merchants
        .list_merchants(pb::ListMerchantsRequest::default())
        .await?
        .into_inner();
    assert_eq!(listed.merchants.len(), 1);
    assert_eq!(app.wait_for_events(1).await?.len(), 1);
    Ok(())
}

async fn a_request_id_reused_for_a_different_request_is_refused_naming_it_and_changes_nothing(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let first = app.register("r-1", dining("一家店", 0.0, &[])).await?;
    let renamed = app
        .merchants
        .register_merchant(pb::RegisterMerchantRequest {
            request_id: "r-1".into(),
            details: Some(dining("另一家店", 0.0, &[])),
            actor: "operator-1".into(),
        })
        .await
        .expect_err("another name under the key");
    assert_eq!(renamed.code(), Code::InvalidArgument, "{renamed:?}");
    assert_eq!(violated_field(&renamed).as_deref(), Some("request_id"));
    let listed = app
        .merchants
        .list_merchants(pb::ListMerchantsRequest::default())
        .await?
        .into_inner();
    let names: Vec<&str> = listed.merchants.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["一家店"], "still the one merchant, unchanged");

    let yesterday = app.clock_now() - Duration::days(1);
    let recorded = activity("a-1", &first.id, pb::ActivityKind::Welfare, yesterday);
    let entry = app
        .merchants
        .record_activity(recorded.clone())
        .await?
        .into_inner()
        .entry;
    let other = app.register("r-2", dining("第二家店", 10.0, &[])).await?;
    let different = [
        pb::RecordActivityRequest {
            description: "别的活动".into(),
            ..recorded.clone()
        },
        pb::RecordActivityRequest {
            kind: pb::ActivityKind::Environment as i32,
            ..recorded.clone()
        },
        pb::RecordActivityRequest {
            merchant_id: other.id.clone(),
            ..recorded.clone()
        },
        pb::RecordActivityRequest {
            happened_at: None,
            ..recorded.clone()
        },
    ];
    for request in different {
        let status = app
            .merchants
            .record_activity(request.clone())
            .await
            .expect_err("a different activity under the key");
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{request:?}: {status:?}"
        );
        assert_eq!(violated_field(&status).as_deref(), Some("request_id"));
    }
    let again = app.merchants.record_activity(recorded).await?.into_inner();
    assert!(again.duplicate, "the same request again");
    assert_eq!(again.entry, entry);
    for (merchant, score, entries) in [(&first.id, 102, 1), (&other.id, 100, 0)] {
        let ledger = app
            .merchants
            .get_credit_ledger(pb::GetCreditLedgerRequest {
                merchant_id: merchant.clone(),
            })
            .await?
            .into_inner();
        assert_eq!((ledger.score, ledger.entries.len()), (score, entries));
    }
    // Two registrations and one credit change: nothing of the refusals.
    assert_eq!(app.wait_for_events(3).await?.len(), 3);
    Ok(())
}

async fn invalid_input_is_refused_naming_the_field_and_writes_nothing(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let with = |change: fn(&mut pb::MerchantDetails)| {
        let mut details = dining("店", 0.0, &[]);
        change(&mut details);
        details
    };
    let cases: Vec<(&str, pb::MerchantDetails)> = vec![
        (
            "details.location.latitude",
            with(|d| {
                d.location = Some(common::GeoPoint {
                    latitude: 200.0,
                    ..wgs84(0.0)
                })
            }),
        ),
        (
            "details.location.longitude",
            with(|d| {
                d.location = Some(common::GeoPoint {
                    longitude: -181.0,
                    ..wgs84(0.0)
                })
            }),
        ),
        (
            "details.location.datum",
            with(|d| {
                d.location = Some(common::GeoPoint {
                    datum: 0,
                    ..wgs84(0.0)
                })
            }),
        ),
        ("details.name", with(|d| d.name = "  ".into())),
        ("details.name", with(|d| d.name = "店".repeat(101))),
        ("details.category", with(|d| d.category = 99)),
        ("details.category", with(|d| d.category = 0)),
        (
            "details.service_tags[0]",
            with(|d| d.service_tags = vec!["Elder Meals".into()]),
        ),
        ("details.grid_id", with(|d| d.grid_id = String::new())),
        (
            "details.opening_hours[0].opens",
            with(|d| d.opening_hours[0].opens = "25:00".into()),
        ),
    ];
    for (field, details) in cases {
        let status = app
            .merchants
            .register_merchant(pb::RegisterMerchantRequest {
                request_id: format!("r-{field}"),
                details: Some(details),
                actor: "operator-1".into(),
            })
            .await
            .expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(
            violated_field(&status).as_deref(),
            Some(field),
            "{status:?}"
        );
    }
    let search_cases = [
        ("walk_minutes", nearby(wgs84(0.0), -5)),
        ("walk_minutes", nearby(wgs84(0.0), 61)),
        (
            "category",
            pb::FindNearbyRequest {
                category: 0,
                ..nearby(wgs84(0.0), 15)
            },
        ),
        (
            "point.latitude",
            nearby(
                common::GeoPoint {
                    latitude: 200.0,
                    ..wgs84(0.0)
                },
                15,
            ),
        ),
        (
            "service_tag",
            pb::FindNearbyRequest {
                service_tag: "餐".into(),
                ..nearby(wgs84(0.0), 15)
            },
        ),
    ];
    for (field, request) in search_cases {
        let status = app.merchants.find_nearby(request).await.expect_err(field);
        assert_eq!(
            violated_field(&status).as_deref(),
            Some(field),
            "{status:?}"
        );
    }

    let listed = app
        .merchants
        .list_merchants(pb::ListMerchantsRequest::default())
        .await?
        .into_inner();
    assert!(listed.merchants.is_empty(), "nothing was written");
    Ok(())
}

async fn suspension_and_reinstatement_follow_the_status(mut app: TestApp) -> anyhow::Result<()> {
    let id = app.register("r-1", dining("店", 0.0, &[])).await?.id;
    let suspend = pb::SuspendMerchantRequest {
        merchant_id: id.clone(),
        reason: "食品安全检查".into(),
        actor: "operator-1".into(),
    };
    let reinstate = pb::ReinstateMerchantRequest {
        merchant_id: id.clone(),
        actor: "operator-1".into(),
    };

    let early = app
        .merchants
        .reinstate_merchant(reinstate.clone())
        .await
        .expect_err("active");
    let suspended = app
        .merchants
        .suspend_merchant(suspend.clone())
        .await?
        .into_inner()
        .merchant
        .unwrap_or_default();
    let twice = app
        .merchants
        .suspend_merchant(suspend)
        .await
        .expect_err("already suspended");
    let back = app
        .merchants
        .reinstate_merchant(reinstate)
        .await?
        .into_inner()
        .merchant
        .unwrap_or_default();
    let unknown = app
        .merchants
        .suspend_merchant(pb::SuspendMerchantRequest {
            merchant_id: "nope".into(),
            reason: "x".into(),
            actor: "o".into(),
        })
        .await
        .expect_err("unknown");

    assert_eq!(early.code(), Code::FailedPrecondition);
    assert_eq!(
        (suspended.status(), suspended.suspended_reason.as_str()),
        (pb::MerchantStatus::Suspended, "食品安全检查")
    );
    assert_eq!(twice.code(), Code::FailedPrecondition);
    assert_eq!(
        (back.status(), back.suspended_reason.as_str()),
        (pb::MerchantStatus::Active, "")
    );
    assert_eq!(unknown.code(), Code::NotFound);
    let types: Vec<String> = app
        .wait_for_events(3)
        .await?
        .into_iter()
        .map(|e| e.event.event_type)
        .collect();
    assert_eq!(
        types,
        [
            "shequ.alliance.merchant.registered.v1",
            "shequ.alliance.merchant.suspended.v1",
            "shequ.alliance.merchant.reinstated.v1"
        ]
    );
    Ok(())
}

fn activity(
    request_id: &str,
    merchant_id: &str,
    kind: pb::ActivityKind,
    at: chrono::DateTime<chrono::Utc>,
) -> pb::RecordActivityRequest {
    pb::RecordActivityRequest {
        request_id: request_id.into(),
        merchant_id: merchant_id.into(),
        kind: kind as i32,
        description: "社区环境整治".into(),
        happened_at: Some(shequ_proto::time::timestamp(at)),
        actor: "operator-1".into(),
    }
}

async fn an_activity_raises_the_score_once_with_a_ledger_entry(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let id = app.register("r-1", dining("店", 0.0, &[])).await?.id;
    let yesterday = app.clock_now() - Duration::days(1);

    let first = app
        .merchants
        .record_activity(activity(
            "a-1",
            &id,
            pb::ActivityKind::Environment,
            yesterday,
        ))
        .await?
        .into_inner();
    let again = app
        .merchants
        .record_activity(activity(
            "a-1",
            &id,
            pb::ActivityKind::Environment,
            yesterday,
        ))
        .await?
        .into_inner();
    let future = app
        .merchants
        .record_activity(activity(
            "a-2",
            &id,
            pb::ActivityKind::Welfare,
            app.clock_now() + Duration::days(1),
        ))
        .await
        .expect_err("future");
    let unknown_kind = app
        .merchants
        .record_activity(pb::RecordActivityRequest {
            kind: 0,
            ..activity("a-3", &id, pb::ActivityKind::Welfare, yesterday)
        })
        .await
        .expect_err("no kind");

    assert!(!first.duplicate && again.duplicate);
    assert_eq!(first.entry, again.entry);
    let entry = first.entry.unwrap_or_default();
    assert_eq!(
        (entry.delta, entry.score_after, entry.reason.as_str()),
        (2, 102, "environment_activity")
    );
    assert_eq!(violated_field(&future).as_deref(), Some("happened_at"));
    assert_eq!(violated_field(&unknown_kind).as_deref(), Some("kind"));
    let ledger = app
        .merchants
        .get_credit_ledger(pb::GetCreditLedgerRequest { merchant_id: id })
        .await?
        .into_inner();
    assert_eq!(ledger.score, 102);
    assert_eq!(ledger.entries.len(), 1);
    assert_eq!(ledger.entries[0].actor, "operator-1");
    Ok(())
}

async fn model_merchants_are_evaluated_with_reasons_and_awarded_once(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let model = app.register("r-1", dining("模范店", 0.0, &[])).await?.id;
    let mut not_member = dining("普通店", 10.0, &[]);
    not_member.party_member_owner = false;
    let ordinary = app.register("r-2", not_member).await?.id;
    for (n, id) in [&model, &model, &ordinary, &ordinary].iter().enumerate() {
        let at = app.clock_now() - Duration::days(1);
        app.merchants
            .record_activity(activity(
                &format!("a-{n}"),
                id,
                pb::ActivityKind::Welfare,
                at,
            ))
            .await?;
    }
    let evaluate = |award| pb::EvaluateModelMerchantsRequest {
        period: "2026-Q4".into(),
        award,
        actor: "operator-1".into(),
    };

    let report = app
        .merchants
        .evaluate_model_merchants(evaluate(false))
        .await?
        .into_inner();
    app.merchants
        .evaluate_model_merchants(evaluate(true))
        .await?;
    let again = app
        .merchants
        .evaluate_model_merchants(evaluate(true))
        .await?
        .into_inner();

    let by_id = |evaluations: &[pb::Evaluation], id: &str| {
        evaluations
            .iter()
            .find(|e| e.merchant_id == id)
            .cloned()
            .unwrap_or_default()
    };
    let model_report = by_id(&report.evaluations, &model);
    assert!(
        model_report.qualified && !model_report.awarded,
        "{model_report:?}"
    );
    let ordinary_report = by_id(&report.evaluations, &ordinary);
    assert!(!ordinary_report.qualified);
    assert_eq!(
        ordinary_report.reasons.len(),
        1,
        "{:?}",
        ordinary_report.reasons
    );
    assert!(by_id(&again.evaluations, &model).awarded);
    let events = app.wait_for_events(7).await?;
    let awards = events
        .iter()
        .filter(|e| e.event.event_type == "shequ.alliance.model_merchant.awarded.v1")
        .count();
    assert_eq!(awards, 1, "awarded once per merchant and period");
    let bad = app
        .merchants
        .evaluate_model_merchants(pb::EvaluateModelMerchantsRequest {
            period: "2026-Q5".into(),
            ..evaluate(false)
        })
        .await
        .expect_err("bad period");
    assert_eq!(violated_field(&bad).as_deref(), Some("period"));
    Ok(())
}

async fn merchants_are_listed_by_grid_category_and_status_in_pages(
    mut app: TestApp,
) -> anyhow::Result<()> {
    for n in 0..5 {
        app.register(&format!("d-{n}"), dining(&format!("d{n}"), 0.0, &[]))
            .await?;
    }
    let mut elsewhere = dining("repair", 0.0, &[]);
    elsewhere.grid_id = "yaozhai-1".into();
    elsewhere.category = pb::Category::Repair as i32;
    app.register("r-1", elsewhere).await?;

    let list = |grid: &str, category: pb::Category, token: String| pb::ListMerchantsRequest {
        grid_id: grid.into(),
        category: category as i32,
        page: Some(common::PageRequest {
            page_size: 2,
            page_token: token,
        }),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .merchants
            .list_merchants(list("xinyuan-1", pb::Category::Dining, token))
            .await?
            .into_inner();
        seen.extend(page.merchants.into_iter().map(|m| m.name));
        token = page.page.unwrap_or_default().next_page_token;
        if token.is_empty() {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, ["d0", "d1", "d2", "d3", "d4"]);
    let repairs = app
        .merchants
        .list_merchants(list("", pb::Category::Repair, String::new()))
        .await?
        .into_inner();
    assert_eq!(repairs.merchants.len(), 1);
    Ok(())
}
