//! The `pensioner-care` binary: reads the configuration and runs the service.

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use shequ_chassis::clock::SystemClock;
use shequ_chassis::{shutdown, telemetry};
use shequ_pensioner_care::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(config.common.log_format);
    let app = Application::build(config, Arc::new(SystemClock))
        .await
        .context("pensioner-care could not start")?;
    tracing::info!(grpc = %app.grpc_addr(), admin = %app.admin_addr(), "pensioner-care listening");
    app.run_until_stopped(shutdown::on_signal()).await?;
    Ok(())
}
