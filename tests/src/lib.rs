//! Test support shared by every crate's integration tests, and (in `tests/`) the
//! cross-service end-to-end and fault tests.
//!
//! # Layout
//! - [`NatsServer`]: a real `nats-server -js` of the test's own, on a free port
//!   with its own store directory; it can be stopped and started again on the
//!   same port and store to simulate an outage; or three of them as one
//!   JetStream cluster ([`NatsServer::start_cluster`]).
//! - [`Backend`], [`TestDatabase`], [`on_both_backends!`]: storage tests on SQLite and,
//!   through [`postgres_url`] / [`TestPostgres`], on a fresh PostgreSQL database per test when
//!   a server is reachable (`SHEQU_TEST_POSTGRES_URL`, default 127.0.0.1:5432).
//! - [`stream_events`]: every event in a stream, with its `Nats-Msg-Id` and `traceparent`.
//! - [`EventSchemas`]: the published JSON Schemas, to check emitted events.
//! - [`fixtures`]: an organisation, complaints and merchants for the process tests.
//! - [`otlp`]: a stand-in OpenTelemetry collector (an OTLP/gRPC trace receiver).
//! - [`SmallDisk`]: a small tmpfs of a test's own, to fill to the last byte.
//! - [`free_port`], [`eventually`]: small helpers.
//! - [`service`]: a service in the test's process: [`service::TestService`]
//!   (one start), [`service::Harness`] (restartable on one database, NATS and
//!   manual clock), [`service::run`] (a test on a fresh database of a backend).
//! - [`system`]: NATS and the three service binaries as separate processes, for
//!   the end-to-end and fault tests, and replicas of a service on one database.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use shequ_proto::events::CloudEvent;
use sqlx::Connection;
use tempfile::TempDir;
use tokio::process::{Child, Command};

pub mod auth;
pub mod db;
pub mod disk;
pub mod fixtures;
pub mod otlp;
pub mod service;
pub mod system;

pub use disk::SmallDisk;

/// Ports handed out below the kernel's ephemeral range (32768–60999 on
/// Linux by default): a port the kernel picks for `bind(0)` is one it may also
/// give any outgoing connection's local end (a client of PostgreSQL or NATS in
/// another test) before the service binds it, which made a service fail now
/// and then with "address in use".
const PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A port nobody listens on right now, never handed out before by this process,
/// and outside the ephemeral range (see [`PORTS`]): chosen at random, so that
/// tests in other processes rarely try the same one, and bound once to check.
pub fn free_port() -> anyhow::Result<u16> {
    use std::collections::HashSet;
    use std::hash::{BuildHasher, RandomState};
    use std::sync::Mutex;
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let given = given.get_or_insert_with(HashSet::new);
    let random = RandomState::new();
    for attempt in 0u32..1_000 {
        let span = u64::from(PORTS.end - PORTS.start);
        let port = PORTS.start + (random.hash_one((std::process::id(), attempt)) % span) as u16;
        if given.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return Ok(port);
        }
    }
    bail!("no free port in {PORTS:?} after 1,000 tries")
}

/// A `nats-server` with JetStream, owned by one test; killed on drop.
#[derive(Debug)]
pub struct NatsServer {
    port: u16,
    store: TempDir,
    /// Command-line arguments and environment beyond the port and store.
    setup: (Vec<String>, Vec<(String, String)>),
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server on a free port and waits until it accepts connections.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(Vec::new(), &[]).await
    }

    /// Starts a server with a configuration file (its port, monitoring port and
    /// store directory overridden), `env` holding what the file reads from the
    /// environment.
    pub async fn start_with_config(config: &Path, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let args = vec![
            "-c".into(),
            config.display().to_string(),
            "-m".into(),
            free_port()?.to_string(),
        ];
        Self::start_with(args, env).await
    }

    /// Starts `size` servers forming one JetStream cluster on loopback (named
    /// `n0`, `n1`, …, each routed to the others), and waits until each
    /// greets clients; JetStream is usable once the cluster has elected its
    /// meta leader (see [`cluster_urls`]).
    pub async fn start_cluster(size: usize) -> anyhow::Result<Vec<Self>> {
        let routes: Vec<u16> = (0..size).map(|_| free_port()).collect::<Result<_, _>>()?;
        let mut nodes = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            let others: Vec<String> = routes
                .iter()
                .filter(|other| *other != route)
                .map(|other| format!("nats://127.0.0.1:{other}"))
                .collect();
            let args = vec![
                "--server_name".into(),
                format!("n{i}"),
                "--cluster_name".into(),
                "shequ".into(),
                "--cluster".into(),
                format!("nats://127.0.0.1:{route}"),
                "--routes".into(),
                others.join(","),
            ];
            nodes.push(Self::start_with(args, &[]).await?);
        }
        Ok(nodes)
    }

    /// Starts a server requiring TLS of clients, with `cert` and `key` (PEM).
    pub async fn start_with_tls(cert: &Path, key: &Path) -> anyhow::Result<Self> {
        let args = ["--tls", "--tlscert", &cert.display().to_string()]
            .into_iter()
            .map(String::from)
            .chain(["--tlskey".into(), key.display().to_string()])
            .collect();
        Self::start_with(args, &[]).await
    }

    async fn start_with(args: Vec<String>, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut server = Self {
            port: free_port()?,
            store: tempfile::tempdir()?,
            setup: (args, env),
            child: None,
        };
        server.restart().await?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn store_dir(&self) -> &Path {
        self.store.path()
    }

    /// Kills the server (SIGKILL), as a crash would.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// Starts it again on the same port and store; JetStream keeps its streams.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await?;
        let (args, env) = &self.setup;
        let child = Command::new(nats_server_binary())
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting nats-server (is it installed? `apt-get install nats-server`)")?;
        self.child = Some(child);
        // Up once it greets a client (with or without credentials required).
        eventually(Duration::from_secs(10), || async {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
            let mut greeting = [0; 4];
            tokio::io::AsyncReadExt::read_exact(&mut stream, &mut greeting).await?;
            anyhow::ensure!(&greeting == b"INFO", "not a NATS greeting");
            Ok(())
        })
        .await
        .context("nats-server did not start")
    }
}

/// The URLs of `nodes`, comma-separated, as SHEQU_NATS_URL takes them.
pub fn cluster_urls(nodes: &[NatsServer]) -> String {
    nodes
        .iter()
        .map(NatsServer::url)
        .collect::<Vec<_>>()
        .join(",")
}

fn nats_server_binary() -> String {
    std::env::var("SHEQU_NATS_SERVER").unwrap_or_else(|_| "nats-server".into())
}

/// Retries `check` until it succeeds or `within` passes; returns the last error.
pub async fn eventually<F, Fut, T>(within: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match check().await {
            Ok(value) => return Ok(value),
            Err(error) if tokio::time::Instant::now() >= deadline => return Err(error),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The PostgreSQL server for storage tests, if one answers. Under `CI=true`
/// (CI, whose `.ci/run` starts one) a missing server fails the test instead:
/// PostgreSQL tests are never skipped there.
pub async fn postgres_url() -> Option<String> {
    let url = std::env::var("SHEQU_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let connect = sqlx::PgConnection::connect(&url);
    let failure = match tokio::time::timeout(Duration::from_secs(3), connect).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            return Some(url);
        }
        Ok(Err(error)) => error.to_string(),
        Err(_) => "no answer within 3 s".to_owned(),
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true, and PostgreSQL at {url} does not answer ({failure}): \
         PostgreSQL tests must not be skipped in CI (.ci/run starts a server)"
    );
    None
}

/// Which database a storage-dependent test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A test's database: the service's own SQLite file, or a fresh PostgreSQL one.
#[derive(Debug)]
pub enum TestDatabase {
    Sqlite,
    Postgres(TestPostgres),
}

impl TestDatabase {
    /// `None` for PostgreSQL when no server answers: the test is skipped, with a note.
    pub async fn create(backend: Backend) -> anyhow::Result<Option<Self>> {
        match backend {
            Backend::Sqlite => Ok(Some(Self::Sqlite)),
            Backend::Postgres => match postgres_url().await {
                Some(admin) => Ok(Some(Self::Postgres(TestPostgres::create(&admin).await?))),
                None => {
                    eprintln!(
                        "skipped: no PostgreSQL at SHEQU_TEST_POSTGRES_URL or 127.0.0.1:5432"
                    );
                    Ok(None)
                }
            },
        }
    }

    /// The URL to configure, or `None` for the service's SQLite default.
    pub fn url(&self) -> Option<&str> {
        match self {
            Self::Sqlite => None,
            Self::Postgres(db) => Some(db.url()),
        }
    }

    /// Its URL: the PostgreSQL database's, or that of a SQLite file
    /// `<name>.db` in `dir`.
    pub fn url_in(&self, dir: &Path, name: &str) -> String {
        match self {
            Self::Sqlite => format!("sqlite://{}/{name}.db?mode=rwc", dir.display()),
            Self::Postgres(db) => db.url().to_owned(),
        }
    }
}

/// Runs `test` on what `open` makes of a fresh database of `backend`; on
/// PostgreSQL it is skipped (with a note) when no server answers.
pub async fn on_fresh_database<T, O, OFut, F, Fut>(
    backend: Backend,
    open: O,
    test: F,
) -> anyhow::Result<()>
where
    O: FnOnce(TestDatabase) -> OFut,
    OFut: std::future::Future<Output = anyhow::Result<T>>,
    F: FnOnce(T) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let Some(database) = TestDatabase::create(backend).await? else {
        return Ok(());
    };
    test(open(database).await?).await
}

/// A database of its own for one test, dropped with it (best effort).
#[derive(Debug)]
pub struct TestPostgres {
    admin_url: String,
    name: String,
    url: String,
}

impl TestPostgres {
    /// Creates `shequ_test_<uuid>` on the server `admin_url` points at.
    pub async fn create(admin_url: &str) -> anyhow::Result<Self> {
        let name = format!("shequ_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(admin_url).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let Some((base, _)) = admin_url.rsplit_once('/') else {
            bail!("postgres URL without a database name: {admin_url}");
        };
        Ok(Self {
            admin_url: admin_url.into(),
            url: format!("{base}/{name}"),
            name,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // A thread of its own: Drop may run inside or outside a runtime.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// An event as JetStream holds it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub msg_id: Option<String>,
    /// The `traceparent` header, when the event was written in a trace.
    pub traceparent: Option<String>,
    pub raw: serde_json::Value,
    pub event: CloudEvent,
}

/// Reads a whole stream with an ephemeral consumer, oldest first.
pub async fn stream_events(nats_url: &str, stream: &str) -> anyhow::Result<Vec<StoredEvent>> {
    // One server, or a cluster's, comma-separated.
    let client = async_nats::connect(nats_url.split(',').collect::<Vec<_>>()).await?;
    let js = jetstream::new(client);
    let mut stream = js.get_stream(stream).await?;
    let total = stream.info().await?.state.messages as usize;
    if total == 0 {
        return Ok(Vec::new());
    }
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        })
        .await?;
    // Pulled until all `total` are in: one fetch may return fewer (a batch
    // limit, a stream replicated over a cluster answering slowly).
    let mut messages = consumer.messages().await?;
    let mut events = Vec::with_capacity(total);
    while events.len() < total {
        let next = tokio::time::timeout(Duration::from_secs(10), messages.next()).await;
        let Ok(Some(message)) = next else {
            anyhow::bail!(
                "{} of the {total} messages of the stream read",
                events.len()
            );
        };
        let message = message.map_err(|error| anyhow::anyhow!("{error}"))?;
        let header = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|headers| headers.get(name))
                .map(|value| value.to_string())
        };
        let msg_id = header("Nats-Msg-Id");
        let traceparent = header("traceparent");
        let raw: serde_json::Value = serde_json::from_slice(&message.payload)?;
        let event = serde_json::from_value(raw.clone())?;
        events.push(StoredEvent {
            msg_id,
            traceparent,
            raw,
            event,
        });
    }
    Ok(events)
}

/// A CA, and a certificate it signed for 127.0.0.1 and localhost, made with
/// the `openssl` command (PEM files in a directory of their own).
#[derive(Debug)]
pub struct TestCertificates {
    dir: TempDir,
}

impl TestCertificates {
    pub fn create() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let run = |args: &[&str]| -> anyhow::Result<()> {
            let output = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .context("running openssl (apt-get install openssl)")?;
            anyhow::ensure!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            Ok(())
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=shequ test CA",
            ],
        ]
        .concat())?;
        run(&[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat())?;
        std::fs::write(
            dir.path().join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )?;
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ])?;
        Ok(Self { dir })
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("server.crt")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }
}

/// The JSON Schemas in `proto/events/schemas`, by event type, with the
/// `$id` each file declares.
#[derive(Debug)]
pub struct EventSchemas(std::collections::HashMap<String, (String, jsonschema::Validator)>);

impl EventSchemas {
    pub fn load() -> anyhow::Result<Self> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/events/schemas");
        let mut schemas = std::collections::HashMap::new();
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
            let validator = jsonschema::options()
                .should_validate_formats(true)
                .build(&schema)
                .map_err(|error| anyhow::anyhow!("{name}: {error}"))?;
            let id = schema["$id"].as_str().unwrap_or_default().to_owned();
            schemas.insert(name.to_owned(), (id, validator));
        }
        Ok(Self(schemas))
    }

    /// Fails naming the type and every violation unless `event` matches its
    /// schema, names it (`dataschema`: the URI resolves, through the files'
    /// `$id`s, to the committed file of its type) and carries its id as
    /// `Nats-Msg-Id`.
    pub fn check(&self, event: &StoredEvent) -> anyhow::Result<()> {
        let event_type = event.event.event_type.as_str();
        let dataschema = event.event.dataschema.as_deref().unwrap_or_default();
        let resolved = self
            .0
            .iter()
            .find(|(_, (id, _))| id == dataschema)
            .map(|(name, _)| name.as_str());
        anyhow::ensure!(
            resolved == Some(event_type),
            "{event_type}: dataschema {dataschema:?} resolves to {resolved:?}, not the type's file"
        );
        let (_, schema) = self
            .0
            .get(event_type)
            .with_context(|| format!("no schema for {event_type}"))?;
        let errors: Vec<String> = schema
            .iter_errors(&event.raw)
            .map(|e| e.to_string())
            .collect();
        anyhow::ensure!(
            errors.is_empty(),
            "{event_type} does not match its schema: {errors:?}\n{}",
            event.raw
        );
        anyhow::ensure!(
            event.msg_id.as_deref() == Some(event.event.id.as_str()),
            "{event_type}: Nats-Msg-Id {:?} is not the event id {}",
            event.msg_id,
            event.event.id
        );
        Ok(())
    }
}

/// Generates one `#[tokio::test]` per backend for each `async fn(TestApp)` named:
/// the calling test crate provides `crate::support::run(Backend, test)`.
#[macro_export]
#[allow(clippy::crate_in_macro_def)] // `crate` is the calling test crate, on purpose.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    crate::support::run($crate::Backend::Sqlite, super::$name).await
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    crate::support::run($crate::Backend::Postgres, super::$name).await
                }
            )*
        }
    };
}

/// A store's conformance suite: each case (`crate::cases::<case>`, an async
/// fn of the calling test crate's harness) once on SQLite and once on
/// PostgreSQL, each on the fresh store `crate::open(TestDatabase)` of the
/// calling crate makes ([`on_fresh_database`]).
#[macro_export]
#[allow(clippy::crate_in_macro_def)] // `crate` is the calling test crate, on purpose.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() -> anyhow::Result<()> {
                    $crate::on_fresh_database($crate::Backend::Sqlite, crate::open, crate::cases::$case).await
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() -> anyhow::Result<()> {
                    $crate::on_fresh_database($crate::Backend::Postgres, crate::open, crate::cases::$case).await
                }
            )*
        }
    };
}
