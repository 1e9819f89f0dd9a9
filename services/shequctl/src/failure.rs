//! Every error sorted into the exit code scripts rely on, and reported on
//! stderr (as JSON with `--json`):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | anything else |
//! | 2 | usage error (clap's, and an empty `--from`/`--to` period) |
//! | 3 | the service (or NATS, for `events tail`) is unreachable (transport error or `Unavailable`), named with its URL |
//! | 4 | `InvalidArgument`, with the fields the `BadRequest` detail names |
//! | 5 | `NotFound` (and, for `events tail`, a pattern no stream holds) |
//! | 6 | `FailedPrecondition` |
//! | 7 | without a token: `Unauthenticated` (no token, or one the service does not know), a token file that is missing, unreadable or empty, or `PermissionDenied` (the token's role may not) |

use std::fmt;
use std::io::Write;
use std::process::ExitCode;

use serde_json::json;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::output::Output;

/// Connecting to the service failed.
#[derive(Debug)]
pub(crate) struct Unreachable(pub(crate) tonic::transport::Error);

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connecting failed")
    }
}

impl std::error::Error for Unreachable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Connecting to NATS failed (`events tail`); the URL is the [`Service`]'s.
#[derive(Debug)]
pub(crate) struct NatsUnreachable(pub(crate) async_nats::ConnectError);

impl fmt::Display for NatsUnreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connecting to NATS failed")
    }
}

impl std::error::Error for NatsUnreachable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// What was asked for is not there, found out without a service's
/// `NotFound` (a pattern no stream holds).
#[derive(Debug)]
pub(crate) struct NotFound(pub(crate) String);

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotFound {}

/// The service a command talks to, as errors name it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Service<'a> {
    /// `complaints`, `merchant-alliance`, `pensioner-care`, or `NATS`.
    pub(crate) name: &'static str,
    pub(crate) url: &'a str,
}

/// A command line that parsed but makes no sense (clap could not tell).
#[derive(Debug)]
pub(crate) struct Usage(pub(crate) String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// The token file could not give a token: missing, unreadable or empty.
#[derive(Debug)]
pub(crate) struct NoToken(pub(crate) String);

impl fmt::Display for NoToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoToken {}

/// What went wrong, ready to report.
#[derive(Debug, PartialEq)]
struct Failure {
    exit: u8,
    kind: &'static str,
    message: String,
    /// `(field, description)` from a `BadRequest` detail.
    fields: Vec<(String, String)>,
    cause: Option<String>,
}

impl Failure {
    fn new(exit: u8, kind: &'static str, message: String) -> Self {
        Self {
            exit,
            kind,
            message,
            fields: Vec::new(),
            cause: None,
        }
    }
}

/// Prints `error`, from a command talking to `service`, on stderr and returns
/// its exit code.
pub(crate) fn report(error: &anyhow::Error, service: Service<'_>, output: Output) -> ExitCode {
    let failure = classify(error, service);
    let text = if output.is_json() {
        let fields: Vec<_> = failure
            .fields
            .iter()
            .map(|(field, description)| json!({"field": field, "description": description}))
            .collect();
        json!({"error": {
            "kind": failure.kind,
            "exit_code": failure.exit,
            "message": failure.message,
            "fields": fields,
            "cause": failure.cause,
        }})
        .to_string()
    } else {
        let mut text = format!("error: {}", failure.message);
        for (field, description) in &failure.fields {
            text.push_str(&format!("\n  field {field}: {description}"));
        }
        if let Some(cause) = &failure.cause {
            text.push_str(&format!("\n  cause: {cause}"));
        }
        text
    };
    // Nothing better to do if stderr is gone.
    let _ = writeln!(std::io::stderr(), "{text}");
    ExitCode::from(failure.exit)
}

fn classify(error: &anyhow::Error, service: Service<'_>) -> Failure {
    let Service { name, url } = service;
    let unreachable =
        || format!("cannot reach the {name} service at {url}: is it running? (make run)");
    if let Some(Unreachable(transport)) = error.downcast_ref::<Unreachable>() {
        let mut failure = Failure::new(3, "unreachable", unreachable());
        failure.cause = Some(chain(transport));
        return failure;
    }
    if let Some(NatsUnreachable(connect)) = error.downcast_ref::<NatsUnreachable>() {
        let mut failure = Failure::new(
            3,
            "unreachable",
            format!(
                "cannot reach NATS at {url}: is it running? \
                 (`make run` serves it on nats://127.0.0.1:14222)"
            ),
        );
        failure.cause = Some(chain(connect));
        return failure;
    }
    if let Some(Usage(message)) = error.downcast_ref::<Usage>() {
        return Failure::new(2, "usage", message.clone());
    }
    if let Some(NoToken(message)) = error.downcast_ref::<NoToken>() {
        return Failure::new(7, "unauthenticated", message.clone());
    }
    if let Some(NotFound(message)) = error.downcast_ref::<NotFound>() {
        return Failure::new(5, "not_found", message.clone());
    }
    let Some(status) = error.chain().find_map(|e| e.downcast_ref::<Status>()) else {
        return Failure::new(1, "error", format!("{error:#}"));
    };
    let message = status.message().to_owned();
    match status.code() {
        Code::Unavailable => {
            let mut failure = Failure::new(3, "unreachable", unreachable());
            failure.cause = Some(message);
            failure
        }
        Code::InvalidArgument => {
            let mut failure = Failure::new(
                4,
                "invalid_argument",
                format!("invalid argument: {message}"),
            );
            if let Some(bad_request) = status.get_error_details().bad_request() {
                failure.fields = bad_request
                    .field_violations
                    .iter()
                    .map(|v| (v.field.clone(), v.description.clone()))
                    .collect();
            }
            failure
        }
        Code::NotFound => Failure::new(5, "not_found", message),
        Code::FailedPrecondition => Failure::new(6, "failed_precondition", message),
        Code::Unauthenticated => Failure::new(
            7,
            "unauthenticated",
            format!("{message} (give your token with --token-file or SHEQU_TOKEN_FILE)"),
        ),
        Code::PermissionDenied => Failure::new(7, "permission_denied", message),
        code => Failure::new(
            1,
            "error",
            format!("the {name} service answered {code:?}: {message}"),
        ),
    }
}

/// An error with its sources, `a: b: c`.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use tonic_types::ErrorDetails;

    use super::*;

    const URL: &str = "http://127.0.0.1:50051";
    const COMPLAINTS: Service<'static> = Service {
        name: "complaints",
        url: URL,
    };

    fn exit_of(status: Status) -> u8 {
        classify(&anyhow::Error::new(status), COMPLAINTS).exit
    }

    #[test]
    fn status_codes_map_to_the_documented_exit_codes() {
        assert_eq!(exit_of(Status::unavailable("down")), 3);
        assert_eq!(exit_of(Status::invalid_argument("bad")), 4);
        assert_eq!(exit_of(Status::not_found("complaint x not found")), 5);
        assert_eq!(exit_of(Status::failed_precondition("not allowed")), 6);
        assert_eq!(exit_of(Status::internal("storage failed")), 1);
        assert_eq!(
            classify(&anyhow::anyhow!("file missing"), COMPLAINTS).exit,
            1
        );
        assert_eq!(
            classify(&Usage("empty period".into()).into(), COMPLAINTS).exit,
            2
        );
        assert_eq!(
            classify(&NotFound("no stream".into()).into(), COMPLAINTS).exit,
            5
        );
    }

    #[test]
    fn invalid_argument_names_the_field_from_the_bad_request_detail() {
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "satisfaction: must be 1 to 5, got 9",
            ErrorDetails::with_bad_request_violation("satisfaction", "must be 1 to 5, got 9"),
        );
        let failure = classify(&anyhow::Error::new(status).context("recording"), COMPLAINTS);
        assert_eq!(
            failure.fields,
            vec![(
                "satisfaction".to_owned(),
                "must be 1 to 5, got 9".to_owned()
            )]
        );
    }

    #[test]
    fn unavailable_names_the_url() {
        let failure = classify(&anyhow::Error::new(Status::unavailable("down")), COMPLAINTS);
        assert!(failure.message.contains(URL), "{}", failure.message);
        assert!(failure.message.contains("make run"), "{}", failure.message);
    }

    #[test]
    fn errors_name_the_service_the_command_talks_to() {
        let alliance = Service {
            name: "merchant-alliance",
            url: "http://127.0.0.1:50052",
        };
        let down = classify(&anyhow::Error::new(Status::unavailable("down")), alliance);
        assert!(
            down.message.starts_with(
                "cannot reach the merchant-alliance service at http://127.0.0.1:50052"
            ),
            "{}",
            down.message
        );
        let odd = classify(&anyhow::Error::new(Status::internal("boom")), alliance);
        assert_eq!(
            odd.message,
            "the merchant-alliance service answered Internal: boom"
        );
    }
}
