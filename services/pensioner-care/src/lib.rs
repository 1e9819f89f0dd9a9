//! The pensioner-care service (党员助老结对帮扶): elders and their risk,
//! volunteers paired with at most two elders, visits on a schedule with overdue
//! alerts, service bookings (meals through the merchant alliance), complaints
//! filed from visits, and each elder's timeline.
//!
//! # Layout
//! - `access`: which roles may call each RPC.
//! - [`domain`]: the entities and rules, pure: elders and their details,
//!   risk, visit policy, "overdue" and the overdue periods, visit evidence
//!   (distance from home), visits requested after a major event, volunteers
//!   and the pairing cap, bookings (the horizon, booked → served | cancelled
//!   | no_show) and the meal merchant open at the meal's time, complaint
//!   filing, the timeline's entries, the month's care figures.
//! - [`store`]: the service's storage, [`store::Care`] (its domain
//!   operations), implemented natively per backend: [`store::sqlite`]
//!   (rusqlite on the writer thread; `elders`, `pairings`, `visits`,
//!   `requests`, `bookings`, `timeline`, `figures`) and [`store::postgres`] (`timestamptz`,
//!   `boolean`, `jsonb`; the same split); each change is one transaction with
//!   its timeline entries and outbox events.
//! - `grpc`: the `shequ.care.v1` adapter: validation, error mapping, and
//!   personal data only where it is needed.
//! - `filing_worker`: [`Filings`] of complaints from visits, retried until the
//!   complaints service answers.
//! - `meals`: asks merchant-alliance for the elder-meal merchants of the
//!   circle and takes the nearest open at the meal's time.
//! - `organisation`: asks the complaints service for a community's grids
//!   (the figures of a community).
//! - `consumers`: complaint outcomes into elders' timelines, and the visit
//!   a complaint about an elder requests, applied once.
//! - `sweeper`: [`OverdueNotices`], one overdue event per missed visit period
//!   and per requested visit not made in time.
//! - [`Config`], [`Application`]: settings, and the service assembled on the
//!   chassis runtime ([`shequ_chassis::runtime`]): its identity, its gRPC
//!   service, its consumer, sweeper and filing worker; `main.rs` is the
//!   chassis's `main`.

mod access;
mod consumers;
pub mod domain;
mod filing_worker;
mod grpc;
mod meals;
mod organisation;
pub mod store;
mod sweeper;

pub use filing_worker::{FilingWorker, Filings};
pub use sweeper::{OverdueNotices, Sweeper};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shequ_chassis::Error;
use shequ_chassis::clock::SharedClock;
use shequ_chassis::config::{CommonConfig, rules_file};
use shequ_chassis::grpc::MAX_MESSAGE_BYTES;
use shequ_chassis::nats::StreamSpec;
use shequ_chassis::runtime::{App, Identity, Runtime};
use shequ_proto::care::v1::care_service_server::CareServiceServer;
use shequ_proto::events::care as contract;

use crate::consumers::ComplaintOutcomes;
use crate::domain::visits::VisitPolicy;
use crate::grpc::CareApi;
use crate::meals::MealFinder;
use crate::organisation::Organisation;
use crate::store::Store;

/// The service as the chassis starts it: its name, default ports (gRPC on
/// 50053, admin on 9103), migrations (the chassis's run first) and stream.
pub static IDENTITY: Identity = Identity {
    name: "pensioner-care",
    grpc_addr: "127.0.0.1:50053",
    admin_addr: "127.0.0.1:9103",
    migrations: shequ_chassis::migrations!(),
    stream: StreamSpec {
        name: contract::STREAM,
        subjects: contract::SUBJECTS,
    },
};

/// The service's settings: the chassis's, and its own.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "pensioner-care",
    version,
    about = "The pensioner-care service (党员助老结对帮扶)"
)]
pub struct Config {
    #[command(flatten)]
    pub common: CommonConfig,
    /// The complaints service, where concern visits file complaints.
    #[arg(
        long,
        env = "SHEQU_COMPLAINTS_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub complaints_url: String,
    /// The merchant-alliance service, asked for meal merchants.
    #[arg(
        long,
        env = "SHEQU_ALLIANCE_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub alliance_url: String,
    /// How long a call to another service may take.
    #[arg(long, env = "SHEQU_CALL_TIMEOUT_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=30_000))]
    pub call_timeout_ms: u64,
    /// JSON visit intervals per risk level (see `domain::visits`); default: high 7, medium 14, low 30 days.
    #[arg(long, env = "SHEQU_VISIT_POLICY_FILE")]
    pub visit_policy_file: Option<PathBuf>,
    /// Seconds between sweeps for overdue visits.
    #[arg(long, env = "SHEQU_SWEEP_INTERVAL_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub sweep_interval_secs: u64,
}

impl Config {
    /// Defaults for running in-process (tests).
    pub fn new(common: CommonConfig) -> Self {
        Self {
            common,
            complaints_url: "http://127.0.0.1:50051".into(),
            alliance_url: "http://127.0.0.1:50052".into(),
            call_timeout_ms: 1000,
            visit_policy_file: None,
            sweep_interval_secs: 60,
        }
    }

    fn visit_policy(&self) -> Result<VisitPolicy, Error> {
        rules_file(
            "SHEQU_VISIT_POLICY_FILE",
            self.visit_policy_file.as_deref(),
            VisitPolicy::from_json,
        )
    }
}

/// The service, bound to its ports and ready to run.
#[derive(Debug)]
pub struct Application {
    runtime: Runtime,
    sweeper: Sweeper,
    filings: FilingWorker,
}

impl Application {
    /// The overdue sweeper, for running a pass on demand (tests, operators' tools).
    pub fn sweeper(&self) -> Sweeper {
        self.sweeper.clone()
    }

    /// The complaint-filing worker, for running a pass on demand.
    pub fn filing_worker(&self) -> FilingWorker {
        self.filings.clone()
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
        let policy = config.visit_policy()?;
        let timeout = Duration::from_millis(config.call_timeout_ms);
        let mut runtime =
            Runtime::start(Self::identity(), &config.common, access::access(), clock).await?;
        let meals = MealFinder::new(&runtime.peers, &config.alliance_url, timeout)?;
        let organisation = Organisation::new(&runtime.peers, &config.complaints_url, timeout)?;
        let store = Store::new(
            runtime.db.clone(),
            runtime.outbox.clone(),
            Arc::clone(&runtime.clock),
            policy.clone(),
        );
        let filings = Filings::new(
            store.clone(),
            &runtime.peers,
            &config.complaints_url,
            timeout,
        )?
        .worker(&runtime);
        let sweeper = runtime.sweeper(
            OverdueNotices::new(store.clone()),
            Duration::from_secs(config.sweep_interval_secs),
        );
        runtime.consume(
            consumers::complaint_events(),
            ComplaintOutcomes::new(store.clone(), policy.clone()),
        );
        runtime.sweep(sweeper.clone());
        runtime.sweep(filings.clone());
        runtime.serve(
            CareServiceServer::new(CareApi::new(store, meals, organisation, policy))
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        );
        Ok(Self {
            runtime,
            sweeper,
            filings,
        })
    }

    fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn into_runtime(self) -> Runtime {
        self.runtime
    }
}
