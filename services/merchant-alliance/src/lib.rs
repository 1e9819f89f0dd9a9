//! The merchant-alliance service (商户联盟): merchants and their 15-minute
//! convenience circle, an explainable credit score (诚信分) moved by complaint
//! outcomes and good deeds, and model-merchant awards (党员示范商户).
//!
//! # Layout
//! - `access`: which roles may call each RPC.
//! - [`domain`]: the rules, pure: merchants, coordinates and datums, geohash
//!   cells, opening hours, the circle and the service area it is searched
//!   in, the circle's basic services (data) and its coverage per grid,
//!   credit rules, award rules.
//! - [`store`]: the storage, as the domain asks for it ([`store::Alliance`]),
//!   with one native implementation per backend: [`store::sqlite`] (rusqlite on
//!   the writer thread) and [`store::postgres`] (sqlx's PostgreSQL driver), each
//!   split into `merchants`, `nearby` (the circle, by category and cell),
//!   `ledger` (credit entries, activities, complaint deductions, meal
//!   discounts), `awards` and `coverage` (building points, coverage as last
//!   applied); [`store::Store`] is whichever the URL chose. Each change is one
//!   transaction with its outbox events.
//! - `grpc`: the `shequ.alliance.v1` adapter: validation and error mapping.
//! - `consumers`: complaint outcomes and discounted elder meals, applied once
//!   (each claimed in the transaction of its effect, on either backend).
//! - `coverage_watcher`: [`CoverageWatch`], the district's circle coverage
//!   recomputed after each merchant change and building load (and every
//!   interval), one `circle.coverage_changed` event per flip.
//! - [`Config`], [`Application`]: settings (the service area among them,
//!   checked at start), and the service assembled on the
//!   chassis runtime ([`shequ_chassis::runtime`]): its identity, its gRPC
//!   service, its two consumers and the coverage watcher; `main.rs` is the
//!   chassis's `main`.

mod access;
mod consumers;
mod coverage_watcher;
pub mod domain;
mod grpc;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shequ_chassis::Error;
use shequ_chassis::clock::SharedClock;
use shequ_chassis::config::{CommonConfig, rules_file};
use shequ_chassis::grpc::MAX_MESSAGE_BYTES;
use shequ_chassis::nats::StreamSpec;
use shequ_chassis::runtime::{App, Identity, Runtime};
use shequ_proto::alliance::v1::merchant_service_server::MerchantServiceServer;
use shequ_proto::events::alliance as contract;

use crate::consumers::{ComplaintOutcomes, MealDiscounts};
use crate::coverage_watcher::CoverageSignal;
pub use crate::coverage_watcher::{CoverageWatch, CoverageWatcher};
use crate::domain::awards::AwardRules;
use crate::domain::basic_services::{self, BasicServices};
use crate::domain::coverage::WALK_MINUTES as COVERAGE_WALK_MINUTES;
use crate::domain::credit::CreditRules;
use crate::domain::nearby::{DEFAULT_METRES_PER_MINUTE, MAX_WALK_MINUTES};
use crate::domain::service_area::ServiceArea;
use crate::grpc::AllianceApi;
use crate::store::Store;

/// The service as the chassis starts it: its name, default ports (gRPC on
/// 50052, admin on 9102), migrations and stream.
pub static IDENTITY: Identity = Identity {
    name: "merchant-alliance",
    grpc_addr: "127.0.0.1:50052",
    admin_addr: "127.0.0.1:9102",
    migrations: shequ_chassis::migrations!(),
    stream: StreamSpec {
        name: contract::STREAM,
        subjects: contract::SUBJECTS,
    },
};

/// The service's settings: the chassis's, and its own.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "merchant-alliance",
    version,
    about = "The merchant-alliance service (商户联盟)"
)]
pub struct Config {
    #[command(flatten)]
    pub common: CommonConfig,
    /// Walking speed for the convenience circle, metres per minute.
    #[arg(long, env = "SHEQU_WALK_METRES_PER_MINUTE", default_value_t = DEFAULT_METRES_PER_MINUTE)]
    pub walk_metres_per_minute: f64,
    /// The district served, `minlat,minlon,maxlat,maxlon` in WGS-84 degrees:
    /// merchants are placed and the circle searched only inside it; default
    /// Jinshui District. Refused at start when an hour's walk about its edge
    /// would reach a pole or the ±180° meridian or need too many index cells.
    #[arg(long, env = "SHEQU_SERVICE_AREA", default_value_t = ServiceArea::JINSHUI)]
    pub service_area: ServiceArea,
    /// JSON credit rules (see `domain::credit`); default: start 100, at fault -10, activity +2.
    #[arg(long, env = "SHEQU_CREDIT_RULES_FILE")]
    pub credit_rules_file: Option<PathBuf>,
    /// JSON model-merchant rules (see `domain::awards`); default: party member, score 95+, no fault, 2 activities.
    #[arg(long, env = "SHEQU_AWARD_RULES_FILE")]
    pub award_rules_file: Option<PathBuf>,
    /// JSON mapping of the circle's basic services onto merchant categories
    /// and tags (see `domain::basic_services`); default: the shipped one,
    /// after MOFCOM's guide to the 15-minute convenience circle.
    #[arg(long, env = "SHEQU_BASIC_SERVICES_FILE")]
    pub basic_services_file: Option<PathBuf>,
    /// Seconds between coverage recomputations when nothing wakes the
    /// watcher (a change on another replica, say).
    #[arg(long, env = "SHEQU_COVERAGE_INTERVAL_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub coverage_interval_secs: u64,
}

impl Config {
    /// Defaults for running in-process (tests).
    pub fn new(common: CommonConfig) -> Self {
        Self {
            common,
            walk_metres_per_minute: DEFAULT_METRES_PER_MINUTE,
            service_area: ServiceArea::JINSHUI,
            credit_rules_file: None,
            award_rules_file: None,
            basic_services_file: None,
            coverage_interval_secs: 60,
        }
    }

    /// The basic services' mapping: the file's, or the shipped one.
    fn basic_services(&self) -> Result<BasicServices, Error> {
        const SETTING: &str = "SHEQU_BASIC_SERVICES_FILE";
        let Some(path) = &self.basic_services_file else {
            return BasicServices::from_json(basic_services::DEFAULT_JSON)
                .map_err(|error| Error::Config(format!("the shipped basic services: {error}")));
        };
        let json = std::fs::read_to_string(path).map_err(|source| Error::Io {
            context: format!("reading {SETTING} {}", path.display()),
            source,
        })?;
        BasicServices::from_json(&json)
            .map_err(|error| Error::Config(format!("{SETTING} {}: {error}", path.display())))
    }
}

/// The service, bound to its ports and ready to run.
#[derive(Debug)]
pub struct Application {
    runtime: Runtime,
    coverage: CoverageWatcher,
}

impl Application {
    /// The coverage watcher, for running a pass on demand (tests, operators' tools).
    pub fn coverage_watcher(&self) -> CoverageWatcher {
        self.coverage.clone()
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
        let speed = config.walk_metres_per_minute;
        if !(speed.is_finite() && speed > 0.0) {
            return Err(Error::Config(format!(
                "SHEQU_WALK_METRES_PER_MINUTE must be a positive number, got {speed}"
            )));
        }
        let area = config.service_area;
        let widest = speed * f64::from(MAX_WALK_MINUTES);
        area.serves(widest).map_err(|why| {
            Error::Config(format!(
                "SHEQU_SERVICE_AREA {area} with SHEQU_WALK_METRES_PER_MINUTE {speed} \
                 (a {MAX_WALK_MINUTES}-minute walk: {widest} m) cannot be served: {why}"
            ))
        })?;
        let credit = Arc::new(rules_file(
            "SHEQU_CREDIT_RULES_FILE",
            config.credit_rules_file.as_deref(),
            CreditRules::from_json,
        )?);
        let awards = Arc::new(rules_file(
            "SHEQU_AWARD_RULES_FILE",
            config.award_rules_file.as_deref(),
            AwardRules::from_json,
        )?);
        let services = Arc::new(config.basic_services()?);
        let mut runtime =
            Runtime::start(Self::identity(), &config.common, access::access(), clock).await?;
        let store = Store::new(
            runtime.db.clone(),
            runtime.outbox.clone(),
            Arc::clone(&runtime.clock),
            credit,
        );
        runtime.consume(
            consumers::complaint_events(),
            ComplaintOutcomes {
                store: store.clone(),
            },
        );
        runtime.consume(
            consumers::care_bookings(),
            MealDiscounts {
                store: store.clone(),
            },
        );
        let signal = Arc::new(CoverageSignal::default());
        let watch = CoverageWatch::new(
            store.clone(),
            Arc::clone(&services),
            f64::from(COVERAGE_WALK_MINUTES) * speed,
            Arc::clone(&signal),
        );
        let wake = watch.wake();
        let coverage = runtime
            .sweeper(watch, Duration::from_secs(config.coverage_interval_secs))
            .woken_by(wake);
        runtime.sweep(coverage.clone());
        let api = AllianceApi::new(store, awards, speed, area, services, signal);
        runtime.serve(MerchantServiceServer::new(api).max_decoding_message_size(MAX_MESSAGE_BYTES));
        Ok(Self { runtime, coverage })
    }

    fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn into_runtime(self) -> Runtime {
        self.runtime
    }
}
