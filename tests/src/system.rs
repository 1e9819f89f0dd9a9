//! The whole system as operators run it: a NATS server and the three service
//! binaries as separate processes, each on its own SQLite file under one data
//! directory, with JSON logs in files. Tests drive it only through gRPC, the
//! admin HTTP port and the streams, and can `kill -9`, stop and restart each part.
//! [`ServiceProcess::new`] and [`ServiceProcess::replica`] run services outside
//! a [`System`], e.g. two replicas of one service on one PostgreSQL database.
//!
//! The binaries are the ones `cargo build` put beside this test's executable
//! (`target/<profile>/`), or those under `SHEQU_BIN_DIR`; `cargo nextest run
//! --workspace` builds them (each service has integration tests, so its binary
//! is built with them). Set `TEST_LOG=1` to copy the services' logs to stderr.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::{NatsServer, free_port};

/// One of the three services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Complaints,
    MerchantAlliance,
    PensionerCare,
}

impl Service {
    /// In the order they start: those a service calls come before it.
    pub const ALL: [Service; 3] = [
        Service::MerchantAlliance,
        Service::Complaints,
        Service::PensionerCare,
    ];

    /// The binary's name, also used for its data and log files.
    pub fn binary(self) -> &'static str {
        match self {
            Service::Complaints => "complaints",
            Service::MerchantAlliance => "merchant-alliance",
            Service::PensionerCare => "pensioner-care",
        }
    }
}

/// A service binary running as a child process, restartable on the same ports
/// and data directory.
#[derive(Debug)]
pub struct ServiceProcess {
    service: Service,
    grpc_port: u16,
    admin_port: u16,
    env: Vec<(String, String)>,
    /// Serves gRPC over TLS.
    tls: bool,
    log: PathBuf,
    child: Option<Child>,
}

impl ServiceProcess {
    /// `service` on free ports with JSON logs in `<log_dir>/<name>.log`, and
    /// `env` for the rest of its settings (NATS, the database, the services it
    /// calls…); not started yet.
    pub fn new(
        service: Service,
        log_dir: &Path,
        name: &str,
        env: Vec<(String, String)>,
    ) -> anyhow::Result<Self> {
        let mut process = Self {
            service,
            grpc_port: free_port()?,
            admin_port: free_port()?,
            env,
            tls: false,
            log: log_dir.join(format!("{name}.log")),
            child: None,
        };
        process.set_addresses();
        process.env.push(("SHEQU_LOG_FORMAT".into(), "json".into()));
        Ok(process)
    }

    /// Another replica of this service: the same settings, so the same database
    /// (point them at PostgreSQL: a SQLite file takes one replica only) and the
    /// same NATS, but ports of its own and a log `<name>.log` beside this one's;
    /// not started yet.
    pub fn replica(&self, name: &str) -> anyhow::Result<Self> {
        let mut replica = Self {
            service: self.service,
            grpc_port: free_port()?,
            admin_port: free_port()?,
            env: self.env.clone(),
            tls: self.tls,
            log: self.log.with_file_name(format!("{name}.log")),
            child: None,
        };
        replica.set_addresses();
        Ok(replica)
    }

    /// Points `SHEQU_GRPC_ADDR` and `SHEQU_ADMIN_ADDR` at this process's ports.
    fn set_addresses(&mut self) {
        self.env
            .retain(|(k, _)| k != "SHEQU_GRPC_ADDR" && k != "SHEQU_ADMIN_ADDR");
        self.env.push((
            "SHEQU_GRPC_ADDR".into(),
            format!("127.0.0.1:{}", self.grpc_port),
        ));
        self.env.push((
            "SHEQU_ADMIN_ADDR".into(),
            format!("127.0.0.1:{}", self.admin_port),
        ));
    }

    pub fn service(&self) -> Service {
        self.service
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// A channel to it that reconnects by itself across restarts.
    pub fn channel(&self) -> anyhow::Result<Channel> {
        Ok(Channel::from_shared(self.grpc_url())?
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(5))
            .connect_lazy())
    }

    pub fn grpc_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.grpc_port)
    }

    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// The file its stdout and stderr (JSON log lines) go to.
    pub fn log_file(&self) -> &Path {
        &self.log
    }

    /// Starts the binary and waits until `/readyz` answers 200.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.child.is_none(), "{:?} is running", self.service);
        let binary = binary_dir()?.join(self.service.binary());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        // The database is the one its settings name (the SQLite default unless
        // they set SHEQU_DATABASE_URL), never one inherited from the test's environment.
        let child = Command::new(&binary)
            .env_remove("SHEQU_DATABASE_URL")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        self.child = Some(child);
        let ready = self.wait_until_ready().await;
        if let Err(error) = ready {
            bail!(
                "{:?} did not become ready: {error:#}\n{}",
                self.service,
                self.report(&binary)
            );
        }
        Ok(())
    }

    /// What a failed start is told with: the binary, its settings, and the
    /// last lines it wrote (stdout and stderr, read even when not UTF-8).
    fn report(&self, binary: &Path) -> String {
        let log = match std::fs::read(&self.log) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(error) => format!("(log {} not read: {error})", self.log.display()),
        };
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let settings: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "binary: {}\nsettings: {}\nlog {} ({} bytes), last lines, newest first:\n{}",
            binary.display(),
            settings.join(" "),
            self.log.display(),
            log.len(),
            if tail.is_empty() {
                "(empty)".to_owned()
            } else {
                tail.join("\n")
            }
        )
    }

    async fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                bail!("exited with {status} before /readyz answered 200");
            }
            match http_get(self.admin_port, "/readyz").await {
                Ok((200, _)) => return Ok(()),
                Ok((status, _)) if tokio::time::Instant::now() >= deadline => {
                    bail!("/readyz answered {status}")
                }
                Err(error) if tokio::time::Instant::now() >= deadline => return Err(error),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// SIGKILL, as a crash or an OOM kill would: no shutdown code runs.
    pub async fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// SIGTERM, and the exit status once it has stopped.
    pub async fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let mut child = self.child.take().context("not running")?;
        let pid = child.id().context("already exited")?;
        let sent = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        anyhow::ensure!(sent.success(), "kill -TERM {pid} failed");
        Ok(tokio::time::timeout(Duration::from_secs(20), child.wait()).await??)
    }

    /// Kills it with SIGKILL and starts it again on the same ports and data.
    pub async fn crash_and_restart(&mut self) -> anyhow::Result<()> {
        self.kill9().await?;
        self.start().await
    }

    /// The text of its `/metrics`.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let (status, body) = http_get(self.admin_port, "/metrics").await?;
        anyhow::ensure!(status == 200, "/metrics answered {status}");
        Ok(body)
    }
}

/// NATS and the three services, in a temporary directory removed on drop.
#[derive(Debug)]
pub struct System {
    pub nats: NatsServer,
    pub alliance: ServiceProcess,
    pub complaints: ServiceProcess,
    pub care: ServiceProcess,
    tokens: Tokens,
    /// The CA clients trust when the services serve TLS.
    tls_ca: Option<Vec<u8>>,
    data: TempDir,
}

/// The roles a token can have (`shequ_chassis::auth::Role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Operator,
    Staff,
    Service,
    ResidentApp,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Operator,
        Role::Staff,
        Role::Service,
        Role::ResidentApp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Staff => "staff",
            Role::Service => "service",
            Role::ResidentApp => "resident_app",
        }
    }
}

/// One random token per role, their hashes in the services' token file, and
/// the service token in a file of its own, as `make run` sets them up.
#[derive(Debug)]
struct Tokens {
    by_role: Vec<(Role, String)>,
    file: PathBuf,
    service_token_file: PathBuf,
}

impl Tokens {
    fn write(dir: &Path) -> anyhow::Result<Self> {
        use sha2::Digest as _;
        let by_role: Vec<(Role, String)> = Role::ALL
            .into_iter()
            .map(|role| {
                (
                    role,
                    format!("{}-{}", role.as_str(), uuid::Uuid::now_v7().simple()),
                )
            })
            .collect();
        let entries: Vec<serde_json::Value> = by_role
            .iter()
            .map(|(role, token)| {
                let hash: String = sha2::Sha256::digest(token.as_bytes())
                    .iter()
                    .map(|byte| format!("{byte:02x}"))
                    .collect();
                serde_json::json!({"name": format!("local-{}", role.as_str()), "role": role.as_str(), "sha256": hash})
            })
            .collect();
        let file = dir.join("tokens.json");
        std::fs::write(&file, serde_json::json!({ "tokens": entries }).to_string())?;
        let service_token_file = dir.join("service.token");
        let service = by_role.iter().find(|(role, _)| *role == Role::Service);
        std::fs::write(&service_token_file, &service.context("a service token")?.1)?;
        Ok(Self {
            by_role,
            file,
            service_token_file,
        })
    }

    fn of(&self, role: Role) -> &str {
        self.by_role
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, token)| token.as_str())
            .unwrap_or_default()
    }
}

/// A client interceptor presenting a bearer token (or none).
#[derive(Debug, Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A channel to one service presenting one token.
pub type AuthedChannel = InterceptedService<Channel, Bearer>;

impl System {
    /// Starts NATS, then merchant-alliance, complaints and pensioner-care, each
    /// on free ports with JSON logs, and waits until each is ready.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on(NatsServer::start().await?, |_| Vec::new()).await
    }

    /// Starts the services on `nats`, each with the settings `env_of` gives it
    /// beyond the usual ones (e.g. its NATS user).
    pub async fn start_on(
        nats: NatsServer,
        env_of: impl Fn(Service) -> Vec<(String, String)>,
    ) -> anyhow::Result<Self> {
        Self::start_with(nats, env_of, None).await
    }

    /// Starts the services serving gRPC over TLS with `certificates`, calling
    /// each other at `https://` URLs, and connecting to `nats` (which requires
    /// TLS with the same certificate) trusting its CA.
    pub async fn start_with_tls(
        nats: NatsServer,
        certificates: &crate::TestCertificates,
    ) -> anyhow::Result<Self> {
        let ca = certificates.ca().display().to_string();
        let env = vec![
            ("SHEQU_NATS_CA_FILE".to_owned(), ca.clone()),
            ("SHEQU_GRPC_TLS_CA_FILE".to_owned(), ca),
            (
                "SHEQU_GRPC_TLS_CERT_FILE".to_owned(),
                certificates.cert().display().to_string(),
            ),
            (
                "SHEQU_GRPC_TLS_KEY_FILE".to_owned(),
                certificates.key().display().to_string(),
            ),
        ];
        let ca = std::fs::read(certificates.ca())?;
        Self::start_with(nats, |_| env.clone(), Some(ca)).await
    }

    async fn start_with(
        nats: NatsServer,
        env_of: impl Fn(Service) -> Vec<(String, String)>,
        tls_ca: Option<Vec<u8>>,
    ) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let tokens = Tokens::write(data.path())?;
        let ports = [(); 3].map(|_| (free_port(), free_port()));
        let mut processes = Vec::new();
        for (service, ports) in Service::ALL.into_iter().zip(ports) {
            let (grpc_port, admin_port) = (ports.0?, ports.1?);
            processes.push(ServiceProcess {
                service,
                grpc_port,
                admin_port,
                env: Vec::new(),
                tls: tls_ca.is_some(),
                log: data.path().join(format!("{}.log", service.binary())),
                child: None,
            });
        }
        let urls: Vec<String> = processes.iter().map(ServiceProcess::grpc_url).collect();
        for process in &mut processes {
            process.env = [
                ("SHEQU_NATS_URL", nats.url()),
                ("SHEQU_DATA_DIR", data.path().display().to_string()),
                (
                    "SHEQU_GRPC_ADDR",
                    format!("127.0.0.1:{}", process.grpc_port),
                ),
                (
                    "SHEQU_ADMIN_ADDR",
                    format!("127.0.0.1:{}", process.admin_port),
                ),
                ("SHEQU_LOG_FORMAT", "json".into()),
                ("SHEQU_AUTH_TOKENS_FILE", tokens.file.display().to_string()),
                (
                    "SHEQU_SERVICE_TOKEN_FILE",
                    tokens.service_token_file.display().to_string(),
                ),
                ("SHEQU_ALLIANCE_URL", urls[0].clone()),
                ("SHEQU_COMPLAINTS_URL", urls[1].clone()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .chain(env_of(process.service))
            .collect();
            process.start().await?;
        }
        let [alliance, complaints, care] = <[ServiceProcess; 3]>::try_from(processes)
            .map_err(|_| anyhow::anyhow!("three services"))?;
        Ok(Self {
            nats,
            alliance,
            complaints,
            care,
            tokens,
            tls_ca,
            data,
        })
    }

    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    pub fn service(&mut self, service: Service) -> &mut ServiceProcess {
        match service {
            Service::Complaints => &mut self.complaints,
            Service::MerchantAlliance => &mut self.alliance,
            Service::PensionerCare => &mut self.care,
        }
    }

    /// A channel to a service, as an operator: it reconnects by itself across
    /// restarts; calls fail with `Unavailable` while the service is down.
    pub fn channel(&self, service: Service) -> anyhow::Result<AuthedChannel> {
        self.channel_as(service, Some(Role::Operator))
    }

    /// A channel presenting the token of `role`, or no token.
    pub fn channel_as(
        &self,
        service: Service,
        role: Option<Role>,
    ) -> anyhow::Result<AuthedChannel> {
        let token = role.map(|role| self.tokens.of(role));
        self.channel_with_token(service, token)
    }

    /// A file holding the token of `role` (as `make run` keeps
    /// `data/auth/<role>.token`), for a client such as shequctl.
    pub fn token_file(&self, role: Role) -> anyhow::Result<PathBuf> {
        let file = self.data.path().join(format!("{}.token", role.as_str()));
        std::fs::write(&file, format!("{}\n", self.tokens.of(role)))?;
        Ok(file)
    }

    /// A channel presenting `token` as it is (e.g. one the services do not know).
    pub fn channel_with_token(
        &self,
        service: Service,
        token: Option<&str>,
    ) -> anyhow::Result<AuthedChannel> {
        let bearer = token
            .map(|token| format!("Bearer {token}").parse())
            .transpose()
            .context("a token a header can carry")?;
        Ok(InterceptedService::new(
            self.plain_channel(service)?,
            Bearer(bearer),
        ))
    }

    fn plain_channel(&self, service: Service) -> anyhow::Result<Channel> {
        let process = match service {
            Service::Complaints => &self.complaints,
            Service::MerchantAlliance => &self.alliance,
            Service::PensionerCare => &self.care,
        };
        let mut endpoint = Channel::from_shared(process.grpc_url())?
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(5));
        if let Some(ca) = &self.tls_ca {
            endpoint = endpoint.tls_config(
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca.clone())),
            )?;
        }
        Ok(endpoint.connect_lazy())
    }
}

impl Drop for System {
    fn drop(&mut self) {
        if std::env::var_os("TEST_LOG").is_some() {
            for process in [&self.alliance, &self.complaints, &self.care] {
                if let Ok(log) = std::fs::read_to_string(&process.log) {
                    eprintln!("--- {} ---\n{log}", process.service.binary());
                }
            }
        }
    }
}

/// Where the service binaries are: `SHEQU_BIN_DIR`, or the `target/<profile>`
/// directory this test executable was built into.
pub fn binary_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("SHEQU_BIN_DIR") {
        return Ok(dir.into());
    }
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test executable>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test executable outside target/<profile>/deps")?;
    for service in Service::ALL {
        let binary = dir.join(service.binary());
        anyhow::ensure!(
            binary.exists(),
            "{} is missing: build the services first (`cargo build --bins`, or run the \
             whole workspace's tests), or point SHEQU_BIN_DIR at them",
            binary.display()
        );
    }
    Ok(dir.to_path_buf())
}

/// A plain HTTP/1.0 GET on 127.0.0.1: the status code and the body.
pub async fn http_get(port: u16, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response)).await??;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP response: {response:.80}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
