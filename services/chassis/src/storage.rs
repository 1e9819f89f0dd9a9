//! Opening a service's database: SQLite (WAL, the embedded default) or PostgreSQL,
//! chosen by URL, with that backend's migrations run at start.
//!
//! SQLite serves one replica of a service, PostgreSQL several (they share the
//! work through [`crate::lease`]s and the inbox); opening a SQLite file clears
//! the leases a previous run left.
//!
//! The same SQL serves both (`$1` placeholders, `ON CONFLICT`, `RETURNING`);
//! instants are `BIGINT` milliseconds and flags `BIGINT` 0/1, because those decode
//! the same way through `sqlx::Any` on either backend.

use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

use crate::Error;

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Result<Self, Error> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(Error::Config(format!(
                "unsupported database URL scheme in {url:?}"
            )))
        }
    }
}

/// A service's migrations, one directory per backend (`sqlx::migrate!`).
#[derive(Debug)]
pub struct Migrations {
    pub sqlite: &'static Migrator,
    pub postgres: &'static Migrator,
}

static CHASSIS_SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static CHASSIS_POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// Read-only SQLite connections beside the one writer (see [`Database::reader`]).
const SQLITE_READERS: u32 = 4;

/// Connection pools on the service's own database: [`Database::pool`] for
/// everything, and [`Database::reader`] for queries that only read.
#[derive(Debug, Clone)]
pub struct Database {
    pool: AnyPool,
    reader: AnyPool,
    backend: Backend,
}

impl Database {
    /// Opens the database and brings its schema up to date: the chassis's tables
    /// (versions below 100) and then the service's.
    pub async fn connect(url: &str, migrations: &Migrations) -> Result<Self, Error> {
        install_default_drivers();
        let backend = Backend::of_url(url)?;
        if backend == Backend::Sqlite {
            create_sqlite_parent_dir(url)?;
        }
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        let pool = match backend {
            // One connection: SQLite has one writer, and a single connection keeps
            // transactions from failing with "database is locked" on upgrade. Not
            // pinged before each use (sqlx's default): a file does not drop its
            // connection, and on SQLite every ping is a round trip to the
            // connection's thread.
            Backend::Sqlite => {
                options
                    .max_connections(1)
                    .test_before_acquire(false)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
                                .await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
            Backend::Postgres => options.max_connections(8).connect(url).await?,
        };
        let service = match backend {
            Backend::Sqlite => migrations.sqlite,
            Backend::Postgres => migrations.postgres,
        };
        let chassis = match backend {
            Backend::Sqlite => &CHASSIS_SQLITE,
            Backend::Postgres => &CHASSIS_POSTGRES,
        };
        merged(chassis, service).run(&pool).await?;
        if backend == Backend::Sqlite {
            // One replica only: any lease in the file was taken by a previous
            // run of this service, which would otherwise hold it until it expired.
            pool.execute("DELETE FROM leases").await?;
        }
        let reader = match backend {
            Backend::Sqlite if !is_sqlite_memory(url) => sqlite_reader(url).await?,
            // An in-memory SQLite database lives in its one connection; PostgreSQL's
            // pool already serves concurrent reads.
            _ => pool.clone(),
        };
        Ok(Self {
            pool,
            reader,
            backend,
        })
    }

    /// The pool for transactions and anything that writes. On SQLite it holds
    /// one connection (the single writer), so everything sent here queues.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A pool for statements that only read (outside any transaction of
    /// [`pool`](Self::pool)). On a SQLite file it is up to four more connections
    /// with `PRAGMA query_only`, which WAL lets read while the writer writes;
    /// each statement sees what was committed when it started. On PostgreSQL (and
    /// an in-memory SQLite database) it is the same pool as [`pool`](Self::pool).
    pub fn reader(&self) -> &AnyPool {
        &self.reader
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.pool.close().await;
    }
}

/// `$a, $a+1, …`: the placeholders of the parameters numbered in `range`, the
/// same on both backends.
pub fn placeholders(range: std::ops::Range<usize>) -> String {
    range
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The read-only pool on a SQLite file, opened after the migrations so the schema
/// is there; connections open as they are first needed.
async fn sqlite_reader(url: &str) -> Result<AnyPool, Error> {
    Ok(AnyPoolOptions::new()
        .acquire_timeout(Duration::from_secs(10))
        .max_connections(SQLITE_READERS)
        .test_before_acquire(false)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute("PRAGMA query_only = ON;").await?;
                Ok(())
            })
        })
        .connect_lazy(url)?)
}

fn is_sqlite_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

fn merged(chassis: &Migrator, service: &Migrator) -> Migrator {
    let mut all: Vec<_> = chassis.iter().chain(service.iter()).cloned().collect();
    all.sort_by_key(|migration| migration.version);
    Migrator {
        migrations: Cow::Owned(all),
        ..Migrator::DEFAULT
    }
}

fn create_sqlite_parent_dir(url: &str) -> Result<(), Error> {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    match Path::new(path).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                context: format!("creating the data directory {}", dir.display()),
                source,
            })
        }
        _ => Ok(()),
    }
}
