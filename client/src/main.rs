//! `client`: the bundled client of the line-protocol server.
//!
//! Interactive with line editing when stdin is a terminal, scriptable
//! otherwise (one-shot `-c`, or one command per stdin line). Replies are
//! rendered by the ordered hook tables in `hooks.rs`. Exit codes are listed
//! in `exit.rs` and in `--help`.

mod cli;
mod completion;
mod connect;
mod exit;
mod framing;
mod help_words;
mod history;
mod hooks;
mod info;
mod interactive;
mod lines;
mod render;
mod script;
mod tls;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::exit::{Exit, Failure};
use crate::script::Source;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(exit) => exit.into(),
        Err(e) => {
            if let Some(failure) = e.downcast_ref::<Failure>() {
                eprintln!("{failure}");
                failure.exit().into()
            } else {
                eprintln!("client: {e:#}");
                Exit::Other.into()
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Exit> {
    let commands = cli.one_shot_commands();
    let stream = connect::connect(&cli.ip, cli.port, cli.timeout())?;
    let stream = match cli.tls_options() {
        None => stream,
        Some(options) => {
            let shown = connect::display_addr(&cli.ip, cli.port);
            tls::wrap(stream, &options, cli.timeout(), &shown)?
        }
    };
    if !commands.is_empty() {
        script::run(stream, Source::Commands(commands), cli.raw, cli.timeout())
    } else if std::io::stdin().is_terminal() {
        let addr = format!("{}:{}", cli.ip, cli.port);
        let history = history::path(cli.history_file.clone());
        interactive::run(stream, &addr, cli.raw, cli.timeout(), history)
    } else {
        script::run(stream, Source::Stdin, cli.raw, cli.timeout())
    }
}
