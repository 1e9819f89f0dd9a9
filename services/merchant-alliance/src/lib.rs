//! The merchant-alliance service (商户联盟): merchants and their 15-minute
//! convenience circle, an explainable credit score (诚信分) moved by complaint
//! outcomes and good deeds, and model-merchant awards (党员示范商户).
//!
//! # Layout
//! - [`access`]: which roles may call each RPC.
//! - [`domain`]: the rules, pure: merchants, coordinates and datums, geohash
//!   cells, opening hours, the circle, credit rules, award rules.
//! - [`store`]: the storage, as the domain asks for it ([`store::Alliance`]),
//!   with one native implementation per backend: [`store::sqlite`] (rusqlite on
//!   the writer thread) and [`store::postgres`] (sqlx's PostgreSQL driver), each
//!   split into `merchants`, `nearby` (the circle, by category and cell),
//!   `ledger` (credit entries, activities, complaint deductions, meal
//!   discounts) and `awards`; [`store::Store`] is whichever the URL chose. Each
//!   change is one transaction with its outbox events.
//! - [`grpc`]: the `shequ.alliance.v1` adapter: validation and error mapping.
//! - [`consumers`]: complaint outcomes and discounted elder meals, applied once
//!   (each claimed in the transaction of its effect, on either backend).
//! - [`Config`], [`Application`]: settings, and the service assembled from the
//!   chassis; `main.rs` only parses the config and runs it.

pub mod access;
pub mod consumers;
pub mod domain;
pub mod grpc;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use shequ_chassis::Error;
use shequ_chassis::clock::SharedClock;
use shequ_chassis::config::{CommonConfig, rules_file};
use shequ_chassis::grpc::MAX_MESSAGE_BYTES;
use shequ_chassis::nats::StreamSpec;
use shequ_chassis::runtime::{Runtime, Task};
use shequ_chassis::storage::Migrations;
use shequ_proto::alliance::v1::merchant_service_server::MerchantServiceServer;
use shequ_proto::events::alliance as contract;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::consumers::{ComplaintOutcomes, MealDiscounts};
use crate::domain::awards::AwardRules;
use crate::domain::credit::CreditRules;
use crate::domain::nearby::DEFAULT_METRES_PER_MINUTE;
use crate::grpc::AllianceApi;
use crate::store::Store;

/// Where the service listens unless told otherwise.
pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:50052";

/// Where the admin HTTP port (`/healthz`, `/readyz`, `/metrics`) listens unless told otherwise.
pub const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:9102";

/// The stream this service publishes into.
pub const STREAM: StreamSpec = StreamSpec {
    name: contract::STREAM,
    subjects: contract::SUBJECTS,
};

/// The service's migrations, one directory per backend.
pub static MIGRATIONS: Migrations = Migrations {
    sqlite: &sqlx::migrate!("migrations/sqlite"),
    postgres: &sqlx::migrate!("migrations/postgres"),
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
    /// JSON credit rules (see `domain::credit`); default: start 100, at fault -10, activity +2.
    #[arg(long, env = "SHEQU_CREDIT_RULES_FILE")]
    pub credit_rules_file: Option<PathBuf>,
    /// JSON model-merchant rules (see `domain::awards`); default: party member, score 95+, no fault, 2 activities.
    #[arg(long, env = "SHEQU_AWARD_RULES_FILE")]
    pub award_rules_file: Option<PathBuf>,
}

impl Config {
    /// Defaults for running in-process (tests).
    pub fn new(common: CommonConfig) -> Self {
        Self {
            common,
            walk_metres_per_minute: DEFAULT_METRES_PER_MINUTE,
            credit_rules_file: None,
            award_rules_file: None,
        }
    }
}

/// The service, bound to its port and ready to run.
#[derive(Debug)]
pub struct Application {
    runtime: Runtime,
    api: AllianceApi,
    store: Store,
}

impl Application {
    /// Opens the database (running migrations), connects to NATS in the
    /// background, and binds the gRPC port (port 0 picks a free one).
    pub async fn build(config: Config, clock: SharedClock) -> Result<Self, Error> {
        let speed = config.walk_metres_per_minute;
        if !(speed.is_finite() && speed > 0.0) {
            return Err(Error::Config(format!(
                "SHEQU_WALK_METRES_PER_MINUTE must be a positive number, got {speed}"
            )));
        }
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
        let runtime: Runtime = Runtime::start(
            "merchant-alliance",
            &config.common,
            DEFAULT_GRPC_ADDR,
            DEFAULT_ADMIN_ADDR,
            &MIGRATIONS,
            access::access(),
            clock,
        )
        .await?;
        let store = Store::new(
            runtime.db.clone(),
            runtime.outbox.clone(),
            Arc::clone(&runtime.clock),
            credit,
        );
        Ok(Self {
            api: AllianceApi::new(store.clone(), awards, speed),
            store,
            runtime,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.runtime.grpc_addr()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.runtime.admin_addr()
    }

    /// Serves until `shutdown`, consuming complaint and care events meanwhile;
    /// then stops in order (see the chassis runtime).
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), Error> {
        let rt = &self.runtime;
        let complaints = rt.consumer(
            consumers::complaint_events(),
            ComplaintOutcomes {
                store: self.store.clone(),
            },
        );
        let meals = rt.consumer(
            consumers::care_bookings(),
            MealDiscounts {
                store: self.store.clone(),
            },
        );
        let tasks: Vec<Task> = vec![
            Box::new(move |stop| Box::pin(complaints.run(stop))),
            Box::new(move |stop| Box::pin(meals.run(stop))),
        ];
        let routes = Routes::new(
            MerchantServiceServer::new(self.api).max_decoding_message_size(MAX_MESSAGE_BYTES),
        );
        self.runtime
            .run(
                STREAM,
                routes,
                &["shequ.alliance.v1.MerchantService"],
                tasks,
                shutdown,
            )
            .await?;
        tracing::info!("merchant-alliance stopped");
        Ok(())
    }
}
