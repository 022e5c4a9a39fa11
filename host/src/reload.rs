//! Reloading, in the serving process: a new dispatch table built from the
//! config and plugin copies the supervisor sends, then swapped in.
//!
//! Connections load the table once per request line, so a request in
//! flight finishes on the table it started with and the next line uses the
//! new one; no connection is touched. A plugin whose copy (the same bytes)
//! and settings did not change keeps its instance, and with it its state,
//! its counters and where its hooks run. Any failure leaves the running
//! table as it was.
//!
//! Libraries are never unloaded: abi_stable does not, and code of a
//! replaced plugin may still be on a thread's stack (a timed-out call).
//! A replaced instance is dropped when the last request using it is done;
//! its library stays mapped until the process exits, so memory grows with
//! each *changed* library a reload loads, and not with reloads of
//! unchanged ones.

use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;

use tracing::{error, info, warn};

use crate::call_slots::Region;
use crate::config::{CallLimits, Config};
use crate::control::{self, Order};
use crate::dispatch::Dispatcher;
use crate::host_services::HostServices;
use crate::plugins::{self, LoadError, LoadErrorKind, LoadedPlugin, Prepared, PrivateCopy};
use crate::shared::Shared;
use crate::stats::HookStats;

/// A plugin instance of the live table, and what it was started from.
pub struct Kept {
    /// The supervisor's number for the private copy it was loaded from.
    pub copy_id: u64,
    settings: String,
    server_name: String,
    limits: CallLimits,
    pub plugin: Arc<LoadedPlugin>,
}

impl Kept {
    /// Whether entry `index` of `config`, served from copy `copy_id`,
    /// can keep this instance.
    fn fits(&self, config: &Config, index: usize, copy_id: u64) -> bool {
        config.plugins.get(index).is_some_and(|entry| {
            self.copy_id == copy_id
                && self.settings == entry.settings
                && self.limits == entry.call_limits
                && self.server_name == config.server_name
        })
    }
}

/// What starting a list of plugins came to.
pub struct Started {
    pub kept: Vec<Kept>,
    pub skipped: Vec<LoadError>,
    pub errors: Vec<LoadError>,
}

/// Starts the plugins of `config` from their copies, in order, each paired
/// with its copy's number; instances in `previous` that fit are kept
/// instead of started again.
pub fn start_each(
    config: &Config,
    prepared: Vec<(Prepared, u64)>,
    previous: &[Kept],
    host: &HostServices,
) -> Started {
    let mut started = Started {
        kept: Vec::new(),
        skipped: Vec::new(),
        errors: Vec::new(),
    };
    for (prepared, copy_id) in prepared {
        let index = prepared.index;
        let Some(entry) = config.plugins.get(index) else {
            continue;
        };
        let reused = previous
            .iter()
            .find(|k| k.fits(config, index, copy_id))
            .map(|k| Arc::clone(&k.plugin));
        let file = prepared.file.clone();
        let plugin = match reused {
            Some(plugin) => Ok(plugin),
            None => {
                let mut report = plugins::start_all(config, vec![prepared], host);
                match (
                    report.plugins.pop(),
                    report.errors.pop(),
                    report.skipped.pop(),
                ) {
                    (Some(plugin), _, _) => Ok(Arc::new(plugin)),
                    (None, Some(e), _) | (None, None, Some(e)) => Err(e),
                    (None, None, None) => continue,
                }
            }
        };
        let plugin = plugin.and_then(|plugin| {
            match started.kept.iter().find(|k| k.plugin.name == plugin.name) {
                Some(other) => Err(LoadError::new(
                    entry,
                    Some(&file),
                    LoadErrorKind::DuplicateName {
                        name: plugin.name.clone(),
                        other: other.plugin.file.clone(),
                    },
                )),
                None => Ok(plugin),
            }
        });
        match plugin {
            Ok(plugin) => started.kept.push(Kept {
                copy_id,
                settings: entry.settings.clone(),
                server_name: config.server_name.clone(),
                limits: entry.call_limits,
                plugin,
            }),
            Err(e) if entry.optional => started.skipped.push(e),
            Err(e) => started.errors.push(e),
        }
    }
    started
}

/// Blocking threads a table needs on each serving thread: every plugin's
/// bound of calls, and the abandoned ones.
pub fn blocking_threads_for(dispatcher: &Dispatcher, config: &Config) -> usize {
    dispatcher
        .plugins()
        .iter()
        .map(|p| p.limits.max_calls)
        .sum::<usize>()
        .saturating_add(config.max_abandoned_calls)
        .max(1)
}

/// Reloads the serving process on the supervisor's orders.
pub struct Reloader {
    pub shared: Arc<Shared>,
    /// The instances of the live table.
    pub kept: Vec<Kept>,
    /// The bound on blocking threads the runtimes were built with: a
    /// table that needs more waits for the next start.
    pub blocking_threads: usize,
    pub region: &'static Region,
    /// The config file, for messages.
    pub config_file: PathBuf,
}

impl Reloader {
    /// Serves orders from `channel` on a thread of its own (plugins start
    /// there, away from the serving threads), until the supervisor closes
    /// it.
    pub fn start(self, channel: UnixStream) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name("reload".into())
            .spawn(move || self.serve(channel))
            .map(drop)
    }

    fn serve(mut self, mut channel: UnixStream) {
        loop {
            let order = match control::recv_order(&mut channel) {
                Ok(Some(order)) => order,
                Ok(None) => return,
                Err(e) => {
                    error!("reload: bad order from the supervisor: {e}");
                    return;
                }
            };
            let outcome = self.apply(order);
            match &outcome {
                Ok(_) => {}
                Err(e) => error!("reload failed; serving on as before: {e}"),
            }
            if let Err(e) = control::send_outcome(&mut channel, &outcome) {
                error!("reload: cannot answer the supervisor: {e}");
                return;
            }
        }
    }

    /// Builds the table `order` describes and swaps it in; the notes on
    /// optional plugins skipped, or why nothing changed.
    fn apply(&mut self, order: Order) -> Result<String, String> {
        let config =
            Config::parse(&self.config_file, &order.config_text).map_err(|e| e.to_string())?;
        let prepared = order
            .plugins
            .into_iter()
            .map(|p| {
                // Kept open for the life of the process once loaded from:
                // the dynamic loader knows the library by this name, and a
                // later library opened under the same number would be taken
                // for it. Unused ones are closed below.
                let fd = p.copy.into_raw_fd();
                let prepared = Prepared {
                    index: p.index,
                    file: p.file,
                    copy: PrivateCopy::inherited(fd),
                };
                (prepared, p.copy_id)
            })
            .collect::<Vec<_>>();
        let fds: Vec<(u64, i32)> = prepared.iter().map(|(p, id)| (*id, p.copy.fd)).collect();
        let host = HostServices::new(Arc::clone(&self.shared.registry));
        let started = start_each(&config, prepared, &self.kept, &host);
        let is_old = |k: &Kept| self.kept.iter().any(|o| Arc::ptr_eq(&o.plugin, &k.plugin));
        // The descriptors of copies whose instance was kept were never
        // loaded from, and can go.
        for (copy_id, fd) in fds {
            if started
                .kept
                .iter()
                .any(|k| k.copy_id == copy_id && is_old(k))
            {
                // SAFETY: received for this reload, owned by nothing else,
                // and no library was loaded under its number.
                drop(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        let notes: Vec<String> = started
            .skipped
            .iter()
            .map(|e| format!("skipping optional {e}"))
            .collect();
        if !started.errors.is_empty() {
            let errors: Vec<String> = started.errors.iter().map(ToString::to_string).collect();
            return Err(errors.join("\n"));
        }
        let plugins = started.kept.iter().map(|k| Arc::clone(&k.plugin)).collect();
        let table = Dispatcher::shared(plugins).map_err(|e| e.to_string())?;
        let needed = blocking_threads_for(&table, &config);
        if needed > self.blocking_threads {
            return Err(format!(
                "the new plugins need {needed} blocking threads per serving thread \
                 (max_plugin_calls of each, plus max_abandoned_calls); this serving \
                 process was started with {}: restart the host to serve them",
                self.blocking_threads
            ));
        }
        take_over_placements(&table, &self.shared.dispatch.load());
        self.region.publish_names(&table.names_table());
        let counts = (table.plugins().len(), table.route_count());
        self.shared.dispatch.store(Arc::new(table));
        self.shared.admin.store(config.admin.map(Arc::new));
        HookStats::bump(&self.shared.stats.reloads);
        let reused = started.kept.iter().filter(|k| is_old(k)).count();
        self.kept = started.kept;
        for note in &notes {
            warn!("{note}");
        }
        info!(
            plugins = counts.0,
            hooks = counts.1,
            kept = reused,
            "reloaded"
        );
        Ok(notes.join("\n"))
    }
}

/// Hooks of instances the new table kept run where they ran before: a hook
/// that had earned its place inline keeps it, a demoted one stays demoted.
fn take_over_placements(new: &Dispatcher, old: &Dispatcher) {
    for i in 0..new.route_count() {
        let route = new.route(i);
        let plugin = &new.plugins()[route.plugin];
        let before = (0..old.route_count())
            .map(|j| old.route(j))
            .find(|r| r.hook == route.hook && Arc::ptr_eq(&old.plugins()[r.plugin], plugin));
        if let Some(before) = before {
            route.placement.take_over(&before.placement);
        }
    }
}
