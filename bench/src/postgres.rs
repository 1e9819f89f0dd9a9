//! The PostgreSQL server the bench measures (`SHEQU_BENCH_POSTGRES_URL`, by
//! default the local server when one answers), and its ceiling: a bare
//! per-request transaction writing two rows, as `pgbench` would run it.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection};

use crate::{Level, run_level};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The server's admin URL, if it answers within a few seconds.
pub(crate) async fn server() -> Option<String> {
    let url = std::env::var("SHEQU_BENCH_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.into());
    let connect = PgConnection::connect(&url);
    match tokio::time::timeout(Duration::from_secs(3), connect).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Some(url)
        }
        Ok(Err(error)) => {
            eprintln!("PostgreSQL at {} does not answer: {error}", display(&url));
            None
        }
        Err(_) => {
            eprintln!("PostgreSQL at {} does not answer within 3 s", display(&url));
            None
        }
    }
}

/// `url` without its password.
pub(crate) fn display(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = &url[scheme + 3..at];
            let user = user.split(':').next().unwrap_or_default();
            format!("{}{user}@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// `concurrency` connections, each running one transaction after another:
/// two rows inserted (a request's row with a unique key, an outbox row), then
/// COMMIT (durable: `synchronous_commit` as the server has it).
pub(crate) async fn ceiling(
    url: &str,
    concurrency: usize,
    time: Duration,
) -> anyhow::Result<Level> {
    let pool = PgPoolOptions::new()
        .max_connections(u32::try_from(concurrency)?)
        .min_connections(u32::try_from(concurrency)?)
        .connect(url)
        .await?;
    sqlx::raw_sql(
        "CREATE TABLE things (id BIGSERIAL PRIMARY KEY, request_id TEXT UNIQUE, body TEXT); \
         CREATE TABLE outbox (seq BIGSERIAL PRIMARY KEY, payload TEXT);",
    )
    .execute(&pool)
    .await?;
    let body = "x".repeat(600);
    let level = run_level(concurrency, time, move |_, i| {
        let pool = pool.clone();
        let body = body.clone();
        Box::pin(async move {
            let mut tx = pool.begin().await?;
            sqlx::query("INSERT INTO things (request_id, body) VALUES ($1, $2)")
                .bind(format!("r{i}"))
                .bind(&body)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO outbox (payload) VALUES ($1)")
                .bind(&body)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    })
    .await;
    anyhow::ensure!(
        level.errors == 0,
        "the PostgreSQL ceiling failed: {}",
        level.first_error
    );
    Ok(level)
}

/// Writes the nearby bench's merchants ([`crate::nearby::generate`]) into the
/// merchant-alliance PostgreSQL database at `url` (schema made by its
/// migrations: `text[]` tags, `jsonb` hours), in batches of column arrays;
/// how long it took.
pub(crate) async fn load_merchants(url: &str) -> anyhow::Result<Duration> {
    const BATCH: usize = 10_000;
    let started = std::time::Instant::now();
    let merchants = crate::nearby::generate()?;
    let mut conn = PgConnection::connect(url).await?;
    for batch in merchants.chunks(BATCH) {
        let text = |f: fn(&crate::nearby::Generated) -> &str| -> Vec<&str> {
            batch.iter().map(f).collect()
        };
        sqlx::query(
            "INSERT INTO merchants (id, request_id, name, category, service_tags, latitude, \
             longitude, cell, address, grid_id, opening_hours, party_member_owner, status, \
             suspended_reason, credit_score, registered_at, updated_at) \
             SELECT id, request_id, name, category, \
             ARRAY(SELECT jsonb_array_elements_text(tags::jsonb)), latitude, longitude, cell, \
             NULL, grid_id, hours::jsonb, party, 'active', NULL, 100, now(), now() \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::float8[], $7::float8[], $8::text[], $9::text[], $10::text[], $11::bool[]) \
             AS t (id, request_id, name, category, tags, latitude, longitude, cell, grid_id, \
             hours, party)",
        )
        .bind(text(|m| &m.id))
        .bind(text(|m| &m.request_id))
        .bind(text(|m| &m.name))
        .bind(text(|m| m.category))
        .bind(text(|m| &m.tags))
        .bind(batch.iter().map(|m| m.latitude).collect::<Vec<_>>())
        .bind(batch.iter().map(|m| m.longitude).collect::<Vec<_>>())
        .bind(text(|m| &m.cell))
        .bind(text(|m| &m.grid_id))
        .bind(text(|m| &m.hours))
        .bind(
            batch
                .iter()
                .map(|m| m.party_member_owner)
                .collect::<Vec<_>>(),
        )
        .execute(&mut conn)
        .await?;
    }
    sqlx::query("ANALYZE merchants").execute(&mut conn).await?;
    conn.close().await?;
    Ok(started.elapsed())
}
