//! Parsing request fields: a [`FieldError`] names the field that failed, and the
//! bounds keep over-long input out before anything is stored. Pure: services'
//! domains use it as well as their gRPC adapters.

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

/// `InvalidArgument` naming the field.
impl From<FieldError> for tonic::Status {
    fn from(error: FieldError) -> Self {
        crate::grpc::invalid_argument(&error.field, error.message)
    }
}

/// Complaint text, resolution notes.
pub const LONG_TEXT: usize = 2000;
/// Reject reasons, follow-up comments.
pub const REASON: usize = 500;
/// Place descriptions, names.
pub const SHORT_TEXT: usize = 200;
/// Ids and actors.
pub const ID: usize = 64;
/// Idempotency keys.
pub const REQUEST_ID: usize = 128;

/// `value` trimmed, required and at most `max` characters.
pub fn required(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    bounded(field, value, max).map(str::to_owned)
}

/// `value` trimmed, `None` when empty, at most `max` characters.
pub fn optional(field: &str, value: &str, max: usize) -> Result<Option<String>, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    bounded(field, value, max).map(|value| Some(value.to_owned()))
}

fn bounded<'a>(field: &str, value: &'a str, max: usize) -> Result<&'a str, FieldError> {
    let length = value.chars().count();
    if length > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters, got {length}"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_text_is_trimmed_and_must_not_be_blank() {
        assert_eq!(
            required("text", "  路灯坏了 ", 10).as_deref(),
            Ok("路灯坏了")
        );
        assert_eq!(required("text", "   ", 10).unwrap_err().field, "text");
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert!(required("text", "一二三", 3).is_ok());
        let error = required("text", "一二三四", 3).unwrap_err();
        assert!(error.message.contains("at most 3"), "{error}");
    }

    #[test]
    fn empty_optional_is_none() {
        assert_eq!(optional("location", " ", 10), Ok(None));
    }
}
