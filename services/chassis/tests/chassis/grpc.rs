//! The gRPC error helpers.

use shequ_chassis::grpc::{invalid_argument, violated_field};
use tonic::{Code, Status};

#[test]
fn invalid_argument_names_the_field_and_violated_field_reads_it_back() {
    let status = invalid_argument("text", "must not be empty");

    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "text: must not be empty");
    assert_eq!(violated_field(&status).as_deref(), Some("text"));
}

#[test]
fn violated_field_is_none_for_a_status_without_a_bad_request() {
    let status = Status::invalid_argument("text: must not be empty");

    assert_eq!(violated_field(&status), None);
}
