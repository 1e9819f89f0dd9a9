//! From a parsed command line to gRPC calls: the connection, the small
//! helpers every area shares, and one module per service area (and `events`,
//! which reads NATS JetStream instead; `parked`, for `events parked` and
//! `events replay`, asks whichever service `--service` names).

mod care;
mod complaints;
mod events;
mod merchants;
mod org;
mod parked;

use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use shequ_proto::common::v1 as common;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::cli::{Cli, Command, EventsCommand, PageArgs};
use crate::codes::name_of;
use crate::failure::{NoToken, Unreachable};
use crate::output::Output;
use crate::table::Table;

/// How long to wait for the service to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The row a retried registration or recording shows.
const DUPLICATE: [&str; 2] = [
    "duplicate",
    "yes: this request id was seen before; nothing was changed",
];

/// Runs the command `cli` names. Each command checks what it can locally (the
/// file, the period) before it connects.
pub(crate) async fn run(cli: &Cli, output: Output) -> anyhow::Result<()> {
    // The tail talks to NATS, not to a service: no token, no service URL.
    if let Command::Events(EventsCommand::Tail(args)) = &cli.command {
        return events::tail(args, output).await;
    }
    let target = &Target::from_cli(cli)?;
    match &cli.command {
        Command::Org(command) => org::run(command, target, output).await,
        Command::Complaints(command) => complaints::run(command, target, output).await,
        Command::Merchants(command) => merchants::run(command, target, output).await,
        Command::Care(command) => care::run(command, target, output).await,
        Command::Events(EventsCommand::Parked(args)) => parked::list(args, target, output).await,
        Command::Events(EventsCommand::Replay(args)) => parked::replay(args, target, output).await,
        Command::Events(EventsCommand::Tail(_)) => Ok(()),
    }
}

/// The service a command talks to, and how: its URL, the caller's token, the
/// CA to trust for `https://`.
pub(crate) struct Target {
    url: String,
    authorization: Option<MetadataValue<Ascii>>,
    tls: Option<ClientTlsConfig>,
}

impl Target {
    fn from_cli(cli: &Cli) -> anyhow::Result<Self> {
        let authorization = match &cli.token_file {
            Some(path) => {
                let token = std::fs::read_to_string(path).map_err(|error| {
                    NoToken(format!(
                        "cannot read the token file {}: {error}",
                        path.display()
                    ))
                })?;
                let token = token.trim();
                if token.is_empty() {
                    return Err(NoToken(format!(
                        "the token file {} is empty: it must hold your bearer token",
                        path.display()
                    ))
                    .into());
                }
                let header = format!("Bearer {token}");
                Some(
                    header
                        .parse()
                        .context("the token file holds characters a header cannot")?,
                )
            }
            None => None,
        };
        let tls = match &cli.ca_file {
            Some(path) => {
                let ca = std::fs::read(path)
                    .with_context(|| format!("reading the CA file {}", path.display()))?;
                Some(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)))
            }
            None => None,
        };
        Ok(Self {
            url: cli.service().url.to_owned(),
            authorization,
            tls,
        })
    }
}

/// A connection that presents the caller's token on every call.
pub(crate) type Connection = InterceptedService<Channel, Bearer>;

/// Adds `authorization: Bearer …` when the caller has a token.
#[derive(Clone)]
pub(crate) struct Bearer(Option<MetadataValue<Ascii>>);

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

/// Connects now, so an unreachable service is reported as such, once.
async fn connect(target: &Target) -> anyhow::Result<Connection> {
    let mut endpoint = Endpoint::from_shared(target.url.clone())?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT);
    if let Some(tls) = &target.tls {
        endpoint = endpoint.tls_config(tls.clone())?;
    }
    let channel = endpoint.connect().await.map_err(Unreachable)?;
    Ok(InterceptedService::new(
        channel,
        Bearer(target.authorization.clone()),
    ))
}

/// An optional flag as the proto's string (empty when absent).
fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

/// The page a list command asks for.
fn page_request(page: &PageArgs) -> common::PageRequest {
    common::PageRequest {
        page_size: page.page_size.unwrap_or(0),
        page_token: text(&page.page_token),
    }
}

/// One page of a list as a list command prints it.
struct Listing<'a, T, const N: usize> {
    /// The list's name in JSON (`complaints`).
    key: &'static str,
    items: &'a [T],
    page: Option<common::PageResponse>,
    /// What a person reads when the page is empty (`no complaints`).
    none: &'a str,
    json: fn(&T) -> Value,
    header: [&'static str; N],
    row: fn(&T) -> [String; N],
}

impl<T, const N: usize> Listing<'_, T, N> {
    /// JSON `{key: [...], "next_page_token": …}`, or a table (or `none`)
    /// followed by how to ask for the next page when there is one.
    fn print(self, output: Output) -> anyhow::Result<()> {
        let next = self
            .page
            .map(|page| page.next_page_token)
            .unwrap_or_default();
        output.print(
            || {
                json!({
                    self.key: self.items.iter().map(self.json).collect::<Vec<_>>(),
                    "next_page_token": non_empty(&next),
                })
            },
            || {
                if self.items.is_empty() {
                    return format!("{}\n", self.none);
                }
                let mut table = Table::new(self.header);
                for item in self.items {
                    table.row((self.row)(item));
                }
                let mut text = table.to_string();
                if !next.is_empty() {
                    text.push_str(&format!("\nnext page: --page-token {next}\n"));
                }
                text
            },
        )
    }
}

/// An empty string from a message as JSON `null`.
fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

/// The idempotency key given, or a fresh UUIDv7.
fn request_id(given: &Option<String>) -> String {
    given
        .clone()
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// The message a successful call must carry.
fn answered<T>(message: Option<T>) -> anyhow::Result<T> {
    message.context("the service answered without the result")
}

/// `34.800000, 113.660000 (gcj02)`: six decimals, about 10 cm.
fn location(point: &common::GeoPoint) -> String {
    format!(
        "{:.6}, {:.6} ({})",
        point.latitude,
        point.longitude,
        name_of::<common::Datum>(point.datum)
    )
}

/// A point for `--json`, the datum by code name.
fn location_json(point: &common::GeoPoint) -> Value {
    json!({
        "latitude": point.latitude,
        "longitude": point.longitude,
        "datum": name_of::<common::Datum>(point.datum),
    })
}

/// A rate as a percentage, `n/a` while nothing was counted.
fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "n/a".to_owned(), |rate| format!("{:.1}%", rate * 100.0))
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}
