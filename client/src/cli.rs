//! Command-line arguments.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::exit::EXIT_CODES_HELP;
use crate::tls::TlsOptions;

/// Talks to the line-protocol server: interactively when stdin is a
/// terminal, otherwise one command per stdin line (pipelined).
#[derive(Debug, Parser)]
#[command(
    name = "linehost-cli",
    version,
    after_help = EXIT_CODES_HELP,
    after_long_help = format!("{MODES_HELP}\n\n{EXIT_CODES_HELP}"),
)]
pub struct Cli {
    /// Server address (IP or host name).
    #[arg(default_value = "127.0.0.1")]
    pub ip: String,

    /// Server port.
    #[arg(default_value_t = 1991)]
    pub port: u16,

    /// Send this command and print its reply, then exit; repeat for more
    /// (sent pipelined, in order).
    #[arg(short = 'c', long = "command", value_name = "LINE")]
    pub commands: Vec<String>,

    /// One more command after `--`, its words joined by spaces
    /// (`linehost-cli -- HELLO`); sent after any `-c` commands.
    #[arg(last = true, value_name = "COMMAND")]
    pub trailing: Vec<String>,

    /// Print every reply exactly as received, without rendering.
    #[arg(long)]
    pub raw: bool,

    /// Seconds to wait for the connection to be accepted, and, in one-shot
    /// and pipe modes, for the next reply once all input has been sent.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = parse_secs)]
    pub timeout: f64,

    /// Speak TLS to the server (its `[tls]` listener).
    #[arg(long)]
    pub tls: bool,

    /// With --tls: trust the CA certificates in this PEM file [default:
    /// the system's trusted roots].
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub ca: Option<PathBuf>,

    /// With --tls: present this PEM client certificate (chain); needs --key.
    #[arg(long, value_name = "FILE", requires_all = ["tls", "key"])]
    pub cert: Option<PathBuf>,

    /// With --tls: the PEM private key of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,

    /// With --tls: the name the server's certificate must carry [default:
    /// the server address as given].
    #[arg(long, value_name = "NAME", requires = "tls")]
    pub server_name: Option<String>,

    /// History file for interactive mode [default: history.txt in the
    /// user's data directory, e.g. ~/.local/share/linehost-cli/]
    #[arg(long, value_name = "PATH", env = "CLIENT_HISTORY_FILE")]
    pub history_file: Option<PathBuf>,
}

const MODES_HELP: &str = "\
Modes:
  interactive  stdin is a terminal and no command is given: a prompt with
               line editing, history and completion; server lines are shown
               as they arrive. CLOSE, Ctrl-D or Ctrl-C end the session.
  one-shot     -c LINE (repeatable) or -- WORDS: send, print the replies, exit.
  pipe         stdin is not a terminal: every line is a command, sent
               pipelined; the replies are printed in order; end of input
               sends CLOSE.
In one-shot and pipe modes the greeting and the reply to the client's own
closing CLOSE are not printed, ERR replies go to stderr (stdout with --raw),
and empty lines are skipped.";

impl Cli {
    /// The commands given on the command line, in sending order.
    pub fn one_shot_commands(&self) -> Vec<String> {
        let mut commands = self.commands.clone();
        if !self.trailing.is_empty() {
            commands.push(self.trailing.join(" "));
        }
        commands
    }

    /// What `--tls` and its options ask for; `None` without `--tls`.
    pub fn tls_options(&self) -> Option<TlsOptions> {
        self.tls.then(|| TlsOptions {
            ca: self.ca.clone(),
            client: self.cert.clone().zip(self.key.clone()),
            server_name: self.server_name.clone().unwrap_or_else(|| {
                self.ip
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned()
            }),
        })
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout)
    }
}

fn parse_secs(s: &str) -> Result<f64, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{e}"))?;
    // Bounded so Duration::from_secs_f64 cannot panic and a typo cannot hang a script for years.
    if secs.is_finite() && secs > 0.0 && secs <= 3600.0 {
        Ok(secs)
    } else {
        Err("must be a number of seconds in (0, 3600]".into())
    }
}
