//! The serving process: loads the plugins its supervisor prepared, serves
//! connections on the listening socket it was handed, and reports to the
//! supervisor when it is ready.
//!
//! It is the same `host` binary, started by the supervisor with hidden
//! arguments: the descriptors of the listening socket, of the memory shared
//! with the supervisor and of each private plugin copy stay open across
//! `exec`, and the config arrives on standard input, as the supervisor
//! read and checked it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tracing::info;

use crate::call_slots::{self, Region};
use crate::config::{Config, MAX_CONFIG_BYTES};
use crate::dispatch::Dispatcher;
use crate::host_services::HostServices;
use crate::inbox::Registry;
use crate::plugins::{self, Prepared, PrivateCopy};
use crate::reload::{self, Reloader};
use crate::server::{self, Listeners, ServerSettings};
use crate::shared::{Limits, Shared};
use crate::shutdown::StopSignals;
use crate::tls::Tls;
use crate::tls_files::Material;

/// The least bound on blocking threads per serving thread, so that a
/// reload can add plugins to those the process started with.
const RELOAD_BLOCKING_THREADS: usize = 512;

/// What the supervisor hands a serving process.
#[derive(Debug, Clone)]
pub struct Handover {
    /// The config file, for messages; its text comes on standard input.
    pub config_file: PathBuf,
    /// The plain listener, unless `[tls] plain = false`.
    pub listener: Option<RawFd>,
    /// The TLS listener and the sealed file of TLS material.
    pub tls: Option<(RawFd, RawFd)>,
    /// The memory shared with the supervisor ([`Region`]).
    pub slots: RawFd,
    /// Written `ready` once serving, then closed.
    pub ready: RawFd,
    /// Each prepared plugin: its config entry, the user's file, the copy.
    pub plugins: Vec<(usize, PathBuf, RawFd)>,
    /// Hooks not to serve: plugin, hook number, why.
    pub disabled: Vec<(String, usize, String)>,
    /// Load the plugins, report, and exit without serving.
    pub start_only: bool,
    /// The end of the supervisor's channel that reloads come on.
    pub control: Option<RawFd>,
    /// Serving processes the supervisor started before this one.
    pub restarts: u64,
}

/// Runs the serving process until the host stops.
pub fn run(handover: Handover) -> anyhow::Result<ExitCode> {
    // The descriptors were left open across the supervisor's exec; closed
    // on exec again now, so that a process a plugin starts holds neither
    // the listening socket nor the pipe the supervisor waits on.
    let inherited = [handover.slots, handover.ready];
    for fd in inherited
        .into_iter()
        .chain(handover.listener)
        .chain(handover.tls.iter().flat_map(|(l, m)| [*l, *m]))
        .chain(handover.control)
        .chain(handover.plugins.iter().map(|(_, _, fd)| *fd))
    {
        close_on_exec(fd).with_context(|| format!("descriptor {fd} from the supervisor"))?;
    }
    let mut text = String::new();
    std::io::stdin()
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .context("cannot read the config from the supervisor")?;
    let config = Config::parse(&handover.config_file, &text)?;
    let tls = match (handover.tls, &config.tls) {
        (Some((listener, material)), Some(tls_config)) => {
            let material = Material::unseal(material).context("cannot read the TLS material")?;
            Some((listener, Tls::new(&material, tls_config)?))
        }
        (None, None) => None,
        _ => anyhow::bail!("the supervisor's TLS listener does not match the config"),
    };
    let region = Region::map(handover.slots).context("cannot map the call slots")?;
    call_slots::install(region);
    crate::crash_mark::install().context("cannot catch fatal signals")?;

    let prepared = handover
        .plugins
        .iter()
        .map(|(index, file, fd)| {
            let prepared = Prepared {
                index: *index,
                file: file.clone(),
                copy: PrivateCopy::inherited(*fd),
            };
            // The supervisor's number for the copy, which it inherited as is.
            (prepared, *fd as u64)
        })
        .collect();
    let registry = Registry::new(config.max_pushed_bytes);
    let host = HostServices::new(Arc::clone(&registry));
    let started = reload::start_each(&config, prepared, &[], &host);
    if !plugins::tell(&started.skipped, &started.errors) {
        return Ok(ExitCode::FAILURE);
    }
    if handover.start_only {
        return Ok(ExitCode::SUCCESS);
    }
    let mut dispatcher =
        Dispatcher::shared(started.kept.iter().map(|k| Arc::clone(&k.plugin)).collect())
            .context("cannot build the dispatch table")?;
    for (plugin, hook, reason) in &handover.disabled {
        dispatcher.disable(plugin, *hook, reason);
    }
    region.publish_names(&dispatcher.names_table());

    let threads = config.worker_threads.unwrap_or_else(process_setup::cores);
    process_setup::check_threads(threads)
        .with_context(|| format!("worker_threads = {threads} in {}", config.file.display()))?;
    // Calls come from any serving thread and the bounds hold across them
    // all, so each thread's pool may need every plugin's share.
    // So is a table a reload brings; up to this many: threads start only
    // when calls need them, so the bound costs nothing until then.
    let blocking_threads =
        reload::blocking_threads_for(&dispatcher, &config).max(RELOAD_BLOCKING_THREADS);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(blocking_threads)
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let signals = StopSignals::install().context("cannot catch SIGINT and SIGTERM")?;
        // SAFETY: the supervisor passed these descriptors, listening TCP
        // sockets, for this process alone to own.
        let adopt = |fd| unsafe { std::net::TcpListener::from_raw_fd(fd) };
        let listener = Listeners {
            plain: handover.listener.map(adopt),
            tls: tls.map(|(fd, tls)| (adopt(fd), tls)),
        };
        let addr = listener
            .plain
            .as_ref()
            .map(|l| l.local_addr())
            .transpose()?;
        let tls_addr = listener
            .tls
            .as_ref()
            .map(|(l, _)| l.local_addr())
            .transpose()?;
        info!(
            addr = addr.map(tracing::field::display),
            tls = tls_addr.map(tracing::field::display),
            plugins = dispatcher.plugins().len(),
            threads,
            "serving"
        );
        let shared = Shared::new(
            dispatcher,
            registry,
            Limits {
                max_line_length: config.max_line_length,
                idle_timeout: config.idle_timeout,
                max_abandoned_calls: config.max_abandoned_calls,
            },
            config.admin.clone(),
            config.file.clone(),
        );
        shared
            .stats
            .restarts
            .store(handover.restarts, std::sync::atomic::Ordering::Relaxed);
        crate::watchdog::start(Arc::clone(&shared)).context("cannot start the watchdog")?;
        crate::idle_sweep::start(Arc::clone(&shared)).context("cannot start the idle sweep")?;
        if let Some(addr) = config.metrics_listen {
            crate::metrics::start(addr, Arc::clone(&shared))?;
        }
        if let Some(control) = handover.control {
            // SAFETY: the supervisor passed this descriptor, its end of a
            // socket pair, for this process alone to own.
            let channel = unsafe { UnixStream::from_raw_fd(control) };
            Reloader {
                shared: Arc::clone(&shared),
                kept: started.kept,
                blocking_threads,
                region,
                config_file: config.file.clone(),
            }
            .start(channel)
            .context("cannot start the reload thread")?;
        }
        let settings = ServerSettings {
            max_connections: config.max_connections,
            shutdown_timeout: config.shutdown_timeout,
            blocking_threads,
            proxy_protocol: config.proxy_protocol,
        };
        // SAFETY: as the listener: the supervisor's pipe, ours alone.
        let mut ready = unsafe { File::from_raw_fd(handover.ready) };
        ready
            .write_all(b"ready\n")
            .context("cannot tell the supervisor")?;
        drop(ready);
        server::run(listener, threads, shared, settings, signals.recv()).await?;
        anyhow::Ok(())
    })?;
    // Blocking hooks still running hold up nothing past this point.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Sets `FD_CLOEXEC` on `fd`.
fn close_on_exec(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor number; it touches no memory of ours.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
