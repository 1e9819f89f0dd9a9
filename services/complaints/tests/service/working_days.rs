//! Limits in working days, counted on the working calendar the operator
//! loads: across the National Day week, and with the calendar replaced while
//! a case is open (the open case keeps the due times it was given; cases
//! taken in afterwards count on the new calendar).

use chrono::{DateTime, Duration, Utc};
use shequ_proto::complaints::v1 as pb;
use shequ_tests::Backend;

use crate::support::TestApp;

/// Every priority: one working day to acknowledge, two to resolve.
const TIME_LIMITS: &str = r#"{
  "priorities": {
    "urgent": { "response_minutes": 120, "resolution_minutes": 1440 },
    "normal": { "response_working_days": 1, "resolution_working_days": 2 },
    "complex": { "response_working_days": 1, "resolution_working_days": 15 }
  },
  "follow_up_minutes": 4320
}"#;

/// National Day 2026 as the State Council's notice has it.
const NATIONAL_DAY: &str = r#"{"2026": {
  "holidays": ["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04",
               "2026-10-05", "2026-10-06", "2026-10-07"],
  "workdays": ["2026-09-20", "2026-10-10"]
}}"#;

/// The same, with Thursday 8 October made a day off as well.
const LONGER_HOLIDAY: &str = r#"{"2026": {
  "holidays": ["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04",
               "2026-10-05", "2026-10-06", "2026-10-07", "2026-10-08"],
  "workdays": ["2026-09-20", "2026-10-10"]
}}"#;

/// `local` ("2026-10-08 10:00") on district clocks (UTC+8).
fn district(local: &str) -> DateTime<Utc> {
    let at = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").unwrap_or_default();
    at.and_utc() - Duration::hours(8)
}

fn due(at: Option<prost_types::Timestamp>) -> DateTime<Utc> {
    shequ_proto::time::instant(&at.unwrap_or_default()).unwrap_or_default()
}

mod on_sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_working_day_limit_skips_the_national_day_week_and_a_new_calendar_counts_for_new_cases()
    -> anyhow::Result<()> {
        super::skips_the_holiday_and_reloads(shequ_tests::Backend::Sqlite).await
    }
}

mod on_postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_working_day_limit_skips_the_national_day_week_and_a_new_calendar_counts_for_new_cases()
    -> anyhow::Result<()> {
        super::skips_the_holiday_and_reloads(shequ_tests::Backend::Postgres).await
    }
}

async fn skips_the_holiday_and_reloads(backend: Backend) -> anyhow::Result<()> {
    let rules = tempfile::tempdir()?;
    std::fs::write(rules.path().join("time-limits.json"), TIME_LIMITS)?;
    std::fs::write(rules.path().join("working-calendar.json"), NATIONAL_DAY)?;
    let path = rules.path().to_owned();
    shequ_tests::on_fresh_database(
        backend,
        |database| TestApp::with_rules(database, path),
        |app| async move {
            let result = counted_on_the_calendar(app, rules.path()).await;
            drop(rules);
            result
        },
    )
    .await
}

async fn counted_on_the_calendar(mut app: TestApp, rules: &std::path::Path) -> anyhow::Result<()> {
    app.load_organisation().await?;

    // Wednesday 30 September, 10:00: one working day is Thursday 8 October
    // 10:00, two are Friday 9 October 10:00.
    app.clock.set(district("2026-09-30 10:00"));
    let before = app.submit("r-1", "想咨询社区活动").await?;
    assert_eq!(due(before.response_due_at), district("2026-10-08 10:00"));
    assert_eq!(due(before.resolution_due_at), district("2026-10-09 10:00"));

    // The whole week off passes: nothing is late yet.
    app.clock.set(district("2026-10-07 23:59"));
    assert_eq!(app.sweeper.sweep_once().await?.done, 0, "the holiday week");

    // The operator makes Thursday 8 October a day off too and restarts.
    std::fs::write(rules.join("working-calendar.json"), LONGER_HOLIDAY)?;
    app.restart().await?;
    let after = app.submit("r-2", "想咨询社区活动").await?;
    assert_eq!(
        due(after.response_due_at),
        district("2026-10-10 00:00"),
        "the new case counts Friday 9 October as its working day"
    );
    let open = app.get(&before.id).await?;
    assert_eq!(
        due(open.response_due_at),
        district("2026-10-08 10:00"),
        "the open case keeps the limit it was given"
    );

    // Its limit passes on the Thursday: it alone is escalated.
    app.clock.set(district("2026-10-08 10:01"));
    assert_eq!(app.sweeper.sweep_once().await?.done, 1);
    assert_eq!(app.get(&before.id).await?.level(), pb::Level::GridBranch);
    assert_eq!(app.get(&after.id).await?.level(), pb::Level::GridWorker);
    Ok(())
}
