//! Classification at intake as the service runs it: a text the weights cannot
//! place goes to review (分类待定) at the community's dispatcher, and an
//! operator's correction to the weights file applies without a restart (a
//! broken file leaves the weights in force).

use std::path::Path;
use std::time::{Duration, Instant};

use shequ_proto::complaints::v1 as pb;
use shequ_tests::Backend;

use crate::support::TestApp;

/// Weights that know rubbish and nothing else.
const RUBBISH_ONLY: &str = "@review_below\t0.7\n垃圾\tenvironment_sanitation\t3\n";

mod on_sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unplaced_text_goes_to_the_dispatcher_and_a_corrected_weights_file_applies_live()
    -> anyhow::Result<()> {
        super::reviewed_and_corrected(shequ_tests::Backend::Sqlite).await
    }
}

mod on_postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unplaced_text_goes_to_the_dispatcher_and_a_corrected_weights_file_applies_live()
    -> anyhow::Result<()> {
        super::reviewed_and_corrected(shequ_tests::Backend::Postgres).await
    }
}

async fn reviewed_and_corrected(backend: Backend) -> anyhow::Result<()> {
    let rules = tempfile::tempdir()?;
    std::fs::write(rules.path().join("classifier.tsv"), RUBBISH_ONLY)?;
    let path = rules.path().to_owned();
    shequ_tests::on_fresh_database(
        backend,
        |database| TestApp::with_rules(database, path),
        |app| async move {
            let result = review_then_correction(app, &rules.path().join("classifier.tsv")).await;
            drop(rules);
            result
        },
    )
    .await
}

async fn review_then_correction(mut app: TestApp, weights: &Path) -> anyhow::Result<()> {
    app.load_organisation().await?;

    let unplaced = app.submit("r-1", "路灯黑了一个星期").await?;
    assert!(unplaced.classification_pending);
    assert_eq!(unplaced.category(), pb::Category::Other);
    assert_eq!(unplaced.classified_by, "review:other 0.00");
    assert_eq!(
        (unplaced.level(), unplaced.assignee.as_str()),
        (pb::Level::CommunityCommittee, "xinyuan-committee"),
        "the community's dispatcher sets the category, not a guess"
    );

    let placed = app.submit("r-2", "垃圾三天没人收").await?;
    assert!(!placed.classification_pending);
    assert_eq!(placed.category(), pb::Category::EnvironmentSanitation);
    assert_eq!(
        placed.classified_by,
        "model:environment_sanitation 0.74 垃圾+3.0"
    );
    assert_eq!(placed.level(), pb::Level::GridWorker);

    // The operator teaches the weights about street lamps; the running
    // service picks the file up.
    std::fs::write(
        weights,
        format!("{RUBBISH_ONLY}路灯\tmunicipal_facilities\t3\n"),
    )?;
    let lamp = submit_until(&mut app, "路灯又不亮了", pb::Category::MunicipalFacilities).await?;
    assert!(!lamp.classification_pending);
    assert!(
        lamp.classified_by.contains("路灯+3.0"),
        "{}",
        lamp.classified_by
    );

    // A broken file is refused and the weights in force stay.
    std::fs::write(weights, "路灯\tweather\t3\n")?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = app.submit("r-broken", "路灯又不亮了").await?;
    assert_eq!(still.category(), pb::Category::MunicipalFacilities);

    // The dispatcher places the first one; it is no longer pending.
    let reclassified = app
        .complaints
        .reclassify_complaint(pb::ReclassifyComplaintRequest {
            complaint_id: unplaced.id.clone(),
            category: pb::Category::MunicipalFacilities as i32,
            ..Default::default()
        })
        .await?
        .into_inner()
        .complaint
        .unwrap_or_default();
    assert!(!reclassified.classification_pending);
    assert_eq!(reclassified.classified_by, "operator");
    Ok(())
}

/// Submits `text` (a new request each time) until it is classified as
/// `category`, for up to ten seconds (the file is checked every two).
async fn submit_until(
    app: &mut TestApp,
    text: &str,
    category: pb::Category,
) -> anyhow::Result<pb::Complaint> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let complaint = app.submit(&format!("r-lamp-{attempt}"), text).await?;
        if complaint.category() == category {
            return Ok(complaint);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "still {:?} after the weights changed: {}",
            complaint.category(),
            complaint.classified_by
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
