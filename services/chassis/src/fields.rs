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
    optional(field, value, max)?.ok_or_else(|| FieldError::new(field, "must not be empty"))
}

/// `value` trimmed, `None` when empty, at most `max` characters.
///
/// Line breaks are normalised to `\n` (a hotline PC types `\r\n`), and
/// invisible characters (zero-width spaces, joiners, a byte-order mark, soft
/// hyphens) count as blank at either end, as whitespace does: a text of only
/// those is empty.
pub fn optional(field: &str, value: &str, max: usize) -> Result<Option<String>, FieldError> {
    let value = value.trim_matches(|c: char| c.is_whitespace() || is_invisible(c));
    if value.is_empty() {
        return Ok(None);
    }
    let value = if value.contains('\r') {
        value.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        value.to_owned()
    };
    bounded(field, &value, max)?;
    Ok(Some(value))
}

/// Characters that show nothing and are not whitespace to `char::is_whitespace`.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
    )
}

/// An actor named by the request itself (only when authentication is off):
/// an account-like id (letters, digits, `.`, `_`, `:`, `@`, `-`), never a
/// free-text person name.
pub fn account(field: &str, value: &str) -> Result<String, FieldError> {
    let value = required(field, value, ID)?;
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '-'))
    {
        return Err(FieldError::new(
            field,
            "must be an account id (letters, digits, '.', '_', ':', '@', '-'), not a name",
        ));
    }
    Ok(value)
}

fn bounded(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
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
    Ok(())
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
    fn windows_line_breaks_are_normalised() {
        assert_eq!(
            required("text", "楼道灯坏了\r\n已经三天\r没人修", 100).as_deref(),
            Ok("楼道灯坏了\n已经三天\n没人修")
        );
    }

    #[test]
    fn invisible_only_text_is_blank() {
        for blank in ["\u{200B}\u{200B}", "\u{FEFF}", " \u{2060}\u{200D} "] {
            assert_eq!(required("text", blank, 10).unwrap_err().field, "text");
        }
        assert_eq!(
            required("text", "\u{FEFF}路灯坏了\u{200B}", 10).as_deref(),
            Ok("路灯坏了")
        );
    }

    #[test]
    fn an_account_is_an_id_not_a_name() {
        assert_eq!(account("actor", " worker-li ").as_deref(), Ok("worker-li"));
        assert!(account("actor", "张三").is_err());
        assert!(account("actor", "Zhang San").is_err());
    }

    #[test]
    fn empty_optional_is_none() {
        assert_eq!(optional("location", " ", 10), Ok(None));
    }
}
