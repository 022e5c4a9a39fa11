//! `host`: load the plugins listed in the config and serve the line protocol.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tracing::warn;
use tracing_subscriber::EnvFilter;

use host::config::{Config, DEFAULT_PORT, parse_listen};
use host::dispatch::Dispatcher;
use host::plugins::{self, RuntimeDir};
use host::serving::{self, Handover};
use host::supervisor::Supervisor;

mod new_plugin;

/// A TCP line-protocol server whose commands are served by plugins.
///
/// Each request line goes to the first hook, in the order the plugins are
/// listed in the config and then in each plugin's own order, whose pattern
/// matches the whole line.
#[derive(Debug, Parser)]
#[command(
    name = "linehost",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Logging: RUST_LOG (e.g. RUST_LOG=debug) or --log-level.\n\
Exit status: 0 after a clean stop or a good --check; 1 if the config or a plugin is bad."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Port to listen on [default: the port of `listen` in the config, else 1991].
    port: Option<u16>,

    /// The config file. Relative paths in it are relative to its directory.
    #[arg(short, long, value_name = "PATH", default_value = "config.toml")]
    config: PathBuf,

    /// Address to listen on, as IP, IP:PORT or [IPv6]:PORT; overrides
    /// `listen` in the config (PORT still overrides its port).
    #[arg(short, long, value_name = "ADDR")]
    listen: Option<String>,

    /// Load the config and every plugin, print what would be served, and exit.
    #[arg(long)]
    check: bool,

    /// Log level or filter (error, warn, info, debug, trace) [default: RUST_LOG, else info].
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,

    /// Run as the serving process of a supervisor (internal).
    #[arg(long, hide = true)]
    serve: bool,
    #[arg(long, hide = true, requires = "serve")]
    listener_fd: Option<i32>,
    #[arg(long, hide = true, requires = "serve")]
    tls_listener_fd: Option<i32>,
    #[arg(long, hide = true, requires = "tls_listener_fd")]
    tls_fd: Option<i32>,
    #[arg(long, hide = true, requires = "serve")]
    slots_fd: Option<i32>,
    #[arg(long, hide = true, requires = "serve")]
    ready_fd: Option<i32>,
    #[arg(long = "plugin", hide = true, requires = "serve")]
    plugins: Vec<String>,
    #[arg(long, hide = true, requires = "serve")]
    disabled: Vec<String>,
    #[arg(long, hide = true, requires = "serve")]
    start_only: bool,
    #[arg(long, hide = true, requires = "serve")]
    control_fd: Option<i32>,
    #[arg(long, hide = true, requires = "serve", default_value_t = 0)]
    restarts: u64,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Make the running host re-read its config and plugin files, as
    /// SIGHUP does, and report the outcome (exit 1 if it failed; the host
    /// then serves on as before).
    Reload {
        /// The config file the running host was started with.
        #[arg(short, long, value_name = "PATH", default_value = "config.toml")]
        config: PathBuf,
    },
    /// Write a plugin crate, ready to build, with one hook and one setting,
    /// and print the config lines to add and the commands to run next.
    NewPlugin {
        /// The plugin's crate name: letters, digits, `-` and `_`, starting with a letter.
        name: String,
        /// Where to write it, a directory that does not exist or is empty [default: ./NAME].
        dir: Option<PathBuf>,
        /// Depend on plugin-api from the linehost repository at this git URL,
        /// rather than by the path of the one this linehost was built from.
        #[arg(long, value_name = "URL")]
        git: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match &cli.log_level {
        Some(level) => EnvFilter::try_new(level),
        None => EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new("info")),
    };
    let filter = match filter {
        Ok(f) => f,
        Err(e) => {
            host::say::error(format_args!("invalid log level: {e}"));
            return ExitCode::FAILURE;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // A log line that cannot be written is dropped: reporting that on
        // the same closed stream would panic the thread that logged.
        .log_internal_errors(false)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            host::say::error(format_args!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(Command::NewPlugin { name, dir, git }) = &cli.command {
        let source = git
            .clone()
            .map_or(new_plugin::ApiSource::BuiltFrom, new_plugin::ApiSource::Git);
        host::say::out(new_plugin::run(name, dir.clone(), source)?);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(Command::Reload { config }) = &cli.command {
        return Ok(match host::reload_socket::request(config)? {
            Ok(notes) => {
                host::say::out(format_args!("reloaded\n"));
                for note in notes.lines() {
                    eprintln!("warning: {note}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                host::say::error(format_args!(
                    "reload failed; the host serves on as before: {e}"
                ));
                ExitCode::FAILURE
            }
        });
    }
    if cli.serve {
        return serving::run(handover(&cli)?);
    }
    let config_text = Config::read(&cli.config)?;
    let mut config = Config::parse(&cli.config, &config_text)?;
    if config.tls.as_ref().is_some_and(|t| !t.plain) && (cli.listen.is_some() || cli.port.is_some())
    {
        anyhow::bail!(
            "--listen and PORT set the plain listener, which `[tls] plain = false` turns off; \
             set `[tls] listen` in the config instead"
        );
    }
    host::admin::check_secret_file(&cli.config, config.admin.as_ref())
        .map_err(anyhow::Error::msg)?;
    if let Some(listen) = &cli.listen {
        config.listen =
            parse_listen(listen, DEFAULT_PORT).map_err(|m| anyhow::anyhow!("--listen: {m}"))?;
    }
    if let Some(port) = cli.port {
        config.listen.set_port(port);
    }
    // The default soft limit (often 1024) is far below `max_connections`.
    if let Err(e) = process_setup::raise_open_files_limit() {
        warn!("cannot raise the open files limit: {e}");
    }

    // Read and checked before the plugins, by this process alone: the
    // serving processes get the sealed copy, never the key's path.
    let tls_material = config.tls.as_ref().map(host::tls::prepare).transpose()?;
    let runtime_dir =
        RuntimeDir::create().context("cannot create a directory for plugin copies")?;
    if cli.check {
        return check(&config, &runtime_dir);
    }
    let report = plugins::prepare_all(&config, &runtime_dir);
    let prepared = plugins::tell(&report.skipped, &report.errors);
    let tls = match &config.tls {
        None => None,
        Some(tls) => Some((
            std::net::TcpListener::bind(tls.listen)
                .with_context(|| format!("cannot listen on {} ([tls] listen)", tls.listen))?,
            tls_material.context("TLS material checked above")?,
        )),
    };
    let listener = match config.tls.as_ref().is_some_and(|t| !t.plain) {
        true => None,
        false => Some(
            std::net::TcpListener::bind(config.listen)
                .with_context(|| format!("cannot listen on {}", config.listen))?,
        ),
    };
    let supervisor = Supervisor {
        config,
        config_text,
        listener,
        tls,
        prepared: report.prepared,
        runtime_dir,
        log_level: cli.log_level.clone(),
    };
    if !prepared {
        // The others are loaded once more, in a serving process that only
        // reports, so that one start names every broken entry.
        let _ = supervisor.report_starts()?;
        return Ok(ExitCode::FAILURE);
    }
    supervisor.run()
}

/// `--check`: loads every plugin here, in this process, and prints what
/// would be served.
fn check(config: &Config, runtime_dir: &RuntimeDir) -> anyhow::Result<ExitCode> {
    let host = host::host_services::HostServices::detached();
    let report = plugins::load_all(config, runtime_dir, &host);
    if !plugins::tell(&report.skipped, &report.errors) {
        return Ok(ExitCode::FAILURE);
    }
    let dispatcher = Dispatcher::new(report.plugins).context("cannot build the dispatch table")?;
    host::say::out(host::check::report(config, &dispatcher));
    Ok(ExitCode::SUCCESS)
}

/// What the supervisor handed this serving process, from its arguments.
fn handover(cli: &Cli) -> anyhow::Result<Handover> {
    let missing = |what: &str| anyhow::anyhow!("--serve needs --{what}");
    Ok(Handover {
        config_file: cli.config.clone(),
        listener: cli.listener_fd,
        tls: cli.tls_listener_fd.zip(cli.tls_fd),
        slots: cli.slots_fd.ok_or_else(|| missing("slots-fd"))?,
        ready: cli.ready_fd.ok_or_else(|| missing("ready-fd"))?,
        plugins: cli
            .plugins
            .iter()
            .map(|arg| {
                Supervisor::parse_plugin_arg(arg)
                    .ok_or_else(|| anyhow::anyhow!("bad --plugin {arg:?}"))
            })
            .collect::<anyhow::Result<_>>()?,
        disabled: cli
            .disabled
            .iter()
            .map(|arg| {
                Supervisor::parse_disabled_arg(arg)
                    .ok_or_else(|| anyhow::anyhow!("bad --disabled {arg:?}"))
            })
            .collect::<anyhow::Result<_>>()?,
        start_only: cli.start_only,
        control: cli.control_fd,
        restarts: cli.restarts,
    })
}
