//! `bench`: load generator for line-protocol servers. See `bench --help`.

mod args;
mod fanout;
mod idle;
mod latency;
mod load;
mod report;

use std::process::ExitCode;

use clap::Parser as _;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        // The reader went away (`bench ... | head`): nothing to say.
        Err(e) if bench::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` gives the context chain on one line; a backtrace would
            // only bury the cause (bad address, refused connection) in noise.
            eprintln!("bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Err(e) = process_setup::raise_open_files_limit() {
        eprintln!("bench: warning: could not raise the open-file limit: {e}");
    }
    match cli.command {
        Some(Command::Idle(args)) => {
            let runtime = process_setup::build_runtime(Some(args.target.threads))?;
            let report = runtime.block_on(idle::run(&args))?;
            report.print(args.target.json)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Fanout(args)) => {
            let runtime = process_setup::build_runtime(Some(args.target.threads))?;
            let report = runtime.block_on(fanout::run(&args))?;
            report.print(args.target.json)?;
            Ok(if report.lost_subscribers > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        None => {
            let args = cli.load;
            let runtime = process_setup::build_runtime(Some(args.target.threads))?;
            let report = runtime.block_on(load::run(&args))?;
            report.print(args.target.json)?;
            Ok(if args.strict && report.errors > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
