//! `shequctl events tail` end to end: the built binary against a real
//! `nats-server` of the test's own, with the events a complaints service
//! started in-process published, or events (and bodies that are not events)
//! the test publishes itself.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream;
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use shequ_chassis::clock::SystemClock;
use shequ_chassis::config::CommonConfig;
use shequ_chassis::nats::{StreamSpec, ensure_stream};
use shequ_proto::events::{CloudEvent, alliance, care, complaints};
use shequ_tests::service::TestService;
use shequ_tests::{NatsServer, StoredEvent, eventually, stream_events};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

const EXAMPLE_ORGANISATION: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/organisation.example.json"
);
/// How long any one run of the binary may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long events take at most to get from a service's outbox to its stream.
const PUBLISHED_WITHIN: Duration = Duration::from_secs(10);
const SUBMITTED: &str = "shequ.complaints.complaint.submitted.v1";
const ACCEPTED: &str = "shequ.complaints.complaint.accepted.v1";

const COMPLAINTS: StreamSpec = StreamSpec {
    name: complaints::STREAM,
    subjects: complaints::SUBJECTS,
};
const ALLIANCE: StreamSpec = StreamSpec {
    name: alliance::STREAM,
    subjects: alliance::SUBJECTS,
};
const CARE: StreamSpec = StreamSpec {
    name: care::STREAM,
    subjects: care::SUBJECTS,
};

/// A NATS server and a complaints service on it, the example organisation loaded.
struct System {
    nats: NatsServer,
    complaints_url: String,
    complaints: TestService<shequ_complaints::Application>,
    _data: TempDir,
}

impl System {
    async fn start() -> anyhow::Result<Self> {
        let nats = NatsServer::start().await?;
        let data = tempfile::tempdir()?;
        let mut common = CommonConfig::new(nats.url(), data.path());
        common.grpc_addr = Some("127.0.0.1:0".parse()?);
        let complaints =
            TestService::start(shequ_complaints::Config::new(common), Arc::new(SystemClock))
                .await?;
        let system = Self {
            nats,
            complaints_url: complaints.url(),
            complaints,
            _data: data,
        };
        system
            .complaints(&["org", "load", EXAMPLE_ORGANISATION])
            .await?
            .success()?;
        Ok(system)
    }

    /// `shequctl --complaints-url <the service> args…`.
    async fn complaints(&self, args: &[&str]) -> anyhow::Result<Run> {
        let mut all = vec!["--complaints-url", &self.complaints_url];
        all.extend_from_slice(args);
        shequctl(&all).await
    }

    /// Submits a complaint; returns its id.
    async fn submit(&self, text: &str) -> anyhow::Result<String> {
        let run = self
            .complaints(&[
                "--json",
                "complaints",
                "submit",
                "--channel",
                "hotline",
                "--grid",
                "xinyuan-1",
                "--text",
                text,
            ])
            .await?
            .success()?;
        let submitted: Value = serde_json::from_str(&run.stdout)?;
        Ok(submitted["complaint"]["id"]
            .as_str()
            .context("no complaint id")?
            .to_owned())
    }

    async fn accept(&self, id: &str) -> anyhow::Result<()> {
        self.complaints(&["complaints", "accept", id, "--actor", "worker-li"])
            .await?
            .success()?;
        Ok(())
    }

    /// `shequctl events tail --nats-url <this NATS> args…`.
    async fn tail(&self, args: &[&str]) -> anyhow::Result<Run> {
        tail(&self.nats, args).await
    }

    /// Waits until the COMPLAINTS stream holds `count` events; returns them.
    async fn stored(&self, count: usize) -> anyhow::Result<Vec<StoredEvent>> {
        stored(&self.nats, complaints::STREAM, count).await
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        self.complaints.stop().await?;
        Ok(())
    }
}

/// Waits until `stream` holds exactly `count` events; returns them, oldest first.
async fn stored(nats: &NatsServer, stream: &str, count: usize) -> anyhow::Result<Vec<StoredEvent>> {
    eventually(PUBLISHED_WITHIN, || async {
        let events = stream_events(&nats.url(), stream).await?;
        anyhow::ensure!(
            events.len() == count,
            "{} events, not {count}",
            events.len()
        );
        Ok(events)
    })
    .await
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

    /// Stdout of a successful run, one JSON object a line.
    fn json_lines(&self) -> anyhow::Result<Vec<Value>> {
        anyhow::ensure!(self.code == Some(0), "shequctl failed: {self:?}");
        self.stdout
            .lines()
            .map(|line| serde_json::from_str(line).with_context(|| format!("not JSON: {line}")))
            .collect()
    }
}

/// The binary with nothing from the environment: no NATS or service address,
/// no NATS user.
fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shequctl"));
    command.args(args).kill_on_drop(true);
    for name in [
        "SHEQU_NATS_URL",
        "SHEQU_NATS_USER",
        "SHEQU_NATS_PASSWORD",
        "SHEQU_NATS_CA_FILE",
        "SHEQU_COMPLAINTS_URL",
        "SHEQU_ALLIANCE_URL",
        "SHEQU_CARE_URL",
        "SHEQU_ACTOR",
    ] {
        command.env_remove(name);
    }
    command
}

async fn shequctl(args: &[&str]) -> anyhow::Result<Run> {
    let output = tokio::time::timeout(RUN_TIMEOUT, command(args).output())
        .await
        .with_context(|| format!("shequctl {args:?} did not finish"))?
        .context("running shequctl")?;
    Ok(Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout)?,
        stderr: String::from_utf8(output.stderr)?,
    })
}

/// `shequctl events tail --nats-url <nats> args…`, run to its end.
async fn tail(nats: &NatsServer, args: &[&str]) -> anyhow::Result<Run> {
    let url = nats.url();
    let mut all = vec!["events", "tail", "--nats-url", &url];
    all.extend_from_slice(args);
    shequctl(&all).await
}

/// A tail running in the background, its stderr read line by line.
struct Following {
    child: Child,
    stderr: mpsc::UnboundedReceiver<String>,
    stderr_seen: Vec<String>,
}

impl Following {
    /// Starts `shequctl events tail --nats-url <nats> args…` and waits until it
    /// says it is following.
    async fn start(nats: &NatsServer, args: &[&str]) -> anyhow::Result<Self> {
        let url = nats.url();
        let mut all = vec!["events", "tail", "--nats-url", &url];
        all.extend_from_slice(args);
        let mut child = command(&all)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting shequctl events tail")?;
        let stderr = child.stderr.take().context("no stderr")?;
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut following = Self {
            child,
            stderr: receiver,
            stderr_seen: Vec::new(),
        };
        let subscribed = tokio::time::timeout(RUN_TIMEOUT, async {
            while let Some(line) = following.stderr.recv().await {
                following.stderr_seen.push(line.clone());
                if line.starts_with("following ") || line.starts_with("{\"following\"") {
                    return true;
                }
            }
            false
        })
        .await;
        anyhow::ensure!(
            subscribed == Ok(true),
            "the tail never said it was following: {:?}",
            following.stderr_seen
        );
        Ok(following)
    }

    fn pid(&self) -> anyhow::Result<u32> {
        self.child.id().context("the tail has exited")
    }

    /// Sends the tail a signal, as `kill -<signal>` does.
    async fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid()?.to_string())
            .status()
            .await?;
        anyhow::ensure!(status.success(), "kill -{signal} failed");
        Ok(())
    }

    /// Waits for the tail to end by itself; what it printed.
    async fn finish(mut self) -> anyhow::Result<Run> {
        let mut stdout = String::new();
        let mut out = self.child.stdout.take().context("no stdout")?;
        let status = tokio::time::timeout(RUN_TIMEOUT, async {
            out.read_to_string(&mut stdout).await?;
            self.child.wait().await
        })
        .await
        .context("the tail did not end")??;
        while let Ok(Some(line)) =
            tokio::time::timeout(Duration::from_secs(1), self.stderr.recv()).await
        {
            self.stderr_seen.push(line);
        }
        Ok(Run {
            code: status.code(),
            stdout,
            stderr: self.stderr_seen.join("\n"),
        })
    }
}

async fn jetstream_on(nats: &NatsServer) -> anyhow::Result<jetstream::Context> {
    Ok(jetstream::new(async_nats::connect(nats.url()).await?))
}

/// How many consumers of the tail's (by their description) `stream` has.
async fn consumers(js: &jetstream::Context, stream: &str) -> anyhow::Result<usize> {
    let stream = js.get_stream(stream).await?;
    let all: Vec<_> = futures::TryStreamExt::try_collect(stream.consumers()).await?;
    Ok(all
        .iter()
        .filter(|info| info.config.description.as_deref() == Some("shequctl events tail"))
        .count())
}

/// Publishes a CloudEvent of `event_type` about `subject`; returns it.
async fn publish(
    js: &jetstream::Context,
    source: &str,
    event_type: &str,
    subject: &str,
) -> anyhow::Result<CloudEvent> {
    let event = CloudEvent {
        specversion: "1.0".into(),
        id: uuid::Uuid::now_v7().to_string(),
        source: source.into(),
        event_type: event_type.into(),
        time: Utc::now(),
        subject: subject.into(),
        datacontenttype: "application/json".into(),
        dataschema: None,
        data: json!({"merchant_id": subject, "name": "老张家常菜"}),
    };
    js.publish(event.event_type.clone(), serde_json::to_vec(&event)?.into())
        .await?
        .await?;
    Ok(event)
}

fn ids(lines: &[Value]) -> Vec<&str> {
    lines
        .iter()
        .filter_map(|line| line["id"].as_str())
        .collect()
}

fn types(lines: &[Value]) -> Vec<&str> {
    lines
        .iter()
        .filter_map(|line| line["type"].as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_from_the_start_prints_exactly_the_events_the_service_published()
-> anyhow::Result<()> {
    // Arrange: a complaint submitted and accepted: two events on COMPLAINTS.
    let system = System::start().await?;
    let id = system.submit("小区门口垃圾堆积很久没人清理").await?;
    system.accept(&id).await?;
    let stored = system.stored(2).await?;

    // Act
    let json = system
        .tail(&[
            "shequ.complaints.>",
            "--from",
            "start",
            "--count",
            "2",
            "--json",
        ])
        .await?;
    let human = system
        .tail(&["shequ.complaints.>", "--from", "start", "--count", "2"])
        .await?
        .success()?;

    // Assert: each line is the CloudEvent as stored, with its stream and sequence.
    assert!(
        json.stderr
            .contains(r#""streams":[{"filter":"shequ.complaints.>","stream":"COMPLAINTS"}]"#),
        "{json:?}"
    );
    let lines = json.json_lines()?;
    assert_eq!(types(&lines), [SUBMITTED, ACCEPTED]);
    let stored_ids: Vec<&str> = stored.iter().map(|e| e.event.id.as_str()).collect();
    assert_eq!(ids(&lines), stored_ids);
    for (sequence, (line, stored)) in lines.iter().zip(&stored).enumerate() {
        let mut expected = stored.raw.clone();
        expected["stream"] = json!("COMPLAINTS");
        expected["streamsequence"] = json!(sequence + 1);
        assert_eq!(line, &expected);
        assert_eq!(line["subject"], json!(id));
    }

    // Assert: a line each, district time first, then type, subject, id, data.
    let human_lines: Vec<&str> = human.stdout.lines().collect();
    assert_eq!(human_lines.len(), 2, "{human:?}");
    for (line, stored) in human_lines.iter().zip(&stored) {
        let event = &stored.event;
        let local = shequ_proto::time::district_time(event.time)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        let columns: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            columns.get(..5),
            Some(
                &[
                    local.split(' ').next().unwrap_or_default(),
                    local.split(' ').nth(1).unwrap_or_default(),
                    event.event_type.as_str(),
                    id.as_str(),
                    event.id.as_str()
                ][..]
            ),
            "{line}"
        );
        assert!(line.ends_with(&event.data.to_string()), "{line}");
    }

    // Assert: no consumer left behind.
    let js = jetstream_on(&system.nats).await?;
    assert_eq!(consumers(&js, complaints::STREAM).await?, 0);
    system.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_reaches_only_the_streams_and_subjects_it_matches() -> anyhow::Result<()> {
    // Arrange: two complaint events, one merchant event, and an empty CARE stream.
    let system = System::start().await?;
    let id = system.submit("噪音扰民").await?;
    system.accept(&id).await?;
    let complaint_events = system.stored(2).await?;
    let js = jetstream_on(&system.nats).await?;
    ensure_stream(&js, ALLIANCE).await?;
    ensure_stream(&js, CARE).await?;
    let merchant = publish(
        &js,
        alliance::SOURCE,
        "shequ.alliance.merchant.registered.v1",
        "m-1",
    )
    .await?;
    let replay = |pattern: &'static str| {
        let system = &system;
        async move {
            system
                .tail(&[pattern, "--from", "start", "--idle-exit", "2", "--json"])
                .await
        }
    };

    // Act
    let everything = replay("shequ.>").await?;
    let only_complaints = replay("shequ.complaints.>").await?;
    let only_accepted = replay("shequ.*.complaint.accepted.v1").await?;

    // Assert
    assert!(
        everything.stderr.contains(
            r#""streams":[{"filter":"shequ.alliance.>","stream":"ALLIANCE"},{"filter":"shequ.care.>","stream":"CARE"},{"filter":"shequ.complaints.>","stream":"COMPLAINTS"}]"#
        ),
        "{everything:?}"
    );
    let mut all_ids = ids(&everything.json_lines()?)
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    all_ids.sort();
    let mut expected = vec![
        complaint_events[0].event.id.clone(),
        complaint_events[1].event.id.clone(),
        merchant.id.clone(),
    ];
    expected.sort();
    assert_eq!(all_ids, expected);

    let complaints_only = only_complaints.json_lines()?;
    assert_eq!(types(&complaints_only), [SUBMITTED, ACCEPTED]);
    assert!(
        complaints_only
            .iter()
            .all(|line| line["stream"] == "COMPLAINTS")
    );

    let accepted = only_accepted.json_lines()?;
    assert_eq!(ids(&accepted), [complaint_events[1].event.id.as_str()]);
    assert_eq!(types(&accepted), [ACCEPTED]);
    system.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_now_only_events_published_after_the_tail_started_are_printed() -> anyhow::Result<()> {
    // Arrange: one complaint before the tail starts.
    let system = System::start().await?;
    let before = system.submit("楼道灯不亮").await?;
    system.stored(1).await?;
    let following =
        Following::start(&system.nats, &["--from", "now", "--count", "1", "--json"]).await?;

    // Act: another complaint once the tail follows.
    let after = system.submit("电梯故障").await?;
    let run = following.finish().await?;

    // Assert
    assert!(
        run.stderr
            .contains(r#"{"following":{"from":"now","pattern":"shequ.>""#),
        "{run:?}"
    );
    let lines = run.json_lines()?;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["subject"], json!(after));
    assert_ne!(lines[0]["subject"], json!(before));
    assert_eq!(types(&lines), [SUBMITTED]);
    system.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_a_time_replays_what_the_streams_received_since_then() -> anyhow::Result<()> {
    // Arrange: a complaint, a moment, then another.
    let system = System::start().await?;
    let earlier = system.submit("楼道灯不亮").await?;
    system.stored(1).await?;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let since = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let later = system.submit("电梯故障").await?;
    system.stored(2).await?;

    // Act
    let run = system
        .tail(&["--from", &since, "--idle-exit", "2", "--json"])
        .await?;

    // Assert
    let lines = run.json_lines()?;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["subject"], json!(later));
    assert_ne!(lines[0]["subject"], json!(earlier));
    system.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_ends_the_tail_with_exit_0_and_its_ephemeral_consumers_go() -> anyhow::Result<()> {
    // Arrange: the three streams, no events.
    let nats = NatsServer::start().await?;
    let js = jetstream_on(&nats).await?;
    for stream in [COMPLAINTS, ALLIANCE, CARE] {
        ensure_stream(&js, stream).await?;
    }
    let following = Following::start(&nats, &[]).await?;
    let mut during = Vec::new();
    for stream in [complaints::STREAM, alliance::STREAM, care::STREAM] {
        let stream = js.get_stream(stream).await?;
        let mut names = stream.consumer_names();
        let name = futures::StreamExt::next(&mut names)
            .await
            .context("no consumer")??;
        let info = stream.consumer_info(&name).await?;
        during.push((
            info.config.durable_name.clone(),
            info.config.ack_policy,
            info.config.description.clone(),
        ));
    }

    // Act
    following.signal("INT").await?;
    let run = following.finish().await?;

    // Assert: one ephemeral consumer per stream while following; none after.
    assert!(
        run.stderr.contains(
            "following shequ.> from now on ALLIANCE (shequ.alliance.>), CARE (shequ.care.>), \
             COMPLAINTS (shequ.complaints.>); Ctrl-C stops"
        ),
        "{run:?}"
    );
    for consumer in during {
        assert_eq!(
            consumer,
            (
                None,
                jetstream::consumer::AckPolicy::None,
                Some("shequctl events tail".to_owned())
            )
        );
    }
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    for stream in [complaints::STREAM, alliance::STREAM, care::STREAM] {
        assert_eq!(consumers(&js, stream).await?, 0, "{stream}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_nats_exits_3_naming_its_url() -> anyhow::Result<()> {
    // Arrange: a port nobody listens on.
    let url = format!("nats://127.0.0.1:{}", shequ_tests::free_port()?);

    // Act
    let human = shequctl(&["events", "tail", "--nats-url", &url]).await?;
    let json = shequctl(&["--json", "events", "tail", "--nats-url", &url]).await?;

    // Assert
    assert_eq!(human.code, Some(3), "{human:?}");
    let expected = format!(
        "error: cannot reach NATS at {url}: is it running? \
         (`make run` serves it on nats://127.0.0.1:14222)"
    );
    assert!(human.stderr.starts_with(&expected), "{human:?}");
    assert!(human.stdout.is_empty(), "{human:?}");
    assert_eq!(json.code, Some(3), "{json:?}");
    let error: Value = serde_json::from_str(&json.stderr)?;
    assert_eq!(error["error"]["kind"], "unreachable");
    assert_eq!(error["error"]["exit_code"], 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_no_stream_holds_exits_5_and_a_malformed_one_2() -> anyhow::Result<()> {
    // Arrange
    let nats = NatsServer::start().await?;
    let no_streams = tail(&nats, &["shequ.>"]).await?;
    let js = jetstream_on(&nats).await?;
    for stream in [COMPLAINTS, ALLIANCE, CARE] {
        ensure_stream(&js, stream).await?;
    }

    // Act
    let unheld = tail(&nats, &["shequ.parking.>"]).await?;
    let malformed = tail(&nats, &["shequ..complaints"]).await?;

    // Assert
    assert_eq!(no_streams.code, Some(5), "{no_streams:?}");
    assert!(
        no_streams.stderr.contains("no stream at nats://"),
        "{no_streams:?}"
    );
    assert_eq!(unheld.code, Some(5), "{unheld:?}");
    assert!(
        unheld.stderr.contains(
            "no stream holds subjects matching shequ.parking.>; the streams at nats://"
        ) && unheld.stderr.contains(
            "are ALLIANCE (shequ.alliance.>), CARE (shequ.care.>), COMPLAINTS (shequ.complaints.>)"
        ),
        "{unheld:?}"
    );
    assert_eq!(malformed.code, Some(2), "{malformed:?}");
    assert!(malformed.stderr.contains("an empty token"), "{malformed:?}");
    for stream in [complaints::STREAM, alliance::STREAM, care::STREAM] {
        assert_eq!(consumers(&js, stream).await?, 0, "{stream}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_a_cloudevent_is_printed_raw_with_a_warning() -> anyhow::Result<()> {
    // Arrange: a body that is no JSON, then a real event.
    let nats = NatsServer::start().await?;
    let js = jetstream_on(&nats).await?;
    ensure_stream(&js, COMPLAINTS).await?;
    js.publish("shequ.complaints.garbage", "not json\n{".into())
        .await?
        .await?;
    let event = publish(&js, complaints::SOURCE, SUBMITTED, "c-1").await?;
    let args = ["--from", "start", "--count", "2"];

    // Act
    let human = tail(&nats, &args).await?.success()?;
    let json = tail(&nats, &[&args[..], &["--json"]].concat()).await?;

    // Assert: the body on its line, escaped to stay one line; then the event.
    let lines: Vec<&str> = human.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{human:?}");
    assert!(
        lines[0].contains("shequ.complaints.garbage")
            && lines[0].ends_with(r"(not a CloudEvent: COMPLAINTS #1)  not json\n{"),
        "{human:?}"
    );
    assert!(lines[1].contains(&event.id), "{human:?}");
    assert!(
        human.stderr.contains(
            "warning: COMPLAINTS #1 on shequ.complaints.garbage is not a CloudEvent (expected"
        ),
        "{human:?}"
    );

    let warning = json
        .stderr
        .lines()
        .find_map(|line| {
            serde_json::from_str::<Value>(line)
                .ok()
                .filter(|v| v["warning"].is_object())
        })
        .context("no JSON warning")?;
    assert_eq!(warning["warning"]["kind"], "not_a_cloudevent");
    assert_eq!(warning["warning"]["streamsequence"], 1);
    let lines = json.json_lines()?;
    assert_eq!(lines[0]["raw"], "not json\n{");
    assert_eq!(lines[0]["natssubject"], "shequ.complaints.garbage");
    assert_eq!(lines[0]["streamsequence"], 1);
    assert!(lines[0]["published"].is_string(), "{:?}", lines[0]);
    assert_eq!(lines[1]["id"], json!(event.id));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_goes_on_after_nats_restarts_with_nothing_lost_or_repeated() -> anyhow::Result<()> {
    // Arrange: an event before the tail starts from now.
    let mut nats = NatsServer::start().await?;
    let js = jetstream_on(&nats).await?;
    ensure_stream(&js, COMPLAINTS).await?;
    publish(&js, complaints::SOURCE, SUBMITTED, "c-before").await?;
    let following = Following::start(&nats, &["--from", "now", "--count", "2", "--json"]).await?;

    // Act: NATS goes down and comes back (it forgets the tail's consumer);
    // two events are published after.
    nats.stop().await?;
    let down = std::time::Instant::now();
    nats.restart().await?;
    let js = jetstream_on(&nats).await?;
    let mut published = Vec::new();
    for subject in ["c-after-1", "c-after-2"] {
        let event = eventually(PUBLISHED_WITHIN, || {
            publish(&js, complaints::SOURCE, SUBMITTED, subject)
        })
        .await?;
        published.push(event.id);
    }
    let run = following.finish().await?;
    let back_after = down.elapsed();

    // Assert: the two events, promptly (the tail makes its consumer again as soon
    // as it is reconnected, not when async-nats notices the consumer is gone, 15 s
    // or more later).
    let lines = run.json_lines()?;
    assert_eq!(
        ids(&lines),
        published.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(run.stderr.contains("reconnected to NATS"), "{run:?}");
    assert!(back_after < Duration::from_secs(10), "{back_after:?}");
    Ok(())
}

/// The `subscriber` user of deploy/nats/nats.conf (read-only) may tail: list
/// streams, make and delete its consumers, pull.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_only_subscriber_of_the_deployed_nats_config_can_tail() -> anyhow::Result<()> {
    // Arrange: nats.conf, the stream made by the complaints user, one event.
    let config =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nats/nats.conf");
    let nats = NatsServer::start_with_config(
        &config,
        &[
            ("SHEQU_NATS_COMPLAINTS_PASSWORD", "complaints-secret"),
            ("SHEQU_NATS_ALLIANCE_PASSWORD", "alliance-secret"),
            ("SHEQU_NATS_CARE_PASSWORD", "care-secret"),
            ("SHEQU_NATS_SUBSCRIBER_PASSWORD", "subscriber-secret"),
        ],
    )
    .await?;
    let client = async_nats::ConnectOptions::new()
        .user_and_password("complaints".into(), "complaints-secret".into())
        .connect(nats.url())
        .await?;
    let js = jetstream::new(client);
    ensure_stream(&js, COMPLAINTS).await?;
    let event = publish(&js, complaints::SOURCE, SUBMITTED, "c-1").await?;
    let subscriber = ["--nats-user", "subscriber", "--nats-password"];

    // Act
    let run = tail(
        &nats,
        &[
            &subscriber[..],
            &[
                "subscriber-secret",
                "--from",
                "start",
                "--count",
                "1",
                "--json",
            ],
        ]
        .concat(),
    )
    .await?;
    let refused = tail(&nats, &[&subscriber[..], &["wrong"]].concat()).await?;

    // Assert
    assert_eq!(ids(&run.json_lines()?), [event.id.as_str()]);
    let admin = async_nats::ConnectOptions::new()
        .user_and_password("subscriber".into(), "subscriber-secret".into())
        .connect(nats.url())
        .await?;
    assert_eq!(
        consumers(&jetstream::new(admin), complaints::STREAM).await?,
        0,
        "the subscriber may delete its consumers"
    );
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused.stderr.contains("refused the connection"),
        "{refused:?}"
    );
    Ok(())
}
