//! The merchant-alliance rules, as plain types and functions with no I/O.
//!
//! - [`merchant`]: the merchant, its category, status, service tags and details.
//! - [`geo`]: points, the WGS-84 ↔ GCJ-02 conversion, distances (the chassis's).
//! - [`cells`]: the geohash cells that index merchants and cover a search circle.
//! - [`nearby`]: the convenience circle: exact distance, tag, open now, nearest first.
//! - [`basic_services`]: the circle's basic services (the MOFCOM guide's
//!   basic-need formats) and which categories and tags serve each, as data.
//! - [`coverage`]: circle coverage: each building's nearest merchant of each
//!   basic service within the walk (indexed), per grid, and what changed.
//! - [`service_area`]: the district's box; points outside it are refused, so
//!   every search's work is bounded.
//! - [`opening_hours`]: weekly opening hours and whether a merchant is open now
//!   (the chassis's, which pensioner-care reads a canteen's hours with too).
//! - [`credit`]: the credit score rules and the complaint-fault state.
//! - [`awards`]: the model-merchant rules and evaluation periods.
//! - [`fields`], [`FieldError`]: the chassis's field parsing, re-exported.
//! - The ids, parsed once where they come in and typed from then on: the
//!   chassis's [`MerchantId`], [`GridId`], [`BuildingId`], [`ComplaintId`] and [`BookingId`],
//!   and the service's own [`ActivityId`].

pub mod awards;
pub mod basic_services;
pub mod cells;
pub mod coverage;
pub mod credit;
pub mod merchant;
pub mod nearby;
pub mod service_area;

pub use shequ_chassis::fields::{self, FieldError};
pub use shequ_chassis::geo;
pub use shequ_chassis::ids::{BookingId, BuildingId, ComplaintId, GridId, MerchantId};
pub use shequ_chassis::opening_hours;

shequ_chassis::id!(
    /// A merchant's welfare or environment activity (公益活动), or the
    /// discounted elder meal that counts as one: what its credit entry refers to.
    ActivityId
);
