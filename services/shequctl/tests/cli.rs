//! `shequctl` end to end: the built binary, run as an operator would, against a
//! complaints service started in-process on port 0 with its own `nats-server`
//! and SQLite file.

use std::sync::Arc;

use anyhow::Context;
use serde_json::Value;
use shequ_chassis::clock::SystemClock;
use shequ_chassis::config::CommonConfig;
use shequ_complaints::{Application, Config};
use shequ_tests::NatsServer;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const EXAMPLE_ORGANISATION: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/organisation.example.json"
);

/// A complaints service of the test's own.
struct Service {
    url: String,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), shequ_chassis::Error>>,
    _nats: NatsServer,
    _data: TempDir,
}

impl Service {
    async fn start() -> anyhow::Result<Self> {
        let nats = NatsServer::start().await?;
        let data = tempfile::tempdir()?;
        let mut common = CommonConfig::new(nats.url(), data.path());
        common.grpc_addr = Some("127.0.0.1:0".parse()?);
        let app = Application::build(Config::new(common), Arc::new(SystemClock)).await?;
        let url = format!("http://{}", app.grpc_addr());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        Ok(Self {
            url,
            shutdown,
            task,
            _nats: nats,
            _data: data,
        })
    }

    /// Runs `shequctl --complaints-url <this service> args…`.
    async fn shequctl(&self, args: &[&str]) -> anyhow::Result<Run> {
        shequctl(&self.url, args).await
    }

    /// Loads the example organisation through the command line.
    async fn load_example_organisation(&self) -> anyhow::Result<()> {
        self.shequctl(&["org", "load", EXAMPLE_ORGANISATION])
            .await?
            .success()?;
        Ok(())
    }

    /// Submits a complaint in grid xinyuan-1; returns its id.
    async fn submit(&self, request_id: &str) -> anyhow::Result<String> {
        let run = self
            .shequctl(&[
                "--json",
                "complaints",
                "submit",
                "--channel",
                "hotline",
                "--grid",
                "xinyuan-1",
                "--text",
                "小区门口垃圾堆积很久没人清理",
                "--request-id",
                request_id,
            ])
            .await?;
        let id = run.json()?["complaint"]["id"]
            .as_str()
            .context("no complaint id")?
            .to_owned();
        Ok(id)
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await??;
        Ok(())
    }
}

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn success(self) -> anyhow::Result<Self> {
        anyhow::ensure!(self.code == Some(0), "shequctl failed: {self:?}");
        Ok(self)
    }

    /// Stdout of a successful run, parsed as JSON.
    fn json(self) -> anyhow::Result<Value> {
        let run = self.success()?;
        serde_json::from_str(&run.stdout)
            .with_context(|| format!("stdout is not JSON: {}", run.stdout))
    }
}

async fn shequctl(url: &str, args: &[&str]) -> anyhow::Result<Run> {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_shequctl"))
        .arg("--complaints-url")
        .arg(url)
        .args(args)
        .env_remove("SHEQU_COMPLAINTS_URL")
        .env_remove("SHEQU_ACTOR")
        .output()
        .await
        .context("running shequctl")?;
    Ok(Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout)?,
        stderr: String::from_utf8(output.stderr)?,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_loads_the_organisation_and_works_a_complaint() -> anyhow::Result<()> {
    // Arrange
    let service = Service::start().await?;

    // Act: load the example organisation; it reads back the same.
    let loaded = service
        .shequctl(&["org", "load", EXAMPLE_ORGANISATION])
        .await?
        .success()?;
    let shown = service.shequctl(&["--json", "org", "show"]).await?.json()?;
    let tree = service.shequctl(&["org", "show"]).await?.success()?;

    // Assert
    assert!(
        loaded
            .stdout
            .contains("4 communities, 6 grids, 15 buildings"),
        "{loaded:?}"
    );
    let example: Value = serde_json::from_str(&std::fs::read_to_string(EXAMPLE_ORGANISATION)?)?;
    assert_eq!(shown, example);
    assert!(
        tree.stdout.contains("鑫苑社区") && tree.stdout.contains("    yaozhai-2"),
        "{tree:?}"
    );

    // Act: submit; the same request id again is a duplicate of the first.
    let submitted = service
        .shequctl(&[
            "--json",
            "complaints",
            "submit",
            "--channel",
            "mini-program",
            "--building",
            "xinyuan-b2",
            "--text",
            "小区门口垃圾堆积很久没人清理",
            "--reporter-name",
            "张三",
            "--reporter-phone",
            "13812345678",
            "--request-id",
            "cli-test-1",
        ])
        .await?
        .json()?;
    let again = service
        .shequctl(&[
            "complaints",
            "submit",
            "--channel",
            "mini-program",
            "--building",
            "xinyuan-b2",
            "--text",
            "小区门口垃圾堆积很久没人清理",
            "--request-id",
            "cli-test-1",
        ])
        .await?
        .success()?;

    // Assert
    let complaint = &submitted["complaint"];
    let id = complaint["id"].as_str().context("no id")?.to_owned();
    assert_eq!(complaint["status"], "submitted");
    assert_eq!(complaint["grid_id"], "xinyuan-1");
    assert_eq!(complaint["assignee"], "worker-li");
    assert_eq!(complaint["reporter_phone_masked"], "138****5678");
    assert_eq!(submitted["duplicate"], false);
    assert!(
        again.stdout.contains(&id) && again.stdout.contains("duplicate"),
        "{again:?}"
    );

    // Act: accept, then show and list.
    let accepted = service
        .shequctl(&["complaints", "accept", &id, "--actor", "worker-li"])
        .await?
        .success()?;
    let show = service
        .shequctl(&["complaints", "show", &id])
        .await?
        .success()?;
    let show_json = service
        .shequctl(&["--json", "complaints", "show", &id])
        .await?
        .json()?;
    let list = service.shequctl(&["complaints", "list"]).await?.success()?;
    let accepted_list = service
        .shequctl(&[
            "--json",
            "complaints",
            "list",
            "--status",
            "accepted",
            "--community",
            "xinyuan",
        ])
        .await?
        .json()?;
    let figures = service
        .shequctl(&["complaints", "figures"])
        .await?
        .success()?;
    let figures_json = service
        .shequctl(&["--json", "complaints", "figures", "--community", "xinyuan"])
        .await?
        .json()?;

    // Assert
    assert!(
        accepted.stdout.contains(&id) && accepted.stdout.contains("accepted"),
        "{accepted:?}"
    );
    assert!(show.stdout.contains("history"), "{show:?}");
    assert!(show.stdout.contains("submitted → accepted"), "{show:?}");
    let history = show_json["complaint"]["history"]
        .as_array()
        .context("no history")?;
    assert!(history.len() >= 2, "{history:?}");
    assert!(
        list.stdout
            .lines()
            .next()
            .is_some_and(|header| header.starts_with("id")),
        "{list:?}"
    );
    assert!(list.stdout.contains(&id), "{list:?}");
    assert_eq!(
        accepted_list["complaints"][0]["id"],
        Value::String(id.clone())
    );
    assert!(
        figures.stdout.contains("n/a"),
        "no follow-up yet, so no satisfaction rate: {figures:?}"
    );
    assert_eq!(figures_json["scope"], "community:xinyuan");
    assert_eq!(figures_json["submitted"], 1);
    assert_eq!(figures_json["satisfaction"]["rate"], Value::Null);

    service.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_exit_with_the_code_of_their_kind() -> anyhow::Result<()> {
    // Arrange
    let service = Service::start().await?;
    service.load_example_organisation().await?;
    let id = service.submit("cli-test-refusals").await?;

    // Act
    let bad_satisfaction = service
        .shequctl(&[
            "complaints",
            "follow-up",
            &id,
            "--actor",
            "visitor",
            "--satisfaction",
            "9",
        ])
        .await?;
    let bad_satisfaction_json = service
        .shequctl(&[
            "--json",
            "complaints",
            "follow-up",
            &id,
            "--actor",
            "visitor",
            "--satisfaction",
            "0",
        ])
        .await?;
    let unknown = service
        .shequctl(&["complaints", "show", "no-such-complaint"])
        .await?;
    let too_early = service
        .shequctl(&["complaints", "start", &id, "--actor", "worker-li"])
        .await?;
    let usage = service
        .shequctl(&[
            "complaints",
            "submit",
            "--channel",
            "fax",
            "--text",
            "x",
            "--grid",
            "xinyuan-1",
        ])
        .await?;

    // Assert
    assert_eq!(bad_satisfaction.code, Some(4), "{bad_satisfaction:?}");
    assert!(
        bad_satisfaction.stderr.contains("field satisfaction"),
        "{bad_satisfaction:?}"
    );
    assert_eq!(
        bad_satisfaction_json.code,
        Some(4),
        "{bad_satisfaction_json:?}"
    );
    let error: Value = serde_json::from_str(&bad_satisfaction_json.stderr)?;
    assert_eq!(error["error"]["fields"][0]["field"], "satisfaction");
    assert_eq!(unknown.code, Some(5), "{unknown:?}");
    assert!(unknown.stderr.contains("no-such-complaint"), "{unknown:?}");
    assert_eq!(
        too_early.code,
        Some(6),
        "start before accept: {too_early:?}"
    );
    assert_eq!(usage.code, Some(2), "{usage:?}");
    assert!(usage.stderr.contains("fax"), "{usage:?}");
    assert!(bad_satisfaction.stdout.is_empty() && unknown.stdout.is_empty());

    service.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_service_exits_3_naming_its_url() -> anyhow::Result<()> {
    // Arrange: a port nobody listens on.
    let url = format!("http://127.0.0.1:{}", shequ_tests::free_port()?);

    // Act
    let run = shequctl(&url, &["complaints", "list"]).await?;

    // Assert
    assert_eq!(run.code, Some(3), "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "cannot reach the complaints service at {url}: is it running? (make run)"
        )),
        "{run:?}"
    );
    assert!(run.stdout.is_empty(), "{run:?}");
    Ok(())
}
