//! `host`: load the plugins listed in the config and serve the line protocol.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tracing::{debug, info, warn};
use tracing_subscriber::EnvFilter;

use host::config::{Config, DEFAULT_PORT, parse_listen};
use host::dispatch::Dispatcher;
use host::plugins::{self, LoadErrorKind, RuntimeDir};
use host::server::{self, ServerSettings};
use host::shared::{Limits, Shared};
use host::shutdown::StopSignals;

/// A TCP line-protocol server whose commands are served by plugins.
///
/// Each request line goes to the first hook, in the order the plugins are
/// listed in the config and then in each plugin's own order, whose pattern
/// matches the whole line.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Logging: RUST_LOG (e.g. RUST_LOG=debug) or --log-level.\n\
Exit status: 0 after a clean stop or a good --check; 1 if the config or a plugin is bad."
)]
struct Cli {
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
            eprintln!("error: invalid log level: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(&cli.config)?;
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

    let runtime_dir =
        RuntimeDir::create().context("cannot create a directory for plugin copies")?;
    let report = plugins::load_all(&config, &runtime_dir);
    for skipped in &report.skipped {
        warn!("skipping optional {skipped}");
    }
    if !report.errors.is_empty() {
        for e in &report.errors {
            eprintln!("error: {e}");
            if let LoadErrorKind::Incompatible { report, .. } = &e.kind {
                debug!(
                    "full layout report for `{}`:\n{report}",
                    host::plugins::escape::text(&e.label)
                );
            }
        }
        return Ok(ExitCode::FAILURE);
    }
    let dispatcher = Dispatcher::new(report.plugins).context("cannot build the dispatch table")?;
    if cli.check {
        print!("{}", host::check::report(&config, &dispatcher));
        return Ok(ExitCode::SUCCESS);
    }

    let threads = config.worker_threads.unwrap_or_else(process_setup::cores);
    process_setup::check_threads(threads)
        .with_context(|| format!("worker_threads = {threads} in {}", cli.config.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let signals = StopSignals::install().context("cannot catch SIGINT and SIGTERM")?;
        let listener = std::net::TcpListener::bind(config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        // The first line on stdout, for scripts and tests that start the
        // host on port 0 and need to know where it is.
        println!("listening on {addr}");
        let _ = std::io::stdout().flush();
        info!(%addr, plugins = dispatcher.plugins().len(), threads, "serving");
        let shared = Shared::new(
            dispatcher,
            Limits {
                max_line_length: config.max_line_length,
                idle_timeout: config.idle_timeout,
                max_abandoned_calls: config.max_abandoned_calls,
            },
        );
        host::watchdog::start(Arc::clone(&shared)).context("cannot start the watchdog")?;
        let settings = ServerSettings {
            max_connections: config.max_connections,
            shutdown_timeout: config.shutdown_timeout,
        };
        server::run(listener, threads, shared, settings, signals.recv()).await?;
        anyhow::Ok(())
    })?;
    // Blocking hooks still running hold up nothing past this point.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    info!("stopped");
    drop(runtime_dir);
    Ok(ExitCode::SUCCESS)
}
