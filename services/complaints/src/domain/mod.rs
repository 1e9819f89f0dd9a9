//! The complaint rules, as plain types and functions with no I/O.
//!
//! - [`kinds`]: the fixed lists (category, channel, priority, status, level),
//!   shequ-proto's vocabulary re-exported, and the lifecycle's and escalation's
//!   rules on them.
//! - [`reporter`]: the reporter's personal data and its masking.
//! - [`classification`]: the classifier's decision over a text's words
//!   (weighted terms and a naive Bayes model), confidence and review.
//! - [`corpus`]: the labelled resident texts classification is measured on,
//!   and the measures (accuracy, precision, recall, confusion, review share).
//! - [`time_limits`]: response and resolution limits per category × priority,
//!   in clock minutes or working days.
//! - [`calendar`]: the working calendar (holidays and make-up working days per
//!   year) working-day limits are counted on.
//! - [`duplicates`]: the open complaints a new one may duplicate (same
//!   category and community, nearby or at its building, recent).
//! - [`organisation`]: the grid organisation and who answers at each level.
//! - [`complaint`]: the complaint and its lifecycle transitions, escalation included.
//! - [`figures`]: the district's rates and the open backlog.
//! - [`fields`], [`FieldError`]: the chassis's field parsing, re-exported.
//! - [`ComplaintId`], [`CommunityId`], [`GridId`], [`BuildingId`],
//!   [`MerchantId`], [`ElderId`]: the ids the complaints service holds, the
//!   chassis's types re-exported: parsed once where they come in, typed from
//!   then on.

pub mod calendar;
pub mod classification;
pub mod complaint;
pub mod corpus;
pub mod duplicates;
pub mod figures;
pub mod kinds;
pub mod organisation;
pub mod reporter;
pub mod time_limits;

pub use shequ_chassis::fields::{self, FieldError};
pub use shequ_chassis::ids::{BuildingId, CommunityId, ComplaintId, ElderId, GridId, MerchantId};
