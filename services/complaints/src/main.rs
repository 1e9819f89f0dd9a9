//! The `complaints` binary: reads the configuration and runs the service.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    shequ_chassis::runtime::main::<shequ_complaints::Application>().await
}
