//! `GetFigures` over a district's years of complaints: [`COMPLAINTS`]
//! synthetic complaints spread over five years and the bench's communities and
//! grids (settled but for the last two days', which are open within their
//! limits), written straight into the complaints database (one
//! transaction through the chassis's native SQLite writer), then the district's
//! figures for the whole span, counted by the database, timed as a client sees
//! them; beside them, for comparison, the old way: every row of the span
//! loaded and the rules applied in Rust (`Figures::compute`).

use std::path::Path;
use std::time::{Duration, Instant};

use shequ_chassis::sqlite::Sqlite;
use shequ_chassis::storage::CommitHealth;

/// How many complaints the district has stored.
pub(crate) const COMPLAINTS: usize = 1_000_000;
/// Five years, in milliseconds.
const SPAN_MS: i64 = 5 * 365 * 24 * 3_600_000;
const HOUR_MS: i64 = 3_600_000;
/// What became of a complaint older than [`RECENT_MS`]: mostly closed after
/// its follow-up visit, some resolved awaiting it, a few rejected or merged.
const SETTLED: [&str; 8] = [
    "closed", "closed", "closed", "closed", "resolved", "resolved", "rejected", "merged",
];
/// Where a recent complaint stands: still open, within its limits (the
/// sweeper has nothing to escalate, as in a district that keeps up).
const OPEN: [&str; 3] = ["submitted", "accepted", "in_progress"];
/// Complaints of the last two days are still open.
const RECENT_MS: i64 = 2 * 24 * HOUR_MS;

/// A small deterministic generator (the same complaints on every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Writes [`COMPLAINTS`] complaints submitted in the five years before
/// `until_ms` into the complaints database at `path`, in the `communities` ×
/// `grids` of the bench's organisation; how long it took.
pub(crate) async fn load(
    path: &Path,
    until_ms: i64,
    communities: usize,
    grids: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let db = Sqlite::open(path, CommitHealth::default())?;
    db.unit(move |conn| {
        let mut insert = conn.prepare_cached(
            "INSERT INTO complaints (id, request_id, status, text, channel, category, \
             classified_by, priority, community_id, grid_id, level, assignee, submitted_at, \
             cycle_started_at, response_due_at, resolution_due_at, accepted_at, resolved_at, \
             satisfaction, reopen_count) VALUES (?1, ?2, ?3, '路灯不亮', 'hotline', \
             'municipal_facilities', 'caller', 'normal', ?4, ?5, 'grid_worker', 'worker', \
             ?6, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        let mut random = Lcg(20_261_201);
        for n in 0..COMPLAINTS {
            let community = random.below(communities as u64);
            let grid = random.below(grids as u64);
            let submitted = until_ms - SPAN_MS + random.below(SPAN_MS as u64) as i64;
            let recent = until_ms - submitted < RECENT_MS;
            let status = if recent {
                OPEN[random.below(3) as usize]
            } else {
                SETTLED[random.below(8) as usize]
            };
            // Recent ones are due after `until_ms`; the others any time.
            let response_due = if recent {
                until_ms + (1 + random.below(24) as i64) * HOUR_MS
            } else {
                submitted + (1 + random.below(48) as i64) * HOUR_MS
            };
            let resolution_due = response_due + (1 + random.below(24 * 7) as i64) * HOUR_MS;
            let accepted = (status != "submitted")
                .then(|| submitted + random.below(if recent { 24 } else { 72 }) as i64 * HOUR_MS);
            let resolved = matches!(status, "resolved" | "closed")
                .then(|| submitted + random.below(24 * 10) as i64 * HOUR_MS);
            let satisfaction = (status == "closed").then(|| 1 + random.below(5) as i64);
            let reopens = i64::from(status == "closed" && random.below(20) == 0);
            insert.execute(rusqlite::params![
                format!("bench-figures-{n:07}"),
                format!("bench-figures-{n:07}"),
                status,
                format!("community-{community}"),
                format!("c{community}-g{grid}"),
                submitted,
                response_due,
                resolution_due,
                accepted,
                resolved,
                satisfaction,
                reopens,
            ])?;
        }
        Ok::<_, rusqlite::Error>(())
    })
    .await?;
    Ok(started.elapsed())
}

/// The span the complaints were written over, as a period ending `until_ms`.
pub(crate) fn span(until_ms: i64) -> (i64, i64) {
    (until_ms - SPAN_MS, until_ms + 1)
}
