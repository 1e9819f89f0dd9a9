//! The pensioner-care rules, as plain types and functions with no I/O.
//!
//! - [`elder`]: the elder's personal details (birth date, living situation,
//!   emergency contacts) and their parsing; the elder as registered, with the
//!   visit schedule a registration, a change of details or a visit moves.
//! - [`risk`]: the risk level and its reasons, by stated rules.
//! - [`visits`]: visit kinds, wellbeing, needs, the visit policy (interval
//!   per risk level, hours of a requested visit, how far from home a home
//!   visit may be recorded), visit evidence, and the missed periods that make
//!   a visit overdue; "overdue" itself
//!   ([`visits::is_overdue`], and its SQL beside it).
//! - [`pairing`]: volunteers and pairings; the cap of two elders per volunteer
//!   and one volunteer per elder.
//! - [`services`]: bookable services, bookings and what they can come to:
//!   the booking horizon, and booked → served | cancelled | no_show.
//! - [`meals`]: which merchant a meal is booked with: the nearest in the
//!   circle open at the meal's time.
//! - [`figures`]: the care figures of a month (the monthly visit rate and
//!   the rest), from the facts of a scope.
//! - [`requests`]: visits requested after a major event, due within hours:
//!   met by the next visit, overdue once.
//! - [`filing`]: complaints filed from visits: which visits file one, their
//!   text, key and retry backoff.
//! - [`timeline`]: the entries of an elder's timeline.
//! - [`Refusal`]: what the rules refuse (a pairing, a booking's settlement),
//!   as a caller hears it: `FailedPrecondition`.
//! - [`fields`], [`FieldError`]: the chassis's field parsing, re-exported.
//! - The ids of the entities the service holds or refers to, as types
//!   ([`ElderId`], [`VolunteerId`], [`PairingId`], [`VisitId`],
//!   [`BookingId`], [`GridId`], [`BuildingId`], [`MerchantId`],
//!   [`ComplaintId`]), the chassis's ([`shequ_chassis::ids`]), re-exported:
//!   parsed once where they come in, typed from then on.

pub mod elder;
pub mod figures;
pub mod filing;
pub mod meals;
pub mod pairing;
pub mod requests;
pub mod risk;
pub mod services;
pub mod timeline;
pub mod visits;

pub use shequ_chassis::fields::{self, FieldError};
pub use shequ_chassis::ids::{
    BookingId, BuildingId, CommunityId, ComplaintId, ElderId, GridId, MerchantId, PairingId,
    VisitId, VisitRequestId, VolunteerId,
};

/// A change the rules refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Pairing(#[from] pairing::PairingError),
    #[error(transparent)]
    Booking(#[from] services::BookingError),
}
