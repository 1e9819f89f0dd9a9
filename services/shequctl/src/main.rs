//! `shequctl`, the operator command line: loads the grid organisation, works
//! complaints through their lifecycle, keeps the merchant alliance (merchants,
//! the convenience circle, credit, awards) and runs pensioner care (elders,
//! volunteers, pairings, visits, bookings, timelines) by calling the services'
//! gRPC APIs, printing aligned tables for people or JSON (`--json`) for scripts;
//! follows the events the services publish (`events tail`, from NATS
//! JetStream), a line each or newline-delimited JSON; and lists and replays the
//! events a service's consumers parked (`events parked`, `events replay`).
//!
//! Exit codes scripts can rely on: 0 success, 1 anything else, 2 usage error,
//! 3 service (or NATS) unreachable, 4 invalid argument, 5 not found, 6 failed
//! precondition.
//!
//! # Layout
//! - [`cli`]: the command line (clap derive): every command, flag and its help.
//! - [`commands`]: one module per service area (`org`, `complaints`,
//!   `merchants`, `care`), each turning a parsed command into gRPC calls and
//!   printing the answer; `events` follows CloudEvents on JetStream with an
//!   ordered consumer per stream the subject pattern reaches; `parked` lists
//!   and replays a service's parked events (`shequ.ops.v1.ParkedEventService`,
//!   the service `--service` names).
//! - [`codes`]: proto enum values as operators type and read them
//!   (`environment_sanitation`, `in_progress`, `elderly_care`, `gcj02`,
//!   `empty_nest`).
//! - [`hours`]: opening hours as operators write them (`mon-fri 08:00-20:00`).
//! - [`subject`]: NATS subject patterns (`shequ.>`): checked, and met with a
//!   stream's subjects to find the streams and filters `events tail` reads.
//! - [`time`]: instants shown in the district's time zone (Asia/Shanghai,
//!   UTC+8), dates on the command line turned into periods, and where
//!   `events tail --from` starts.
//! - [`organisation`]: the JSON organisation file, a mirror of the proto message.
//! - [`buildings`]: the JSON building-points file (`merchants load-buildings`).
//! - [`table`]: the small aligned-table printer.
//! - [`output`]: stdout writing, human or JSON.
//! - [`failure`]: errors sorted into exit codes and reported on stderr.

mod buildings;
mod cli;
mod codes;
mod commands;
mod failure;
mod hours;
mod organisation;
mod output;
mod subject;
mod table;
mod time;

use std::process::ExitCode;

use crate::cli::Cli;
use crate::output::Output;

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    let output = Output::new(cli.json);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let error = anyhow::Error::new(error).context("starting the async runtime");
            return failure::report(&error, cli.service(), output);
        }
    };
    match runtime.block_on(commands::run(&cli, output)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => failure::report(&error, cli.service(), output),
    }
}
