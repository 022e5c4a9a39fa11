//! The dispatch table in force, which a reload replaces, and its version.
//!
//! Every request line needs to know whether its connection's table is
//! still the one in force. Comparing a version number, one relaxed load of
//! a counter that only a reload changes, is cheaper than loading the table
//! itself from the `ArcSwap` for every line; the table is loaded only when
//! the version moved.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::{ArcSwap, Guard};

use crate::dispatch::Dispatcher;

pub struct TableInForce {
    table: ArcSwap<Dispatcher>,
    /// Counts the tables stored; bumped after each store.
    version: AtomicU64,
}

impl TableInForce {
    pub fn new(table: Dispatcher) -> TableInForce {
        TableInForce {
            table: ArcSwap::from_pointee(table),
            version: AtomicU64::new(0),
        }
    }

    pub fn load(&self) -> Guard<Arc<Dispatcher>> {
        self.table.load()
    }

    /// The table in force and its version: the version is read first, so
    /// that a table stored meanwhile is seen by the next check, never
    /// missed.
    pub fn load_versioned(&self) -> (Arc<Dispatcher>, u64) {
        let version = self.version.load(Ordering::Acquire);
        (self.table.load_full(), version)
    }

    /// The version of the table in force.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Puts `table` in force.
    pub fn store(&self, table: Arc<Dispatcher>) {
        self.table.store(table);
        self.version.fetch_add(1, Ordering::Release);
    }
}
