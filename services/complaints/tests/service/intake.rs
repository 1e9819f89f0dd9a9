//! Group commit of submissions: many at once, some sharing a `request_id`,
//! each answered correctly with exactly one complaint and one event per key;
//! a submission that fails in the database fails alone.

use std::collections::{HashMap, HashSet};

use shequ_proto::complaints::v1 as pb;
use tonic::Code;

use crate::support::{TestApp, submission};

shequ_tests::on_both_backends!(
    concurrent_submissions_make_one_complaint_and_one_event_per_request_id,
    a_failing_submission_does_not_fail_the_others_submitted_with_it,
);

async fn concurrent_submissions_make_one_complaint_and_one_event_per_request_id(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    // 200 at once over 150 keys: the last 50 repeat the first 50.
    let calls = (0..200).map(|i| {
        let mut client = app.complaints.clone();
        let key = format!("burst-{}", i % 150);
        tokio::spawn(async move {
            let reply = client
                .submit_complaint(submission(&key, "路灯不亮"))
                .await?
                .into_inner();
            anyhow::Ok((key, reply))
        })
    });
    let replies = futures::future::try_join_all(calls).await?;
    let mut by_key: HashMap<String, Vec<pb::SubmitComplaintResponse>> = HashMap::new();
    for reply in replies {
        let (key, reply) = reply?;
        by_key.entry(key).or_default().push(reply);
    }
    assert_eq!(by_key.len(), 150);
    let mut ids = HashSet::new();
    for (key, replies) in &by_key {
        let first: HashSet<_> = replies
            .iter()
            .map(|r| {
                r.complaint
                    .as_ref()
                    .map(|c| c.id.clone())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(
            first.len(),
            1,
            "{key}: every reply names the same complaint"
        );
        let fresh = replies.iter().filter(|r| !r.duplicate).count();
        assert_eq!(fresh, 1, "{key}: exactly one reply made the complaint");
        ids.extend(first);
    }
    assert_eq!(ids.len(), 150);

    let events = app.wait_for_events(150).await?;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let events = if events.len() == 150 {
        app.wait_for_events(150).await?
    } else {
        events
    };
    assert_eq!(events.len(), 150, "one event per complaint, no more");
    let subjects: HashSet<_> = events.iter().map(|e| e.event.subject.clone()).collect();
    assert_eq!(subjects, ids, "each complaint's own event");
    for id in ids.iter().take(10) {
        let complaint = app.get(id).await?;
        assert_eq!(complaint.history.len(), 1, "one history entry");
    }
    Ok(())
}

async fn a_failing_submission_does_not_fail_the_others_submitted_with_it(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    // Every 5th names a building nobody loaded, every 7th a building in another
    // grid than its grid_id: both are found out in the database.
    let calls = (0..60).map(|i| {
        let mut client = app.complaints.clone();
        let mut request = submission(&format!("mixed-{i}"), "楼道堆物");
        if i % 5 == 0 {
            request.grid_id = String::new();
            request.building_id = "no-such-building".into();
        } else if i % 7 == 0 {
            request.building_id = "xinyuan-b3".into();
        }
        tokio::spawn(async move { (i, client.submit_complaint(request).await) })
    });
    let mut accepted = HashSet::new();
    for call in futures::future::join_all(calls).await {
        let (i, reply) = call?;
        match reply {
            Ok(reply) if i % 5 != 0 && i % 7 != 0 => {
                let reply = reply.into_inner();
                assert!(!reply.duplicate);
                accepted.insert(reply.complaint.unwrap_or_default().id);
            }
            Err(status) if i % 5 == 0 => assert_eq!(status.code(), Code::NotFound, "{i}"),
            Err(status) if i % 7 == 0 => {
                assert_eq!(status.code(), Code::InvalidArgument, "{i}")
            }
            other => panic!("submission {i}: unexpected {other:?}"),
        }
    }
    // 60 - 12 (every 5th) - 7 (every 7th, not 5th: 7 14 21 28 42 49 56) = 41
    assert_eq!(accepted.len(), 41);
    let events = app.wait_for_events(41).await?;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let events = if events.len() == 41 {
        app.wait_for_events(41).await?
    } else {
        events
    };
    assert_eq!(events.len(), 41);
    let subjects: HashSet<_> = events.iter().map(|e| e.event.subject.clone()).collect();
    assert_eq!(subjects, accepted);
    Ok(())
}
