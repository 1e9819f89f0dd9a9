//! Named leases in the service's own database, so that when several replicas of
//! a service share one PostgreSQL database, a singleton job (the outbox relay, a
//! sweeper, a worker) runs in one of them at a time.
//!
//! A lease is a row of `leases (name, holder, expires_at)`. [`Lease::hold`]
//! takes it, or renews it, in one statement: the row is written only if it is
//! missing, already ours, or expired, so of two replicas asking at once exactly
//! one holds it. The holder renews it at least once per interval of its job
//! and runs the job only while it holds it; a standby keeps asking at its job's
//! interval and takes over once the holder has stopped renewing for the
//! time-to-live (it crashed or lost the database) or at once when the holder
//! [`Lease::release`]s it on shutdown. A pass that outlasts the time-to-live
//! may overlap the next holder's first, so every job keeps its own second line
//! of defence (a unique key, an idempotency key, JetStream's duplicate window).
//!
//! Expiry is judged by the clock of the replica asking, so replicas' clocks must
//! agree to well within a time-to-live (NTP does). The holder id is a UUID made
//! once per process start ([`process_holder`]): a restarted process is a new
//! holder and waits for its previous run's leases to expire, unless they were
//! released. SQLite serves a single replica, so opening a SQLite database clears
//! its leases (they can only be a previous run's; see [`crate::storage`]).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::clock::SharedClock;
use crate::database::Database;
use crate::metrics::Metrics;

/// This process's holder id: a random UUID made the first time it is asked for.
pub fn process_holder() -> &'static str {
    static HOLDER: OnceLock<String> = OnceLock::new();
    HOLDER.get_or_init(|| uuid::Uuid::new_v4().to_string())
}

/// The time-to-live of a lease renewed at least every `interval`: two intervals
/// and ten seconds, so one late renewal does not hand it over.
pub fn ttl_for_interval(interval: Duration) -> Duration {
    interval
        .saturating_mul(2)
        .saturating_add(Duration::from_secs(10))
}

/// When a lease taken at `now` for `ttl` expires (the latest instant there is
/// when that is beyond it).
fn expiry(now: chrono::DateTime<chrono::Utc>, ttl: Duration) -> chrono::DateTime<chrono::Utc> {
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|ttl| now.checked_add_signed(ttl))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}

/// Who holds a lease, as the database says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    pub holder: String,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
}

/// One named lease, asked for by one holder.
#[derive(Debug)]
pub struct Lease {
    db: Database,
    name: String,
    holder: String,
    ttl: Duration,
    clock: SharedClock,
    metrics: Option<Metrics>,
    /// Whether the last answer was that we hold it (for logging changes).
    held: AtomicBool,
}

impl Lease {
    /// The lease `name` in `db`, asked for as `holder` (usually
    /// [`process_holder`]) for `ttl` at a time.
    pub fn new(
        db: Database,
        name: impl Into<String>,
        holder: impl Into<String>,
        ttl: Duration,
        clock: SharedClock,
    ) -> Self {
        Self {
            db,
            name: name.into(),
            holder: holder.into(),
            ttl,
            clock,
            metrics: None,
            held: AtomicBool::new(false),
        }
    }

    /// Shows whether it is held in `shequ_lease_held{lease}` (1 or 0).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        metrics.set_lease_held(&self.name, self.held.load(Ordering::Relaxed));
        self.metrics = Some(metrics);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Takes the lease, or renews it, until now + ttl; whether we hold it.
    /// Someone else's unexpired lease is left alone.
    pub async fn hold(&self) -> Result<bool, crate::database::DbError> {
        let now = self.clock.now();
        let written = self
            .db
            .hold_lease(
                self.name.clone(),
                self.holder.clone(),
                expiry(now, self.ttl),
                now,
            )
            .await;
        match written {
            Ok(held) => {
                self.note(held);
                Ok(held)
            }
            Err(error) => {
                // Unknown: we may still hold it, but must not act as if we did.
                self.note(false);
                Err(error)
            }
        }
    }

    /// [`Lease::hold`], with a failure logged and taken as not holding it.
    pub async fn try_hold(&self) -> bool {
        match self.hold().await {
            Ok(held) => held,
            Err(error) => {
                tracing::warn!(lease = %self.name, %error, "lease not renewed; job paused");
                false
            }
        }
    }

    /// Gives the lease up if we hold it, so a standby takes over at once;
    /// whether we held it.
    pub async fn release(&self) -> Result<bool, crate::database::DbError> {
        let released = self
            .db
            .release_lease(self.name.clone(), self.holder.clone())
            .await?;
        self.note(false);
        Ok(released)
    }

    /// [`Lease::release`] at shutdown, a failure logged (the lease then expires).
    pub async fn release_on_shutdown(&self) {
        if let Err(error) = self.release().await {
            tracing::warn!(lease = %self.name, %error, "lease not released; it expires by itself");
        }
    }

    /// Who holds lease `name` in `db`, if anyone ever took it (expired or not).
    pub async fn current(
        db: &Database,
        name: &str,
    ) -> Result<Option<LeaseRow>, crate::database::DbError> {
        db.lease(name.to_owned()).await
    }

    /// Records whether we hold it: logs a change, and sets the gauge.
    fn note(&self, held: bool) {
        let was = self.held.swap(held, Ordering::Relaxed);
        if was != held {
            if held {
                tracing::info!(lease = %self.name, holder = %self.holder, "lease taken");
            } else {
                tracing::info!(lease = %self.name, holder = %self.holder, "lease given up or lost");
            }
        }
        if let Some(metrics) = &self.metrics {
            metrics.set_lease_held(&self.name, held);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_now_plus_ttl_and_saturates() {
        use crate::clock::{from_millis, to_millis};
        assert_eq!(
            to_millis(expiry(from_millis(1_000), Duration::from_secs(10))),
            11_000
        );
        assert_eq!(
            to_millis(expiry(from_millis(1_000), Duration::from_millis(1))),
            1_001
        );
        let latest = chrono::DateTime::<chrono::Utc>::MAX_UTC;
        assert_eq!(expiry(latest, Duration::from_secs(1)), latest);
        assert_eq!(expiry(from_millis(0), Duration::MAX), latest);
    }

    #[test]
    fn ttl_outlives_one_missed_renewal() {
        assert_eq!(
            ttl_for_interval(Duration::from_secs(1)),
            Duration::from_secs(12)
        );
        assert_eq!(
            ttl_for_interval(Duration::from_secs(30)),
            Duration::from_secs(70)
        );
        for secs in [1, 5, 60, 3600] {
            let interval = Duration::from_secs(secs);
            assert!(ttl_for_interval(interval) > interval * 2);
        }
        assert_eq!(ttl_for_interval(Duration::MAX), Duration::MAX);
    }

    #[test]
    fn the_process_holder_is_one_uuid_for_the_process() {
        let holder = process_holder();
        assert_eq!(holder, process_holder());
        assert!(uuid::Uuid::parse_str(holder).is_ok(), "{holder}");
    }
}
