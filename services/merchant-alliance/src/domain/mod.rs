//! The merchant-alliance rules, as plain types and functions with no I/O.
//!
//! - [`merchant`]: the merchant, its category, status, service tags and details.
//! - [`geo`]: points, the WGS-84 ↔ GCJ-02 conversion, distances (the chassis's).
//! - [`cells`]: the geohash cells that index merchants and cover a search circle.
//! - [`nearby`]: the convenience circle: exact distance, tag, open now, nearest first.
//! - [`service_area`]: the district's box; points outside it are refused, so
//!   every search's work is bounded.
//! - [`opening_hours`]: weekly opening hours and whether a merchant is open now
//!   (the chassis's, which pensioner-care reads a canteen's hours with too).
//! - [`credit`]: the credit score rules and the complaint-fault state.
//! - [`awards`]: the model-merchant rules and evaluation periods.
//! - [`fields`], [`FieldError`]: the chassis's field parsing, re-exported.
//! - The ids, parsed once where they come in and typed from then on: the
//!   chassis's [`MerchantId`], [`GridId`], [`ComplaintId`] and [`BookingId`],
//!   and the service's own [`ActivityId`].

pub mod awards;
pub mod cells;
pub mod credit;
pub mod merchant;
pub mod nearby;
pub mod service_area;

pub use shequ_chassis::fields::{self, FieldError};
pub use shequ_chassis::geo;
pub use shequ_chassis::ids::{BookingId, ComplaintId, GridId, MerchantId};
pub use shequ_chassis::opening_hours;

shequ_chassis::id!(
    /// A merchant's welfare or environment activity (公益活动), or the
    /// discounted elder meal that counts as one: what its credit entry refers to.
    ActivityId
);
