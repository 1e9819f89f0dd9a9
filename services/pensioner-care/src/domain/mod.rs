//! The pensioner-care rules, as plain types and functions with no I/O.
//!
//! - [`elder`]: the elder's personal details (birth date, living situation,
//!   emergency contacts) and their parsing.
//! - [`risk`]: the risk level and its reasons, by stated rules.
//! - [`visits`]: visit kinds, wellbeing, needs, the visit interval per risk level
//!   and the missed periods that make a visit overdue.
//! - [`pairing`]: the cap of two elders per volunteer and one volunteer per elder.
//! - [`services`]: bookable services and what a booking can come to.
//! - [`filing`]: complaints filed from visits: their text, key and retry backoff.
//! - [`fields`], [`FieldError`]: the chassis's field parsing, re-exported.

pub mod elder;
pub mod filing;
pub mod pairing;
pub mod risk;
pub mod services;
pub mod visits;

pub use shequ_chassis::fields::{self, FieldError};
