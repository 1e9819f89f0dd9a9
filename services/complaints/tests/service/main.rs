//! Integration tests of the complaints service: the real service on a real
//! `nats-server` with JetStream, on SQLite and on PostgreSQL when one answers
//! (`shequ_tests::on_both_backends!`).

mod api;
mod backlog;
mod callers;
mod classification;
mod duplicates;
mod edges;
mod events;
mod faults;
mod figures;
mod intake;
mod restore;
mod startup;
mod support;
mod working_days;
