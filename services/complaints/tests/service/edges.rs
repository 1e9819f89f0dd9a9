//! The edges a careless client, a resident's typing or a slow visit reach:
//! what is accepted, what is refused (naming the field) and what a missed
//! limit does, through the gRPC API and the events.

use chrono::Duration;
use prost_types::Timestamp;
use shequ_proto::common::v1 as common;
use shequ_proto::complaints::v1 as pb;
use tonic::Code;

use crate::support::{TestApp, start_of_test, submission, violated_field};

shequ_tests::on_both_backends!(
    a_text_typed_with_windows_line_breaks_is_accepted_with_plain_ones,
    a_text_of_only_invisible_characters_is_refused_naming_text,
    an_organisation_that_would_leave_the_district_unroutable_is_refused_and_changes_nothing,
    a_request_id_reused_for_a_different_request_is_refused_and_changes_nothing,
    a_missed_follow_up_visit_is_overdue_listed_escalated_once_and_counted,
    each_follow_up_visit_keeps_its_score_in_the_history,
    an_acknowledgement_on_time_stays_on_time_after_a_reclassification,
    an_escalation_names_the_missed_limit_and_the_one_in_force,
    a_merge_into_another_communitys_complaint_is_refused,
    an_assignee_is_a_staff_account_never_a_name,
    metadata_over_the_limit_is_answered_with_a_grpc_status,
);

fn accept(id: &str, key: &str) -> pb::AcceptComplaintRequest {
    pb::AcceptComplaintRequest {
        complaint_id: id.into(),
        request_id: key.into(),
        ..Default::default()
    }
}

fn resolve(id: &str) -> pb::ResolveComplaintRequest {
    pb::ResolveComplaintRequest {
        complaint_id: id.into(),
        note: "已修复".into(),
        ..Default::default()
    }
}

fn follow_up(id: &str, satisfaction: u32) -> pb::RecordFollowUpRequest {
    pb::RecordFollowUpRequest {
        complaint_id: id.into(),
        satisfaction,
        ..Default::default()
    }
}

fn instant(at: Option<Timestamp>) -> chrono::DateTime<chrono::Utc> {
    shequ_proto::time::instant(&at.unwrap_or_default()).unwrap_or_default()
}

fn this_month() -> common::Period {
    common::Period {
        from: Some(shequ_proto::time::timestamp(
            start_of_test() - Duration::days(1),
        )),
        to: Some(shequ_proto::time::timestamp(
            start_of_test() + Duration::days(30),
        )),
    }
}

async fn figures(app: &mut TestApp) -> anyhow::Result<pb::Figures> {
    Ok(app
        .complaints
        .get_figures(pb::GetFiguresRequest {
            period: Some(this_month()),
            ..Default::default()
        })
        .await?
        .into_inner()
        .figures
        .unwrap_or_default())
}

async fn a_text_typed_with_windows_line_breaks_is_accepted_with_plain_ones(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let typed = "3号楼路灯不亮\r\n已经一周了\r\n晚上看不见路";

    let complaint = app.submit("r-1", typed).await?;

    assert_eq!(complaint.text, "3号楼路灯不亮\n已经一周了\n晚上看不见路");
    assert_eq!(app.get(&complaint.id).await?.text, complaint.text);
    Ok(())
}

async fn a_text_of_only_invisible_characters_is_refused_naming_text(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    for (i, invisible) in [
        "\u{200B}\u{200B}\u{200B}",
        "\u{FEFF}",
        " \u{2060} \u{200D} ",
    ]
    .into_iter()
    .enumerate()
    {
        let refused = app
            .complaints
            .submit_complaint(submission(&format!("r-{i}"), invisible))
            .await
            .expect_err("an invisible text");
        assert_eq!(refused.code(), Code::InvalidArgument, "{invisible:?}");
        assert_eq!(violated_field(&refused).as_deref(), Some("text"));
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM complaints").await?, 0);
    Ok(())
}

async fn an_organisation_that_would_leave_the_district_unroutable_is_refused_and_changes_nothing(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let sample = crate::support::sample_organisation();
    let no_communities = pb::Organisation {
        communities: vec![],
        ..sample.clone()
    };
    let mut no_grids = sample.clone();
    no_grids.communities[1].grids.clear();

    for (organisation, field) in [
        (no_communities, "organisation.communities"),
        (no_grids, "organisation.communities[1].grids"),
    ] {
        let refused = app
            .organisation
            .load_organisation(pb::LoadOrganisationRequest {
                organisation: Some(organisation),
            })
            .await
            .expect_err("unroutable");
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert_eq!(violated_field(&refused).as_deref(), Some(field));
    }

    let kept = app
        .organisation
        .get_organisation(pb::GetOrganisationRequest {})
        .await?
        .into_inner()
        .organisation
        .unwrap_or_default();
    assert_eq!(kept, sample, "the loaded organisation stands");
    app.submit("r-1", "路灯不亮").await?;
    Ok(())
}

async fn a_request_id_reused_for_a_different_request_is_refused_and_changes_nothing(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let first = app.submit("r-1", "路灯不亮").await?;

    // Same key, another body.
    let other_text = app
        .complaints
        .submit_complaint(submission("r-1", "楼上噪音"))
        .await
        .expect_err("another complaint under the same key");
    assert_eq!(other_text.code(), Code::InvalidArgument);
    assert_eq!(violated_field(&other_text).as_deref(), Some("request_id"));

    // Same key, another action: StartComplaint with AcceptComplaint's key.
    app.complaints
        .accept_complaint(accept(&first.id, "t-1"))
        .await?;
    let start = app
        .complaints
        .start_complaint(pb::StartComplaintRequest {
            complaint_id: first.id.clone(),
            request_id: "t-1".into(),
            ..Default::default()
        })
        .await
        .expect_err("another action under the same key");
    assert_eq!(start.code(), Code::InvalidArgument);
    assert_eq!(violated_field(&start).as_deref(), Some("request_id"));

    // Same key, same request: the first answer, and nothing more.
    let again = app
        .complaints
        .accept_complaint(accept(&first.id, "t-1"))
        .await?
        .into_inner()
        .complaint
        .unwrap_or_default();
    assert_eq!(again.status(), pb::Status::Accepted, "not started");
    assert_eq!(app.count("SELECT COUNT(*) FROM complaints").await?, 1);
    assert_eq!(app.get(&first.id).await?.history.len(), 2);
    Ok(())
}

async fn a_missed_follow_up_visit_is_overdue_listed_escalated_once_and_counted(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let missed = app.submit("r-1", "路灯不亮").await?.id;
    let visited = app.submit("r-2", "门口路灯坏了").await?.id;
    for id in [&missed, &visited] {
        app.complaints.accept_complaint(accept(id, "")).await?;
        app.complaints.resolve_complaint(resolve(id)).await?;
    }
    app.complaints
        .record_follow_up(follow_up(&visited, 5))
        .await?;
    let due = instant(app.get(&missed).await?.follow_up_due_at);

    app.clock.set(due + Duration::minutes(1));
    let overdue = app
        .complaints
        .list_complaints(pb::ListComplaintsRequest {
            overdue_only: true,
            ..Default::default()
        })
        .await?
        .into_inner()
        .complaints;
    assert_eq!(
        overdue.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [missed.as_str()],
        "the missed visit, not the made one"
    );
    assert!(overdue[0].overdue);
    assert_eq!(app.sweeper.sweep_once().await?.done, 1);
    assert_eq!(app.sweeper.sweep_once().await?.done, 0, "once");

    let escalated = app.get(&missed).await?;
    assert_eq!(escalated.level(), pb::Level::GridBranch);
    let events = app.wait_for_events(8).await?;
    let escalation: Vec<_> = events
        .iter()
        .filter(|e| e.event.event_type == "shequ.complaints.complaint.escalated.v1")
        .collect();
    assert_eq!(escalation.len(), 1);
    assert_eq!(escalation[0].raw["data"]["breach"], "follow_up");
    let figures = figures(&mut app).await?;
    assert_eq!(
        (figures.followed_up_on_time, figures.follow_up_counted),
        (1, 2)
    );
    assert_eq!(figures.follow_up_rate, Some(0.5));
    Ok(())
}

async fn each_follow_up_visit_keeps_its_score_in_the_history(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let id = app.submit("r-1", "路灯不亮").await?.id;
    app.complaints.accept_complaint(accept(&id, "")).await?;
    app.complaints.resolve_complaint(resolve(&id)).await?;
    app.complaints.record_follow_up(follow_up(&id, 2)).await?;
    app.complaints.resolve_complaint(resolve(&id)).await?;

    let closed = app
        .complaints
        .record_follow_up(follow_up(&id, 5))
        .await?
        .into_inner()
        .complaint
        .unwrap_or_default();

    assert_eq!(closed.satisfaction, 5, "the latest score");
    let scores: Vec<(String, u32)> = app
        .get(&id)
        .await?
        .history
        .into_iter()
        .filter(|h| h.satisfaction > 0)
        .map(|h| (h.action, h.satisfaction))
        .collect();
    assert_eq!(
        scores,
        [("reopened".to_owned(), 2), ("closed".to_owned(), 5)]
    );
    let events = app.wait_for_events(6).await?;
    let published: Vec<u64> = events
        .iter()
        .filter_map(|e| e.raw["data"]["satisfaction"].as_u64())
        .collect();
    assert_eq!(published, [2, 5]);
    Ok(())
}

async fn an_acknowledgement_on_time_stays_on_time_after_a_reclassification(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    // Other/normal: 24 hours to acknowledge. Acknowledged after 3 hours.
    let id = app.submit("r-1", "想咨询社区活动").await?.id;
    app.clock.advance(Duration::hours(3));
    app.complaints.accept_complaint(accept(&id, "")).await?;

    // Then into public safety/urgent, whose response limit is 2 hours.
    app.complaints
        .reclassify_complaint(pb::ReclassifyComplaintRequest {
            complaint_id: id.clone(),
            category: pb::Category::PublicSafety as i32,
            priority: pb::Priority::Urgent as i32,
            ..Default::default()
        })
        .await?;

    let events = app.wait_for_events(3).await?;
    let accepted = events
        .iter()
        .find(|e| e.event.event_type == "shequ.complaints.complaint.accepted.v1")
        .map(|e| e.raw["data"]["on_time"].clone());
    assert_eq!(accepted, Some(serde_json::Value::Bool(true)));
    let figures = figures(&mut app).await?;
    assert_eq!(
        (figures.responded_on_time, figures.response_counted),
        (1, 1),
        "the figures agree with the event"
    );
    Ok(())
}

async fn an_escalation_names_the_missed_limit_and_the_one_in_force(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let complaint = app.submit("r-1", "路灯不亮").await?;
    app.clock.advance(Duration::hours(25));

    assert_eq!(app.sweeper.sweep_once().await?.done, 1);

    let events = app.wait_for_events(2).await?;
    let data = &events[1].raw["data"];
    let at = |t: Option<Timestamp>| instant(t).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    assert_eq!(data["breach"], "response");
    assert_eq!(data["breached_due_at"], at(complaint.response_due_at));
    assert_eq!(data["due_at"], data["breached_due_at"], "v1's name for it");
    assert_eq!(data["resolution_due_at"], at(complaint.resolution_due_at));
    Ok(())
}

async fn a_merge_into_another_communitys_complaint_is_refused(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let here = app.submit("r-1", "路灯不亮").await?.id;
    let elsewhere = app
        .complaints
        .submit_complaint(pb::SubmitComplaintRequest {
            grid_id: "yaozhai-1".into(),
            ..submission("r-2", "门口路灯坏了")
        })
        .await?
        .into_inner()
        .complaint
        .unwrap_or_default()
        .id;

    let refused = app
        .complaints
        .merge_complaint(pb::MergeComplaintRequest {
            complaint_id: elsewhere.clone(),
            into_complaint_id: here,
            ..Default::default()
        })
        .await
        .expect_err("another community");

    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("community"),
        "{}",
        refused.message()
    );
    assert_eq!(app.get(&elsewhere).await?.status(), pb::Status::Submitted);
    Ok(())
}

async fn metadata_over_the_limit_is_answered_with_a_grpc_status(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let mut request = tonic::Request::new(submission("r-1", "路灯不亮"));
    let padding: tonic::metadata::MetadataValue<_> = "x".repeat(20 * 1024).parse()?;
    request.metadata_mut().insert("x-padding", padding);

    let refused = app
        .complaints
        .submit_complaint(request)
        .await
        .expect_err("20 KiB of metadata");

    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("16384"), "{}", refused.message());
    assert_eq!(app.count("SELECT COUNT(*) FROM complaints").await?, 0);
    Ok(())
}

async fn an_assignee_is_a_staff_account_never_a_name(mut app: TestApp) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let id = app.submit("r-1", "路灯不亮").await?.id;

    let refused = app
        .complaints
        .accept_complaint(pb::AcceptComplaintRequest {
            assignee: "李师傅".into(),
            ..accept(&id, "t-1")
        })
        .await
        .expect_err("a name as assignee");

    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(violated_field(&refused).as_deref(), Some("assignee"));
    assert_eq!(app.get(&id).await?.status(), pb::Status::Submitted);
    Ok(())
}
