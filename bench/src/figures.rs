//! `GetFigures` over a district's years of complaints: [`COMPLAINTS`]
//! synthetic complaints spread over five years and the bench's communities and
//! grids (settled but for the last two days', which are open within their
//! limits), written straight into the complaints database (one
//! transaction through the chassis's native SQLite writer), then the district's
//! figures for the whole span, counted by the database, timed as a client sees
//! them; beside them, for comparison, the old way: every row of the span
//! loaded and the rules applied in Rust (`Figures::compute`). The same
//! complaints go into PostgreSQL for its half of the bench ([`load_postgres`]).

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

/// One generated complaint: what differs from one to the next (instants in
/// epoch milliseconds).
struct Generated {
    n: usize,
    status: &'static str,
    community: u64,
    grid: u64,
    submitted: i64,
    response_due: i64,
    resolution_due: i64,
    accepted: Option<i64>,
    resolved: Option<i64>,
    satisfaction: Option<i64>,
    reopens: i64,
}

/// [`COMPLAINTS`] complaints submitted in the five years before `until_ms`, in
/// the `communities` × `grids` of the bench's organisation.
fn generate(until_ms: i64, communities: usize, grids: usize) -> impl Iterator<Item = Generated> {
    let mut random = Lcg(20_261_201);
    (0..COMPLAINTS).map(move |n| {
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
        Generated {
            n,
            status,
            community,
            grid,
            submitted,
            response_due,
            resolution_due,
            accepted,
            resolved,
            satisfaction,
            reopens,
        }
    })
}

/// Writes the [`generate`]d complaints into the complaints SQLite file at
/// `path`, in one transaction; how long it took.
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
        for c in generate(until_ms, communities, grids) {
            insert.execute(rusqlite::params![
                format!("bench-figures-{:07}", c.n),
                format!("bench-figures-{:07}", c.n),
                c.status,
                format!("community-{}", c.community),
                format!("c{}-g{}", c.community, c.grid),
                c.submitted,
                c.response_due,
                c.resolution_due,
                c.accepted,
                c.resolved,
                c.satisfaction,
                c.reopens,
            ])?;
        }
        Ok::<_, rusqlite::Error>(())
    })
    .await?;
    Ok(started.elapsed())
}

/// Writes the same complaints into the complaints PostgreSQL database at
/// `url` (`timestamptz` instants), in batches of column arrays; how long it took.
pub(crate) async fn load_postgres(
    url: &str,
    until_ms: i64,
    communities: usize,
    grids: usize,
) -> anyhow::Result<Duration> {
    use sqlx::Connection;
    const BATCH: usize = 50_000;
    let started = Instant::now();
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let mut rows = generate(until_ms, communities, grids).peekable();
    while rows.peek().is_some() {
        let batch: Vec<Generated> = rows.by_ref().take(BATCH).collect();
        let ids: Vec<String> = batch
            .iter()
            .map(|c| format!("bench-figures-{:07}", c.n))
            .collect();
        let statuses: Vec<&str> = batch.iter().map(|c| c.status).collect();
        let communities: Vec<String> = batch
            .iter()
            .map(|c| format!("community-{}", c.community))
            .collect();
        let grids: Vec<String> = batch
            .iter()
            .map(|c| format!("c{}-g{}", c.community, c.grid))
            .collect();
        let column = |f: fn(&Generated) -> Option<i64>| batch.iter().map(f).collect::<Vec<_>>();
        sqlx::query(
            "INSERT INTO complaints (id, request_id, status, text, channel, category, \
             classified_by, priority, community_id, grid_id, level, assignee, submitted_at, \
             cycle_started_at, response_due_at, resolution_due_at, accepted_at, resolved_at, \
             satisfaction, reopen_count) \
             SELECT id, id, status, '路灯不亮', 'hotline', 'municipal_facilities', 'caller', \
             'normal', community, grid, 'grid_worker', 'worker', to_timestamp(submitted / 1000.0), \
             to_timestamp(submitted / 1000.0), to_timestamp(response_due / 1000.0), \
             to_timestamp(resolution_due / 1000.0), to_timestamp(accepted / 1000.0), \
             to_timestamp(resolved / 1000.0), satisfaction, reopens \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], \
             $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[]) \
             AS t (id, status, community, grid, submitted, response_due, resolution_due, \
             accepted, resolved, satisfaction, reopens)",
        )
        .bind(&ids)
        .bind(&statuses)
        .bind(&communities)
        .bind(&grids)
        .bind(column(|c| Some(c.submitted)))
        .bind(column(|c| Some(c.response_due)))
        .bind(column(|c| Some(c.resolution_due)))
        .bind(column(|c| c.accepted))
        .bind(column(|c| c.resolved))
        .bind(column(|c| c.satisfaction))
        .bind(column(|c| Some(c.reopens)))
        .execute(&mut conn)
        .await?;
    }
    sqlx::query("ANALYZE complaints").execute(&mut conn).await?;
    conn.close().await?;
    Ok(started.elapsed())
}

/// The span the complaints were written over, as a period ending `until_ms`.
pub(crate) fn span(until_ms: i64) -> (i64, i64) {
    (until_ms - SPAN_MS, until_ms + 1)
}
