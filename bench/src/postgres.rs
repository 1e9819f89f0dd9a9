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
