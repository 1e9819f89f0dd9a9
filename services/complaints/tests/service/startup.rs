//! Starting and stopping: a bad setting stops the binary with a message naming
//! it; a running service reports SERVING on the gRPC health service.

use std::process::Output;

use tokio::process::Command;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use shequ_tests::Backend;

use crate::support::{TestApp, run};

async fn start_with(env: &[(&str, &str)]) -> anyhow::Result<Output> {
    let data = tempfile::tempdir()?;
    let mut command = Command::new(env!("CARGO_BIN_EXE_complaints"));
    command
        .env("SHEQU_DATA_DIR", data.path())
        .env("SHEQU_GRPC_ADDR", "127.0.0.1:0")
        .env("SHEQU_NATS_URL", "nats://127.0.0.1:1")
        .env("SHEQU_AUTH_DISABLED", "true")
        .env("SHEQU_ADMIN_ADDR", "127.0.0.1:0")
        .env_remove("SHEQU_DATABASE_URL")
        .env_remove("SHEQU_AUTH_TOKENS_FILE")
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    Ok(tokio::time::timeout(std::time::Duration::from_secs(20), command.output()).await??)
}

#[tokio::test]
async fn a_bad_setting_stops_the_service_with_a_message_naming_it() -> anyhow::Result<()> {
    let limits = tempfile::NamedTempFile::new()?;
    std::fs::write(
        limits.path(),
        r#"{"priorities": {}, "follow_up_minutes": 60}"#,
    )?;
    let limits_path = limits.path().display().to_string();
    let cases = [
        ("SHEQU_GRPC_ADDR", "not-an-address", "--grpc-addr"),
        ("SHEQU_LOG_FORMAT", "xml", "--log-format"),
        ("SHEQU_ALLIANCE_URL", "not a url", "SHEQU_ALLIANCE_URL"),
        ("SHEQU_ALLIANCE_TIMEOUT_MS", "0", "--alliance-timeout-ms"),
        ("SHEQU_SWEEP_INTERVAL_SECS", "0", "--sweep-interval-secs"),
        (
            "SHEQU_DATABASE_URL",
            "mysql://root@localhost/shequ",
            "SHEQU_DATABASE_URL",
        ),
        (
            "SHEQU_TIME_LIMITS_FILE",
            "/nonexistent/limits.json",
            "SHEQU_TIME_LIMITS_FILE",
        ),
        (
            "SHEQU_TIME_LIMITS_FILE",
            limits_path.as_str(),
            "priorities.urgent is missing",
        ),
        // No token file and auth not disabled: no default secret to fall back on.
        (
            "SHEQU_AUTH_DISABLED",
            "false",
            "SHEQU_AUTH_TOKENS_FILE is required",
        ),
        (
            "SHEQU_GRPC_TLS_CERT_FILE",
            "/nonexistent/cert.pem",
            "--grpc-tls-key-file",
        ),
    ];
    for (name, value, expected) in cases {
        let output = start_with(&[(name, value)]).await?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name}={value} started");
        assert!(stderr.contains(expected), "{name}={value}: {stderr}");
    }
    Ok(())
}

/// A PostgreSQL that cannot be reached, or refuses, stops the service with
/// where it tried (host, port, database, user; never the password) and why.
#[tokio::test]
async fn a_postgres_it_cannot_use_is_named_with_the_reason() -> anyhow::Result<()> {
    let output = start_with(&[(
        "SHEQU_DATABASE_URL",
        "postgres://complaints:hunter2@127.0.0.1:1/complaints",
    )])
    .await?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("PostgreSQL at 127.0.0.1:1, database complaints, user complaints"),
        "{stderr}"
    );
    assert!(
        stderr.to_lowercase().contains("connection refused"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");

    let Some(admin) = shequ_tests::postgres_url().await else {
        eprintln!("the PostgreSQL half skipped: no PostgreSQL");
        return Ok(());
    };
    // The server answers, but the database is not there.
    let (base, _) = admin.rsplit_once('/').unwrap_or((admin.as_str(), ""));
    let missing = format!("{base}/shequ_no_such_database");
    let output = start_with(&[("SHEQU_DATABASE_URL", missing.as_str())]).await?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("database shequ_no_such_database"),
        "{stderr}"
    );
    assert!(stderr.contains("does not exist"), "{stderr}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_service_reports_serving_and_stops_on_request() -> anyhow::Result<()> {
    run(Backend::Sqlite, health_is_serving).await
}

async fn health_is_serving(mut app: TestApp) -> anyhow::Result<()> {
    let channel = Channel::from_shared(format!("http://{}", app.addr))?
        .connect()
        .await?;
    let mut health = HealthClient::new(channel);
    for service in [
        "",
        "shequ.complaints.v1.ComplaintService",
        "shequ.complaints.v1.OrganisationService",
    ] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await?
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{service:?}");
    }
    app.stop().await?;
    Ok(())
}
