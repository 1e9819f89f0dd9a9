//! Callers as the token file names them: what a role may read of a
//! duplicate answer, and who is recorded as acting.

use shequ_proto::complaints::v1 as pb;
use shequ_tests::auth::with_token;

use crate::support::{TestApp, submission};

/// A hotline desk (staff), a residents' app and an operator.
const CALLERS: &[(&str, &str, &str)] = &[
    ("hotline-desk-3", "staff", "desk-token"),
    ("residents-app", "resident_app", "app-token"),
    ("ops", "operator", "ops-token"),
];

async fn service() -> anyhow::Result<TestApp> {
    let mut app = TestApp::checking_tokens(CALLERS).await?;
    app.organisation
        .load_organisation(with_token(
            pb::LoadOrganisationRequest {
                organisation: Some(crate::support::sample_organisation()),
            },
            "Bearer",
            "ops-token",
        )?)
        .await?;
    Ok(app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_answer_shows_the_reporter_only_to_a_role_that_may_read_it()
-> anyhow::Result<()> {
    let mut app = service().await?;
    let call = pb::SubmitComplaintRequest {
        channel: pb::Channel::Hotline as i32,
        ..submission("hotline-0001", "路灯不亮")
    };
    let first = app
        .complaints
        .submit_complaint(with_token(call.clone(), "Bearer", "desk-token")?)
        .await?
        .into_inner();
    assert_eq!(
        first.complaint.unwrap_or_default().reporter.map(|r| r.name),
        Some("张三".to_owned()),
        "the desk's own submission"
    );

    let by_app = app
        .complaints
        .submit_complaint(with_token(call.clone(), "Bearer", "app-token")?)
        .await?
        .into_inner();
    let by_desk = app
        .complaints
        .submit_complaint(with_token(call, "Bearer", "desk-token")?)
        .await?
        .into_inner();

    assert!(by_app.duplicate && by_desk.duplicate);
    let seen_by_app = by_app.complaint.unwrap_or_default();
    assert_eq!(seen_by_app.reporter, None, "no name or phone for the app");
    assert_eq!(seen_by_app.reporter_phone_masked, "138****5678");
    assert!(by_desk.complaint.unwrap_or_default().reporter.is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_actor_is_the_authenticated_caller_not_the_name_a_request_claims() -> anyhow::Result<()>
{
    let mut app = service().await?;
    let id = app
        .complaints
        .submit_complaint(with_token(
            submission("r-1", "路灯不亮"),
            "Bearer",
            "desk-token",
        )?)
        .await?
        .into_inner()
        .complaint
        .unwrap_or_default()
        .id;

    // A lower-case scheme is the same scheme (RFC 7235).
    app.complaints
        .accept_complaint(with_token(
            pb::AcceptComplaintRequest {
                complaint_id: id.clone(),
                actor: "张三".into(),
                ..Default::default()
            },
            "bearer",
            "desk-token",
        )?)
        .await?;

    let history = app
        .complaints
        .get_complaint(with_token(
            pb::GetComplaintRequest {
                complaint_id: id.clone(),
            },
            "Bearer",
            "desk-token",
        )?)
        .await?
        .into_inner()
        .complaint
        .unwrap_or_default()
        .history;
    let actors: Vec<&str> = history.iter().map(|h| h.actor.as_str()).collect();
    assert_eq!(actors, ["hotline-desk-3", "hotline-desk-3"]);
    let events = app.wait_for_events(2).await?;
    for event in &events {
        assert_eq!(
            event.raw["data"]["actor"], "hotline-desk-3",
            "{}",
            event.raw
        );
    }
    Ok(())
}
