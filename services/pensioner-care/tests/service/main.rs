//! Integration tests of the pensioner-care service: the real service on a real
//! `nats-server` with JetStream, on SQLite and on PostgreSQL when one answers
//! (`shequ_tests::on_both_backends!`). The complaints service and the merchant
//! alliance are down throughout (nobody listens at their addresses): what this
//! service does with them up is tested end to end elsewhere.

mod actors;
mod api;
mod backlog;
mod bookings;
mod events;
mod figures;
mod outcomes;
mod pairing;
mod requests;
mod support;
mod visits;
