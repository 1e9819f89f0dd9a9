//! The complaints service (诉求快速响应): takes residents' complaints from every
//! channel, classifies and routes them through the grid organisation, holds them
//! to time limits with escalation, and records resolution, the follow-up visit
//! and the district's figures. Every change is published as an event.
//!
//! # Layout
//! - `access`: which roles may call each RPC.
//! - [`domain`]: the rules, pure: kinds, reporter masking, classification, time
//!   limits, the working calendar, possible duplicates, the organisation, the
//!   complaint lifecycle, figures.
//! - [`store`]: the service's storage, [`store::Complaints`] (its domain
//!   operations), implemented natively per backend: [`store::sqlite`]
//!   (rusqlite on the writer thread; `complaints`, `figures`, `organisation`)
//!   and [`store::postgres`] (`timestamptz`, `boolean`; the same split); each
//!   change is one transaction with its history entry and outbox event.
//! - [`classifier`]: the segmenter (jieba) around the domain's decision rule,
//!   and the weights file reloaded when it changes.
//! - `events`: the event each transition publishes.
//! - `gauges`: the district's figures of the month on `/metrics`.
//! - `grpc`: the `shequ.complaints.v1` adapter: validation and error mapping.
//! - `merchants`: asking merchant-alliance about a complaint's merchant, with a deadline.
//! - `sweeper`: [`Escalations`] of complaints past their time limits, the
//!   work of a chassis sweeper ([`Sweeper`]).
//! - [`Config`], [`Application`]: settings, and the service assembled on the
//!   chassis runtime ([`shequ_chassis::runtime`]): its identity, its gRPC
//!   services and its sweeper; `main.rs` is the chassis's `main`.

mod access;
pub mod classifier;
pub mod domain;
mod events;
mod gauges;
mod grpc;
mod merchants;
pub mod store;
mod sweeper;

pub use sweeper::{Escalations, Sweeper};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shequ_chassis::Error;
use shequ_chassis::clock::SharedClock;
use shequ_chassis::config::{CommonConfig, rules_file};
use shequ_chassis::grpc::MAX_MESSAGE_BYTES;
use shequ_chassis::nats::StreamSpec;
use shequ_chassis::runtime::{App, Identity, Runtime};
use shequ_proto::complaints::v1::complaint_service_server::ComplaintServiceServer;
use shequ_proto::complaints::v1::organisation_service_server::OrganisationServiceServer;
use shequ_proto::events::complaints as contract;

use crate::classifier::Classifiers;
use crate::domain::calendar::WorkingCalendar;
use crate::domain::duplicates::DuplicatePolicy;
use crate::domain::time_limits::TimeLimits;
use crate::grpc::ComplaintsApi;
use crate::merchants::MerchantDirectory;
use crate::store::Store;

/// The service as the chassis starts it: its name, default ports (gRPC on
/// 50051, admin on 9101), migrations and stream.
pub static IDENTITY: Identity = Identity {
    name: "complaints",
    grpc_addr: "127.0.0.1:50051",
    admin_addr: "127.0.0.1:9101",
    migrations: shequ_chassis::migrations!(),
    stream: StreamSpec {
        name: contract::STREAM,
        subjects: contract::SUBJECTS,
    },
};

/// The service's settings: the chassis's, and its own.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "complaints",
    version,
    about = "The complaints service (诉求快速响应)"
)]
pub struct Config {
    #[command(flatten)]
    pub common: CommonConfig,
    /// JSON table of time limits (see `domain::time_limits`); default: the district's standard.
    #[arg(long, env = "SHEQU_TIME_LIMITS_FILE")]
    pub time_limits_file: Option<PathBuf>,
    /// JSON working calendar, holidays and make-up working days per year (see
    /// `domain::calendar`), that working-day limits are counted on; default:
    /// the State Council's notice for 2026. Read at start: a new calendar
    /// applies to limits that start after the restart, open cases keep theirs.
    #[arg(long, env = "SHEQU_WORKING_CALENDAR_FILE")]
    pub working_calendar_file: Option<PathBuf>,
    /// Classifier weights (see `docs/classification.md`); default: the
    /// shipped weights, trained from the corpus. Watched: a changed file is
    /// reloaded within seconds (a bad one is logged and the weights in force
    /// stay).
    #[arg(long, env = "SHEQU_CLASSIFIER_FILE")]
    pub classifier_file: Option<PathBuf>,
    /// Metres within which an open complaint of the same category is
    /// suggested as a possible duplicate of a new one (see `docs/duplicates.md`);
    /// 0 turns the suggestions off.
    #[arg(long, env = "SHEQU_DUPLICATE_RADIUS_METRES", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(0..=5_000))]
    pub duplicate_radius_metres: u32,
    /// Days before a new complaint in which open ones are looked at as its
    /// possible duplicates.
    #[arg(long, env = "SHEQU_DUPLICATE_WINDOW_DAYS", default_value_t = 7,
          value_parser = clap::value_parser!(u32).range(1..=90))]
    pub duplicate_window_days: u32,
    /// Seconds between sweeps for breached time limits.
    #[arg(long, env = "SHEQU_SWEEP_INTERVAL_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub sweep_interval_secs: u64,
    /// Seconds between recomputations of the district's figures of the month
    /// that `/metrics` shows (`shequ_district_figure`).
    #[arg(long, env = "SHEQU_FIGURES_INTERVAL_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub figures_interval_secs: u64,
    /// The merchant-alliance service, asked about a complaint's merchant.
    #[arg(long, env = "SHEQU_ALLIANCE_URL", default_value = DEFAULT_ALLIANCE_URL)]
    pub alliance_url: String,
    /// How long a submission waits for merchant-alliance before marking the merchant unverified.
    #[arg(long, env = "SHEQU_ALLIANCE_TIMEOUT_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=30_000))]
    pub alliance_timeout_ms: u64,
}

/// How often the classifier's weights file is checked for a change.
const CLASSIFIER_WATCH: Duration = Duration::from_secs(2);

/// Where merchant-alliance listens unless told otherwise.
pub const DEFAULT_ALLIANCE_URL: &str = "http://127.0.0.1:50052";

impl Config {
    /// Defaults for running in-process (tests).
    pub fn new(common: CommonConfig) -> Self {
        Self {
            common,
            time_limits_file: None,
            working_calendar_file: None,
            classifier_file: None,
            duplicate_radius_metres: 50,
            duplicate_window_days: 7,
            sweep_interval_secs: 30,
            figures_interval_secs: 60,
            alliance_url: DEFAULT_ALLIANCE_URL.into(),
            alliance_timeout_ms: 1000,
        }
    }

    fn duplicate_policy(&self) -> DuplicatePolicy {
        DuplicatePolicy {
            radius_metres: f64::from(self.duplicate_radius_metres),
            window: chrono::Duration::days(i64::from(self.duplicate_window_days)),
        }
    }

    fn time_limits(&self) -> Result<TimeLimits, Error> {
        let limits = rules_file(
            "SHEQU_TIME_LIMITS_FILE",
            self.time_limits_file.as_deref(),
            TimeLimits::from_json,
        )?;
        let calendar = rules_file(
            "SHEQU_WORKING_CALENDAR_FILE",
            self.working_calendar_file.as_deref(),
            WorkingCalendar::from_json,
        )?;
        let years: Vec<i32> = calendar.years().collect();
        tracing::info!(?years, "working calendar loaded");
        Ok(limits.with_calendar(calendar))
    }
}

/// The service, bound to its ports and ready to run.
#[derive(Debug)]
pub struct Application {
    runtime: Runtime,
    sweeper: Sweeper,
}

impl Application {
    /// The sweeper, for running a pass on demand (tests, operators' tools).
    pub fn sweeper(&self) -> Sweeper {
        self.sweeper.clone()
    }
}

impl App for Application {
    type Config = Config;

    fn identity() -> &'static Identity {
        &IDENTITY
    }

    fn common(config: &Config) -> &CommonConfig {
        &config.common
    }

    async fn build(config: Config, clock: SharedClock) -> Result<Self, Error> {
        let limits = Arc::new(config.time_limits()?);
        let classifiers = Classifiers::load(config.classifier_file.as_deref())
            .map_err(|error| Error::Config(format!("SHEQU_CLASSIFIER_FILE: {error}")))?;
        let mut runtime =
            Runtime::start(Self::identity(), &config.common, access::access(), clock).await?;
        let merchants = MerchantDirectory::new(
            &runtime.peers,
            &config.alliance_url,
            Duration::from_millis(config.alliance_timeout_ms),
        )?;
        let store = Store::new(
            runtime.db.clone(),
            runtime.outbox.clone(),
            Arc::clone(&runtime.clock),
        )
        .with_duplicate_policy(config.duplicate_policy());
        let sweeper = runtime.sweeper(
            Escalations::new(store.clone()),
            Duration::from_secs(config.sweep_interval_secs),
        );
        let (figures, metrics) = (store.clone(), runtime.metrics.clone());
        let every = Duration::from_secs(config.figures_interval_secs);
        runtime.spawn(move |stop| gauges::keep(figures, metrics, every, stop));
        let api = ComplaintsApi::new(store, limits, merchants, classifiers.clone());
        runtime.spawn(move |stop| classifiers.watch(CLASSIFIER_WATCH, stop));
        runtime.serve(
            ComplaintServiceServer::new(api.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES),
        );
        runtime.serve(
            OrganisationServiceServer::new(api).max_decoding_message_size(MAX_MESSAGE_BYTES),
        );
        runtime.sweep(sweeper.clone());
        Ok(Self { runtime, sweeper })
    }

    fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn into_runtime(self) -> Runtime {
        self.runtime
    }
}
