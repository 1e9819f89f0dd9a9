//! The district's figures counted in SQL (what `GetFigures` answers) agree
//! with the rules stated over complaints in memory (`Figures::compute`), over
//! a few hundred complaints in every state, timely and late, in and out of the
//! period, for the district, a community and a grid, on each backend.

use chrono::Duration;
use shequ_chassis::clock::{SharedClock, to_millis};
use shequ_chassis::database::Database;
use shequ_chassis::outbox::OutboxSignal;
use shequ_complaints::domain::figures::Figures;
use shequ_complaints::domain::{CommunityId, GridId};
use shequ_complaints::store::{Complaints, Scope, Store};

use crate::support::{TestApp, start_of_test};

shequ_tests::on_both_backends!(
    figures_counted_in_sql_agree_with_the_rules_over_complaints_in_every_state
);

const STATUSES: [&str; 8] = [
    "submitted",
    "accepted",
    "in_progress",
    "resolved",
    "closed",
    "reopened",
    "rejected",
    "merged",
];
const PLACES: [(&str, &str); 3] = [
    ("xinyuan", "xinyuan-1"),
    ("xinyuan", "xinyuan-2"),
    ("yaozhai", "yaozhai-1"),
];

/// A small deterministic generator (the same complaints on every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

async fn figures_counted_in_sql_agree_with_the_rules_over_complaints_in_every_state(
    app: TestApp,
) -> anyhow::Result<()> {
    let start = start_of_test();
    let hour = Duration::hours(1).num_milliseconds();
    let mut random = Lcg(20261201);
    for n in 0..400 {
        let (community, grid) = PLACES[random.below(3) as usize];
        let status = STATUSES[random.below(8) as usize];
        // Submitted over 40 days around the period (days 10 to 30).
        let submitted = to_millis(start) + random.below(40 * 24) as i64 * hour;
        let response_due = submitted + (1 + random.below(48) as i64) * hour;
        let resolution_due = response_due + (1 + random.below(24 * 7) as i64) * hour;
        let accepted = (status != "submitted" && random.below(4) > 0)
            .then(|| submitted + random.below(72) as i64 * hour);
        let resolved = (matches!(status, "resolved" | "closed" | "reopened")
            || random.below(10) == 0)
            .then(|| submitted + random.below(24 * 10) as i64 * hour);
        let satisfaction = (status == "closed" || (status == "reopened" && random.below(2) == 0))
            .then(|| 1 + random.below(5) as i64);
        let reopens = if status == "reopened" {
            1 + random.below(2)
        } else {
            random.below(5) / 4
        };
        let at = |ms: i64| shequ_tests::db::instant(app.database_url(), ms);
        let optional = |value: Option<i64>| value.map_or("NULL".to_owned(), at);
        app.execute(
            &format!(
                "INSERT INTO complaints (id, request_id, status, text, channel, category, \
                 classified_by, priority, community_id, grid_id, level, assignee, submitted_at, \
                 cycle_started_at, response_due_at, resolution_due_at, accepted_at, resolved_at, \
                 satisfaction, reopen_count) VALUES ($1, $2, $3, '路灯不亮', 'hotline', \
                 'municipal_facilities', 'caller', 'normal', $4, $5, 'grid_worker', 'worker-li', \
                 {}, {}, {}, {}, {}, {}, {}, {reopens})",
                at(submitted),
                at(submitted),
                at(response_due),
                at(resolution_due),
                optional(accepted),
                optional(resolved),
                satisfaction.map_or("NULL".to_owned(), |s| s.to_string()),
            ),
            &[
                &format!("c-{n:03}"),
                &format!("r-{n:03}"),
                status,
                community,
                grid,
            ],
        )
        .await?;
    }

    let db = Database::connect(app.database_url(), shequ_complaints::IDENTITY.migrations).await?;
    let clock: SharedClock = app.clock.clone();
    let store = Store::new(db, OutboxSignal::default(), clock);
    let from = start + Duration::days(10);
    let to = start + Duration::days(30);
    let scopes = [
        Scope::District,
        Scope::Community(CommunityId::from_stored("xinyuan")),
        Scope::Grid(GridId::from_stored("yaozhai-1")),
    ];
    for now in [start + Duration::days(20), start + Duration::days(45)] {
        for scope in &scopes {
            let counted = store.figures(scope, from, to, now).await?;
            let (in_period, open) = store.figures_input(scope, from, to).await?;
            let ruled = Figures::compute(&in_period, &open, now);
            assert_eq!(counted, ruled, "{scope:?} as of {now}");
            assert!(
                counted.submitted > 0 && counted.response_counted > 0,
                "{counted:?}"
            );
        }
    }
    Ok(())
}
