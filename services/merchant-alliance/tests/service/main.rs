//! Integration tests of the merchant-alliance service: the real service on a
//! real `nats-server` with JetStream, on SQLite and on PostgreSQL when one
//! answers (`shequ_tests::on_both_backends!`).

mod actor;
mod api;
mod area;
mod consumers;
mod coverage;
mod events;
mod support;
