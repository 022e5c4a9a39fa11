//! State shared by the listener and every connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use std::path::PathBuf;

use arc_swap::ArcSwapOption;

use crate::admin::Admin;

use crate::dispatch::Dispatcher;
use crate::handover::Threads;
use crate::inbox::Registry;
use crate::stats::ServerStats;
use crate::table_in_force::TableInForce;

/// What every connection reads; cheap to reach from any task.
pub struct Shared {
    /// The dispatch table. Connections check its version for each request
    /// rather than keep to their own table, so that a table stored here
    /// later (a reload) reaches every connection without touching any of
    /// them.
    pub dispatch: TableInForce,
    /// Every open connection's inbox, for plugins' pushes.
    pub registry: Arc<Registry>,
    pub limits: Limits,
    pub stats: ServerStats,
    /// `[admin]` of the config in force; a reload replaces it.
    pub admin: ArcSwapOption<Admin>,
    /// The config file, which `RELOAD` names to the supervisor.
    pub config_file: PathBuf,
    /// The serving threads, for the watchdog to move connections off one
    /// that a hook holds.
    pub threads: Threads,
    next_connection_id: AtomicU64,
    /// Set when the host starts stopping; read by busy connections, for
    /// which checking a flag per batch is cheaper than polling a future.
    stopping: AtomicBool,
}

/// Per-connection limits from the config.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_line_length: usize,
    /// How long a connection may go without a complete request line.
    pub idle_timeout: Option<Duration>,
    /// Timed-out calls of one plugin whose threads may still be running.
    pub max_abandoned_calls: usize,
}

impl Shared {
    pub fn new(
        dispatcher: Dispatcher,
        registry: Arc<Registry>,
        limits: Limits,
        admin: Option<Admin>,
        config_file: PathBuf,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            dispatch: TableInForce::new(dispatcher),
            registry,
            limits,
            stats: ServerStats::new(),
            admin: ArcSwapOption::from_pointee(admin),
            config_file,
            threads: Threads::default(),
            next_connection_id: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
        })
    }

    pub fn begin_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// A number no other connection of this process gets.
    pub fn next_connection_id(&self) -> u64 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }
}
