//! `shequctl` end to end: the built binary, run as an operator would, against a
//! complaints, merchant-alliance or pensioner-care service started in-process on
//! port 0 with its own `nats-server` and SQLite file.

use std::sync::Arc;

use anyhow::Context;
use chrono::Datelike;
use serde_json::Value;
use shequ_chassis::clock::SystemClock;
use shequ_chassis::config::CommonConfig;
use shequ_chassis::runtime::App;
use shequ_tests::NatsServer;
use shequ_tests::service::TestService;
use tempfile::TempDir;

const EXAMPLE_ORGANISATION: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/organisation.example.json"
);

/// A service of the test's own.
struct Service<A> {
    /// The flag that points `shequctl` at it: `--complaints-url`, `--alliance-url`,
    /// `--care-url`.
    flag: &'static str,
    url: String,
    service: TestService<A>,
    nats: NatsServer,
    _data: TempDir,
}

impl Service<shequ_complaints::Application> {
    /// The complaints service.
    async fn start() -> anyhow::Result<Self> {
        Self::start_with("--complaints-url", |common| {
            Ok(shequ_complaints::Config::new(common))
        })
        .await
    }
}

impl Service<shequ_merchant_alliance::Application> {
    /// The merchant-alliance service.
    async fn start_alliance() -> anyhow::Result<Self> {
        Self::start_with("--alliance-url", |common| {
            Ok(shequ_merchant_alliance::Config::new(common))
        })
        .await
    }
}

impl Service<shequ_pensioner_care::Application> {
    /// The pensioner-care service, its neighbours (complaints, merchant-alliance)
    /// down: ports nobody listens on, given up on quickly.
    async fn start_care() -> anyhow::Result<Self> {
        Self::start_with("--care-url", |common| {
            let mut config = shequ_pensioner_care::Config::new(common);
            config.complaints_url = format!("http://127.0.0.1:{}", shequ_tests::free_port()?);
            config.alliance_url = format!("http://127.0.0.1:{}", shequ_tests::free_port()?);
            config.call_timeout_ms = 300;
            Ok(config)
        })
        .await
    }
}

impl<A: App> Service<A> {
    /// A NATS server and data directory of its own, and the service `config`
    /// makes on them, listening on a free port.
    async fn start_with(
        flag: &'static str,
        config: impl FnOnce(CommonConfig) -> anyhow::Result<A::Config>,
    ) -> anyhow::Result<Self> {
        let nats = NatsServer::start().await?;
        let data = tempfile::tempdir()?;
        let mut common = CommonConfig::new(nats.url(), data.path());
        common.grpc_addr = Some("127.0.0.1:0".parse()?);
        let service = TestService::start(config(common)?, Arc::new(SystemClock)).await?;
        Ok(Self {
            flag,
            url: service.url(),
            service,
            nats,
            _data: data,
        })
    }

    /// Runs `shequctl --<service>-url <this service> args…`.
    async fn shequctl(&self, args: &[&str]) -> anyhow::Result<Run> {
        shequctl(self.flag, &self.url, args).await
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

    async fn stop(mut self) -> anyhow::Result<()> {
        self.service.stop().await
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

/// Runs the binary with `flag url args…`, no service address or actor from
/// the environment.
async fn shequctl(flag: &str, url: &str, args: &[&str]) -> anyhow::Result<Run> {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_shequctl"))
        .arg(flag)
        .arg(url)
        .args(args)
        .env_remove("SHEQU_COMPLAINTS_URL")
        .env_remove("SHEQU_ALLIANCE_URL")
        .env_remove("SHEQU_CARE_URL")
        .env_remove("SHEQU_ACTOR")
        .env_remove("SHEQU_TOKEN_FILE")
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

    // Act: submit; the same request again is a duplicate of the first.
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
    let submission = |text: &'static str| {
        [
            "complaints",
            "submit",
            "--channel",
            "mini-program",
            "--building",
            "xinyuan-b2",
            "--text",
            text,
            "--reporter-name",
            "张三",
            "--reporter-phone",
            "13812345678",
            "--request-id",
            "cli-test-1",
        ]
    };
    let again = service
        .shequctl(&submission("小区门口垃圾堆积很久没人清理"))
        .await?
        .success()?;
    // The same key for another complaint: refused, naming the key.
    let reused = service.shequctl(&submission("楼上噪音太大")).await?;
    assert_eq!(reused.code, Some(4), "{reused:?}");
    assert!(reused.stderr.contains("request_id"), "{reused:?}");

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
async fn an_unreachable_service_exits_3_naming_it_and_its_url() -> anyhow::Result<()> {
    let cases: [(&str, &str, &[&str]); 3] = [
        ("--complaints-url", "complaints", &["complaints", "list"]),
        (
            "--alliance-url",
            "merchant-alliance",
            &["merchants", "ledger", "m-1"],
        ),
        ("--care-url", "pensioner-care", &["care", "overdue"]),
    ];
    for (flag, service, args) in cases {
        // Arrange: a port nobody listens on.
        let url = format!("http://127.0.0.1:{}", shequ_tests::free_port()?);

        // Act
        let run = shequctl(flag, &url, args).await?;

        // Assert
        assert_eq!(run.code, Some(3), "{run:?}");
        let expected =
            format!("cannot reach the {service} service at {url}: is it running? (make run)");
        assert!(run.stderr.contains(&expected), "{run:?}");
        assert!(run.stdout.is_empty(), "{run:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_unknown_unpermitted_or_unreadable_token_exits_7_and_a_good_one_works()
-> anyhow::Result<()> {
    // Arrange: complaints checking tokens; an operator's and a resident app's.
    let dir = tempfile::tempdir()?;
    let tokens = shequ_tests::auth::token_file(
        dir.path(),
        &[
            ("ops", "operator", "operator-token"),
            ("app", "resident_app", "app-token"),
        ],
    )?;
    let token_file = |name: &str, token: &str| -> anyhow::Result<String> {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{token}\n"))?;
        Ok(path.display().to_string())
    };
    let (operator, app, unknown) = (
        token_file("operator.token", "operator-token")?,
        token_file("app.token", "app-token")?,
        token_file("unknown.token", "nobody-has-this")?,
    );
    let tokens_file = tokens.clone();
    let service =
        Service::<shequ_complaints::Application>::start_with("--complaints-url", |mut common| {
            common.auth.disabled = false;
            common.auth.tokens_file = Some(tokens_file);
            Ok(shequ_complaints::Config::new(common))
        })
        .await?;

    // Act and assert: who may list complaints.
    let list = |token: Option<String>| {
        let service = &service;
        async move {
            let mut args = vec![];
            if let Some(token) = &token {
                args.extend(["--token-file", token.as_str()]);
            }
            args.extend(["complaints", "list"]);
            service.shequctl(&args).await
        }
    };
    let without = list(None).await?;
    assert_eq!(without.code, Some(7), "{without:?}");
    assert!(without.stderr.contains("--token-file"), "{without:?}");
    let unknown = list(Some(unknown)).await?;
    assert_eq!(unknown.code, Some(7), "{unknown:?}");
    let resident = list(Some(app)).await?;
    assert_eq!(resident.code, Some(7), "{resident:?}");
    assert!(resident.stderr.contains("resident_app"), "{resident:?}");
    let missing_file = dir.path().join("no-such.token");
    let missing = list(Some(missing_file.display().to_string())).await?;
    assert_eq!(missing.code, Some(7), "a missing token file: {missing:?}");
    assert!(missing.stderr.contains("no-such.token"), "{missing:?}");
    let empty = list(Some(token_file("empty.token", "")?)).await?;
    assert_eq!(empty.code, Some(7), "an empty token file: {empty:?}");
    assert!(
        empty.stderr.contains("empty.token") && empty.stderr.contains("empty"),
        "names the file: {empty:?}"
    );
    let allowed = list(Some(operator)).await?;
    assert_eq!(allowed.code, Some(0), "{allowed:?}");
    service.stop().await
}

/// Registers a dining merchant near Jinshui (GCJ-02, as a map app reports it)
/// through the command line; returns what `--json` printed.
async fn register_dining(
    alliance: &Service<shequ_merchant_alliance::Application>,
    name: &str,
    (lat, lng): (&str, &str),
    extra: &[&str],
) -> anyhow::Result<Value> {
    let args = [
        &[
            "--json",
            "merchants",
            "register",
            "--name",
            name,
            "--category",
            "dining",
            "--lat",
            lat,
            "--lng",
            lng,
            "--grid",
            "xinyuan-1",
            "--actor",
            "op-zhang",
        ][..],
        extra,
    ]
    .concat();
    alliance.shequctl(&args).await?.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_registers_merchants_finds_them_nearby_and_keeps_their_credit()
-> anyhow::Result<()> {
    // Arrange
    let alliance = Service::start_alliance().await?;

    // Act: two dining merchants about 150 m apart; only the first serves elder meals.
    let laozhang = register_dining(
        &alliance,
        "老张家常菜",
        ("34.800000", "113.660000"),
        &[
            "--tag",
            "elder_meals",
            "--hours",
            "mon-fri 08:00-20:00",
            "--hours",
            "sat-sun 09:00-21:00",
            "--address",
            "西里路 12 号",
            "--request-id",
            "cli-merchant-1",
        ],
    )
    .await?;
    let noodles = register_dining(&alliance, "李记面馆", ("34.801000", "113.661000"), &[]).await?;
    let again = alliance
        .shequctl(&[
            "merchants",
            "register",
            "--name",
            "老张家常菜",
            "--category",
            "dining",
            "--lat",
            "34.800000",
            "--lng",
            "113.660000",
            "--grid",
            "xinyuan-1",
            "--actor",
            "op-zhang",
            "--tag",
            "elder_meals",
            "--hours",
            "mon-fri 08:00-20:00",
            "--hours",
            "sat-sun 09:00-21:00",
            "--address",
            "西里路 12 号",
            "--request-id",
            "cli-merchant-1",
        ])
        .await?
        .success()?;

    // Assert: stored in WGS-84, answered with the datum named.
    let merchant = &laozhang["merchant"];
    let id = merchant["id"]
        .as_str()
        .context("no merchant id")?
        .to_owned();
    let other = noodles["merchant"]["id"]
        .as_str()
        .context("no merchant id")?
        .to_owned();
    assert_eq!(merchant["category"], "dining");
    assert_eq!(merchant["service_tags"], serde_json::json!(["elder_meals"]));
    assert_eq!(merchant["location"]["datum"], "wgs84");
    assert_ne!(
        merchant["location"]["latitude"], 34.8,
        "GCJ-02 was converted"
    );
    assert_eq!(merchant["opening_hours"][1]["days"][0], "saturday");
    assert_eq!(merchant["credit_score"], 100);
    assert_eq!(merchant["status"], "active");
    assert_eq!(laozhang["duplicate"], false);
    assert!(
        again.stdout.contains(&id) && again.stdout.contains("duplicate"),
        "{again:?}"
    );

    // Act: show it in GCJ-02 and as a table; list the grid.
    let shown = alliance
        .shequctl(&["merchants", "show", &id, "--datum", "gcj02"])
        .await?
        .success()?;
    let list = alliance
        .shequctl(&["merchants", "list", "--grid", "xinyuan-1"])
        .await?
        .success()?;

    // Assert: GCJ-02 in, GCJ-02 out.
    assert!(
        shown.stdout.contains("34.800000, 113.660000 (gcj02)"),
        "{shown:?}"
    );
    assert!(
        shown.stdout.contains("mon-fri 08:00-20:00")
            && shown.stdout.contains("sat-sun 09:00-21:00"),
        "{shown:?}"
    );
    assert!(
        list.stdout.starts_with("id") && list.stdout.contains(&id) && list.stdout.contains(&other),
        "{list:?}"
    );

    // Act: the convenience circle, 200 m south of the first merchant.
    let resident = [
        "--lat",
        "34.798200",
        "--lng",
        "113.660000",
        "--category",
        "dining",
    ];
    let elder_meals = alliance
        .shequctl(
            &[
                &["merchants", "nearby"][..],
                &resident,
                &["--tag", "elder_meals"],
            ]
            .concat(),
        )
        .await?
        .success()?;
    let all_json = alliance
        .shequctl(&[&["--json", "merchants", "nearby"][..], &resident].concat())
        .await?
        .json()?;

    // Assert
    let lines: Vec<&str> = elder_meals.stdout.lines().collect();
    assert!(
        lines[0].contains("within") && lines[0].contains("15-minute walk"),
        "the radius searched: {elder_meals:?}"
    );
    assert!(
        lines[1].starts_with("name") && lines[1].contains("distance (m)"),
        "{lines:?}"
    );
    assert_eq!(
        lines.len(),
        3,
        "only the merchant with elder meals: {lines:?}"
    );
    assert!(
        lines[2].starts_with("老张家常菜") && lines[2].contains(&id),
        "{lines:?}"
    );
    let found = all_json["merchants"].as_array().context("no merchants")?;
    assert_eq!(found.len(), 2, "{all_json}");
    assert_eq!(
        found[0]["merchant"]["id"],
        Value::String(id.clone()),
        "nearest first"
    );
    let distance = found[0]["distance_metres"]
        .as_f64()
        .context("no distance")?;
    assert!(
        (150.0..250.0).contains(&distance),
        "about 200 m: {distance}"
    );
    assert!(
        all_json["radius_metres"]
            .as_f64()
            .is_some_and(|r| r > 1000.0)
    );

    // Act: the credit ledger, before and after a welfare activity.
    let fresh = alliance
        .shequctl(&["merchants", "ledger", &id])
        .await?
        .success()?;
    let activity = alliance
        .shequctl(&[
            "merchants",
            "activity",
            &id,
            "--kind",
            "welfare",
            "--description",
            "为独居老人免费送餐",
            "--actor",
            "op-zhang",
        ])
        .await?
        .success()?;
    let ledger = alliance
        .shequctl(&["merchants", "ledger", &id])
        .await?
        .success()?;
    let ledger_json = alliance
        .shequctl(&["--json", "merchants", "ledger", &id])
        .await?
        .json()?;

    // Assert
    assert!(fresh.stdout.contains("credit score 100"), "{fresh:?}");
    assert!(
        activity.stdout.contains("+2") && activity.stdout.contains("102"),
        "{activity:?}"
    );
    assert!(ledger.stdout.contains("credit score 102"), "{ledger:?}");
    assert!(
        ledger.stdout.contains("welfare_activity") && ledger.stdout.contains("op-zhang"),
        "{ledger:?}"
    );
    assert_eq!(ledger_json["score"], 102);
    assert_eq!(ledger_json["entries"][0]["delta"], 2);
    assert_eq!(ledger_json["entries"][0]["score_after"], 102);

    // Act: suspend the other merchant, list the suspended, reinstate it.
    let suspended = alliance
        .shequctl(&[
            "merchants",
            "suspend",
            &other,
            "--reason",
            "卫生检查不合格",
            "--actor",
            "op-zhang",
        ])
        .await?
        .success()?;
    let suspended_list = alliance
        .shequctl(&["--json", "merchants", "list", "--status", "suspended"])
        .await?
        .json()?;
    let reinstated = alliance
        .shequctl(&["merchants", "reinstate", &other, "--actor", "op-zhang"])
        .await?
        .success()?;
    let updated = alliance
        .shequctl(&[
            "merchants",
            "update",
            &other,
            "--name",
            "李记面馆",
            "--category",
            "dining",
            "--tag",
            "noodles",
            "--lat",
            "34.799",
            "--lng",
            "113.655",
            "--datum",
            "wgs84",
            "--grid",
            "xinyuan-1",
            "--hours",
            "daily 06:00-14:00",
            "--actor",
            "op-zhang",
        ])
        .await?
        .success()?;
    let evaluation = alliance
        .shequctl(&["--json", "merchants", "evaluate", "--period", "2026-Q4"])
        .await?
        .json()?;

    // Assert
    assert!(
        suspended.stdout.contains("suspended: 卫生检查不合格"),
        "{suspended:?}"
    );
    assert_eq!(
        suspended_list["merchants"][0]["id"],
        Value::String(other.clone())
    );
    assert_eq!(
        suspended_list["merchants"].as_array().map(Vec::len),
        Some(1)
    );
    assert!(reinstated.stdout.contains("active"), "{reinstated:?}");
    assert!(
        updated.stdout.contains("34.799000, 113.655000 (wgs84)")
            && updated.stdout.contains("noodles")
            && updated.stdout.contains("daily 06:00-14:00"),
        "{updated:?}"
    );
    let evaluations = evaluation["evaluations"]
        .as_array()
        .context("no evaluations")?;
    assert_eq!(evaluations.len(), 2, "{evaluation}");
    assert!(
        evaluations
            .iter()
            .all(|e| e["qualified"] == false
                && e["reasons"].as_array().is_some_and(|r| !r.is_empty())),
        "no party-member owner, so no model merchant: {evaluation}"
    );

    alliance.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_member_merchant_with_good_deeds_is_awarded_once() -> anyhow::Result<()> {
    // Arrange: the quarter it is now in the district, and this minute there.
    let now = shequ_proto::time::district_time(chrono::Utc::now());
    let quarter = format!("{}-Q{}", now.year(), now.month0() / 3 + 1);
    let earlier = now.format("%Y-%m-%d %H:%M").to_string();
    let alliance = Service::start_alliance().await?;
    let registered = register_dining(
        &alliance,
        "红心便民饭堂",
        ("34.800000", "113.660000"),
        &["--party-member-owner"],
    )
    .await?;
    let id = registered["merchant"]["id"]
        .as_str()
        .context("no merchant id")?
        .to_owned();

    // Act: two good deeds, one at a time given in district time.
    for (kind, at) in [("welfare", None), ("environment", Some(earlier.as_str()))] {
        let mut args = vec![
            "merchants",
            "activity",
            &id,
            "--kind",
            kind,
            "--description",
            "社区清洁日",
            "--actor",
            "op-zhang",
        ];
        args.extend(at.map(|at| ["--at", at]).into_iter().flatten());
        alliance.shequctl(&args).await?.success()?;
    }
    let report = alliance
        .shequctl(&["merchants", "evaluate", "--period", &quarter])
        .await?
        .success()?;
    let awarded = alliance
        .shequctl(&[
            "--json",
            "merchants",
            "evaluate",
            "--period",
            &quarter,
            "--award",
            "--actor",
            "op-zhang",
        ])
        .await?
        .json()?;

    // Assert
    let lines: Vec<&str> = report.stdout.lines().collect();
    assert!(
        lines[0].contains(&quarter) && lines[0].contains("report only"),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with("merchant") && lines[2].contains("qualified"),
        "{lines:?}"
    );
    let row: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(
        row[..4],
        ["红心便民饭堂", id.as_str(), "yes", "no"],
        "qualified, not awarded yet: {lines:?}"
    );
    assert_eq!(awarded["period"], Value::String(quarter.clone()));
    assert_eq!(awarded["evaluations"][0]["qualified"], true, "{awarded}");
    assert_eq!(awarded["evaluations"][0]["awarded"], true, "{awarded}");
    assert_eq!(awarded["evaluations"][0]["reasons"], serde_json::json!([]));

    alliance.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merchant_refusals_exit_with_the_code_of_their_kind() -> anyhow::Result<()> {
    // Arrange
    let alliance = Service::start_alliance().await?;

    // Act
    let bad_latitude = alliance
        .shequctl(&[
            "merchants",
            "register",
            "--name",
            "老张家常菜",
            "--category",
            "dining",
            "--lat",
            "200",
            "--lng",
            "113.66",
            "--grid",
            "xinyuan-1",
            "--actor",
            "op-zhang",
        ])
        .await?;
    let unknown = alliance
        .shequctl(&["merchants", "show", "no-such-merchant"])
        .await?;
    let unknown_ledger = alliance
        .shequctl(&["--json", "merchants", "ledger", "no-such-merchant"])
        .await?;
    let bad_hours = alliance
        .shequctl(&[
            "merchants",
            "register",
            "--name",
            "x",
            "--category",
            "dining",
            "--lat",
            "34.8",
            "--lng",
            "113.66",
            "--grid",
            "xinyuan-1",
            "--actor",
            "op",
            "--hours",
            "weekdays 8-20",
        ])
        .await?;

    // Assert
    assert_eq!(bad_latitude.code, Some(4), "{bad_latitude:?}");
    assert!(
        bad_latitude
            .stderr
            .contains("field details.location.latitude"),
        "{bad_latitude:?}"
    );
    assert_eq!(unknown.code, Some(5), "{unknown:?}");
    assert!(unknown.stderr.contains("no-such-merchant"), "{unknown:?}");
    assert_eq!(unknown_ledger.code, Some(5), "{unknown_ledger:?}");
    let error: Value = serde_json::from_str(&unknown_ledger.stderr)?;
    assert_eq!(error["error"]["kind"], "not_found");
    assert_eq!(bad_hours.code, Some(2), "{bad_hours:?}");
    assert!(bad_hours.stderr.contains("--hours"), "{bad_hours:?}");
    assert!(bad_latitude.stdout.is_empty() && unknown.stdout.is_empty());

    alliance.stop().await
}

/// A birth date `years` and a month ago, in the district's calendar.
fn born_years_ago(years: u32) -> anyhow::Result<String> {
    let today = shequ_proto::time::district_today(chrono::Utc::now());
    let born = today
        .checked_sub_months(chrono::Months::new(years * 12 + 1))
        .context("a birth date in range")?;
    Ok(born.format("%Y-%m-%d").to_string())
}

/// Registers an elder in grid xinyuan-1 who consents to visits; returns what
/// `--json` printed.
async fn register_elder(
    care: &Service<shequ_pensioner_care::Application>,
    name: &str,
    birth_date: &str,
    living: &str,
    extra: &[&str],
) -> anyhow::Result<Value> {
    let args = [
        &["--json"][..],
        &elder_registration(name, birth_date, living, extra),
    ]
    .concat();
    care.shequctl(&args).await?.json()
}

/// The `care elders register` command line of [`register_elder`].
fn elder_registration<'a>(
    name: &'a str,
    birth_date: &'a str,
    living: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let args = [
        "care",
        "elders",
        "register",
        "--name",
        name,
        "--birth-date",
        birth_date,
        "--gender",
        "female",
        "--grid",
        "xinyuan-1",
        "--living",
        living,
        "--consent",
        "--actor",
        "op-wang",
    ];
    [&args[..], extra].concat()
}

fn id_of(value: &Value, what: &str) -> anyhow::Result<String> {
    Ok(value[what]["id"]
        .as_str()
        .with_context(|| format!("no {what} id in {value}"))?
        .to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_registers_pairs_and_visits_an_elder() -> anyhow::Result<()> {
    // Arrange
    let care = Service::start_care().await?;

    // Act: an 82-year-old living alone, with a contact, health notes and a home.
    let born = born_years_ago(82)?;
    let home = [
        "--building",
        "xinyuan-b2",
        "--address",
        "西里路 12 号 3 单元 401",
        "--lat",
        "34.800000",
        "--lng",
        "113.660000",
        "--chronic-illness",
        "--health-notes",
        "高血压, 每日服药",
        "--contact",
        "李梅,13812345678,女儿",
        "--request-id",
        "cli-elder-1",
    ];
    let registered = register_elder(&care, "王秀英", &born, "alone", &home).await?;
    let again = care
        .shequctl(&elder_registration("王秀英", &born, "alone", &home))
        .await?
        .success()?;

    // Assert: high risk for 80+ living alone, visited weekly.
    let elder = &registered["elder"];
    let id = id_of(&registered, "elder")?;
    assert_eq!(elder["risk"], "high", "{registered}");
    assert_eq!(elder["visit_interval_days"], 7, "{registered}");
    let reasons = elder["risk_reasons"].to_string();
    assert!(
        reasons.contains("80+") && reasons.contains("living alone"),
        "{reasons}"
    );
    assert!(elder["next_visit_due_at"].is_string(), "{registered}");
    assert_eq!(elder["location"]["datum"], "gcj02", "{registered}");
    assert_eq!(elder["emergency_contacts"][0]["relation"], "女儿");
    assert_eq!(registered["duplicate"], false);
    assert!(
        again.stdout.contains(&id)
            && again.stdout.contains("every 7 days")
            && again.stdout.contains("duplicate"),
        "{again:?}"
    );

    // Act: two more elders, a volunteer, and three pairings of that volunteer.
    let second = id_of(
        &register_elder(&care, "刘桂兰", &born_years_ago(75)?, "empty_nest", &[]).await?,
        "elder",
    )?;
    let third = id_of(
        &register_elder(&care, "赵淑珍", &born_years_ago(68)?, "with_family", &[]).await?,
        "elder",
    )?;
    let volunteer = care
        .shequctl(&[
            "--json",
            "care",
            "volunteers",
            "register",
            "--name",
            "张建国",
            "--phone",
            "13900001111",
            "--grid",
            "xinyuan-1",
            "--party-member",
            "--actor",
            "op-wang",
        ])
        .await?
        .json()?;
    let volunteer = id_of(&volunteer, "volunteer")?;
    let pair = |elder: String| {
        let volunteer = volunteer.clone();
        let care = &care;
        async move {
            care.shequctl(&[
                "care",
                "pair",
                "--volunteer",
                &volunteer,
                "--elder",
                &elder,
                "--actor",
                "op-wang",
            ])
            .await
        }
    };
    let first_pairing = pair(id.clone()).await?.success()?;
    pair(second.clone()).await?.success()?;
    let third_pairing = pair(third.clone()).await?;
    let volunteers = care
        .shequctl(&["care", "volunteers", "list", "--grid", "xinyuan-1"])
        .await?
        .success()?;

    // Assert: two elders at most.
    assert!(
        first_pairing.stdout.contains(&volunteer) && first_pairing.stdout.contains(&id),
        "{first_pairing:?}"
    );
    assert_eq!(third_pairing.code, Some(6), "{third_pairing:?}");
    assert!(
        third_pairing.stderr.contains("already has 2 elders"),
        "{third_pairing:?}"
    );
    assert!(third_pairing.stdout.is_empty(), "{third_pairing:?}");
    assert!(
        volunteers.stdout.starts_with("id")
            && volunteers.stdout.contains("张建国")
            && volunteers.stdout.contains(&second),
        "{volunteers:?}"
    );

    // Act: a concern visit (its complaints service is down), then the timeline.
    let visit = care
        .shequctl(&[
            "care",
            "visit",
            "--elder",
            &id,
            "--visitor",
            &volunteer,
            "--kind",
            "home_visit",
            "--wellbeing",
            "concern",
            "--need",
            "厨房水管漏水",
            "--notes",
            "老人说最近睡不好",
        ])
        .await?
        .success()?;
    let timeline = care.shequctl(&["care", "timeline", &id]).await?.success()?;
    let timeline_json = care
        .shequctl(&["--json", "care", "timeline", &id])
        .await?
        .json()?;

    // Assert
    assert!(
        visit.stdout.contains("concern") && visit.stdout.contains("厨房水管漏水"),
        "{visit:?}"
    );
    assert!(
        visit
            .stdout
            .lines()
            .any(|line| line.starts_with("complaint filing") && line.contains("pending")),
        "{visit:?}"
    );
    assert!(
        timeline.stdout.starts_with("time") && timeline.stdout.contains("summary"),
        "{timeline:?}"
    );
    let kinds: Vec<&str> = timeline_json["entries"]
        .as_array()
        .context("no entries")?
        .iter()
        .filter_map(|entry| entry["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["registered", "paired", "visit"], "{timeline_json}");

    // Act: lists (no personal data), one elder with it, overdue visits, bookings.
    let listed = care
        .shequctl(&["--json", "care", "elders", "list"])
        .await?
        .success()?;
    let listed_json: Value = serde_json::from_str(&listed.stdout)?;
    let unpaired = care
        .shequctl(&["care", "elders", "list", "--unpaired"])
        .await?
        .success()?;
    let high = care
        .shequctl(&["--json", "care", "elders", "list", "--risk", "high"])
        .await?
        .json()?;
    let shown = care
        .shequctl(&["care", "elders", "show", &id])
        .await?
        .success()?;
    let overdue = care.shequctl(&["care", "overdue"]).await?.success()?;
    // Tomorrow in district time: a booking is for a time to come, within 30 days.
    let tomorrow = shequ_proto::time::district_today(chrono::Utc::now())
        .succ_opt()
        .context("a day after today")?
        .format("%Y-%m-%d")
        .to_string();
    let (nine, half_past_eleven) = (format!("{tomorrow} 09:00"), format!("{tomorrow} 11:30"));
    let day_care = care
        .shequctl(&[
            "care",
            "book",
            "--elder",
            &id,
            "--service",
            "day_care",
            "--at",
            &nine,
            "--actor",
            "op-wang",
        ])
        .await?
        .success()?;
    let meal = care
        .shequctl(&[
            "--json",
            "care",
            "book",
            "--elder",
            &id,
            "--service",
            "meal_assistance",
            "--at",
            &half_past_eleven,
            "--actor",
            "op-wang",
        ])
        .await?
        .json()?;
    let check = care
        .shequctl(&[
            "--json",
            "care",
            "book",
            "--elder",
            &id,
            "--service",
            "health_check",
            "--at",
            &nine,
        ])
        .await?
        .json()?;
    let check_id = check["booking"]["id"].as_str().context("no booking id")?;
    let cancelled = care
        .shequctl(&["--json", "care", "settle", check_id, "cancelled"])
        .await?
        .json()?;
    let served_after = care
        .shequctl(&["care", "settle", check_id, "served"])
        .await?;

    // Assert
    assert_eq!(cancelled["booking"]["status"], "cancelled", "{cancelled}");
    assert_eq!(
        served_after.code,
        Some(6),
        "a cancelled booking is not served: {served_after:?}"
    );
    let elders = listed_json["elders"].as_array().context("no elders")?;
    assert_eq!(elders.len(), 3, "{listed_json}");
    assert_eq!(
        elders[0]["id"],
        Value::String(id.clone()),
        "highest risk first"
    );
    assert_eq!(elders[0]["age"], 82, "{listed_json}");
    assert_eq!(elders[0]["volunteer_id"], Value::String(volunteer.clone()));
    assert!(
        !listed.stdout.contains("health_notes")
            && !listed.stdout.contains("高血压")
            && !listed.stdout.contains("13812345678"),
        "no personal data in lists: {listed:?}"
    );
    assert!(
        unpaired.stdout.starts_with("name")
            && unpaired.stdout.contains(&third)
            && !unpaired.stdout.contains(&id),
        "{unpaired:?}"
    );
    assert_eq!(high["elders"].as_array().map(Vec::len), Some(1), "{high}");
    assert!(
        shown.stdout.contains("高血压")
            && shown.stdout.contains("李梅 13812345678 (女儿)")
            && shown.stdout.contains(&volunteer)
            && shown.stdout.contains("34.800000, 113.660000 (gcj02)"),
        "{shown:?}"
    );
    assert_eq!(overdue.stdout, "no overdue visits\n", "{overdue:?}");
    assert!(
        day_care.stdout.contains("booked") && day_care.stdout.contains(&nine),
        "{day_care:?}"
    );
    let booking = &meal["booking"];
    assert_eq!(booking["status"], "alliance_unavailable", "{meal}");
    assert!(
        booking["note"]
            .as_str()
            .is_some_and(|note| note.contains("try again later")),
        "{meal}"
    );
    assert_eq!(booking["merchant_id"], Value::Null, "{meal}");

    // Act: end a pairing; the third elder can be paired now.
    let unpaired = care
        .shequctl(&[
            "care",
            "unpair",
            "--elder",
            &second,
            "--reason",
            "老人搬去女儿家住",
            "--actor",
            "op-wang",
        ])
        .await?
        .success()?;
    let repaired = pair(third.clone()).await?;

    // Assert
    assert!(unpaired.stdout.contains("ended"), "{unpaired:?}");
    assert_eq!(repaired.code, Some(0), "{repaired:?}");

    care.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn care_refusals_exit_with_the_code_of_their_kind() -> anyhow::Result<()> {
    // Arrange
    let care = Service::start_care().await?;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(2))
        .format("%Y-%m-%d")
        .to_string();

    // Act
    let future = care
        .shequctl(&[
            "care",
            "elders",
            "register",
            "--name",
            "王秀英",
            "--birth-date",
            &tomorrow,
            "--gender",
            "female",
            "--grid",
            "xinyuan-1",
            "--living",
            "alone",
            "--actor",
            "op-wang",
        ])
        .await?;
    let unknown = care
        .shequctl(&["--json", "care", "elders", "show", "no-such-elder"])
        .await?;
    let bad_contact = care
        .shequctl(&[
            "care",
            "elders",
            "register",
            "--name",
            "王秀英",
            "--birth-date",
            "1943-05-01",
            "--gender",
            "female",
            "--grid",
            "xinyuan-1",
            "--living",
            "alone",
            "--contact",
            "李梅 13812345678",
            "--actor",
            "op-wang",
        ])
        .await?;

    // Assert
    assert_eq!(future.code, Some(4), "{future:?}");
    assert!(
        future.stderr.contains("field details.birth_date"),
        "{future:?}"
    );
    assert_eq!(unknown.code, Some(5), "{unknown:?}");
    let error: Value = serde_json::from_str(&unknown.stderr)?;
    assert_eq!(error["error"]["kind"], "not_found");
    assert_eq!(bad_contact.code, Some(2), "{bad_contact:?}");
    assert!(
        bad_contact.stderr.contains("name,phone,relation"),
        "{bad_contact:?}"
    );
    assert!(future.stdout.is_empty() && unknown.stdout.is_empty());

    care.stop().await
}

/// What a merchant-alliance consumer cannot apply: a body on a subject it
/// reads that is not a CloudEvent, kept whole, with its line break.
const NOT_A_CLOUDEVENT: &str = "resolved, honestly\n{\"complaint_id\": \"c-1\"}";

/// `events parked --json` of `service`: its events.
async fn parked<A: App>(service: &Service<A>, extra: &[&str]) -> anyhow::Result<Vec<Value>> {
    let args = [
        &[
            "--json",
            "events",
            "parked",
            "--service",
            "merchant-alliance",
        ][..],
        extra,
    ]
    .concat();
    let listed = service.shequctl(&args).await?.json()?;
    anyhow::ensure!(listed["service"] == "merchant-alliance", "{listed}");
    listed["events"]
        .as_array()
        .cloned()
        .context("no events array")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_lists_a_parked_event_and_replays_it() -> anyhow::Result<()> {
    use shequ_chassis::nats::{StreamSpec, ensure_stream};
    use shequ_proto::events::complaints;
    // Arrange: merchant-alliance reads complaint events; its NATS gets a body on
    // shequ.complaints.complaint.resolved.v1 that is not a CloudEvent.
    let alliance = Service::start_alliance().await?;
    let js = async_nats::jetstream::new(async_nats::connect(alliance.nats.url()).await?);
    let spec = StreamSpec {
        name: complaints::STREAM,
        subjects: complaints::SUBJECTS,
    };
    ensure_stream(&js, spec).await?;
    // Published until JetStream acknowledges it (right after the stream is
    // made, a loaded server may answer "no stream found" for a moment), once:
    // a retry after a lost ack is dropped as a duplicate.
    shequ_tests::eventually(std::time::Duration::from_secs(10), || async {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Shequ-Test", "parked-1");
        headers.insert("Nats-Msg-Id", "parked-1");
        js.publish_with_headers(
            "shequ.complaints.complaint.resolved.v1",
            headers,
            NOT_A_CLOUDEVENT.into(),
        )
        .await?
        .await?;
        Ok(())
    })
    .await?;

    // Act: wait until the consumer has parked it.
    let events = shequ_tests::eventually(std::time::Duration::from_secs(20), || async {
        let events = parked(&alliance, &[]).await?;
        anyhow::ensure!(!events.is_empty(), "nothing parked yet");
        Ok(events)
    })
    .await?;

    // Assert: kept whole, with who parked it and why.
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["payload"], NOT_A_CLOUDEVENT, "{event}");
    assert_eq!(event["consumer"], "merchant-alliance-complaints", "{event}");
    assert_eq!(
        event["nats_subject"], "shequ.complaints.complaint.resolved.v1",
        "{event}"
    );
    assert_eq!(event["stream_sequence"], 1, "{event}");
    assert_eq!(event["event_type"], Value::Null, "{event}");
    assert_eq!(event["headers"]["Shequ-Test"], "parked-1", "{event}");
    assert!(
        event["error"]
            .as_str()
            .is_some_and(|error| error.contains("not a CloudEvent")),
        "{event}"
    );
    assert!(event["parked_at"].is_string(), "{event}");
    let id = event["id"].as_i64().context("no id")?.to_string();

    // Act: the table, each event whole, and another consumer's (none).
    let table = alliance
        .shequctl(&["events", "parked", "--service", "merchant-alliance"])
        .await?
        .success()?;
    let whole = alliance
        .shequctl(&[
            "events",
            "parked",
            "--service",
            "merchant-alliance",
            "--payload",
        ])
        .await?
        .success()?;
    let other = parked(&alliance, &["--consumer", "merchant-alliance-care-served"]).await?;

    // Assert
    let header = table.stdout.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("id") && header.contains("parked at") && header.ends_with("error"),
        "{table:?}"
    );
    assert!(
        table.stdout.contains("merchant-alliance-complaints")
            && table.stdout.contains("not a CloudEvent")
            && !table.stdout.contains("honestly"),
        "the table leaves the payload out: {table:?}"
    );
    assert!(
        whole.stdout.contains("header Shequ-Test")
            && whole
                .stdout
                .contains("  resolved, honestly\n  {\"complaint_id\": \"c-1\"}\n"),
        "{whole:?}"
    );
    assert!(other.is_empty(), "{other:?}");

    // Act: replay it (still not a CloudEvent), and an id nobody parked.
    let replayed = alliance
        .shequctl(&["events", "replay", "--service", "merchant-alliance", &id])
        .await?;
    let replayed_json = alliance
        .shequctl(&[
            "--json",
            "events",
            "replay",
            "--service",
            "merchant-alliance",
            &id,
        ])
        .await?;
    let unknown = alliance
        .shequctl(&[
            "events",
            "replay",
            "--service",
            "merchant-alliance",
            "999999",
        ])
        .await?;
    let still = parked(&alliance, &[]).await?;

    // Assert: it stays parked, with the new error.
    assert_eq!(replayed.code, Some(6), "{replayed:?}");
    assert!(
        replayed.stderr.contains("not a CloudEvent") && replayed.stdout.is_empty(),
        "{replayed:?}"
    );
    assert_eq!(replayed_json.code, Some(6), "{replayed_json:?}");
    let error: Value = serde_json::from_str(&replayed_json.stderr)?;
    assert_eq!(error["error"]["kind"], "failed_precondition", "{error}");
    assert_eq!(unknown.code, Some(5), "{unknown:?}");
    assert!(unknown.stderr.contains("999999"), "{unknown:?}");
    assert_eq!(still.len(), 1, "{still:?}");
    assert_eq!(still[0]["id"], events[0]["id"]);
    assert_eq!(still[0]["payload"], NOT_A_CLOUDEVENT);

    alliance.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_without_a_service_or_with_a_word_for_an_id_is_a_usage_error() -> anyhow::Result<()>
{
    // Arrange: nothing listens; clap refuses before any call.
    let url = format!("http://127.0.0.1:{}", shequ_tests::free_port()?);

    // Act
    let no_service = shequctl("--alliance-url", &url, &["events", "replay", "7"]).await?;
    let word = shequctl(
        "--alliance-url",
        &url,
        &[
            "events",
            "replay",
            "--service",
            "merchant-alliance",
            "seven",
        ],
    )
    .await?;
    let down = shequctl(
        "--alliance-url",
        &url,
        &["events", "parked", "--service", "merchant-alliance"],
    )
    .await?;

    // Assert
    assert_eq!(no_service.code, Some(2), "{no_service:?}");
    assert!(no_service.stderr.contains("--service"), "{no_service:?}");
    assert_eq!(word.code, Some(2), "{word:?}");
    assert!(word.stderr.contains("seven"), "{word:?}");
    assert_eq!(down.code, Some(3), "{down:?}");
    assert!(
        down.stderr.contains(&format!(
            "cannot reach the merchant-alliance service at {url}"
        )),
        "{down:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_help_names_tail_parked_and_replay() -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{}", shequ_tests::free_port()?);
    let group = shequctl("--complaints-url", &url, &["events", "--help"])
        .await?
        .success()?;
    let parked = shequctl("--complaints-url", &url, &["events", "parked", "--help"])
        .await?
        .success()?;
    for command in ["tail", "parked", "replay"] {
        assert!(
            group
                .stdout
                .lines()
                .any(|line| line.trim_start().starts_with(command)),
            "{command}: {group:?}"
        );
    }
    assert!(
        parked.stdout.contains("--payload") && parked.stdout.contains("merchant-alliance"),
        "{parked:?}"
    );
    Ok(())
}
