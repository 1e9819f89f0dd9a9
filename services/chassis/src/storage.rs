//! What storage on either backend shares: which backend a URL names
//! ([`Backend`]), a service's [`Migrations`] per backend, whether the database
//! takes commits ([`CommitHealth`], which readiness and
//! `shequ_storage_commit_failures_total` follow, with the probe's
//! [`PROBE_INTERVAL`]), which errors mean "cannot store just now"
//! ([`is_unavailable`]), and the keyset paging of due work ([`Due`]) that lets
//! a sweep get through a backlog of any size; [`StoreError`], what every
//! service's storage operations fail with (a caller hears it as a gRPC status,
//! [`crate::grpc`], and a consumer as retry-or-park, [`crate::inbox`]). The
//! database itself, natively on each backend, is [`crate::database`].

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::migrate::Migrator;
use tokio::sync::watch;

use crate::Error;
use crate::database::{CommitError, DbError};
use crate::fields::FieldError;

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

/// What a service's storage operation fails with: the request's fault (what it
/// names is not there, a rule of the domain `R` refuses it, a field is
/// invalid) or the storage's (the database, encoding a stored value or an
/// event, a group commit). Each service names its own as
/// `StoreError<its rule error>`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError<R> {
    /// What was not found, e.g. `complaint 0193…` or `grid xinyuan-g9`.
    #[error("{0} not found")]
    NotFound(String),
    /// A rule of the domain refuses the change (a complaint that cannot be
    /// accepted in its state, a volunteer with two elders).
    #[error(transparent)]
    Rule(R),
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("database: {0}")]
    Database(#[from] DbError),
    #[error("encoding: {0}")]
    Encoding(#[from] serde_json::Error),
    #[error(transparent)]
    Commit(#[from] CommitError),
}

impl<R> StoreError<R> {
    /// Whether the database could not be used just now (a retry later may
    /// succeed): a pass over due work stops at such an error and the next
    /// pass retries, a consumer retries the event. Any other error concerns
    /// the request or one stored item.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Database(error) => error.is_unavailable(),
            Self::Commit(_) => true,
            _ => false,
        }
    }

    /// Whether the storage failed (whatever the cause), not the request: an
    /// event that met such an error is worth another try, never parked for
    /// the database's sake.
    pub fn is_storage(&self) -> bool {
        matches!(self, Self::Database(_) | Self::Commit(_))
    }
}

impl<R> From<sqlx::Error> for StoreError<R> {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error.into())
    }
}

impl<R> From<rusqlite::Error> for StoreError<R> {
    fn from(error: rusqlite::Error) -> Self {
        Self::Database(error.into())
    }
}

/// A domain's refusal, as a caller hears it: `FailedPrecondition` with its
/// message unless the rule says otherwise (a refusal that is really an
/// invalid field).
pub trait Rule: std::error::Error + Send + Sync + 'static {
    fn status(&self) -> tonic::Status {
        tonic::Status::failed_precondition(self.to_string())
    }
}

/// `$call` on whichever backend `$value`, a service's `$store` enum
/// (`Sqlite(…)` or `Postgres(…)`), holds, bound to `$backend`.
#[macro_export]
macro_rules! on_backend {
    ($store:ident, $value:expr, $backend:ident => $call:expr) => {
        match $value {
            $store::Sqlite($backend) => $call,
            $store::Postgres($backend) => $call,
        }
    };
}

/// Declares a service's storage trait — its domain operations, each
/// `fn name(&self, args…) -> Result<…>;`, a future that is `Send` — and
/// implements it for the service's `Store`, the enum of its backends
/// (`Sqlite(…)`, `Postgres(…)`), by handing each call to the backend the URL
/// chose. An operation is written in the trait and in each backend's
/// implementation, never again for the dispatch.
#[macro_export]
macro_rules! storage_trait {
    (
        $(#[$meta:meta])*
        pub trait $trait:ident for $store:ident {
            $(
                $(#[$fmeta:meta])*
                fn $name:ident(&self $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty;
            )*
        }
    ) => {
        $(#[$meta])*
        pub trait $trait: Send + Sync {
            $(
                $(#[$fmeta])*
                fn $name(&self $(, $arg: $ty)*) -> impl ::std::future::Future<Output = $ret> + Send;
            )*
        }

        impl $trait for $store {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    $crate::on_backend!($store, self, store => store.$name($($arg),*).await)
                }
            )*
        }
    };
}

/// The calling crate's migrations, `migrations/sqlite` and
/// `migrations/postgres`, as a `&'static Migrations` (for a service's
/// [`crate::runtime::Identity`]).
#[macro_export]
macro_rules! migrations {
    () => {
        &$crate::storage::Migrations {
            sqlite: &::sqlx::migrate!("migrations/sqlite"),
            postgres: &::sqlx::migrate!("migrations/postgres"),
        }
    };
}

/// A service's migrations, one directory per backend (`sqlx::migrate!`).
#[derive(Debug)]
pub struct Migrations {
    pub sqlite: &'static Migrator,
    pub postgres: &'static Migrator,
}

/// One item of due work (a breach owed an escalation, an elder owed an
/// overdue notice, a filing to try) and where a pass over such work resumes:
/// passes go through their items in (due, id) order, each batch after the last
/// one's final item, so every batch is a new set whatever became of the one
/// before, and a pass gets through a backlog of any size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// When it fell due, in epoch milliseconds as stored.
    at: i64,
    id: String,
}

impl Due {
    /// An item due at `at` (as stored: epoch milliseconds).
    pub fn new(at: i64, id: String) -> Self {
        Self { at, id }
    }

    /// When it fell due, in epoch milliseconds.
    pub fn at_millis(&self) -> i64 {
        self.at
    }

    /// The id of the complaint, elder or visit it is about.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// How often a database that failed to commit is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Whether the service's database takes commits: false from a commit that
/// failed for want of storage (disk full, I/O error, connection lost) until
/// one succeeds. Readiness (`/readyz`, gRPC health) follows it.
#[derive(Debug, Clone)]
pub struct CommitHealth(Arc<HealthInner>);

#[derive(Debug)]
struct HealthInner {
    /// `None` while commits succeed; else why the last one failed.
    failing: watch::Sender<Option<String>>,
    failures: AtomicU64,
}

impl Default for CommitHealth {
    fn default() -> Self {
        Self(Arc::new(HealthInner {
            failing: watch::Sender::new(None),
            failures: AtomicU64::new(0),
        }))
    }
}

impl CommitHealth {
    /// Why commits fail, or `None` while they succeed.
    pub fn failing(&self) -> Option<String> {
        self.0.failing.borrow().clone()
    }

    /// Commits that failed since the start.
    pub fn failures(&self) -> u64 {
        self.0.failures.load(Ordering::Relaxed)
    }

    /// Follows [`CommitHealth::failing`] as it changes.
    pub fn subscribe(&self) -> watch::Receiver<Option<String>> {
        self.0.failing.subscribe()
    }

    pub(crate) fn committed(&self) {
        // Every commit passes here: only a read lock unless commits were failing.
        if self.0.failing.borrow().is_some()
            && self
                .0
                .failing
                .send_if_modified(|failing| failing.take().is_some())
        {
            tracing::info!("the database takes commits again");
        }
    }

    pub(crate) fn failed(&self, error: &dyn std::fmt::Display) {
        self.0.failures.fetch_add(1, Ordering::Relaxed);
        let reason = error.to_string();
        let first = self.0.failing.send_replace(Some(reason.clone())).is_none();
        if first {
            tracing::error!(error = %reason, "the database does not take commits; requests are answered \"not stored\" until it does");
        }
    }
}

/// Whether `error` means the database could not store anything just now (and
/// a retry later may succeed): it is full, read-only, locked or busy, an I/O
/// error, or the connection or the pool failed. Other errors (a constraint, a
/// value that does not decode) are about the request or the code.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(error) => {
            let code = error.code();
            let code = code.as_deref().unwrap_or_default();
            // SQLite's primary result codes (the low byte of an extended
            // one): BUSY 5, LOCKED 6, NOMEM 7, READONLY 8, IOERR 10,
            // CORRUPT 11, FULL 13, CANTOPEN 14, PROTOCOL 15.
            if let Ok(code) = code.parse::<i32>() {
                return matches!(code & 0xff, 5..=8 | 10 | 11 | 13..=15);
            }
            // PostgreSQL's SQLSTATE classes: connection exception (08),
            // insufficient resources (53), object not in prerequisite state
            // (55: a database not accepting connections, a lock not
            // available), operator intervention (57: shutdown, terminated),
            // system error (58), and serialization failure or deadlock
            // (40001, 40P01).
            matches!(code.get(..2), Some("08" | "53" | "55" | "57" | "58"))
                || code == "40001"
                || code == "40P01"
        }
        _ => false,
    }
}

/// A PostgreSQL serialization failure or deadlock: the transaction lost a race
/// with another and may simply be retried; it says nothing of the database's
/// health.
pub(crate) fn is_conflict(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(error) => matches!(error.code().as_deref(), Some("40001" | "40P01")),
        _ => false,
    }
}

/// One migrator running every migration of `sets`, in version order.
pub(crate) fn merged(sets: &[&Migrator]) -> Migrator {
    let mut all: Vec<_> = sets.iter().flat_map(|set| set.iter()).cloned().collect();
    all.sort_by_key(|migration| migration.version);
    Migrator {
        migrations: Cow::Owned(all),
        ..Migrator::DEFAULT
    }
}
