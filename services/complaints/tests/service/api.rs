//! The gRPC API: lifecycle, idempotency, validation, routing, listing, the
//! sweeper and the figures.

use std::collections::HashSet;

use chrono::Duration;
use prost_types::Timestamp;
use shequ_proto::common::v1 as common;
use shequ_proto::complaints::v1 as pb;
use tonic::Code;

use crate::support::{TestApp, start_of_test, submission, violated_field};

shequ_tests::on_both_backends!(
    submitted_complaint_is_classified_routed_and_readable_with_its_reporter,
    same_request_id_returns_the_first_complaint_and_changes_nothing,
    complaint_goes_from_submission_to_closure_with_every_step_in_its_history,
    low_satisfaction_reopens_the_complaint_with_a_fresh_limit,
    retried_transition_with_the_same_request_id_changes_nothing,
    invalid_input_is_refused_naming_the_field_and_writes_nothing,
    unknown_ids_are_not_found_and_write_nothing,
    conflicting_transitions_are_refused,
    duplicate_is_merged_into_an_open_complaint_of_the_same_category,
    rejected_complaint_keeps_its_reason,
    operator_reclassification_moves_the_time_limits,
    list_filters_by_grid_category_status_and_overdue_and_pages_without_gaps,
    building_routes_to_its_grid_and_worker,
    sweeper_escalates_once_per_breach_even_across_restarts,
    figures_count_response_resolution_satisfaction_and_reopens,
    organisation_is_loaded_replaced_and_validated,
    a_complaint_about_a_merchant_is_accepted_unverified_while_the_alliance_is_down,
);

fn ts(at: chrono::DateTime<chrono::Utc>) -> Option<Timestamp> {
    Some(shequ_proto::time::timestamp(at))
}

fn accept(id: &str) -> pb::AcceptComplaintRequest {
    pb::AcceptComplaintRequest {
        complaint_id: id.into(),
        actor: "worker-li".into(),
        ..Default::default()
    }
}

fn resolve(id: &str) -> pb::ResolveComplaintRequest {
    pb::ResolveComplaintRequest {
        complaint_id: id.into(),
        actor: "worker-li".into(),
        note: "已清运".into(),
        ..Default::default()
    }
}

fn follow_up(id: &str, satisfaction: u32) -> pb::RecordFollowUpRequest {
    pb::RecordFollowUpRequest {
        complaint_id: id.into(),
        actor: "visitor-wu".into(),
        satisfaction,
        ..Default::default()
    }
}

async fn list(
    app: &mut TestApp,
    request: pb::ListComplaintsRequest,
) -> anyhow::Result<Vec<pb::Complaint>> {
    Ok(app
        .complaints
        .list_complaints(request)
        .await?
        .into_inner()
        .complaints)
}

async fn submitted_complaint_is_classified_routed_and_readable_with_its_reporter(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;

    let submitted = app.submit("r-1", "3号楼下的垃圾三天没人清运").await?;
    let complaint = app.get(&submitted.id).await?;

    assert_eq!(complaint.status(), pb::Status::Submitted);
    assert_eq!(complaint.category(), pb::Category::EnvironmentSanitation);
    assert!(
        complaint
            .classified_by
            .starts_with("model:environment_sanitation "),
        "{}",
        complaint.classified_by
    );
    assert!(
        complaint.classified_by.contains(" 垃圾+"),
        "names its evidence"
    );
    assert!(!complaint.classification_pending);
    assert_eq!(
        (complaint.community_id.as_str(), complaint.grid_id.as_str()),
        ("xinyuan", "xinyuan-1")
    );
    assert_eq!(
        (complaint.level(), complaint.assignee.as_str()),
        (pb::Level::GridWorker, "worker-li")
    );
    let reporter = complaint.reporter.clone().unwrap_or_default();
    assert_eq!(
        (reporter.name.as_str(), reporter.phone.as_str()),
        ("张三", "13812345678")
    );
    assert_eq!(complaint.reporter_phone_masked, "138****5678");
    let due = complaint.response_due_at.unwrap_or_default();
    assert_eq!(
        due.seconds,
        (start_of_test() + Duration::hours(24)).timestamp()
    );
    assert_eq!(complaint.history.len(), 1);
    assert_eq!(complaint.history[0].action, "submitted");
    Ok(())
}

async fn same_request_id_returns_the_first_complaint_and_changes_nothing(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    // A clock reading with nanoseconds: every answer is whole milliseconds.
    app.clock.advance(Duration::nanoseconds(123_456_789));

    let first = app
        .complaints
        .submit_complaint(submission("r-1", "路灯不亮"))
        .await?
        .into_inner();
    let again = app
        .complaints
        .submit_complaint(submission("r-1", "路灯不亮"))
        .await?
        .into_inner();

    assert!(!first.duplicate && again.duplicate);
    assert_eq!(
        again.complaint, first.complaint,
        "every field, every instant"
    );
    let submitted_at = first.complaint.unwrap_or_default().submitted_at;
    assert_eq!(submitted_at.unwrap_or_default().nanos % 1_000_000, 0);
    assert_eq!(list(&mut app, Default::default()).await?.len(), 1);
    let events = app.wait_for_events(1).await?;
    assert_eq!(events.len(), 1, "one submission, one event");
    let published = events[0].event.data["submitted_at"]
        .as_str()
        .map(str::to_owned);
    let answered = submitted_at.map(|at| shequ_proto::time::instant(&at));
    assert_eq!(
        published.and_then(|at| chrono::DateTime::parse_from_rfc3339(&at).ok()),
        answered.flatten().map(|at| at.fixed_offset()),
        "the event's instant is the answer's"
    );
    Ok(())
}

async fn complaint_goes_from_submission_to_closure_with_every_step_in_its_history(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let id = app.submit("r-1", "垃圾没人清运").await?.id;

    app.clock.advance(Duration::hours(1));
    app.complaints.accept_complaint(accept(&id)).await?;
    app.complaints
        .start_complaint(pb::StartComplaintRequest {
            complaint_id: id.clone(),
            actor: "worker-li".into(),
            ..Default::default()
        })
        .await?;
    app.clock.advance(Duration::hours(5));
    app.complaints.resolve_complaint(resolve(&id)).await?;
    app.clock.advance(Duration::days(1));
    let closed = app
        .complaints
        .record_follow_up(follow_up(&id, 5))
        .await?
        .into_inner()
        .complaint
        .unwrap_or_default();

    assert!(
        closed.reporter.is_none(),
        "transitions answer without personal data"
    );
    assert_eq!(closed.reporter_phone_masked, "138****5678");
    assert_eq!(closed.status(), pb::Status::Closed);
    assert_eq!(closed.satisfaction, 5);
    let history = app.get(&id).await?.history;
    let steps: Vec<(&str, pb::Status, pb::Status, &str)> = history
        .iter()
        .map(|h| {
            (
                h.action.as_str(),
                h.from_status(),
                h.to_status(),
                h.actor.as_str(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (
                "submitted",
                pb::Status::Submitted,
                pb::Status::Submitted,
                // No authentication here: nobody to name.
                shequ_chassis::grpc::ANONYMOUS
            ),
            (
                "accepted",
                pb::Status::Submitted,
                pb::Status::Accepted,
                "worker-li"
            ),
            (
                "started",
                pb::Status::Accepted,
                pb::Status::InProgress,
                "worker-li"
            ),
            (
                "resolved",
                pb::Status::InProgress,
                pb::Status::Resolved,
                "worker-li"
            ),
            (
                "closed",
                pb::Status::Resolved,
                pb::Status::Closed,
                "visitor-wu"
            ),
        ]
    );
    let resolved_at = history[3].at.unwrap_or_default().seconds;
    assert_eq!(
        resolved_at,
        (start_of_test() + Duration::hours(6)).timestamp(),
        "who and when are recorded"
    );
    Ok(())
}

async fn low_satisfaction_reopens_the_complaint_with_a_fresh_limit(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let id = app.submit("r-1", "垃圾没人清运").await?.id;
    app.complaints.accept_complaint(accept(&id)).await?;
    app.complaints.resolve_complaint(resolve(&id)).await?;
    app.clock.advance(Duration::days(2));

    let reopened = app
        .complaints
        .record_follow_up(follow_up(&id, 2))
        .await?
        .into_inner()
        .complaint
        .unwrap_or_default();

    assert_eq!(reopened.status(), pb::Status::Reopened);
    assert_eq!(reopened.reopen_count, 1);
    let due = reopened.resolution_due_at.unwrap_or_default().seconds;
    assert_eq!(due, (start_of_test() + Duration::days(5)).timestamp());
    Ok(())
}

async fn retried_transition_with_the_same_request_id_changes_nothing(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let id = app.submit("r-1", "垃圾没人清运").await?.id;
    let mut request = accept(&id);
    request.request_id = "accept-1".into();

    let first = app
        .complaints
        .accept_complaint(request.clone())
        .await?
        .into_inner()
        .complaint;
    let retried = app
        .complaints
        .accept_complaint(request)
        .await?
        .into_inner()
        .complaint;

    assert_eq!(first, retried);
    let accepted = app
        .get(&id)
        .await?
        .history
        .iter()
        .filter(|h| h.action == "accepted")
        .count();
    assert_eq!(accepted, 1);
    let mut reused = accept(&app.submit("r-2", "路灯不亮").await?.id);
    reused.request_id = "accept-1".into();
    let refused = app
        .complaints
        .accept_complaint(reused)
        .await
        .err()
        .map(|s| violated_field(&s));
    assert_eq!(
        refused,
        Some(Some("request_id".into())),
        "a key is bound to its complaint"
    );
    Ok(())
}

async fn invalid_input_is_refused_naming_the_field_and_writes_nothing(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let cases: Vec<(&str, pb::SubmitComplaintRequest)> = vec![
        (
            "text",
            pb::SubmitComplaintRequest {
                text: "   ".into(),
                ..submission("r-1", "")
            },
        ),
        ("text", submission("r-2", &"很长".repeat(1001))),
        (
            "category",
            pb::SubmitComplaintRequest {
                category: 99,
                ..submission("r-3", "路灯")
            },
        ),
        (
            "priority",
            pb::SubmitComplaintRequest {
                priority: 42,
                ..submission("r-4", "路灯")
            },
        ),
        (
            "channel",
            pb::SubmitComplaintRequest {
                channel: 0,
                ..submission("r-5", "路灯")
            },
        ),
        ("request_id", submission("", "路灯")),
        ("request_id", submission(&"k".repeat(129), "路灯")),
        (
            "location",
            pb::SubmitComplaintRequest {
                location: "东".repeat(201),
                ..submission("r-6", "路灯")
            },
        ),
        (
            "merchant_id",
            pb::SubmitComplaintRequest {
                merchant_id: "m".repeat(65),
                ..submission("r-7", "路灯")
            },
        ),
        (
            "grid_id",
            pb::SubmitComplaintRequest {
                grid_id: String::new(),
                ..submission("r-8", "路灯")
            },
        ),
        (
            "reporter.phone",
            pb::SubmitComplaintRequest {
                reporter: Some(pb::Reporter {
                    name: String::new(),
                    phone: "call me".into(),
                }),
                ..submission("r-9", "路灯")
            },
        ),
    ];
    for (field, request) in cases {
        let status = app
            .complaints
            .submit_complaint(request)
            .await
            .expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(
            violated_field(&status).as_deref(),
            Some(field),
            "{status:?}"
        );
    }

    let id = app.submit("good", "路灯不亮").await?.id;
    app.complaints.accept_complaint(accept(&id)).await?;
    app.complaints.resolve_complaint(resolve(&id)).await?;
    let nine = app
        .complaints
        .record_follow_up(follow_up(&id, 9))
        .await
        .expect_err("satisfaction 9");
    assert_eq!(violated_field(&nine).as_deref(), Some("satisfaction"));
    // Without authentication (development) an actor may be claimed, as an
    // account id: never a person's name.
    let a_name = app
        .complaints
        .record_follow_up(pb::RecordFollowUpRequest {
            actor: "张三".into(),
            ..follow_up(&id, 4)
        })
        .await
        .expect_err("a name as actor");
    assert_eq!(violated_field(&a_name).as_deref(), Some("actor"));
    let page = app
        .complaints
        .list_complaints(pb::ListComplaintsRequest {
            page: Some(common::PageRequest {
                page_size: 500,
                page_token: String::new(),
            }),
            ..Default::default()
        })
        .await
        .expect_err("page size 500");
    assert_eq!(violated_field(&page).as_deref(), Some("page.page_size"));

    let complaints = list(&mut app, Default::default()).await?;
    assert_eq!(complaints.len(), 1, "only the valid submission was stored");
    assert_eq!(
        complaints[0].status(),
        pb::Status::Resolved,
        "the refused follow-ups changed nothing"
    );
    let history = app.get(&id).await?.history;
    assert_eq!(history.len(), 3);
    assert_eq!(
        app.wait_for_events(3).await?.len(),
        3,
        "no event for refused requests"
    );
    Ok(())
}

async fn unknown_ids_are_not_found_and_write_nothing(mut app: TestApp) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let code = |result: Result<tonic::Response<_>, tonic::Status>| {
        result
            .map(|_: tonic::Response<pb::GetComplaintResponse>| ())
            .err()
            .map(|s| s.code())
    };
    assert_eq!(
        code(
            app.complaints
                .get_complaint(pb::GetComplaintRequest {
                    complaint_id: "nope".into()
                })
                .await
        ),
        Some(Code::NotFound)
    );
    let accept_unknown = app
        .complaints
        .accept_complaint(accept("nope"))
        .await
        .err()
        .map(|s| s.code());
    assert_eq!(accept_unknown, Some(Code::NotFound));
    let unknown_grid = app
        .complaints
        .submit_complaint(pb::SubmitComplaintRequest {
            grid_id: "atlantis".into(),
            ..submission("r-1", "路灯")
        })
        .await
        .expect_err("unknown grid");
    assert_eq!(unknown_grid.code(), Code::NotFound);
    assert!(
        unknown_grid.message().contains("atlantis"),
        "{unknown_grid:?}"
    );
    let unknown_building = app
        .complaints
        .submit_complaint(pb::SubmitComplaintRequest {
            building_id: "b-99".into(),
            ..submission("r-2", "路灯")
        })
        .await
        .expect_err("unknown building");
    assert_eq!(unknown_building.code(), Code::NotFound);
    let id = app.submit("r-3", "路灯不亮").await?.id;
    let merge_unknown = app
        .complaints
        .merge_complaint(pb::MergeComplaintRequest {
            complaint_id: id.clone(),
            into_complaint_id: "nope".into(),
            actor: "op".into(),
            ..Default::default()
        })
        .await
        .expect_err("merge into unknown");
    assert_eq!(merge_unknown.code(), Code::NotFound);

    assert_eq!(list(&mut app, Default::default()).await?.len(), 1);
    assert_eq!(app.get(&id).await?.status(), pb::Status::Submitted);
    Ok(())
}

async fn conflicting_transitions_are_refused(mut app: TestApp) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let id = app.submit("r-1", "路灯不亮").await?.id;

    let close_early = app
        .complaints
        .record_follow_up(follow_up(&id, 5))
        .await
        .expect_err("not resolved");
    assert_eq!(close_early.code(), Code::FailedPrecondition);
    app.complaints.accept_complaint(accept(&id)).await?;
    let twice = app
        .complaints
        .accept_complaint(accept(&id))
        .await
        .expect_err("accepted twice");
    assert_eq!(twice.code(), Code::FailedPrecondition);
    let no_merchant = app
        .complaints
        .resolve_complaint(pb::ResolveComplaintRequest {
            merchant_at_fault: true,
            ..resolve(&id)
        })
        .await
        .expect_err("no merchant to be at fault");
    assert_eq!(
        violated_field(&no_merchant).as_deref(),
        Some("merchant_at_fault")
    );

    assert_eq!(app.get(&id).await?.status(), pb::Status::Accepted);
    Ok(())
}

async fn duplicate_is_merged_into_an_open_complaint_of_the_same_category(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let original = app.submit("r-1", "路灯不亮").await?.id;
    let duplicate = app.submit("r-2", "门口路灯坏了").await?.id;
    let other = app.submit("r-3", "楼上噪音").await?.id;
    let merge = |from: &str, into: &str| pb::MergeComplaintRequest {
        complaint_id: from.into(),
        into_complaint_id: into.into(),
        actor: "operator-1".into(),
        ..Default::default()
    };

    let wrong_category = app
        .complaints
        .merge_complaint(merge(&other, &original))
        .await
        .expect_err("other category");
    let merged = app
        .complaints
        .merge_complaint(merge(&duplicate, &original))
        .await?
        .into_inner()
        .complaint
        .unwrap_or_default();

    assert_eq!(wrong_category.code(), Code::FailedPrecondition);
    assert_eq!(
        (merged.status(), merged.merged_into.as_str()),
        (pb::Status::Merged, original.as_str())
    );
    let into_merged = app
        .complaints
        .merge_complaint(merge(&original, &duplicate))
        .await
        .expect_err("target not open");
    assert_eq!(into_merged.code(), Code::FailedPrecondition);
    Ok(())
}

async fn rejected_complaint_keeps_its_reason(mut app: TestApp) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let id = app.submit("r-1", "想咨询社区活动").await?.id;
    let empty = app
        .complaints
        .reject_complaint(pb::RejectComplaintRequest {
            complaint_id: id.clone(),
            actor: "op".into(),
            ..Default::default()
        })
        .await
        .expect_err("no reason");
    assert_eq!(violated_field(&empty).as_deref(), Some("reason"));

    let rejected = app
        .complaints
        .reject_complaint(pb::RejectComplaintRequest {
            complaint_id: id.clone(),
            actor: "op".into(),
            reason: "非社区职责，已告知12345".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .complaint
        .unwrap_or_default();

    assert_eq!(rejected.status(), pb::Status::Rejected);
    assert_eq!(rejected.reject_reason, "非社区职责，已告知12345");
    Ok(())
}

async fn operator_reclassification_moves_the_time_limits(mut app: TestApp) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let id = app.submit("r-1", "想咨询社区活动").await?.id;

    let changed = app
        .complaints
        .reclassify_complaint(pb::ReclassifyComplaintRequest {
            complaint_id: id.clone(),
            category: pb::Category::PublicSafety as i32,
            priority: pb::Priority::Urgent as i32,
            actor: "operator-1".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .complaint
        .unwrap_or_default();

    assert_eq!(
        (changed.category(), changed.priority()),
        (pb::Category::PublicSafety, pb::Priority::Urgent)
    );
    assert_eq!(changed.classified_by, "operator");
    let due = changed.response_due_at.unwrap_or_default().seconds;
    assert_eq!(due, (start_of_test() + Duration::hours(2)).timestamp());
    let history = app.get(&id).await?.history;
    assert_eq!(
        history.last().map(|h| h.note.as_str()),
        Some("other/normal → public_safety/urgent")
    );
    Ok(())
}

async fn list_filters_by_grid_category_status_and_overdue_and_pages_without_gaps(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(app.submit(&format!("lamp-{n}"), "路灯不亮").await?.id);
        app.clock.advance(Duration::minutes(1));
    }
    for n in 0..2 {
        let request = pb::SubmitComplaintRequest {
            grid_id: "yaozhai-1".into(),
            ..submission(&format!("noise-{n}"), "楼上噪音")
        };
        ids.push(
            app.complaints
                .submit_complaint(request)
                .await?
                .into_inner()
                .complaint
                .unwrap_or_default()
                .id,
        );
    }
    app.complaints.accept_complaint(accept(&ids[0])).await?;

    let in_yaozhai = list(
        &mut app,
        pb::ListComplaintsRequest {
            grid_id: "yaozhai-1".into(),
            ..Default::default()
        },
    )
    .await?;
    let lamps = list(
        &mut app,
        pb::ListComplaintsRequest {
            category: pb::Category::MunicipalFacilities as i32,
            ..Default::default()
        },
    )
    .await?;
    let accepted = list(
        &mut app,
        pb::ListComplaintsRequest {
            status: pb::Status::Accepted as i32,
            ..Default::default()
        },
    )
    .await?;
    let in_xinyuan = list(
        &mut app,
        pb::ListComplaintsRequest {
            community_id: "xinyuan".into(),
            ..Default::default()
        },
    )
    .await?;

    assert_eq!(in_yaozhai.len(), 2);
    assert_eq!(lamps.len(), 5);
    assert_eq!(
        accepted.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [ids[0].as_str()]
    );
    assert_eq!(in_xinyuan.len(), 5);
    assert!(
        in_xinyuan.iter().all(|c| c.reporter.is_none()),
        "lists carry no personal data"
    );

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .complaints
            .list_complaints(pb::ListComplaintsRequest {
                page: Some(common::PageRequest {
                    page_size: 2,
                    page_token: token,
                }),
                ..Default::default()
            })
            .await?
            .into_inner();
        assert!(page.complaints.len() <= 2);
        seen.extend(page.complaints.into_iter().map(|c| c.id));
        token = page.page.unwrap_or_default().next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen.len(), 7);
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        7,
        "no complaint twice"
    );

    app.clock.advance(Duration::hours(25));
    let overdue = list(
        &mut app,
        pb::ListComplaintsRequest {
            overdue_only: true,
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(
        overdue.len(),
        6,
        "all but the accepted one are past the response limit"
    );
    assert!(overdue.iter().all(|c| c.overdue));
    Ok(())
}

async fn building_routes_to_its_grid_and_worker(mut app: TestApp) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let by_building = pb::SubmitComplaintRequest {
        grid_id: String::new(),
        building_id: "xinyuan-b3".into(),
        ..submission("r-1", "电梯坏了")
    };

    let complaint = app
        .complaints
        .submit_complaint(by_building)
        .await?
        .into_inner()
        .complaint
        .unwrap_or_default();

    assert_eq!(
        (complaint.grid_id.as_str(), complaint.assignee.as_str()),
        ("xinyuan-2", "worker-zhou")
    );
    let mismatch = pb::SubmitComplaintRequest {
        building_id: "xinyuan-b3".into(),
        ..submission("r-2", "电梯坏了")
    };
    let refused = app
        .complaints
        .submit_complaint(mismatch)
        .await
        .expect_err("building in another grid");
    assert_eq!(violated_field(&refused).as_deref(), Some("building_id"));
    Ok(())
}

async fn sweeper_escalates_once_per_breach_even_across_restarts(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let id = app.submit("r-1", "路灯不亮").await?.id;

    app.clock.advance(Duration::hours(23));
    assert_eq!(
        app.sweeper.sweep_once().await?.done,
        0,
        "within the response limit"
    );
    app.clock.advance(Duration::hours(2));
    assert_eq!(app.sweeper.sweep_once().await?.done, 1);
    assert_eq!(app.sweeper.sweep_once().await?.done, 0, "once per breach");
    app.restart().await?;
    assert_eq!(
        app.sweeper.sweep_once().await?.done,
        0,
        "a restart does not escalate again"
    );

    let escalated = app.get(&id).await?;
    assert_eq!(
        (escalated.level(), escalated.assignee.as_str()),
        (pb::Level::GridBranch, "xinyuan-1-branch")
    );
    app.clock.advance(Duration::days(2));
    assert_eq!(
        app.sweeper.sweep_once().await?.done,
        1,
        "the resolution limit is a second breach"
    );
    let escalated = app.get(&id).await?;
    assert_eq!(
        (escalated.level(), escalated.assignee.as_str()),
        (pb::Level::CommunityCommittee, "xinyuan-committee")
    );
    let escalations: Vec<String> = escalated
        .history
        .iter()
        .filter(|h| h.action == "escalated")
        .map(|h| h.actor.clone())
        .collect();
    assert_eq!(escalations, ["sweeper", "sweeper"]);
    let events = app.wait_for_events(3).await?;
    let types: Vec<&str> = events.iter().map(|e| e.event.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "shequ.complaints.complaint.submitted.v1",
            "shequ.complaints.complaint.escalated.v1",
            "shequ.complaints.complaint.escalated.v1"
        ]
    );
    Ok(())
}

async fn figures_count_response_resolution_satisfaction_and_reopens(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let period = common::Period {
        from: ts(start_of_test()),
        to: ts(start_of_test() + Duration::days(1)),
    };
    // Quick: accepted in 1 h, resolved in 2 h, satisfied.
    let quick = app.submit("quick", "垃圾没人清运").await?.id;
    // Slow: accepted after 30 h (late), resolved and reopened with 1 of 5.
    let slow = app.submit("slow", "垃圾又堆满了").await?.id;
    // Elsewhere: in another community, outside the scope.
    let elsewhere = pb::SubmitComplaintRequest {
        grid_id: "yaozhai-1".into(),
        ..submission("far", "垃圾")
    };
    app.complaints.submit_complaint(elsewhere).await?;
    app.clock.advance(Duration::hours(1));
    app.complaints.accept_complaint(accept(&quick)).await?;
    app.clock.advance(Duration::hours(1));
    app.complaints.resolve_complaint(resolve(&quick)).await?;
    app.complaints
        .record_follow_up(follow_up(&quick, 5))
        .await?;
    app.clock.advance(Duration::hours(28));
    app.complaints.accept_complaint(accept(&slow)).await?;
    app.complaints.resolve_complaint(resolve(&slow)).await?;
    app.complaints.record_follow_up(follow_up(&slow, 1)).await?;

    let figures = app
        .complaints
        .get_figures(pb::GetFiguresRequest {
            community_id: "xinyuan".into(),
            period: Some(period),
            ..Default::default()
        })
        .await?
        .into_inner()
        .figures
        .unwrap_or_default();

    assert_eq!(figures.scope, "community:xinyuan");
    assert_eq!(figures.submitted, 2);
    assert_eq!(
        (figures.responded_on_time, figures.response_counted),
        (1, 2)
    );
    assert_eq!(figures.response_rate, Some(0.5));
    assert_eq!(
        (figures.resolved_on_time, figures.resolution_counted),
        (1, 1),
        "the reopened one has a fresh limit"
    );
    assert_eq!((figures.satisfied, figures.followed_up), (1, 2));
    assert_eq!((figures.reopened, figures.resolved), (1, 2));
    assert_eq!(
        figures.backlog.unwrap_or_default().from_1_to_3_days,
        1,
        "the reopened one is open again"
    );
    let district = app
        .complaints
        .get_figures(pb::GetFiguresRequest {
            period: Some(period),
            ..Default::default()
        })
        .await?
        .into_inner()
        .figures
        .unwrap_or_default();
    assert_eq!(district.submitted, 3);

    let unknown = app
        .complaints
        .get_figures(pb::GetFiguresRequest {
            grid_id: "atlantis".into(),
            period: Some(period),
            ..Default::default()
        })
        .await
        .expect_err("unknown grid");
    assert_eq!(unknown.code(), Code::NotFound);
    let no_period = app
        .complaints
        .get_figures(pb::GetFiguresRequest::default())
        .await
        .expect_err("no period");
    assert_eq!(violated_field(&no_period).as_deref(), Some("period.from"));
    Ok(())
}

async fn organisation_is_loaded_replaced_and_validated(mut app: TestApp) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let loaded = app
        .organisation
        .get_organisation(pb::GetOrganisationRequest {})
        .await?
        .into_inner()
        .organisation;
    assert_eq!(loaded, Some(crate::support::sample_organisation()));

    let mut bad = crate::support::sample_organisation();
    bad.communities[1].grids[0]
        .building_ids
        .push("xinyuan-b1".into());
    let refused = app
        .organisation
        .load_organisation(pb::LoadOrganisationRequest {
            organisation: Some(bad),
        })
        .await
        .expect_err("building in two grids");
    assert_eq!(
        violated_field(&refused).as_deref(),
        Some("organisation.communities[1].grids[0].building_ids[1]")
    );
    let unchanged = app
        .organisation
        .get_organisation(pb::GetOrganisationRequest {})
        .await?
        .into_inner()
        .organisation;
    assert_eq!(
        unchanged,
        Some(crate::support::sample_organisation()),
        "a refused load changes nothing"
    );

    let mut smaller = crate::support::sample_organisation();
    smaller.communities.truncate(1);
    smaller.communities[0].grids[0].worker = "worker-new".into();
    let counts = app
        .organisation
        .load_organisation(pb::LoadOrganisationRequest {
            organisation: Some(smaller),
        })
        .await?
        .into_inner();
    assert_eq!(
        (counts.communities, counts.grids, counts.buildings),
        (1, 2, 3)
    );
    let routed = app.submit("r-1", "路灯").await?;
    assert_eq!(
        routed.assignee, "worker-new",
        "routing follows the organisation as loaded now"
    );
    Ok(())
}

async fn a_complaint_about_a_merchant_is_accepted_unverified_while_the_alliance_is_down(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let about_merchant = pb::SubmitComplaintRequest {
        merchant_id: "merchant-7".into(),
        ..submission("r-1", "饭店油烟扰民")
    };

    let submitted = app
        .complaints
        .submit_complaint(about_merchant)
        .await?
        .into_inner();

    let complaint = submitted.complaint.unwrap_or_default();
    assert_eq!(complaint.merchant_check(), pb::MerchantCheck::Unverified);
    assert_eq!(
        app.get(&complaint.id).await?.merchant_check(),
        pb::MerchantCheck::Unverified
    );
    let plain = app.submit("r-2", "路灯不亮").await?;
    assert_eq!(
        plain.merchant_check(),
        pb::MerchantCheck::Unspecified,
        "no merchant, no check"
    );
    let events = app.wait_for_events(2).await?;
    assert_eq!(events[0].raw["data"]["merchant_check"], "unverified");
    Ok(())
}
