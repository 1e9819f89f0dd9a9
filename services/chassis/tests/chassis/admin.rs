//! The admin HTTP port of a tiny service run through `Runtime`:
//! `/healthz`, `/readyz` (ready, shutting down, the database closed or not
//! taking commits) and `/metrics` (gRPC calls, published events, the outbox
//! backlog, consumed events), against a real `nats-server` and a SQLite file
//! (or a PostgreSQL database where the case needs one).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use shequ_chassis::config::CommonConfig;
use shequ_chassis::database::Database;
use shequ_chassis::inbox::{Apply, HandlerError, Once, Outcome};
use shequ_chassis::outbox::OutboxSignal;
use shequ_chassis::runtime::{Identity, Runtime};
use shequ_proto::events::CloudEvent;
use shequ_tests::{NatsServer, eventually};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use crate::support::{
    MIGRATIONS, STREAM, ThingHappened, enqueue_all, system_clock, texts, thing_event,
};

const WITHIN: Duration = Duration::from_secs(30);
const SERVICE: &str = "chassis-test";

/// The tiny service: no gRPC service of its own (the chassis's
/// parked-events service answers on its port), its one stream.
static IDENTITY: Identity = Identity {
    name: SERVICE,
    grpc_addr: "127.0.0.1:0",
    admin_addr: "127.0.0.1:0",
    migrations: &MIGRATIONS,
    stream: STREAM,
};

/// The tiny service, running: its ports, its database, and how to stop it.
struct Running {
    _dir: TempDir,
    _nats: NatsServer,
    grpc_addr: SocketAddr,
    admin_addr: SocketAddr,
    db: Database,
    outbox: OutboxSignal,
    shutdown: CancellationToken,
    /// Lets the service finish stopping: until sent, a task holds it in its
    /// shutdown sequence (after shutdown began, before the admin port closes).
    release: oneshot::Sender<()>,
    run: tokio::task::JoinHandle<Result<(), shequ_chassis::Error>>,
}

impl Running {
    /// The service on a SQLite file in a data directory of its own.
    async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        Self::start_in(dir, None).await
    }

    /// The service with its data directory `dir`, on `database_url` (else
    /// the SQLite file in `dir`).
    async fn start_in(dir: TempDir, database_url: Option<&str>) -> anyhow::Result<Self> {
        let nats = NatsServer::start().await?;
        let mut common = CommonConfig::new(nats.url(), dir.path());
        common.database_url = database_url.map(str::to_owned);
        common.grpc_addr = Some("127.0.0.1:0".parse()?);
        common.admin_addr = Some("127.0.0.1:0".parse()?);
        let mut runtime = Runtime::start(
            &IDENTITY,
            &common,
            shequ_chassis::auth::Access::new(),
            system_clock(),
        )
        .await?;
        let (release, released) = oneshot::channel::<()>();
        runtime.spawn(move |stop| async move {
            stop.cancelled().await;
            let _ = tokio::time::timeout(WITHIN, released).await;
        });
        let shutdown = CancellationToken::new();
        let (grpc_addr, admin_addr) = (runtime.grpc_addr(), runtime.admin_addr());
        let (db, outbox) = (runtime.db.clone(), runtime.outbox.clone());
        let run = tokio::spawn(runtime.run(shutdown.clone()));
        Ok(Self {
            _dir: dir,
            _nats: nats,
            grpc_addr,
            admin_addr,
            db,
            outbox,
            shutdown,
            release,
            run,
        })
    }

    async fn get(&self, path: &str) -> anyhow::Result<(u16, String, String)> {
        http_get(self.admin_addr, path).await
    }

    /// Lets shutdown finish and waits for `run` to return.
    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let _ = self.release.send(());
        tokio::time::timeout(WITHIN, self.run)
            .await
            .context("service did not stop")??
            .context("service failed")
    }
}

/// A plain HTTP/1.1 GET: (status, headers, body).
async fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        anyhow::Ok(String::from_utf8(response)?)
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .context("admin port did not answer")??;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .with_context(|| format!("no end of headers in {response:?}"))?;
    let (status_line, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    ensure!(
        !headers
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "chunked responses are not read here: {headers}"
    );
    Ok((status, headers.to_owned(), body.to_owned()))
}

/// One sample of the exposition text: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// The samples of a Prometheus text exposition (format 0.0.4).
fn parse_samples(text: &str) -> anyhow::Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .with_context(|| format!("no value in {line:?}"))?;
        let value: f64 = value
            .parse()
            .with_context(|| format!("bad value in {line:?}"))?;
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix('}')
                    .with_context(|| format!("unclosed labels in {line:?}"))?;
                (name, parse_labels(inner)?)
            }
        };
        samples.push((name.to_owned(), labels, value));
    }
    Ok(samples)
}

fn parse_labels(mut text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    while !text.is_empty() {
        let (name, rest) = text
            .split_once("=\"")
            .with_context(|| format!("bad labels {text:?}"))?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => bail!("dangling escape in {text:?}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => bail!("unterminated label value in {text:?}"),
            }
        };
        labels.insert(name.to_owned(), value);
        text = rest[end + 1..].trim_start_matches(',');
    }
    Ok(labels)
}

/// The value of the sample `name` whose labels include all of `labels`.
fn sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, value)| *value)
}

#[tokio::test]
async fn healthz_is_ok_and_readyz_turns_503_as_soon_as_shutdown_begins() -> anyhow::Result<()> {
    let service = Running::start().await?;

    let (status, _, body) = service.get("/healthz").await?;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, _, body) = service.get("/readyz").await?;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    assert_eq!(
        ready_metric(&service).await?,
        1.0,
        "shequ_ready while ready"
    );

    // The holder task keeps the service in its shutdown sequence meanwhile.
    service.shutdown.cancel();
    let (status, _, body) = service.get("/readyz").await?;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body, "not ready: shutting down\n");
    assert_eq!(
        ready_metric(&service).await?,
        0.0,
        "shequ_ready while draining"
    );
    let (status, _, _) = service.get("/healthz").await?;
    assert_eq!(status, 200, "alive while draining");

    let admin_addr = service.admin_addr;
    service.stop().await?;
    assert!(
        http_get(admin_addr, "/healthz").await.is_err(),
        "the admin port closes when the service has stopped"
    );
    Ok(())
}

/// On PostgreSQL: a native SQLite database has no pool to close (its
/// writer thread lives as long as its handles).
#[tokio::test]
async fn readyz_is_503_with_the_reason_when_the_database_is_closed() -> anyhow::Result<()> {
    let Some(admin) = shequ_tests::postgres_url().await else {
        eprintln!(
            "readyz_is_503_with_the_reason_when_the_database_is_closed: skipped, no PostgreSQL"
        );
        return Ok(());
    };
    let pg = shequ_tests::TestPostgres::create(&admin).await?;
    let service = Running::start_in(tempfile::tempdir()?, Some(pg.url())).await?;
    assert!(matches!(service.db, Database::Postgres(_)));
    let (status, _, _) = service.get("/readyz").await?;
    assert_eq!(status, 200);

    service.db.close().await;
    let (status, _, body) = service.get("/readyz").await?;
    assert_eq!(status, 503, "{body}");
    // The reason is the ping's ("database: …"), or, should the relay have
    // tried to write in between, the failed commit's; either names the pool.
    assert!(body.starts_with("not ready: "), "{body}");
    assert!(body.contains("closed pool"), "{body}");
    assert_eq!(body.lines().count(), 1, "one line: {body:?}");

    service.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_while_sqlite_commits_fail_on_a_full_disk_and_ready_again_once_freed()
-> anyhow::Result<()> {
    let Some(disk) = shequ_tests::SmallDisk::mount("readyz_sqlite_disk_full", 8 * 1024 * 1024)?
    else {
        return Ok(());
    };
    let dir = tempfile::tempdir_in(disk.path())?;
    let service = Running::start_in(dir, None).await?;
    assert!(matches!(service.db, Database::Sqlite(_)));
    let (status, _, _) = service.get("/readyz").await?;
    assert_eq!(status, 200);

    disk.fill()?;
    let mut refused = false;
    for n in 0..20 {
        let mut event = thing_event(n);
        event.subject = format!("{}-{}", event.subject, "x".repeat(64 * 1024));
        if enqueue_all(&service.db, &[event]).await.is_err() {
            refused = true;
            break;
        }
    }
    ensure!(refused, "no commit failed on a full disk");
    let (status, _, body) = service.get("/readyz").await?;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with("not ready: the database does not take commits: "),
        "{body}"
    );
    assert_eq!(body.lines().count(), 1, "one line: {body:?}");
    assert_eq!(
        ready_metric(&service).await?,
        0.0,
        "shequ_ready on a full disk"
    );

    disk.free()?;
    eventually(WITHIN, || async {
        let (status, _, body) = service.get("/readyz").await?;
        ensure!(status == 200, "{body}");
        Ok(())
    })
    .await
    .context("readiness returns by itself once the disk has room")?;
    service.stop().await
}

/// `shequ_ready` on the service's `/metrics`.
async fn ready_metric(service: &Running) -> anyhow::Result<f64> {
    let (_, _, text) = service.get("/metrics").await?;
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix("shequ_ready{"))
        .and_then(|rest| rest.rsplit(' ').next()?.parse().ok());
    value.with_context(|| format!("no shequ_ready in:\n{text}"))
}

#[tokio::test]
async fn metrics_count_grpc_calls_and_published_events() -> anyhow::Result<()> {
    let service = Running::start().await?;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", service.grpc_addr))?
        .connect()
        .await?;
    let mut health = HealthClient::new(channel);
    let serving = health
        .check(HealthCheckRequest {
            service: shequ_chassis::parked::SERVICE.into(),
        })
        .await?
        .into_inner();
    assert_eq!(serving.status, ServingStatus::Serving as i32);
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .expect_err("an unknown service is NotFound");
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    let (status, headers, text) = service.get("/metrics").await?;
    assert_eq!(status, 200, "{text}");
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{headers}"
    );
    assert!(text.contains("# TYPE shequ_grpc_requests_total counter\n"));
    assert!(text.contains("# TYPE shequ_grpc_request_duration_seconds histogram\n"));
    let samples = parse_samples(&text)?;
    let check = "/grpc.health.v1.Health/Check";
    assert_eq!(
        sample(
            &samples,
            "shequ_grpc_requests_total",
            &[("service", SERVICE), ("method", check), ("code", "0")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &samples,
            "shequ_grpc_requests_total",
            &[("service", SERVICE), ("method", check), ("code", "5")]
        ),
        Some(1.0),
        "a failed unary call is counted with its grpc-status: {text}"
    );
    assert_eq!(
        sample(
            &samples,
            "shequ_grpc_request_duration_seconds_count",
            &[("service", SERVICE), ("method", check)]
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &samples,
            "shequ_grpc_request_duration_seconds_bucket",
            &[("method", check), ("le", "+Inf")]
        ),
        Some(2.0),
        "{text}"
    );

    let events: Vec<_> = (0..3).map(thing_event).collect();
    enqueue_all(&service.db, &events).await?;
    service.outbox.wake();
    let subject = <ThingHappened as shequ_proto::events::EventData>::TYPE;
    eventually(WITHIN, || async {
        let (_, _, text) = service.get("/metrics").await?;
        let samples = parse_samples(&text)?;
        let published = sample(
            &samples,
            "shequ_events_published_total",
            &[("service", SERVICE), ("subject", subject)],
        );
        let backlog = sample(&samples, "shequ_outbox_backlog", &[("service", SERVICE)]);
        ensure!(
            published == Some(3.0) && backlog == Some(0.0),
            "published {published:?}, backlog {backlog:?}"
        );
        ensure!(
            sample(&samples, "shequ_outbox_oldest_age_seconds", &[]) == Some(0.0),
            "oldest age: {text}"
        );
        ensure!(
            sample(&samples, "shequ_events_publish_failures_total", &[]) == Some(0.0),
            "failures: {text}"
        );
        Ok(())
    })
    .await?;

    service.stop().await
}

#[test]
fn the_label_parser_reads_escaped_values() -> anyhow::Result<()> {
    let samples = parse_samples("# HELP x y\nx{a=\"1\",b=\"q\\\"u,o\"} 2.5\ny 3\n")?;
    assert_eq!(
        sample(&samples, "x", &[("a", "1"), ("b", "q\"u,o")]),
        Some(2.5)
    );
    assert_eq!(sample(&samples, "y", &[]), Some(3.0));
    Ok(())
}

/// Applies nothing but the claim: the event is recorded as processed.
#[derive(Debug, Clone)]
struct Ignore {
    db: Database,
}

/// An event type the `Ignore` handler does not want.
const UNWANTED: &str = "shequ.test.thing.unwanted.v1";

fn transient(error: impl std::fmt::Display) -> HandlerError {
    HandlerError::Transient(error.to_string())
}

impl Apply for Ignore {
    fn wants(&self, event_type: &str) -> bool {
        event_type != UNWANTED
    }

    fn apply<'a>(
        &'a self,
        _event: &'a CloudEvent,
        once: Once,
    ) -> futures::future::BoxFuture<'a, Result<Outcome, HandlerError>> {
        Box::pin(async move {
            let claimed = match &self.db {
                Database::Sqlite(db) => db
                    .unit(move |conn| once.claim_sqlite(conn))
                    .await
                    .map_err(transient)?,
                Database::Postgres(db) => {
                    let mut tx = db.begin().await.map_err(transient)?;
                    let claimed = once.claim_postgres(&mut tx).await.map_err(transient)?;
                    db.commit(tx).await.map_err(transient)?;
                    claimed
                }
            };
            Ok(if claimed {
                Outcome::Applied
            } else {
                Outcome::AlreadyProcessed
            })
        })
    }
}

#[tokio::test]
async fn metrics_count_consumed_events_by_outcome_and_the_consumer_backlog() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let (_client, js) = crate::support::jetstream_on(&nats).await?;
    shequ_chassis::nats::ensure_stream(&js, STREAM).await?;
    let (_dir, db) = crate::support::sqlite_db().await?;
    let event = thing_event(1);
    let mut unwanted = thing_event(2);
    unwanted.event_type = UNWANTED.into();
    for (id, payload) in [
        ("first", serde_json::to_vec(&event)?),
        ("again", serde_json::to_vec(&event)?),
        ("garbage", b"not json".to_vec()),
        ("unwanted", serde_json::to_vec(&unwanted)?),
    ] {
        let message = async_nats::jetstream::message::PublishMessage::build()
            .payload(payload.into())
            .message_id(id);
        js.send_publish(event.event_type.clone(), message)
            .await?
            .await?;
    }
    let metrics = shequ_chassis::metrics::Metrics::new(SERVICE);
    let shutdown = CancellationToken::new();
    let inbox = shequ_chassis::inbox::Inbox::new(
        db.clone(),
        js,
        shequ_chassis::inbox::ConsumerSpec::new(STREAM, "counted", "shequ.test.>"),
        Ignore { db: db.clone() },
        system_clock(),
        OutboxSignal::default(),
    )
    .with_metrics(metrics.clone());
    let task = tokio::spawn(inbox.run(shutdown.clone()));

    eventually(WITHIN, || async {
        let text = metrics.render();
        let samples = parse_samples(&text)?;
        for outcome in ["applied", "ignored", "duplicate", "parked"] {
            let counted = sample(
                &samples,
                "shequ_events_consumed_total",
                &[
                    ("service", SERVICE),
                    ("consumer", "counted"),
                    ("outcome", outcome),
                ],
            );
            ensure!(counted == Some(1.0), "{outcome}: {counted:?}\n{text}");
        }
        let pending = sample(
            &samples,
            "shequ_consumer_pending",
            &[("consumer", "counted")],
        );
        ensure!(pending == Some(0.0), "pending {pending:?}");
        Ok(())
    })
    .await?;

    // The unwanted event was acked without a transaction: only the applied one
    // is recorded as processed.
    let processed = texts(&db, "SELECT event_id FROM processed_events", &[]).await?;
    assert_eq!(processed, vec![Some(event.id)]);

    shutdown.cancel();
    crate::support::join_within(task, Duration::from_secs(10)).await
}
