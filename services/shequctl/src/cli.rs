//! The command line: every command and flag, with the help `--help` shows.

use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use shequ_proto::alliance::v1 as alliance;
use shequ_proto::care::v1 as care;
use shequ_proto::common::v1 as common;
use shequ_proto::complaints::v1 as pb;

use crate::codes::CodeParser;
use crate::failure::Service;
use crate::hours;
use crate::subject::{self, Pattern};
use crate::time::{self, Since};

/// Where the complaints service listens unless told otherwise (ARCHITECTURE.md).
pub(crate) const DEFAULT_COMPLAINTS_URL: &str = "http://127.0.0.1:50051";
/// Where the merchant-alliance service listens unless told otherwise.
pub(crate) const DEFAULT_ALLIANCE_URL: &str = "http://127.0.0.1:50052";
/// Where the pensioner-care service listens unless told otherwise.
pub(crate) const DEFAULT_CARE_URL: &str = "http://127.0.0.1:50053";
/// Where NATS listens unless told otherwise (the services' default too).
pub(crate) const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

/// The heading the options every command takes are listed under.
const GLOBAL: &str = "Global options";

/// The operator command line for shequ (社区).
#[derive(Debug, Parser)]
#[command(
    name = "shequctl",
    version,
    about = "The operator command line for shequ (社区): the grid organisation, complaints, the merchant alliance, pensioner care and the events they publish",
    after_help = "Exit codes: 0 success, 1 other failure, 2 usage error, 3 service (or NATS) unreachable, \
                  4 invalid argument, 5 not found, 6 failed precondition, 7 no or unknown token, or a role not allowed.\n\
                  Times are shown in Asia/Shanghai (UTC+8)."
)]
pub(crate) struct Cli {
    /// gRPC address of the complaints service (http://host:port).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "SHEQU_COMPLAINTS_URL",
        default_value = DEFAULT_COMPLAINTS_URL,
        value_parser = parse_url
    )]
    pub(crate) complaints_url: String,
    /// gRPC address of the merchant-alliance service (http://host:port).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "SHEQU_ALLIANCE_URL",
        default_value = DEFAULT_ALLIANCE_URL,
        value_parser = parse_url
    )]
    pub(crate) alliance_url: String,
    /// gRPC address of the pensioner-care service (http://host:port).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "SHEQU_CARE_URL",
        default_value = DEFAULT_CARE_URL,
        value_parser = parse_url
    )]
    pub(crate) care_url: String,
    /// File holding your bearer token (`make run` writes data/auth/operator.token).
    #[arg(long, global = true, help_heading = GLOBAL, env = "SHEQU_TOKEN_FILE")]
    pub(crate) token_file: Option<std::path::PathBuf>,
    /// CA certificate (PEM) to trust for https:// service URLs.
    #[arg(long, global = true, help_heading = GLOBAL, env = "SHEQU_GRPC_TLS_CA_FILE")]
    pub(crate) ca_file: Option<std::path::PathBuf>,
    /// Print machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// The grid organisation: communities, grids, buildings and who answers at each level.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Complaints (诉求): submit, inspect, work through their lifecycle, figures.
    #[command(subcommand)]
    Complaints(Box<ComplaintsCommand>),
    /// The merchant alliance (商户联盟): merchants, the convenience circle, credit, awards.
    #[command(subcommand)]
    Merchants(Box<MerchantsCommand>),
    /// Pensioner care (党员助老结对帮扶): elders, volunteers, pairings, visits, bookings.
    #[command(subcommand)]
    Care(Box<CareCommand>),
    /// The events the services publish (CloudEvents on NATS JetStream), and the ones
    /// their consumers parked.
    #[command(subcommand)]
    Events(EventsCommand),
}

impl Cli {
    /// The service the command talks to, named in errors.
    pub(crate) fn service(&self) -> Service<'_> {
        match &self.command {
            Command::Org(_) | Command::Complaints(_) => self.named(ServiceName::Complaints),
            Command::Merchants(_) => self.named(ServiceName::MerchantAlliance),
            Command::Care(_) => self.named(ServiceName::PensionerCare),
            Command::Events(EventsCommand::Tail(tail)) => Service {
                name: "NATS",
                url: &tail.nats.url,
            },
            Command::Events(EventsCommand::Parked(ParkedArgs { service, .. }))
            | Command::Events(EventsCommand::Replay(ReplayArgs { service, .. })) => {
                self.named(*service)
            }
        }
    }

    /// `which` service, at the URL its global flag gives.
    fn named(&self, which: ServiceName) -> Service<'_> {
        let url = match which {
            ServiceName::Complaints => &self.complaints_url,
            ServiceName::MerchantAlliance => &self.alliance_url,
            ServiceName::PensionerCare => &self.care_url,
        };
        Service {
            name: which.name(),
            url,
        }
    }
}

/// A service by the name operators (and errors) call it, for the commands every
/// service serves (`events parked`, `events replay`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ServiceName {
    /// At --complaints-url.
    Complaints,
    /// At --alliance-url.
    #[value(alias = "alliance")]
    MerchantAlliance,
    /// At --care-url.
    #[value(alias = "care")]
    PensionerCare,
}

impl ServiceName {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Complaints => "complaints",
            Self::MerchantAlliance => "merchant-alliance",
            Self::PensionerCare => "pensioner-care",
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum OrgCommand {
    /// Replace the whole organisation with the one in a JSON file.
    ///
    /// The file: {"district_handler": "...", "communities": [{"id", "name",
    /// "committee_handler", "grids": [{"id", "name", "worker", "branch_handler",
    /// "building_ids": [...]}]}]}; see deploy/organisation.example.json.
    Load {
        /// The JSON organisation file.
        file: PathBuf,
    },
    /// Show the organisation as a tree (with --json: in the file format `load` reads).
    Show,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ComplaintsCommand {
    /// Submit a complaint from any channel.
    Submit(SubmitArgs),
    /// Show one complaint with its history.
    Show {
        /// The complaint id.
        id: String,
    },
    /// List complaints, newest first.
    List(ListArgs),
    /// Acknowledge a submitted complaint (its response time limit stops) and assign it.
    Accept {
        #[command(flatten)]
        change: Change,
        /// Who handles it; default: the handler of the complaint's current level.
        #[arg(long)]
        assignee: Option<String>,
    },
    /// Start work on an accepted or reopened complaint.
    Start {
        #[command(flatten)]
        change: Change,
    },
    /// Record what was done; the follow-up visit becomes due.
    Resolve {
        #[command(flatten)]
        change: Change,
        /// What was done (1-2000 characters).
        #[arg(long)]
        note: String,
        /// The merchant the complaint names was at fault.
        #[arg(long)]
        merchant_at_fault: bool,
    },
    /// Record the follow-up visit (回访): 3-5 closes the complaint, 1-2 reopens it.
    FollowUp {
        #[command(flatten)]
        change: Change,
        /// The resident's satisfaction, 1 to 5 (checked by the service).
        #[arg(long)]
        satisfaction: u32,
        /// The problem came back: reopens the complaint whatever the score.
        #[arg(long)]
        recurred: bool,
        /// What the resident said (at most 500 characters).
        #[arg(long)]
        comment: Option<String>,
    },
    /// Refuse a complaint the district does not handle.
    Reject {
        #[command(flatten)]
        change: Change,
        /// Why (1-500 characters).
        #[arg(long)]
        reason: String,
    },
    /// Mark a complaint as a duplicate of another open complaint of the same category.
    Merge {
        #[command(flatten)]
        change: Change,
        /// The complaint it duplicates.
        #[arg(long = "into", value_name = "OTHER")]
        into: String,
    },
    /// Change a complaint's category (and priority); time limits follow.
    Reclassify {
        #[command(flatten)]
        change: Change,
        /// The new category.
        #[arg(long, value_parser = CodeParser::<pb::Category>::new())]
        category: pb::Category,
        /// The new priority; default: keep the current one.
        #[arg(long, value_parser = CodeParser::<pb::Priority>::new())]
        priority: Option<pb::Priority>,
    },
    /// Response, on-time resolution, satisfaction and reopen rates, and the open backlog.
    Figures(FiguresArgs),
}

/// What every transition names: the complaint, who does it, and an optional
/// idempotency key.
#[derive(Debug, Args)]
pub(crate) struct Change {
    /// The complaint id.
    pub(crate) id: String,
    /// Who does it: an account id, counted only by a service without
    /// authentication (with a token, the token's account is the actor).
    #[arg(long, env = "SHEQU_ACTOR", default_value = "")]
    pub(crate) actor: String,
    /// Idempotency key: a retry with the same key changes nothing.
    #[arg(long)]
    pub(crate) request_id: Option<String>,
}

/// An optional point on the map: both coordinates or neither.
#[derive(Debug, Args)]
pub(crate) struct MapPoint {
    /// Latitude in degrees (with --lng).
    #[arg(long, requires = "lng", allow_negative_numbers = true)]
    pub(crate) lat: Option<f64>,
    /// Longitude in degrees (with --lat).
    #[arg(long, requires = "lat", allow_negative_numbers = true)]
    pub(crate) lng: Option<f64>,
    /// The datum of --lat/--lng: gcj02 is what Chinese map apps and mini-programs report,
    /// wgs84 what GPS does.
    #[arg(
        long,
        requires = "lat",
        default_value = "gcj02",
        value_parser = CodeParser::<common::Datum>::new()
    )]
    pub(crate) datum: common::Datum,
}

impl MapPoint {
    /// The point as the contract's message, when one was given.
    pub(crate) fn to_proto(&self) -> Option<common::GeoPoint> {
        self.lat
            .zip(self.lng)
            .map(|(latitude, longitude)| common::GeoPoint {
                latitude,
                longitude,
                datum: self.datum.into(),
            })
    }
}

#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    /// What the resident says (1-2000 characters).
    #[arg(long)]
    pub(crate) text: String,
    /// Where it came in.
    #[arg(long, value_parser = CodeParser::<pb::Channel>::new())]
    pub(crate) channel: pb::Channel,
    /// The category; default: chosen by the service's classifier (or left for review).
    #[arg(long, value_parser = CodeParser::<pb::Category>::new())]
    pub(crate) category: Option<pb::Category>,
    /// How fast it must be handled; default: normal.
    #[arg(long, value_parser = CodeParser::<pb::Priority>::new())]
    pub(crate) priority: Option<pb::Priority>,
    /// The grid (a grid or a building is required).
    #[arg(long)]
    pub(crate) grid: Option<String>,
    /// The building, which picks its grid.
    #[arg(long)]
    pub(crate) building: Option<String>,
    /// The place in words (at most 200 characters).
    #[arg(long)]
    pub(crate) location: Option<String>,
    /// Where on a map: open complaints of the same category nearby are named as
    /// possible duplicates.
    #[command(flatten)]
    pub(crate) point: MapPoint,
    /// The resident's name (anonymous when absent).
    #[arg(long)]
    pub(crate) reporter_name: Option<String>,
    /// The resident's phone.
    #[arg(long)]
    pub(crate) reporter_phone: Option<String>,
    /// The merchant the complaint is about.
    #[arg(long)]
    pub(crate) merchant: Option<String>,
    /// The elder the complaint concerns.
    #[arg(long)]
    pub(crate) elder: Option<String>,
    /// Idempotency key; default: a fresh UUIDv7. Reuse it to retry safely.
    #[arg(long)]
    pub(crate) request_id: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only complaints in this status (submitted, accepted, in_progress, resolved,
    /// closed, reopened, rejected, merged).
    #[arg(long, value_parser = CodeParser::<pb::Status>::new())]
    pub(crate) status: Option<pb::Status>,
    /// Only complaints routed to this grid.
    #[arg(long)]
    pub(crate) grid: Option<String>,
    /// Only complaints in this community.
    #[arg(long)]
    pub(crate) community: Option<String>,
    /// Only complaints of this category.
    #[arg(long, value_parser = CodeParser::<pb::Category>::new())]
    pub(crate) category: Option<pb::Category>,
    /// Only complaints past a time limit now.
    #[arg(long)]
    pub(crate) overdue: bool,
    #[command(flatten)]
    pub(crate) page: PageArgs,
}

#[derive(Debug, Args)]
pub(crate) struct FiguresArgs {
    /// One community; default: the whole district.
    #[arg(long, conflicts_with = "grid")]
    pub(crate) community: Option<String>,
    /// One grid; default: the whole district.
    #[arg(long)]
    pub(crate) grid: Option<String>,
    /// First day (YYYY-MM-DD, Asia/Shanghai) of complaints submitted; default: 30 days before --to.
    #[arg(long, value_parser = time::parse_date)]
    pub(crate) from: Option<NaiveDate>,
    /// Last day (YYYY-MM-DD, Asia/Shanghai), included; default: up to now.
    #[arg(long, value_parser = time::parse_date)]
    pub(crate) to: Option<NaiveDate>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum MerchantsCommand {
    /// Register a merchant; a retry with the same --request-id registers nothing new.
    Register {
        #[command(flatten)]
        details: DetailsArgs,
        /// Idempotency key; default: a fresh UUIDv7. Reuse it to retry safely.
        #[arg(long)]
        request_id: Option<String>,
        /// Who registers it: an account id, counted only by a service without
        /// authentication (with a token, the token's account is the actor).
        #[arg(long, env = "SHEQU_ACTOR", default_value = "")]
        actor: String,
    },
    /// Show one merchant.
    Show {
        /// The merchant id.
        id: String,
        /// The datum to show the location in; default: the service's, wgs84.
        #[arg(long, value_parser = CodeParser::<common::Datum>::new())]
        datum: Option<common::Datum>,
    },
    /// List merchants.
    List(MerchantListArgs),
    /// Replace a merchant's details (every field: what is not given is cleared).
    Update {
        /// The merchant id.
        id: String,
        #[command(flatten)]
        details: DetailsArgs,
        /// Who changes it: an account id, counted only by a service without
        /// authentication (with a token, the token's account is the actor).
        #[arg(long, env = "SHEQU_ACTOR", default_value = "")]
        actor: String,
    },
    /// Take an active merchant out of searches and awards.
    Suspend {
        /// The merchant id.
        id: String,
        /// Why (1-500 characters).
        #[arg(long)]
        reason: String,
        /// Who suspends it: an account id, counted only by a service without
        /// authentication (with a token, the token's account is the actor).
        #[arg(long, env = "SHEQU_ACTOR", default_value = "")]
        actor: String,
    },
    /// Bring a suspended merchant back.
    Reinstate {
        /// The merchant id.
        id: String,
        /// Who reinstates it: an account id, counted only by a service without
        /// authentication (with a token, the token's account is the actor).
        #[arg(long, env = "SHEQU_ACTOR", default_value = "")]
        actor: String,
    },
    /// The convenience circle (便民服务圈): active merchants of a category within a walk, nearest first.
    Nearby(NearbyArgs),
    /// Record a welfare or environment activity (公益活动); it raises the credit score.
    Activity(ActivityArgs),
    /// The credit score (诚信分) and every change that made it, oldest first.
    Ledger {
        /// The merchant id.
        id: String,
    },
    /// Apply the model-merchant rules (党员示范商户) for a period; with --award, record the awards.
    Evaluate {
        /// A quarter like 2026-Q4 or a month like 2026-11 (checked by the service).
        #[arg(long)]
        period: String,
        /// Record and publish the awards (once per merchant and period); without it, only report.
        #[arg(long, requires = "actor")]
        award: bool,
        /// Who awards (1-64 characters); needed with --award.
        #[arg(long, env = "SHEQU_ACTOR")]
        actor: Option<String>,
    },
    /// Circle coverage (一刻钟便民生活圈): per grid, whether each basic service has an active
    /// merchant within a 15-minute walk of every building; grids with a gap first.
    Coverage {
        /// Only this grid.
        #[arg(long, conflicts_with = "building")]
        grid: Option<String>,
        /// Only this building (its grid, counted over it alone).
        #[arg(long)]
        building: Option<String>,
        /// Also each building's nearest merchant of each service.
        #[arg(long)]
        buildings: bool,
    },
    /// Replace every building point of the district (for coverage) from a JSON file:
    /// {"datum": "gcj02", "buildings": [{"building_id", "grid_id", "latitude", "longitude"}]}
    /// (see deploy/buildings.example.json).
    LoadBuildings {
        /// The building points file.
        file: PathBuf,
    },
}

/// What an operator describes a merchant with (register and update).
#[derive(Debug, Args)]
pub(crate) struct DetailsArgs {
    /// The merchant's name (1-100 characters).
    #[arg(long)]
    pub(crate) name: String,
    /// What it does.
    #[arg(long, value_parser = CodeParser::<alliance::Category>::new())]
    pub(crate) category: alliance::Category,
    /// A service it offers beyond its category, e.g. elder_meals (a-z, 0-9, _); repeat for more.
    #[arg(long = "tag", value_name = "TAG")]
    pub(crate) tags: Vec<String>,
    /// Latitude in degrees, -90 to 90 (checked by the service).
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) lat: f64,
    /// Longitude in degrees, -180 to 180 (checked by the service).
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) lng: f64,
    /// The datum of --lat/--lng: gcj02 is what Chinese map apps and mini-programs report,
    /// wgs84 what GPS does.
    #[arg(long, default_value = "gcj02", value_parser = CodeParser::<common::Datum>::new())]
    pub(crate) datum: common::Datum,
    /// The grid it is in.
    #[arg(long)]
    pub(crate) grid: String,
    /// The address in words (at most 200 characters).
    #[arg(long)]
    pub(crate) address: Option<String>,
    /// Opening hours in district time, e.g. "mon-fri 08:00-20:00", "sat,sun 09:00-21:00",
    /// "daily 00:00-24:00", "fri 18:00-02:00" (past midnight); repeat for more.
    #[arg(long, value_name = "DAYS HH:MM-HH:MM", value_parser = hours::parse)]
    pub(crate) hours: Vec<alliance::OpeningHours>,
    /// Run by a party member (needed for the model-merchant award).
    #[arg(long)]
    pub(crate) party_member_owner: bool,
}

#[derive(Debug, Args)]
pub(crate) struct MerchantListArgs {
    /// Only merchants in this grid.
    #[arg(long)]
    pub(crate) grid: Option<String>,
    /// Only merchants of this category.
    #[arg(long, value_parser = CodeParser::<alliance::Category>::new())]
    pub(crate) category: Option<alliance::Category>,
    /// Only merchants in this status (active, suspended).
    #[arg(long, value_parser = CodeParser::<alliance::MerchantStatus>::new())]
    pub(crate) status: Option<alliance::MerchantStatus>,
    #[command(flatten)]
    pub(crate) page: PageArgs,
}

#[derive(Debug, Args)]
pub(crate) struct NearbyArgs {
    /// Where the resident is: latitude in degrees.
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) lat: f64,
    /// Where the resident is: longitude in degrees.
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) lng: f64,
    /// The datum of --lat/--lng (the merchants' locations are shown in it too).
    #[arg(long, default_value = "gcj02", value_parser = CodeParser::<common::Datum>::new())]
    pub(crate) datum: common::Datum,
    /// What kind of merchant.
    #[arg(long, value_parser = CodeParser::<alliance::Category>::new())]
    pub(crate) category: alliance::Category,
    /// Only merchants offering this service, e.g. elder_meals.
    #[arg(long)]
    pub(crate) tag: Option<String>,
    /// How many minutes' walk, 1-60 (checked by the service).
    #[arg(long, default_value_t = 15)]
    pub(crate) minutes: i32,
    /// Only merchants open now, by their opening hours.
    #[arg(long)]
    pub(crate) open_now: bool,
    /// At most this many, 1-100; default: the service's, 20.
    #[arg(long)]
    pub(crate) limit: Option<u32>,
}

#[derive(Debug, Args)]
pub(crate) struct ActivityArgs {
    /// The merchant id.
    pub(crate) id: String,
    /// What kind of good deed.
    #[arg(long, value_parser = CodeParser::<alliance::ActivityKind>::new())]
    pub(crate) kind: alliance::ActivityKind,
    /// What was done (1-500 characters).
    #[arg(long)]
    pub(crate) description: String,
    /// When, "YYYY-MM-DD HH:MM" in district time (UTC+8); default: now. Not in the future.
    #[arg(long, value_name = "YYYY-MM-DD HH:MM", value_parser = time::parse_minute)]
    pub(crate) at: Option<DateTime<Utc>>,
    /// Idempotency key; default: a fresh UUIDv7. Reuse it to retry safely.
    #[arg(long)]
    pub(crate) request_id: Option<String>,
    /// Who records it: an account id, counted only by a service without
    /// authentication (with a token, the token's account is the actor).
    #[arg(long, env = "SHEQU_ACTOR", default_value = "")]
    pub(crate) actor: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CareCommand {
    /// Elders (老人): register, show with their personal data, list by risk.
    #[command(subcommand)]
    Elders(EldersCommand),
    /// Volunteers (志愿者): register, list.
    #[command(subcommand)]
    Volunteers(VolunteersCommand),
    /// Pair a volunteer with an elder (结对帮扶): a volunteer looks after at most two
    /// elders, an elder has one volunteer, and only with the elder's consent.
    Pair {
        /// The volunteer id.
        #[arg(long)]
        volunteer: String,
        /// The elder id.
        #[arg(long)]
        elder: String,
        /// Who pairs them: an account id, counted only by a service without
        /// authentication (with a token, the token's account is the actor).
        #[arg(long, env = "SHEQU_ACTOR", default_value = "")]
        actor: String,
        /// Idempotency key: a retry with the same key returns the first pairing.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// End an elder's pairing with their volunteer.
    Unpair {
        /// The elder id.
        #[arg(long)]
        elder: String,
        /// Why (1-500 characters).
        #[arg(long)]
        reason: String,
        /// Who ends it: an account id, counted only by a service without
        /// authentication (with a token, the token's account is the actor).
        #[arg(long, env = "SHEQU_ACTOR", default_value = "")]
        actor: String,
        /// Idempotency key: a retry with the same key returns the ended pairing.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Record a home visit or phone call; a concern files a complaint, an urgent
    /// visit also raises an alert at once.
    Visit(VisitArgs),
    /// Elders whose visit is overdue, longest overdue first.
    Overdue {
        /// Only this grid.
        #[arg(long)]
        grid: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Book a service at the elderly-care complex; meal assistance (助餐) finds the
    /// nearest alliance merchant serving elder meals within a 15-minute walk.
    Book(BookArgs),
    /// Settle a booking: served (a served meal credits its merchant in the
    /// alliance), cancelled, or no-show (the elder did not come).
    Settle {
        /// The booking id.
        booking: String,
        /// What became of it.
        #[arg(value_enum)]
        outcome: Settlement,
        /// Who settles it: an account id, counted only by a service without
        /// authentication (with a token, the token's account is the actor).
        #[arg(long, env = "SHEQU_ACTOR", default_value = "")]
        actor: String,
        /// Idempotency key; default: a fresh UUIDv7. Reuse it to retry safely.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// What happened to an elder, oldest first: registration, pairings, visits,
    /// bookings, complaints and their outcome, alerts.
    Timeline {
        /// The elder id.
        elder: String,
    },
    /// The care figures of a month (探访关爱): the monthly visit rate, on-time
    /// visits, overdue and unpaired elders, volunteers' load, concern and urgent
    /// visits and what became of their complaints (docs/care-figures.md).
    Figures {
        /// One community (its grids, as the complaints service has them);
        /// default: the whole district.
        #[arg(long, conflicts_with = "grid")]
        community: Option<String>,
        /// One grid; default: the whole district.
        #[arg(long)]
        grid: Option<String>,
        /// The month, YYYY-MM (Asia/Shanghai); default: the current one.
        #[arg(long, value_name = "YYYY-MM")]
        month: Option<String>,
    },
    /// Request a visit within hours after a major event (重大事件后探访): the
    /// elder's next visit meets it; one not made in time is escalated to the grid.
    RequestVisit {
        /// The elder id.
        #[arg(long)]
        elder: String,
        /// Within how many hours (1-720); default: the visit policy's (24).
        #[arg(long)]
        hours: Option<u32>,
        /// What happened (1-200 characters), e.g. 暴雨.
        #[arg(long)]
        note: Option<String>,
        /// Idempotency key; default: a fresh UUIDv7. Reuse it to retry safely.
        #[arg(long)]
        request_id: Option<String>,
        /// Who requests it: an account id, counted only by a service without
        /// authentication (with a token, the token's account is the actor).
        #[arg(long, env = "SHEQU_ACTOR", default_value = "")]
        actor: String,
    },
    /// Requested visits, newest first: who needs one, by when, and whether it
    /// was made or is overdue.
    VisitRequests {
        /// Only this grid.
        #[arg(long)]
        grid: Option<String>,
        /// Only those not made yet.
        #[arg(long)]
        open: bool,
        #[command(flatten)]
        page: PageArgs,
    },
}

/// What became of a booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Settlement {
    Served,
    Cancelled,
    NoShow,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EldersCommand {
    /// Register an elder; prints the risk level (by stated rules, with the reasons)
    /// and the visit schedule it sets. A retry with the same --request-id registers
    /// nothing new.
    Register(Box<ElderArgs>),
    /// Show one elder with personal data: health, whereabouts, emergency contacts.
    Show {
        /// The elder id.
        id: String,
    },
    /// List elders, highest risk first: no health notes, addresses or contacts.
    List(ElderListArgs),
}

/// What an operator registers an elder with.
#[derive(Debug, Args)]
pub(crate) struct ElderArgs {
    /// The elder's name (1-200 characters).
    #[arg(long)]
    pub(crate) name: String,
    /// Date of birth, YYYY-MM-DD; not in the future (checked by the service).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = time::parse_date)]
    pub(crate) birth_date: NaiveDate,
    /// female or male.
    #[arg(long, value_parser = CodeParser::<care::Gender>::new())]
    pub(crate) gender: care::Gender,
    /// The grid the elder lives in (1-64 characters).
    #[arg(long)]
    pub(crate) grid: String,
    /// The building the elder lives in (at most 64 characters).
    #[arg(long)]
    pub(crate) building: Option<String>,
    /// The address in words (at most 200 characters).
    #[arg(long)]
    pub(crate) address: Option<String>,
    /// Where the elder lives (needed to book meals).
    #[command(flatten)]
    pub(crate) point: MapPoint,
    /// Who the elder lives with: alone (独居), empty_nest (空巢), with_family.
    #[arg(long, value_parser = CodeParser::<care::LivingSituation>::new())]
    pub(crate) living: care::LivingSituation,
    /// The elder has a disability.
    #[arg(long)]
    pub(crate) disability: bool,
    /// The elder has a chronic illness.
    #[arg(long)]
    pub(crate) chronic_illness: bool,
    /// Health notes, at most 2000 characters (personal data: shown by `care elders show` only).
    #[arg(long)]
    pub(crate) health_notes: Option<String>,
    /// Notes on the disability, at most 2000 characters (personal data).
    #[arg(long)]
    pub(crate) disability_notes: Option<String>,
    /// An emergency contact, "name,phone,relation" (e.g. "李梅,13812345678,女儿");
    /// repeat for more, at most 5.
    #[arg(long = "contact", value_name = "NAME,PHONE,RELATION", value_parser = parse_contact)]
    pub(crate) contacts: Vec<care::EmergencyContact>,
    /// The elder consents to visits (needed for pairing; only then are visits overdue).
    #[arg(long)]
    pub(crate) consent: bool,
    /// Idempotency key; default: a fresh UUIDv7. Reuse it to retry safely.
    #[arg(long)]
    pub(crate) request_id: Option<String>,
    /// Who registers the elder: an account id, counted only by a service without
    /// authentication (with a token, the token's account is the actor).
    #[arg(long, env = "SHEQU_ACTOR", default_value = "")]
    pub(crate) actor: String,
}

#[derive(Debug, Args)]
pub(crate) struct ElderListArgs {
    /// Only this risk level.
    #[arg(long, value_parser = CodeParser::<care::RiskLevel>::new())]
    pub(crate) risk: Option<care::RiskLevel>,
    /// Only this grid.
    #[arg(long)]
    pub(crate) grid: Option<String>,
    /// Only elders without a volunteer.
    #[arg(long)]
    pub(crate) unpaired: bool,
    #[command(flatten)]
    pub(crate) page: PageArgs,
}

/// Which page of a list.
#[derive(Debug, Args)]
pub(crate) struct PageArgs {
    /// At most this many (1-200); default: the service's, 50.
    #[arg(long)]
    pub(crate) page_size: Option<u32>,
    /// The token the previous page printed.
    #[arg(long)]
    pub(crate) page_token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum VolunteersCommand {
    /// Register a volunteer; a retry with the same --request-id registers nothing new.
    Register {
        /// The volunteer's name (1-200 characters).
        #[arg(long)]
        name: String,
        /// The volunteer's phone, 5-20 digits.
        #[arg(long)]
        phone: String,
        /// The grid the volunteer serves (1-64 characters).
        #[arg(long)]
        grid: String,
        /// A party member (党员).
        #[arg(long)]
        party_member: bool,
        /// Idempotency key; default: a fresh UUIDv7. Reuse it to retry safely.
        #[arg(long)]
        request_id: Option<String>,
        /// Who registers the volunteer: an account id, counted only by a service without
        /// authentication (with a token, the token's account is the actor).
        #[arg(long, env = "SHEQU_ACTOR", default_value = "")]
        actor: String,
    },
    /// List volunteers with the elders they look after.
    List {
        /// Only this grid.
        #[arg(long)]
        grid: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
}

#[derive(Debug, Args)]
pub(crate) struct VisitArgs {
    /// The elder id.
    #[arg(long)]
    pub(crate) elder: String,
    /// The volunteer or staff member who visited (1-64 characters).
    #[arg(long)]
    pub(crate) visitor: String,
    /// home_visit (入户走访) or phone_call (电话问候).
    #[arg(long, value_parser = CodeParser::<care::VisitKind>::new())]
    pub(crate) kind: care::VisitKind,
    /// How the elder is: good; concern files a complaint (care visit channel);
    /// urgent files one and raises an alert.
    #[arg(long, value_parser = CodeParser::<care::Wellbeing>::new())]
    pub(crate) wellbeing: care::Wellbeing,
    /// Something the elder needs (1-200 characters); repeat for more, at most 10.
    #[arg(long = "need", value_name = "TEXT")]
    pub(crate) needs: Vec<String>,
    /// Notes on the visit (at most 2000 characters).
    #[arg(long)]
    pub(crate) notes: Option<String>,
    /// When, "YYYY-MM-DD HH:MM" in district time (UTC+8); default: now. Not in the future.
    #[arg(long, value_name = "YYYY-MM-DD HH:MM", value_parser = time::parse_minute)]
    pub(crate) at: Option<DateTime<Utc>>,
    /// Where the visit was recorded (--lat/--lng): only its distance from the
    /// elder's home is kept, and a home visit far from home is flagged.
    #[command(flatten)]
    pub(crate) recorded_at: MapPoint,
    /// Idempotency key; default: a fresh UUIDv7. Reuse it to retry safely.
    #[arg(long)]
    pub(crate) request_id: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct BookArgs {
    /// The elder id.
    #[arg(long)]
    pub(crate) elder: String,
    /// day_care (日间照料), meal_assistance (助餐), bathing (助浴), health_check (健康检查).
    #[arg(long, value_parser = CodeParser::<care::Service>::new())]
    pub(crate) service: care::Service,
    /// When, "YYYY-MM-DD HH:MM" in district time (UTC+8).
    #[arg(long, value_name = "YYYY-MM-DD HH:MM", value_parser = time::parse_minute)]
    pub(crate) at: DateTime<Utc>,
    /// Idempotency key; default: a fresh UUIDv7. Reuse it to retry safely.
    #[arg(long)]
    pub(crate) request_id: Option<String>,
    /// Who books: an account id, counted only by a service without
    /// authentication (with a token, the token's account is the actor).
    #[arg(long, env = "SHEQU_ACTOR", default_value = "")]
    pub(crate) actor: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EventsCommand {
    /// Follow the events whose subject matches a pattern, one line each (with --json,
    /// one CloudEvent per line): from now, replayed from the start of the streams, or
    /// from a time.
    ///
    /// Reads every stream whose subjects the pattern reaches (COMPLAINTS
    /// shequ.complaints.>, ALLIANCE shequ.alliance.>, CARE shequ.care.>) with an
    /// ordered consumer of its own: ephemeral, no acks, removed on exit (the server
    /// drops any left after 30 s idle). Events of one stream come in stream order;
    /// streams are merged as events arrive. Runs until Ctrl-C (exit 0), --count or
    /// --idle-exit. A line "following … from …" on stderr says the tail is subscribed.
    ///
    /// A line: the event's time (UTC+8), type, subject (the id of what it is about),
    /// event id and data. With --json, newline-delimited JSON: each line the CloudEvent
    /// as received plus `stream` and `streamsequence`. A body that is not a CloudEvent
    /// is printed raw (with --json as {"stream", "streamsequence", "natssubject",
    /// "published", "raw"}) with a warning on stderr.
    Tail(TailArgs),
    /// List the events a service's consumers parked (they can never apply as they came),
    /// oldest first.
    ///
    /// A consumer parks a message that is not a CloudEvent, or one its handler says
    /// names an impossible state, kept whole; transient failures are retried, never
    /// parked. Asks the service (--service picks it, at --complaints-url, --alliance-url or
    /// --care-url; the operator role only), not NATS. A table: id (what `events replay`
    /// takes), parked at (UTC+8), consumer, event type and event id ("-" when the message
    /// was not a CloudEvent), NATS subject, stream sequence, deliveries before it was
    /// parked, and the error. The payload and headers are not in the table: --payload
    /// prints each event whole instead, a block of its fields with its headers and the
    /// payload as received, line by line (other control characters escaped). With --json: {"service", "events": [{"id", "parked_at",
    /// "consumer", "event_type", "event_id", "nats_subject", "stream_sequence",
    /// "deliveries", "error", "headers", "payload"}]}, the payload always whole (a string).
    Parked(ParkedArgs),
    /// Apply a parked event again, once, through the consumer that parked it; print
    /// the outcome.
    ///
    /// The outcome: applied, or already_processed (its effect was there already);
    /// either way it is no longer parked. With --json: {"id", "outcome"}. When it still cannot apply, it stays parked with the new error and the exit code
    /// is 6 (failed precondition); an id the service has not parked exits 5; a transient
    /// failure (its database away) exits 3: try again later.
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ParkedArgs {
    /// The service whose parked events to list.
    #[arg(long, value_enum)]
    pub(crate) service: ServiceName,
    /// Only the events this durable consumer parked, e.g. merchant-alliance-complaints.
    #[arg(long, value_name = "NAME")]
    pub(crate) consumer: Option<String>,
    /// At most this many, 1-500; default: the service's, 100.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=500))]
    pub(crate) limit: Option<u32>,
    /// Print each event whole (its fields, headers and payload) instead of the table.
    #[arg(long)]
    pub(crate) payload: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// The service that parked the event.
    #[arg(long, value_enum)]
    pub(crate) service: ServiceName,
    /// The parked event's id, as `events parked` lists it.
    #[arg(value_name = "ID", value_parser = clap::value_parser!(i64).range(1..))]
    pub(crate) id: i64,
}

#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    /// The NATS subjects (= event types) to follow: `*` matches one token, `>` the rest,
    /// e.g. shequ.complaints.>, shequ.*.complaint.accepted.v1.
    #[arg(default_value = "shequ.>", value_parser = subject::parse)]
    pub(crate) pattern: Pattern,
    /// Where to start: start (everything the streams hold), now (only new events), an
    /// RFC 3339 time (2026-11-02T09:00:00Z) or a district time (UTC+8) "2026-11-02 17:30"
    /// or 2026-11-02.
    #[arg(long, default_value = "now", value_name = "start|now|TIME", value_parser = time::parse_since)]
    pub(crate) from: Since,
    /// Stop after this many events (bodies printed raw count too).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) count: Option<u64>,
    /// Stop once no event has come for this many seconds (e.g. 2 or 0.5): for
    /// scripts replaying what is there.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub(crate) idle_exit: Option<std::time::Duration>,
    #[command(flatten)]
    pub(crate) nats: NatsArgs,
}

/// Where NATS is and who to be to it.
#[derive(Debug, Args)]
pub(crate) struct NatsArgs {
    /// NATS server URL (nats://host:port; tls://… requires TLS). `make run` serves
    /// NATS on nats://127.0.0.1:14222.
    #[arg(
        long = "nats-url",
        env = "SHEQU_NATS_URL",
        default_value = DEFAULT_NATS_URL,
        value_parser = parse_nats_url
    )]
    pub(crate) url: String,
    /// NATS user (deploy/nats/nats.conf has `subscriber` for reading events);
    /// default: connect without one (a local server).
    #[arg(long = "nats-user", env = "SHEQU_NATS_USER", requires = "password")]
    pub(crate) user: Option<String>,
    /// The NATS user's password.
    #[arg(
        long = "nats-password",
        env = "SHEQU_NATS_PASSWORD",
        hide_env_values = true,
        requires = "user"
    )]
    pub(crate) password: Option<String>,
    /// CA certificate (PEM) the NATS server's certificate is checked against; setting it
    /// requires TLS.
    #[arg(long = "nats-ca-file", env = "SHEQU_NATS_CA_FILE", value_name = "PEM")]
    pub(crate) ca_file: Option<PathBuf>,
}

/// A positive number of seconds, fractions allowed.
fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| "expected a number of seconds, like 2 or 0.5".to_owned())?;
    if !(seconds > 0.0 && seconds <= 86_400.0) {
        return Err("expected more than 0 and at most 86400 seconds".to_owned());
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

/// NATS addresses as the services take them: one URL, or several separated by commas.
fn parse_nats_url(text: &str) -> Result<String, String> {
    for url in text.split(',') {
        url.trim()
            .parse::<async_nats::ServerAddr>()
            .map_err(|error| {
                format!("{url:?} is not a NATS URL like nats://127.0.0.1:4222: {error}")
            })?;
    }
    Ok(text.to_owned())
}

/// An emergency contact as `--contact` takes it: `name,phone,relation`, each part
/// trimmed and present (a full-width `，` separates too). The service checks
/// each part again.
fn parse_contact(text: &str) -> Result<care::EmergencyContact, String> {
    const EXAMPLE: &str = "like \"李梅,13812345678,女儿\"";
    let parts: Vec<&str> = text.split([',', '，']).map(str::trim).collect();
    let [name, phone, relation] = parts[..] else {
        return Err(format!(
            "expected name,phone,relation: 3 parts separated by commas, not {}; {EXAMPLE}",
            parts.len()
        ));
    };
    for (part, value) in [("name", name), ("phone", phone), ("relation", relation)] {
        if value.is_empty() {
            return Err(format!(
                "the {part} is empty: expected name,phone,relation, {EXAMPLE}"
            ));
        }
    }
    Ok(care::EmergencyContact {
        name: name.to_owned(),
        phone: phone.to_owned(),
        relation: relation.to_owned(),
    })
}

impl Cli {
    /// The command line with the global options listed once, on `shequctl
    /// --help`: each subcommand takes them (before or after its name) but its
    /// help shows only its own options, and a line pointing to the global ones.
    pub(crate) fn command_line() -> clap::Command {
        use clap::CommandFactory;
        let command = Cli::command();
        let globals: Vec<clap::Arg> = command
            .get_arguments()
            .filter(|arg| arg.is_global_set())
            .cloned()
            .collect();
        let names = globals
            .iter()
            .filter_map(clap::Arg::get_long)
            .map(|long| format!("--{long}"))
            .collect::<Vec<_>>()
            .join(", ");
        let note = format!("{GLOBAL} ({names}): see `shequctl --help`.");
        command.mut_subcommands(|sub| hide_globals(sub, &globals, &note))
    }

    /// Parses the process's arguments with [`Cli::command_line`] (exits with
    /// usage or help as clap does).
    pub(crate) fn parse_args() -> Self {
        use clap::FromArgMatches;
        let matches = Self::command_line().get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
    }
}

/// `command` and its subcommands holding hidden copies of the global options:
/// clap does not copy a global option into a subcommand that has it already
/// (nor one whose id the subcommand uses for an option of its own).
fn hide_globals(command: clap::Command, globals: &[clap::Arg], note: &str) -> clap::Command {
    let command = globals
        .iter()
        .filter(|global| {
            let id = global.get_id();
            !command.get_arguments().any(|arg| arg.get_id() == id)
        })
        .fold(command.clone(), |command, arg| {
            command.arg(arg.clone().hide(true))
        })
        .after_help(note.to_owned());
    command.mut_subcommands(|sub| hide_globals(sub, globals, note))
}

/// The service address: an `http://` URL tonic can connect to.
fn parse_url(url: &str) -> Result<String, String> {
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Err("must be an http:// or https:// URL, like http://127.0.0.1:50051".into());
    }
    tonic::transport::Endpoint::from_shared(url.to_owned())
        .map(|_| url.trim_end_matches('/').to_owned())
        .map_err(|error| format!("not a valid URL: {error}"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every flag of every subcommand says what it is for in `--help`.
    #[test]
    fn every_flag_has_help_text() {
        fn missing(command: &clap::Command, path: &str, out: &mut Vec<String>) {
            let path = format!("{path} {}", command.get_name());
            for arg in command.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    out.push(format!("{path} --{}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                missing(sub, &path, out);
            }
        }
        let mut out = Vec::new();
        missing(&Cli::command(), "", &mut out);
        assert!(out.is_empty(), "flags without help text: {out:?}");
    }

    /// A subcommand's help lists its own options, not the global ones,
    /// which it still takes; `shequctl --help` lists them.
    #[test]
    fn global_options_are_listed_once() {
        let help = |args: &[&str]| {
            let mut command = Cli::command_line();
            let mut path = vec!["shequctl"];
            path.extend_from_slice(args);
            let error = command
                .try_get_matches_from_mut(path.iter().copied().chain(["--help"]))
                .err()
                .map(|error| error.to_string());
            error.unwrap_or_default()
        };
        let top = help(&[]);
        assert!(top.contains("--complaints-url"), "{top}");
        for page in [
            &["complaints", "submit"][..],
            &["events", "tail"],
            &["care"],
        ] {
            let text = help(page);
            assert!(text.contains("Usage:"), "{page:?}: {text}");
            for global in [
                "--complaints-url",
                "--alliance-url",
                "--care-url",
                "--token-file",
            ] {
                assert!(
                    !text.contains(&format!("{global} <")),
                    "{page:?} lists {global}: {text}"
                );
            }
            assert!(text.contains("see `shequctl --help`"), "{page:?}: {text}");
        }
        let tail = help(&["events", "tail"]);
        assert!(tail.contains("--nats-url"), "{tail}");

        use clap::FromArgMatches;
        let matches = Cli::command_line()
            .try_get_matches_from([
                "shequctl",
                "complaints",
                "list",
                "--complaints-url",
                "http://10.0.0.9:50051",
                "--json",
            ])
            .map_err(|error| error.to_string());
        let cli = matches.and_then(|m| Cli::from_arg_matches(&m).map_err(|e| e.to_string()));
        let Ok(cli) = cli else {
            panic!("a global option after the subcommand did not parse: {cli:?}");
        };
        assert_eq!(cli.complaints_url, "http://10.0.0.9:50051");
        assert!(cli.json);
    }

    #[test]
    fn channel_is_taken_with_dashes_or_underscores() {
        for channel in ["mini-program", "mini_program"] {
            let cli = Cli::try_parse_from([
                "shequctl",
                "complaints",
                "submit",
                "--text",
                "路灯坏了",
                "--channel",
                channel,
            ]);
            let parsed = match &cli {
                Ok(Cli {
                    command: Command::Complaints(command),
                    ..
                }) => match command.as_ref() {
                    ComplaintsCommand::Submit(args) => Some(args.channel),
                    _ => None,
                },
                _ => None,
            };
            assert_eq!(parsed, Some(pb::Channel::MiniProgram), "{channel}: {cli:?}");
        }
    }

    #[test]
    fn an_unknown_status_is_a_usage_error() {
        let error = Cli::try_parse_from(["shequctl", "complaints", "list", "--status", "done"])
            .err()
            .map(|e| e.kind());
        assert_eq!(error, Some(clap::error::ErrorKind::InvalidValue));
    }

    #[test]
    fn community_and_grid_figures_exclude_each_other() {
        let error = Cli::try_parse_from([
            "shequctl",
            "complaints",
            "figures",
            "--community",
            "xinyuan",
            "--grid",
            "xinyuan-1",
        ])
        .err()
        .map(|e| e.kind());
        assert_eq!(error, Some(clap::error::ErrorKind::ArgumentConflict));
    }

    fn merchants(args: &[&str]) -> Result<MerchantsCommand, clap::error::ErrorKind> {
        let cli = Cli::try_parse_from(["shequctl", "merchants"].iter().chain(args))
            .map_err(|e| e.kind())?;
        match cli.command {
            Command::Merchants(command) => Ok(*command),
            _ => Err(clap::error::ErrorKind::InvalidSubcommand),
        }
    }

    const REGISTER: [&str; 12] = [
        "register",
        "--name",
        "老张家常菜",
        "--category",
        "elderly-care",
        "--lat",
        "-34.8",
        "--lng",
        "113.66",
        "--grid",
        "xinyuan-1",
        "--actor=op",
    ];

    #[test]
    fn a_merchant_is_placed_in_gcj02_unless_told_otherwise() {
        let Ok(MerchantsCommand::Register { details, .. }) = merchants(&REGISTER) else {
            panic!("register did not parse");
        };
        assert_eq!(details.datum, common::Datum::Gcj02);
        assert_eq!(details.category, alliance::Category::ElderlyCare);
        assert_eq!(details.lat, -34.8, "negative numbers are values");
        assert!(details.hours.is_empty() && details.tags.is_empty());

        let wgs84 = [&REGISTER[..], &["--datum", "wgs84"]].concat();
        let Ok(MerchantsCommand::Register { details, .. }) = merchants(&wgs84) else {
            panic!("register --datum wgs84 did not parse");
        };
        assert_eq!(details.datum, common::Datum::Wgs84);
    }

    #[test]
    fn hours_and_tags_repeat() {
        let args = [
            &REGISTER[..],
            &[
                "--hours",
                "mon-fri 08:00-20:00",
                "--hours",
                "sat-sun 09:00-21:00",
                "--tag",
                "elder_meals",
                "--tag",
                "delivery",
            ],
        ]
        .concat();
        let Ok(MerchantsCommand::Register { details, .. }) = merchants(&args) else {
            panic!("register did not parse");
        };
        assert_eq!(details.hours.len(), 2);
        assert_eq!(details.hours[1].days.len(), 2);
        assert_eq!(details.tags, ["elder_meals", "delivery"]);
    }

    #[test]
    fn bad_hours_datums_and_categories_are_usage_errors() {
        let usage = Err(clap::error::ErrorKind::InvalidValue);
        let with = |extra: &[&str]| merchants(&[&REGISTER[..], extra].concat()).map(|_| ());
        assert_eq!(
            with(&["--hours", "weekdays 8-20"]),
            Err(clap::error::ErrorKind::ValueValidation)
        );
        assert_eq!(with(&["--datum", "bd09"]), usage);
        let wrong_category = REGISTER.map(|arg| {
            if arg == "elderly-care" {
                "sanitation"
            } else {
                arg
            }
        });
        assert_eq!(merchants(&wrong_category).map(|_| ()), usage);
    }

    #[test]
    fn nearby_walks_15_minutes_by_default() {
        let args = [
            "nearby",
            "--lat",
            "34.8",
            "--lng",
            "113.66",
            "--category",
            "dining",
        ];
        let Ok(MerchantsCommand::Nearby(nearby)) = merchants(&args) else {
            panic!("nearby did not parse");
        };
        assert_eq!(nearby.minutes, 15);
        assert_eq!(nearby.datum, common::Datum::Gcj02);
        assert_eq!(nearby.limit, None);
    }

    #[test]
    fn awarding_needs_an_actor() {
        let report = merchants(&["evaluate", "--period", "2026-Q4"]);
        assert!(matches!(
            report,
            Ok(MerchantsCommand::Evaluate { award: false, .. })
        ));
        let award = merchants(&["evaluate", "--period", "2026-Q4", "--award"]).map(|_| ());
        assert_eq!(award, Err(clap::error::ErrorKind::MissingRequiredArgument));
    }

    fn care(args: &[&str]) -> Result<CareCommand, clap::error::ErrorKind> {
        let cli =
            Cli::try_parse_from(["shequctl", "care"].iter().chain(args)).map_err(|e| e.kind())?;
        match cli.command {
            Command::Care(command) => Ok(*command),
            _ => Err(clap::error::ErrorKind::InvalidSubcommand),
        }
    }

    const ELDER: [&str; 13] = [
        "elders",
        "register",
        "--name",
        "王秀英",
        "--birth-date",
        "1943-05-01",
        "--gender",
        "female",
        "--grid",
        "xinyuan-1",
        "--living",
        "empty-nest",
        "--actor=op",
    ];

    fn elder(extra: &[&str]) -> Result<ElderArgs, clap::error::ErrorKind> {
        match care(&[&ELDER[..], extra].concat())? {
            CareCommand::Elders(EldersCommand::Register(args)) => Ok(*args),
            _ => Err(clap::error::ErrorKind::InvalidSubcommand),
        }
    }

    #[test]
    fn a_contact_is_name_phone_relation() {
        assert_eq!(
            parse_contact(" 李梅 , 13812345678 ,女儿"),
            Ok(care::EmergencyContact {
                name: "李梅".into(),
                phone: "13812345678".into(),
                relation: "女儿".into(),
            })
        );
        let full_width = parse_contact("张伟，0371-6688-1234，邻居").map(|c| c.phone);
        assert_eq!(full_width.as_deref(), Ok("0371-6688-1234"));
    }

    #[test]
    fn a_contact_without_three_parts_is_refused_with_an_example() {
        for text in ["李梅,13812345678", "李梅", "李梅,138,女儿,邻居", ""] {
            let message = parse_contact(text).err().unwrap_or_default();
            assert!(message.contains("name,phone,relation"), "{text}: {message}");
        }
        let message = parse_contact("李梅, ,女儿").err().unwrap_or_default();
        assert!(message.starts_with("the phone is empty"), "{message}");
    }

    #[test]
    fn an_elder_is_registered_with_code_names_and_repeated_contacts() {
        let args = elder(&[
            "--contact",
            "李梅,13812345678,女儿",
            "--contact",
            "张伟,13900001111,邻居",
            "--disability",
            "--consent",
        ]);
        let Ok(args) = args else {
            panic!("register did not parse: {args:?}");
        };
        assert_eq!(args.gender, care::Gender::Female);
        assert_eq!(args.living, care::LivingSituation::EmptyNest);
        assert_eq!(
            args.birth_date,
            NaiveDate::from_ymd_opt(1943, 5, 1).unwrap_or_default()
        );
        assert_eq!(args.contacts.len(), 2);
        assert_eq!(args.contacts[1].relation, "邻居");
        assert!(args.disability && args.consent && !args.chronic_illness);
        assert_eq!(args.point.to_proto(), None);
    }

    #[test]
    fn an_elder_is_placed_in_gcj02_unless_told_otherwise_and_needs_both_coordinates() {
        let placed = elder(&["--lat", "34.8", "--lng", "113.66"]).map(|a| a.point.to_proto());
        let gcj02 = common::GeoPoint {
            latitude: 34.8,
            longitude: 113.66,
            datum: common::Datum::Gcj02.into(),
        };
        assert_eq!(placed, Ok(Some(gcj02)));
        let wgs84 = elder(&["--lat", "34.8", "--lng", "113.66", "--datum", "wgs84"]);
        assert_eq!(wgs84.map(|a| a.point.datum), Ok(common::Datum::Wgs84));
        let missing = Err(clap::error::ErrorKind::MissingRequiredArgument);
        assert_eq!(elder(&["--lat", "34.8"]).map(|_| ()), missing);
        assert_eq!(elder(&["--datum", "wgs84"]).map(|_| ()), missing);
    }

    #[test]
    fn bad_care_values_are_usage_errors() {
        let invalid = Err(clap::error::ErrorKind::InvalidValue);
        let wrong = |from: &str, to: &'static str| {
            let args = ELDER.map(|arg| if arg == from { to } else { arg });
            care(&args).map(|_| ())
        };
        assert_eq!(wrong("female", "woman"), invalid);
        assert_eq!(wrong("empty-nest", "nursing_home"), invalid);
        assert_eq!(
            wrong("1943-05-01", "01/05/1943"),
            Err(clap::error::ErrorKind::ValueValidation)
        );
        assert_eq!(
            elder(&["--contact", "李梅"]).map(|_| ()),
            Err(clap::error::ErrorKind::ValueValidation)
        );
        let risk = care(&["elders", "list", "--risk", "severe"]).map(|_| ());
        assert_eq!(risk, invalid);
    }

    #[test]
    fn a_visit_takes_kind_wellbeing_and_repeated_needs() {
        let visit = care(&[
            "visit",
            "--elder",
            "e-1",
            "--visitor",
            "v-1",
            "--kind",
            "phone-call",
            "--wellbeing",
            "concern",
            "--need",
            "助餐",
            "--need",
            "维修水管",
            "--at",
            "2026-11-02 17:00",
        ]);
        let Ok(CareCommand::Visit(visit)) = visit else {
            panic!("visit did not parse: {visit:?}");
        };
        assert_eq!(visit.kind, care::VisitKind::PhoneCall);
        assert_eq!(visit.wellbeing, care::Wellbeing::Concern);
        assert_eq!(visit.needs, ["助餐", "维修水管"]);
        assert_eq!(visit.at, time::parse_minute("2026-11-02 17:00").ok());
        let booking = care(&[
            "book",
            "--elder",
            "e-1",
            "--service",
            "meal-assistance",
            "--at",
            "2026-11-03 11:30",
            "--actor",
            "op",
        ]);
        assert!(
            matches!(&booking, Ok(CareCommand::Book(b)) if b.service == care::Service::MealAssistance),
            "{booking:?}"
        );
    }

    #[test]
    fn each_command_names_the_service_it_talks_to() {
        let service = |args: &[&str]| {
            Cli::try_parse_from(args)
                .map(|cli| (cli.service().name, cli.service().url.to_owned()))
                .ok()
        };
        assert_eq!(
            service(&[
                "shequctl",
                "--alliance-url",
                "http://10.0.0.5:7000",
                "merchants",
                "ledger",
                "m-1"
            ]),
            Some(("merchant-alliance", "http://10.0.0.5:7000".to_owned()))
        );
        assert_eq!(
            service(&[
                "shequctl",
                "complaints",
                "list",
                "--complaints-url",
                "http://h:1"
            ]),
            Some(("complaints", "http://h:1".to_owned()))
        );
        assert_eq!(
            service(&[
                "shequctl",
                "care",
                "timeline",
                "e-1",
                "--care-url",
                "http://10.0.0.6:7001"
            ]),
            Some(("pensioner-care", "http://10.0.0.6:7001".to_owned()))
        );
    }

    #[test]
    fn parked_and_replay_name_the_service_they_pick_and_tail_names_nats() {
        let service = |args: &[&str]| {
            Cli::try_parse_from(args)
                .map(|cli| (cli.service().name, cli.service().url.to_owned()))
                .ok()
        };
        let urls = [
            "shequctl",
            "--complaints-url",
            "http://h:1",
            "--alliance-url",
            "http://h:2",
            "--care-url",
            "http://h:3",
            "events",
        ];
        let with = |extra: &[&str]| service(&[&urls[..], extra].concat());
        assert_eq!(
            with(&["parked", "--service", "complaints"]),
            Some(("complaints", "http://h:1".to_owned()))
        );
        assert_eq!(
            with(&["parked", "--service", "merchant-alliance", "--limit", "5"]),
            Some(("merchant-alliance", "http://h:2".to_owned()))
        );
        assert_eq!(
            with(&["replay", "--service", "pensioner-care", "7"]),
            Some(("pensioner-care", "http://h:3".to_owned()))
        );
        assert_eq!(
            with(&["replay", "--service", "alliance", "7"]),
            Some(("merchant-alliance", "http://h:2".to_owned()))
        );
        assert_eq!(
            with(&["tail", "--nats-url", "nats://h:4"]),
            Some(("NATS", "nats://h:4".to_owned()))
        );
    }

    #[test]
    fn replay_needs_a_service_and_a_positive_numeric_id() {
        let kind = |args: &[&str]| {
            Cli::try_parse_from(["shequctl", "events"].iter().chain(args))
                .err()
                .map(|e| e.kind())
        };
        let Ok(Cli {
            command: Command::Events(EventsCommand::Replay(replay)),
            ..
        }) = Cli::try_parse_from(["shequctl", "events", "replay", "--service", "care", "42"])
        else {
            panic!("events replay did not parse");
        };
        assert_eq!(
            (replay.service, replay.id),
            (ServiceName::PensionerCare, 42)
        );
        use clap::error::ErrorKind;
        assert_eq!(
            kind(&["replay", "42"]),
            Some(ErrorKind::MissingRequiredArgument)
        );
        assert_eq!(
            kind(&["replay", "--service", "complaints"]),
            Some(ErrorKind::MissingRequiredArgument)
        );
        assert_eq!(
            kind(&["replay", "--service", "complaints", "abc"]),
            Some(ErrorKind::ValueValidation)
        );
        assert_eq!(
            kind(&["replay", "--service", "complaints", "0"]),
            Some(ErrorKind::ValueValidation)
        );
        assert_eq!(
            kind(&["replay", "--service", "parking", "1"]),
            Some(ErrorKind::InvalidValue)
        );
        assert_eq!(
            kind(&["parked", "--service", "complaints", "--limit", "501"]),
            Some(ErrorKind::ValueValidation)
        );
        assert_eq!(kind(&["parked"]), Some(ErrorKind::MissingRequiredArgument));
    }

    fn tail(args: &[&str]) -> Result<TailArgs, clap::error::ErrorKind> {
        let cli = Cli::try_parse_from(["shequctl", "events", "tail"].iter().chain(args))
            .map_err(|e| e.kind())?;
        match cli.command {
            Command::Events(EventsCommand::Tail(tail)) => Ok(tail),
            _ => Err(clap::error::ErrorKind::InvalidSubcommand),
        }
    }

    #[test]
    fn a_tail_follows_everything_from_now_by_default() {
        let Ok(args) = tail(&[]) else {
            panic!("events tail did not parse");
        };
        assert_eq!(args.pattern.as_str(), "shequ.>");
        assert_eq!(args.from, Since::Now);
        assert_eq!((args.count, args.idle_exit), (None, None));
        // SHEQU_NATS_URL may be set where the tests run; the flag wins.
        let Ok(args) = tail(&["--nats-url", "nats://10.0.0.7:4222", "shequ.care.>"]) else {
            panic!("events tail --nats-url did not parse");
        };
        assert_eq!(args.nats.url, "nats://10.0.0.7:4222");
        assert_eq!(args.pattern.as_str(), "shequ.care.>");
    }

    #[test]
    fn tail_flags_are_checked_on_the_command_line() {
        let Ok(args) = tail(&["--from", "start", "--count", "3", "--idle-exit", "0.5"]) else {
            panic!("events tail flags did not parse");
        };
        assert_eq!(args.from, Since::Start);
        assert_eq!(args.count, Some(3));
        assert_eq!(args.idle_exit, Some(std::time::Duration::from_millis(500)));
        let invalid = Err(clap::error::ErrorKind::ValueValidation);
        for bad in [
            &["shequ..x"][..],
            &["--from", "yesterday"],
            &["--count", "0"],
            &["--idle-exit", "0"],
            &["--idle-exit", "soon"],
            &["--nats-url", "nats://host:notaport"],
        ] {
            assert_eq!(tail(bad).map(|_| ()), invalid, "{bad:?}");
        }
        assert_eq!(
            tail(&["--nats-user", "subscriber"]).map(|_| ()),
            Err(clap::error::ErrorKind::MissingRequiredArgument)
        );
    }

    #[test]
    fn only_http_urls_are_taken() {
        assert_eq!(
            parse_url("http://127.0.0.1:50051/").as_deref(),
            Ok("http://127.0.0.1:50051")
        );
        assert!(parse_url("127.0.0.1:50051").is_err());
    }
}
