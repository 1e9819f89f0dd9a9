//! Personal data that more than one service keeps (residents' and elders'
//! phones), with the masked form that is all that may appear in events and logs.

use std::fmt;

use crate::fields::FieldError;

/// A phone number: digits with an optional leading `+` and inner hyphens.
#[derive(Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let value = value.trim();
        let digits = value.chars().filter(char::is_ascii_digit).count();
        let well_formed = value
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || c == '-' || (c == '+' && i == 0));
        if !well_formed || !(5..=20).contains(&digits) {
            return Err(FieldError::new(
                field,
                "must be a phone number of 5-20 digits (e.g. 13812345678)",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first three and last four digits, the rest starred: `138****5678`.
    pub fn masked(&self) -> String {
        let digits: Vec<char> = self.0.chars().filter(char::is_ascii_digit).collect();
        if digits.len() <= 7 {
            return "*".repeat(digits.len());
        }
        let head: String = digits[..3].iter().collect();
        let tail: String = digits[digits.len() - 4..].iter().collect();
        format!("{head}{}{tail}", "*".repeat(digits.len() - 7))
    }
}

/// Debug output shows the masked form, so a stray `{:?}` cannot leak a number.
impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobile_number_is_masked_in_the_middle() {
        let phone = Phone::parse("phone", "13812345678").unwrap();
        assert_eq!(phone.masked(), "138****5678");
    }

    #[test]
    fn landline_with_area_code_keeps_head_and_tail() {
        let phone = Phone::parse("phone", "0371-6666-1234").unwrap();
        assert_eq!(phone.masked(), "037*****1234");
    }

    #[test]
    fn letters_in_a_phone_are_refused() {
        assert_eq!(
            Phone::parse("reporter.phone", "138abc").unwrap_err().field,
            "reporter.phone"
        );
        assert!(Phone::parse("reporter.phone", "123").is_err());
    }
}
