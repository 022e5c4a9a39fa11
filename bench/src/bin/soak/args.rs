//! Command line of `soak`.

use std::time::Duration;

use bench::duration;
use clap::Parser;

use crate::mix::Mix;

/// Soak test for the host: many clients send a mix of valid, over-long,
/// invalid UTF-8 and panicking requests for a while, and every reply is
/// checked against what its request must get, in order.
///
/// Exits non-zero if any reply was lost or unexpected.
#[derive(Debug, Parser)]
#[command(name = "soak", version)]
pub struct Args {
    /// Host address (host:port). Only loopback unless --allow-remote.
    #[arg(short = 'a', long, default_value = "127.0.0.1:1991")]
    pub addr: String,

    /// Allow a non-loopback address.
    #[arg(long)]
    pub allow_remote: bool,

    /// Concurrent clients.
    #[arg(short = 'c', long, default_value_t = 2000)]
    pub clients: usize,

    /// How long clients send requests before draining.
    #[arg(short = 'd', long, value_name = "DURATION", default_value = "60s", value_parser = duration::parse)]
    pub duration: Duration,

    /// Requests each client keeps outstanding.
    #[arg(short = 'w', long, default_value_t = 8)]
    pub window: usize,

    /// The host's max_line_length; over-long requests exceed it.
    #[arg(long, value_name = "BYTES", default_value_t = 8192)]
    pub max_line: usize,

    /// Relative weights of the request kinds.
    #[arg(long, default_value = "hello=30,echo=40,long=5,utf8=10,panic=15")]
    pub mix: Mix,

    /// Pid of the host, to report its peak memory, summed with that of its
    /// descendants (Linux /proc).
    #[arg(long, value_name = "PID")]
    pub host_pid: Option<u32>,

    /// Regex the greeting line must match.
    #[arg(long, value_name = "REGEX", default_value = "^MSG ")]
    pub greeting: String,

    /// A client waiting longer than this for a reply gives up on the
    /// connection, and its outstanding requests count as lost.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration::parse)]
    pub reply_timeout: Duration,

    /// Limit for connecting and reading the greeting.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration::parse)]
    pub connect_timeout: Duration,

    /// After --duration, how long clients may take to collect their last
    /// replies before the rest count as lost.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = duration::parse)]
    pub drain_timeout: Duration,

    /// Worker threads of this tool's runtime (default: one per core).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,

    /// Seed of the request generator, for reproducing a run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Print one JSON object instead of the summary.
    #[arg(long)]
    pub json: bool,
}
