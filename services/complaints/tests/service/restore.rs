//! A database restored from a backup older than the stream: the sweeper finds
//! the breach again and escalates it again, yet nothing new reaches the
//! stream, because the escalation's event id is derived from the breach (the
//! complaint, the breach, the cycle) and JetStream drops the second one.

use std::path::Path;

use chrono::Duration;
use shequ_proto::events::EventData;
use shequ_proto::events::complaints::{Escalated, Submitted};
use shequ_tests::{Backend, eventually, stream_events};

use crate::support::{TestApp, run};

/// The SQLite file and its WAL companions, copied from `from` to `to`.
fn copy_database(from: &Path, to: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let name = format!("complaints.db{suffix}");
        let _ = std::fs::remove_file(to.join(&name));
        if from.join(&name).exists() {
            std::fs::copy(from.join(&name), to.join(&name))?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restored_from_before_an_escalation_raises_nothing_new_on_the_stream()
-> anyhow::Result<()> {
    // A file-level restore: SQLite (PostgreSQL restores are pg_restore's).
    run(Backend::Sqlite, restored_from_before_an_escalation).await
}

async fn restored_from_before_an_escalation(mut app: TestApp) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let id = app.submit("restored-1", "路灯不亮").await?.id;
    app.wait_for_events(1).await?;
    let backup = tempfile::tempdir()?;
    app.restart_after(|data| copy_database(data, backup.path()))
        .await?;

    // The response limit passes: escalated once, published.
    app.clock.advance(Duration::hours(25));
    assert_eq!(app.sweeper.sweep_once().await?.done, 1);
    app.wait_for_events(2).await?;

    // The database is put back as it was before the escalation.
    app.restart_after(|data| copy_database(backup.path(), data))
        .await?;
    let again = app.sweeper.sweep_once().await?.done;
    let complaint = app.get(&id).await?;
    assert_eq!(
        complaint.level,
        shequ_proto::complaints::v1::Level::GridBranch as i32,
        "the restored database escalated it again ({again} in this pass)"
    );

    // Once the relay has sent the re-raised event, the stream still holds one.
    eventually(std::time::Duration::from_secs(20), || async {
        let pending = app
            .count("SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL")
            .await?;
        anyhow::ensure!(pending == 0, "{pending} outbox rows not yet published");
        Ok(())
    })
    .await?;
    let events = stream_events(&app.nats.url(), "COMPLAINTS").await?;
    let count = |event_type: &str| {
        events
            .iter()
            .filter(|e| e.event.event_type == event_type && e.event.subject == id)
            .count()
    };
    assert_eq!(count(Submitted::TYPE), 1);
    assert_eq!(
        count(Escalated::TYPE),
        1,
        "the second escalation was dropped"
    );
    Ok(())
}
