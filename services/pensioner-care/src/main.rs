//! The `pensioner-care` binary: reads the configuration and runs the service.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    shequ_chassis::runtime::main::<shequ_pensioner_care::Application>().await
}
