//! The command line: every command and flag, with the help `--help` shows.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};
use shequ_proto::complaints::v1 as pb;

use crate::codes::CodeParser;
use crate::time;

/// Where the complaints service listens unless told otherwise (ARCHITECTURE.md).
pub(crate) const DEFAULT_COMPLAINTS_URL: &str = "http://127.0.0.1:50051";

/// The operator command line for shequ (社区).
#[derive(Debug, Parser)]
#[command(
    name = "shequctl",
    version,
    about = "The operator command line for shequ (社区): the grid organisation and complaints",
    after_help = "Exit codes: 0 success, 1 other failure, 2 usage error, 3 service unreachable, \
                  4 invalid argument, 5 not found, 6 failed precondition.\n\
                  Times are shown in Asia/Shanghai (UTC+8)."
)]
pub(crate) struct Cli {
    /// gRPC address of the complaints service (http://host:port).
    #[arg(
        long,
        global = true,
        env = "SHEQU_COMPLAINTS_URL",
        default_value = DEFAULT_COMPLAINTS_URL,
        value_parser = parse_url
    )]
    pub(crate) complaints_url: String,
    /// Print machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true)]
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
    /// Who does it (1-64 characters).
    #[arg(long, env = "SHEQU_ACTOR")]
    pub(crate) actor: String,
    /// Idempotency key: a retry with the same key changes nothing.
    #[arg(long)]
    pub(crate) request_id: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    /// What the resident says (1-2000 characters).
    #[arg(long)]
    pub(crate) text: String,
    /// Where it came in.
    #[arg(long, value_parser = CodeParser::<pb::Channel>::new())]
    pub(crate) channel: pb::Channel,
    /// The category; default: chosen by the service's keyword rules.
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
    #[arg(long, value_parser = CodeParser::<pb::Status>::new())]
    pub(crate) status: Option<pb::Status>,
    #[arg(long)]
    pub(crate) grid: Option<String>,
    #[arg(long)]
    pub(crate) community: Option<String>,
    #[arg(long, value_parser = CodeParser::<pb::Category>::new())]
    pub(crate) category: Option<pb::Category>,
    /// Only complaints past a time limit now.
    #[arg(long)]
    pub(crate) overdue: bool,
    /// At most this many (1-200); default: the service's, 50.
    #[arg(long)]
    pub(crate) page_size: Option<u32>,
    /// The token the previous page printed.
    #[arg(long)]
    pub(crate) page_token: Option<String>,
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

/// The service address: an `http://` URL tonic can connect to.
fn parse_url(url: &str) -> Result<String, String> {
    if !url.starts_with("http://") {
        return Err("must be an http:// URL, like http://127.0.0.1:50051".into());
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

    #[test]
    fn only_http_urls_are_taken() {
        assert_eq!(
            parse_url("http://127.0.0.1:50051/").as_deref(),
            Ok("http://127.0.0.1:50051")
        );
        assert!(parse_url("127.0.0.1:50051").is_err());
    }
}
