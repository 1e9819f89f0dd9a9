//! The complaint rules, as plain types and functions with no I/O.
//!
//! - [`kinds`]: the fixed lists: category, channel, priority, status, level.
//! - [`reporter`]: the reporter's personal data and its masking.
//! - [`classification`]: Chinese keyword rules that propose a category.
//! - [`time_limits`]: response and resolution limits per category × priority.
//! - [`organisation`]: the grid organisation and who answers at each level.
//! - [`complaint`]: the complaint and its lifecycle transitions, escalation included.
//! - [`figures`]: the district's rates and the open backlog.
//! - [`fields`]: bounds on free-text fields.

pub mod classification;
pub mod complaint;
pub mod fields;
pub mod figures;
pub mod kinds;
pub mod organisation;
pub mod reporter;
pub mod time_limits;

/// A value that failed to parse, with the request field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
