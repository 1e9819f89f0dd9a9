//! Integration tests of the chassis against real parts: SQLite files, PostgreSQL
//! (when a server answers), and a `nats-server -js` per test.
//!
//! One test binary (one link) with a module per part.

mod admin;
mod commit_failure;
mod group_commit;
mod grpc;
mod inbox;
mod lease;
mod outbox;
mod sqlite_native;
mod storage;
mod support;
mod sweeper;
