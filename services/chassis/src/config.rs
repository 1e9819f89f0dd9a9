//! Settings every service shares, from environment variables or flags.
//!
//! A bad value stops the service at start with a message naming the setting
//! (clap's parsers for addresses and enums, [`CommonConfig::database_url`] for URLs).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::auth::{Access, Guard, read_token_file};
use crate::backoff::Backoff;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    Text,
    /// One JSON object per line, for containers.
    Json,
}

/// The settings of the chassis; each service flattens this into its own config.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonConfig {
    /// NATS server URL (`tls://…` requires TLS), or a cluster's URLs,
    /// comma-separated.
    #[arg(long, env = "SHEQU_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    #[command(flatten)]
    pub nats: NatsAccess,
    /// Directory for the embedded SQLite database (created if missing).
    #[arg(long, env = "SHEQU_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// `sqlite://<file>` or `postgres://…`; default: a SQLite file in the data directory.
    #[arg(long, env = "SHEQU_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Address the gRPC server listens on; default: the service's own port.
    #[arg(long, env = "SHEQU_GRPC_ADDR")]
    pub grpc_addr: Option<SocketAddr>,
    /// Address of the admin HTTP port (`/healthz`, `/readyz`, `/metrics`);
    /// default: the service's own port.
    #[arg(long, env = "SHEQU_ADMIN_ADDR")]
    pub admin_addr: Option<SocketAddr>,
    /// Log format.
    #[arg(long, env = "SHEQU_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub auth: AuthSettings,
    #[command(flatten)]
    pub grpc_tls: GrpcTls,
    #[command(flatten)]
    pub consumer_retry: ConsumerRetry,
    #[command(flatten)]
    pub stream: StreamSettings,
}

/// What the operator chooses of the stream a service produces into; the
/// service declares it so at start, updating a stream that differs
/// ([`crate::nats::declare_stream`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct StreamSettings {
    /// Days the service's stream keeps an event; 0: no age limit (kept until
    /// the size limit, if any).
    #[arg(long = "stream-max-age-days", env = "SHEQU_STREAM_MAX_AGE_DAYS", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=36_500))]
    pub max_age_days: u32,
    /// Bytes the service's stream may hold before dropping its oldest events;
    /// 0: no size limit.
    #[arg(
        long = "stream-max-bytes",
        env = "SHEQU_STREAM_MAX_BYTES",
        default_value_t = 0
    )]
    pub max_bytes: u64,
    /// Seconds JetStream remembers an event's id to drop a re-published copy
    /// (at least as long as NATS or a relay may be away and retry).
    #[arg(long = "stream-duplicate-window-secs", env = "SHEQU_STREAM_DUPLICATE_WINDOW_SECS",
          default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub duplicate_window_secs: u64,
    /// Copies of the stream in a JetStream cluster (1; 3 or 5 in a cluster of
    /// at least that many servers).
    #[arg(long = "stream-replicas", env = "SHEQU_STREAM_REPLICAS", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=5))]
    pub replicas: u8,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            max_age_days: 0,
            max_bytes: 0,
            duplicate_window_secs: 600,
            replicas: 1,
        }
    }
}

/// How a consumer retries an event whose handling failed for a transient
/// reason (the database away or full, a dependency down): redelivered after
/// `first`, then after twice as long each time up to `max`, for as long as
/// the failure lasts. Only events that can never apply are parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct ConsumerRetry {
    /// Delay before the first redelivery of an event that failed transiently, in milliseconds.
    #[arg(
        long = "consumer-retry-first-ms",
        env = "SHEQU_CONSUMER_RETRY_FIRST_MS",
        default_value_t = 500,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub first_ms: u64,
    /// The longest delay between redeliveries, in milliseconds.
    #[arg(
        long = "consumer-retry-max-ms",
        env = "SHEQU_CONSUMER_RETRY_MAX_MS",
        default_value_t = 60_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_ms: u64,
}

impl Default for ConsumerRetry {
    fn default() -> Self {
        Self {
            first_ms: 500,
            max_ms: 60_000,
        }
    }
}

impl ConsumerRetry {
    /// The delay before redelivering an event delivered `delivered` times
    /// (1 for the first delivery): `first` doubled per earlier delivery, at
    /// most `max`, jittered ([`Backoff`]).
    pub fn delay(&self, delivered: i64) -> std::time::Duration {
        let attempt = u32::try_from(delivered.max(1)).unwrap_or(u32::MAX);
        Backoff::new(
            std::time::Duration::from_millis(self.first_ms),
            std::time::Duration::from_millis(self.max_ms),
        )
        .delay(attempt)
    }
}

/// TLS for gRPC: the certificate the service serves with, and the CA it trusts
/// when it calls the other services (their URLs then start with `https://`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GrpcTls {
    /// Certificate chain (PEM) to serve gRPC over TLS with; needs the key too.
    #[arg(
        long = "grpc-tls-cert-file",
        env = "SHEQU_GRPC_TLS_CERT_FILE",
        requires = "tls_key_file"
    )]
    pub tls_cert_file: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(
        long = "grpc-tls-key-file",
        env = "SHEQU_GRPC_TLS_KEY_FILE",
        requires = "tls_cert_file"
    )]
    pub tls_key_file: Option<PathBuf>,
    /// CA (PEM) client certificates must be signed by: set it to require them.
    #[arg(
        long = "grpc-tls-client-ca-file",
        env = "SHEQU_GRPC_TLS_CLIENT_CA_FILE",
        requires = "tls_cert_file"
    )]
    pub tls_client_ca_file: Option<PathBuf>,
    /// CA (PEM) to trust when calling the other services over TLS.
    #[arg(long = "grpc-tls-ca-file", env = "SHEQU_GRPC_TLS_CA_FILE")]
    pub tls_ca_file: Option<PathBuf>,
}

/// Who may call the service, and what it presents when it calls another.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AuthSettings {
    /// JSON file of accepted bearer tokens: their SHA-256 hashes, names and roles
    /// (operator, staff, service, resident_app). Required unless auth is disabled.
    #[arg(long = "auth-tokens-file", env = "SHEQU_AUTH_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,
    /// Serve every caller without a token: only for a machine nobody else reaches.
    #[arg(long = "auth-disabled", env = "SHEQU_AUTH_DISABLED")]
    pub disabled: bool,
    /// File holding the bearer token (role service) this service presents when
    /// it calls another shequ service.
    #[arg(long = "service-token-file", env = "SHEQU_SERVICE_TOKEN_FILE")]
    pub service_token_file: Option<PathBuf>,
}

impl AuthSettings {
    /// Authentication off: in-process tests.
    pub fn disabled() -> Self {
        Self {
            disabled: true,
            ..Self::default()
        }
    }

    /// The guard for `access`: the token file's tokens, or none when disabled;
    /// neither is a configuration error (no token is compiled in).
    pub fn guard(&self, access: Access) -> Result<Guard, Error> {
        match (&self.tokens_file, self.disabled) {
            (Some(path), false) => Guard::from_file(path, access),
            (None, true) => Ok(Guard::disabled()),
            (Some(_), true) => Err(Error::Config(
                "SHEQU_AUTH_TOKENS_FILE and SHEQU_AUTH_DISABLED are both set; choose one".into(),
            )),
            (None, false) => Err(Error::Config(
                "SHEQU_AUTH_TOKENS_FILE is required (a JSON file of token hashes and roles; \
                 see deploy/README.md), or SHEQU_AUTH_DISABLED=true on a closed machine"
                    .into(),
            )),
        }
    }

    /// The token to present to other services, if one is configured.
    pub fn service_token(&self) -> Result<Option<String>, Error> {
        self.service_token_file
            .as_deref()
            .map(|path| read_token_file("SHEQU_SERVICE_TOKEN_FILE", path))
            .transpose()
    }
}

/// Who the service is to NATS, and how it trusts the server: a user of
/// `deploy/nats/nats.conf` and, when the server requires TLS, its certificates.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NatsAccess {
    /// NATS user; default: connect without one (a local server).
    #[arg(long = "nats-user", env = "SHEQU_NATS_USER", requires = "password")]
    pub user: Option<String>,
    /// The NATS user's password.
    #[arg(
        long = "nats-password",
        env = "SHEQU_NATS_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// CA certificate (PEM) the NATS server's certificate is checked against; setting it requires TLS.
    #[arg(long = "nats-ca-file", env = "SHEQU_NATS_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for NATS servers that verify clients; needs the key too.
    #[arg(
        long = "nats-cert-file",
        env = "SHEQU_NATS_CERT_FILE",
        requires = "key_file"
    )]
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(
        long = "nats-key-file",
        env = "SHEQU_NATS_KEY_FILE",
        requires = "cert_file"
    )]
    pub key_file: Option<PathBuf>,
}

impl CommonConfig {
    /// Defaults for a service running in-process (tests): no flags, no env, and
    /// the admin port on a free local port (so tests never collide on it).
    pub fn new(nats_url: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            nats_url: nats_url.into(),
            nats: NatsAccess::default(),
            data_dir: data_dir.into(),
            database_url: None,
            grpc_addr: None,
            admin_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            log_format: LogFormat::Text,
            auth: AuthSettings::disabled(),
            grpc_tls: GrpcTls::default(),
            consumer_retry: ConsumerRetry::default(),
            stream: StreamSettings::default(),
        }
    }

    /// The database to open: the configured URL after checking its scheme, or
    /// `<data_dir>/<service>.db`.
    pub fn database_url(&self, service: &str) -> Result<String, Error> {
        match &self.database_url {
            Some(url) if is_supported_database_url(url) => Ok(url.clone()),
            Some(url) => Err(Error::Config(format!(
                "SHEQU_DATABASE_URL must start with sqlite:// or postgres://, got {:?}",
                url.split(':').next().unwrap_or_default()
            ))),
            None => Ok(format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join(format!("{service}.db")).display()
            )),
        }
    }
}

/// Reads a rules file (time limits, credit rules, visit policy…) named by the
/// setting `setting`; no file means the rules' defaults. Errors name the
/// setting and the file.
pub fn rules_file<T: Default>(
    setting: &str,
    path: Option<&Path>,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, Error> {
    let Some(path) = path else {
        return Ok(T::default());
    };
    let json = std::fs::read_to_string(path).map_err(|source| Error::Io {
        context: format!("reading {setting} {}", path.display()),
        source,
    })?;
    parse(&json).map_err(|error| Error::Config(format!("{setting} {}: {error}", path.display())))
}

fn is_supported_database_url(url: &str) -> bool {
    ["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_from_the_first_up_to_the_cap_and_never_end() {
        let retry = ConsumerRetry {
            first_ms: 500,
            max_ms: 60_000,
        };
        // Each delay lies in the upper half of its step (jitter).
        let steps = [
            500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000,
        ];
        for (delivered, step) in (1..=10).zip(steps) {
            let delay = retry.delay(delivered).as_millis() as u64;
            assert!(
                (step / 2..=step).contains(&delay),
                "delivery {delivered}: {delay} ms, step {step} ms"
            );
        }
        assert!((30_000..=60_000).contains(&(retry.delay(1_000_000).as_millis() as u64)));
        assert!(retry.delay(0).as_millis() <= 500);
    }

    #[test]
    fn default_database_is_a_sqlite_file_in_the_data_dir() {
        let config = CommonConfig::new("nats://x", "/var/lib/shequ");
        assert_eq!(
            config.database_url("complaints").ok().as_deref(),
            Some("sqlite:///var/lib/shequ/complaints.db?mode=rwc")
        );
    }

    #[test]
    fn unsupported_database_scheme_is_refused_naming_the_setting() {
        let mut config = CommonConfig::new("nats://x", "data");
        config.database_url = Some("mysql://root@localhost/db".into());
        let message = config
            .database_url("complaints")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("SHEQU_DATABASE_URL"), "{message}");
    }
}

/// The settings in force, as one line for the start-up log: `NAME=value`
/// for every setting with a value (given or default), by its environment
/// name (or `--flag` without one), secrets redacted: a password, token or
/// secret shows as `<redacted>`, and a URL's password as `***`. Files are
/// named, not read.
pub fn effective_settings(command: &clap::Command, matches: &clap::ArgMatches) -> String {
    let mut settings = Vec::new();
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        if matches!(id, "help" | "version") {
            continue;
        }
        let Ok(Some(values)) = matches.try_get_raw(id) else {
            continue;
        };
        let value = values
            .map(|value| value.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(",");
        let name = arg.get_env().map_or_else(
            || format!("--{}", arg.get_long().unwrap_or(id)),
            |env| env.to_string_lossy().into_owned(),
        );
        settings.push(format!("{name}={}", redacted(&name, &value)));
    }
    settings.sort();
    settings.join(" ")
}

/// `value` of the setting `name` fit for a log line.
fn redacted(name: &str, value: &str) -> String {
    let upper = name.to_ascii_uppercase();
    let secret = ["PASSWORD", "SECRET", "TOKEN"]
        .iter()
        .any(|word| upper.contains(word))
        && !upper.ends_with("_FILE");
    if secret {
        return "<redacted>".into();
    }
    // scheme://user:password@host… keeps the user, not the password.
    if let Some((scheme, rest)) = value.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && let Some((user, _password)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    value.to_owned()
}

#[cfg(test)]
mod settings_tests {
    use clap::{CommandFactory, FromArgMatches, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Settings {
        #[command(flatten)]
        common: CommonConfig,
    }

    #[test]
    fn the_start_up_line_names_every_setting_and_no_secret() {
        let command = Settings::command();
        let matches = command
            .clone()
            .try_get_matches_from([
                "svc",
                "--database-url",
                "postgres://complaints:hunter2@db.example:5432/complaints",
                "--nats-user",
                "complaints",
                "--nats-password",
                "s3cret",
                "--auth-disabled",
            ])
            .map_err(|error| error.to_string());
        let Ok(matches) = matches else {
            panic!("{matches:?}");
        };
        assert!(Settings::from_arg_matches(&matches).is_ok());
        let line = effective_settings(&command, &matches);
        assert!(
            line.contains(
                "SHEQU_DATABASE_URL=postgres://complaints:***@db.example:5432/complaints"
            ),
            "{line}"
        );
        assert!(line.contains("SHEQU_NATS_USER=complaints"), "{line}");
        assert!(line.contains("SHEQU_NATS_PASSWORD=<redacted>"), "{line}");
        assert!(
            line.contains("SHEQU_NATS_URL=nats://127.0.0.1:4222"),
            "a default: {line}"
        );
        assert!(line.contains("SHEQU_AUTH_DISABLED=true"), "{line}");
        assert!(
            !line.contains("hunter2") && !line.contains("s3cret"),
            "{line}"
        );
    }
}
