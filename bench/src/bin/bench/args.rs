//! Command line of `bench`.

use std::path::PathBuf;
use std::time::Duration;

use bench::duration;
use bench::greeting::Greeting;
use bench::pattern::Pattern;
use bench::tls::TlsClient;
use clap::{Args, Parser, Subcommand};

/// Load generator for newline-terminated request/reply servers, in the
/// spirit of redis-benchmark: the host, Redis (inline `PING`), memcached
/// (`version`), or anything else that answers each line with one line.
#[derive(Debug, Parser)]
#[command(name = "bench", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open many connections, send nothing, hold them, and report the
    /// server's memory (for the cost of an idle connection).
    Idle(IdleArgs),
    /// One publisher, many subscribers: lines delivered per second, chat
    /// `SAY` to a room or Redis `PUBLISH` to a channel.
    Fanout(FanoutArgs),
}

/// Where the server is, how it greets, and how this tool runs.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Server address (host:port). Only loopback unless --allow-remote.
    #[arg(short = 'a', long, default_value = "127.0.0.1:1991")]
    pub addr: String,

    /// Allow a non-loopback address.
    #[arg(long)]
    pub allow_remote: bool,

    /// Read one greeting line on connect; it must match this regex, else the
    /// connection counts as failed (e.g. '^MSG Welcome' for the host).
    #[arg(long, value_name = "REGEX", conflicts_with = "skip_greeting")]
    pub greeting: Option<String>,

    /// Read and ignore this many lines on connect.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub skip_greeting: usize,

    /// Limit for connecting and reading the greeting.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration::parse)]
    pub connect_timeout: Duration,

    /// Worker threads of this tool's own runtime (1 = single-threaded).
    #[arg(short = 't', long, default_value_t = 1)]
    pub threads: usize,

    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Speak TLS, trusting the CA certificates in --ca.
    #[arg(long, requires = "ca")]
    pub tls: bool,

    /// With --tls: the PEM CA certificates to trust.
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub ca: Option<PathBuf>,

    /// With --tls: present this PEM client certificate; needs --key.
    #[arg(long, value_name = "FILE", requires_all = ["tls", "key"])]
    pub cert: Option<PathBuf>,

    /// With --tls: the PEM private key of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,

    /// With --tls: the name the server's certificate must carry [default:
    /// the host part of --addr].
    #[arg(long, value_name = "NAME", requires = "tls")]
    pub server_name: Option<String>,
}

impl TargetArgs {
    pub fn greeting(&self) -> anyhow::Result<Greeting> {
        let tls = match &self.ca {
            Some(ca) if self.tls => Some(TlsClient::new(
                ca,
                self.cert.clone().zip(self.key.clone()),
                self.server_name
                    .as_deref()
                    .unwrap_or_else(|| bench::tls::host_part(&self.addr)),
            )?),
            _ => None,
        };
        Ok(match &self.greeting {
            Some(re) => Greeting {
                lines: 1,
                pattern: Some(Pattern::new(re)?),
                tls,
            },
            None => Greeting {
                lines: self.skip_greeting,
                pattern: None,
                tls,
            },
        })
    }
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Concurrent connections.
    #[arg(short = 'c', long, default_value_t = 50)]
    pub connections: usize,

    /// Requests written at once per connection before waiting for all their
    /// replies (1 = ping-pong).
    #[arg(short = 'P', long, default_value_t = 1)]
    pub pipeline: usize,

    /// How long to run. Without --requests the default is 10s; with it, the
    /// run ends at whichever comes first (default cap 10m).
    #[arg(short = 'd', long, value_name = "DURATION", value_parser = duration::parse)]
    pub duration: Option<Duration>,

    /// Total requests to send over all connections.
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,

    /// The request line, sent without its terminator.
    #[arg(short = 'r', long, default_value = "HELLO")]
    pub request: String,

    /// End requests with CRLF instead of LF.
    #[arg(long)]
    pub crlf: bool,

    /// Regex every reply must match (a trailing CR is ignored); replies that
    /// don't are counted as errors. Default: any reply is fine.
    #[arg(short = 'e', long, value_name = "REGEX")]
    pub expect: Option<String>,

    /// A connection waiting longer than this for a reply counts as failed.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration::parse)]
    pub reply_timeout: Duration,

    /// Exit with status 1 if there was any error.
    #[arg(long)]
    pub strict: bool,

    /// Server process whose CPU time to report for the run, per request:
    /// user plus system time of every thread of it and of its descendants
    /// (Linux /proc).
    #[arg(long, value_name = "PID")]
    pub cpu_pid: Option<u32>,
}

impl LoadArgs {
    /// The run's time limit, as documented on `--duration`.
    pub fn time_limit(&self) -> Duration {
        match (self.duration, self.requests) {
            (Some(d), _) => d,
            (None, None) => Duration::from_secs(10),
            (None, Some(_)) => Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Args)]
pub struct IdleArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Connections to open.
    #[arg(short = 'c', long, default_value_t = 10_000)]
    pub connections: usize,

    /// How long to keep them open once all are open.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration::parse)]
    pub hold: Duration,

    /// Pause after opening before reading the server's memory, so it has
    /// handled every accept.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration::parse)]
    pub settle: Duration,

    /// Server process whose VmRSS and PSS to report, each summed with that
    /// of its descendants (Linux /proc).
    #[arg(long, value_name = "PID")]
    pub rss_pid: Option<u32>,

    /// Connection attempts in flight at once; more overflow the listen
    /// backlog and stall on SYN retransmits.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
}

/// The fan-out run's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FanoutProtocol {
    /// The host's chat plugin: subscribers `JOIN`, the publisher `SAY`s.
    Chat,
    /// Redis: subscribers `SUBSCRIBE`, the publisher `PUBLISH`es.
    Redis,
}

#[derive(Debug, Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// How to subscribe and publish.
    #[arg(long, value_enum, default_value = "chat")]
    pub protocol: FanoutProtocol,

    /// Subscribers, each on a connection of its own.
    #[arg(short = 's', long, default_value_t = 1000)]
    pub subscribers: usize,

    /// How long the publisher publishes.
    #[arg(short = 'd', long, value_name = "DURATION", default_value = "5s", value_parser = duration::parse)]
    pub duration: Duration,

    /// Messages the publisher writes at once before waiting for their replies.
    #[arg(short = 'P', long, default_value_t = 16)]
    pub pipeline: usize,

    /// Most messages the publisher may be ahead of the average subscriber;
    /// it waits beyond that, so that no server has to buffer without bound.
    #[arg(long, default_value_t = 1000)]
    pub max_lag: u64,

    /// The text of every message.
    #[arg(long, default_value = "fan-out-payload-0123456789")]
    pub payload: String,

    /// Pause after every subscriber joined, before the run, so that the
    /// notices of joining are delivered and left out.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration::parse)]
    pub settle: Duration,

    /// Longest wait, after the publisher stopped, for the last deliveries.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration::parse)]
    pub drain_timeout: Duration,

    /// Server process whose CPU time to report, per delivered line (as
    /// for the load run).
    #[arg(long, value_name = "PID")]
    pub cpu_pid: Option<u32>,
}
