//! The reporter: optional personal data that never leaves the service unmasked.

use std::fmt;

pub use shequ_chassis::personal::Phone;

use super::FieldError;
use super::fields;

/// Who reported a complaint; both parts optional (anonymous complaints are allowed).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Reporter {
    pub name: Option<String>,
    pub phone: Option<Phone>,
}

impl Reporter {
    pub fn parse(name: &str, phone: &str) -> Result<Self, FieldError> {
        let name = fields::optional("reporter.name", name, fields::SHORT_TEXT)?;
        let phone = match phone.trim() {
            "" => None,
            phone => Some(Phone::parse("reporter.phone", phone)?),
        };
        Ok(Self { name, phone })
    }
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reporter")
            .field("name", &self.name.as_ref().map(|_| "***"))
            .field("phone", &self.phone)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_personal_data() {
        let reporter = Reporter::parse("张三", "13812345678").unwrap();
        let shown = format!("{reporter:?}");
        assert!(
            !shown.contains("张三") && !shown.contains("13812345678"),
            "{shown}"
        );
    }

    #[test]
    fn anonymous_reporter_is_allowed() {
        assert_eq!(Reporter::parse("", ""), Ok(Reporter::default()));
    }
}
