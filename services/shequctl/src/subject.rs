//! NATS subject patterns as `events tail` takes them (`shequ.>`,
//! `shequ.*.complaint.accepted.v1`): checked on the command line, and
//! intersected with a stream's subjects to find the streams a pattern reaches
//! and the filter each stream's consumer takes.

/// A valid subject pattern: dot-separated tokens, none empty, `*` matching
/// one token, `>` (last only) one or more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern(String);

impl Pattern {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A pattern on the command line.
pub(crate) fn parse(text: &str) -> Result<Pattern, String> {
    const EXAMPLE: &str = "like shequ.> or shequ.complaints.complaint.*.v1";
    let tokens: Vec<&str> = text.split('.').collect();
    for (index, token) in tokens.iter().enumerate() {
        if token.is_empty() {
            return Err(format!(
                "an empty token in {text:?}: expected a subject {EXAMPLE}"
            ));
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{text:?} has white space: expected a subject {EXAMPLE}"
            ));
        }
        if *token == ">" && index + 1 != tokens.len() {
            return Err(format!(
                "in {text:?}, `>` must be the last token ({EXAMPLE})"
            ));
        }
        if token.len() > 1 && (token.contains('*') || token.contains('>')) {
            return Err(format!(
                "in {text:?}, `*` and `>` stand for whole tokens only ({EXAMPLE})"
            ));
        }
    }
    Ok(Pattern(text.to_owned()))
}

/// The subjects both patterns match, as one pattern; `None` when they share none.
///
/// Two patterns meet token by token: a literal meets itself or `*`, `*` meets
/// `*`, and `>` takes whatever (at least one token) the other has left.
pub(crate) fn intersection(a: &str, b: &str) -> Option<String> {
    let a: Vec<&str> = a.split('.').collect();
    let b: Vec<&str> = b.split('.').collect();
    let mut tokens = Vec::new();
    let mut index = 0;
    loop {
        match (a.get(index), b.get(index)) {
            (None, None) => break,
            (Some(&">"), Some(_)) => {
                tokens.extend_from_slice(&b[index..]);
                break;
            }
            (Some(_), Some(&">")) => {
                tokens.extend_from_slice(&a[index..]);
                break;
            }
            (Some(&x), Some(&y)) if x == y || y == "*" => tokens.push(x),
            (Some(&"*"), Some(&y)) => tokens.push(y),
            // Different literals, or one pattern has more tokens than the other.
            _ => return None,
        }
        index += 1;
    }
    Some(tokens.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_whole_tokens_with_the_full_wildcard_last() {
        for good in [
            "shequ.>",
            ">",
            "shequ.complaints.complaint.submitted.v1",
            "shequ.*.complaint.*.v1",
            "*",
        ] {
            assert_eq!(parse(good).map(|p| p.to_string()), Ok(good.to_owned()));
        }
        for bad in [
            "",
            "shequ.",
            "shequ..x",
            ".shequ",
            "shequ.>.v1",
            "shequ.comp*",
            "shequ.>>",
            "shequ complaints",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was taken");
        }
    }

    #[test]
    fn a_pattern_meets_a_stream_where_both_match() {
        let cases = [
            ("shequ.>", "shequ.complaints.>", Some("shequ.complaints.>")),
            (">", "shequ.care.>", Some("shequ.care.>")),
            (
                "shequ.complaints.>",
                "shequ.complaints.>",
                Some("shequ.complaints.>"),
            ),
            (
                "shequ.*.complaint.accepted.v1",
                "shequ.complaints.>",
                Some("shequ.complaints.complaint.accepted.v1"),
            ),
            (
                "*.*.*.*.v1",
                "shequ.alliance.>",
                Some("shequ.alliance.*.*.v1"),
            ),
            ("shequ.*", "shequ.care.>", None),
            ("shequ.*.>", "shequ.care.>", Some("shequ.care.>")),
            ("shequ.alliance.>", "shequ.complaints.>", None),
            ("shequ.complaints", "shequ.complaints.>", None),
            (
                "shequ.complaints.x",
                "shequ.complaints.*",
                Some("shequ.complaints.x"),
            ),
            ("shequ.complaints.x.y", "shequ.complaints.*", None),
            ("orders.*", "orders.new", Some("orders.new")),
        ];
        for (pattern, stream, expected) in cases {
            assert_eq!(
                intersection(pattern, stream).as_deref(),
                expected,
                "{pattern} ∩ {stream}"
            );
            assert_eq!(
                intersection(stream, pattern).as_deref(),
                expected,
                "{stream} ∩ {pattern}"
            );
        }
    }
}
