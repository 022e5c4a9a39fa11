//! The tokio runtime, sized by the user.

use std::sync::{Arc, RwLock};

/// Why the runtime could not be started.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("the system refused to start {threads} threads")]
    Threads {
        threads: usize,
        source: std::io::Error,
    },
    #[error("cannot start the async runtime")]
    Build(#[source] std::io::Error),
}

/// Builds a runtime with `threads` workers, or one per core for `None`.
///
/// One thread gets a current-thread runtime: no work stealing and no
/// cross-thread wake-ups, the cheapest way to drive many sockets from one
/// core.
///
/// Tokio panics when the system refuses it a worker thread, and the
/// half-started runtime then hangs the process while it unwinds. So the
/// threads are first started here, where a refusal is an error: a limit on
/// processes (`ulimit -u`, a cgroup's `pids.max`) ends the start with a
/// message instead.
pub fn build_runtime(threads: Option<usize>) -> Result<tokio::runtime::Runtime, RuntimeError> {
    let mut builder = match threads {
        Some(0 | 1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            check_threads(n)?;
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => {
            check_threads(cores())?;
            tokio::runtime::Builder::new_multi_thread()
        }
    };
    builder.enable_all().build().map_err(RuntimeError::Build)
}

/// Number of cores, as a default for thread counts.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Starts `count` threads that all live at once, then lets them end: an
/// error says the system would refuse that many, where starting them for
/// real would leave some half-started.
pub fn check_threads(count: usize) -> Result<(), RuntimeError> {
    // Held while threads start: each blocks on it, so none can end before
    // the last has started.
    let gate = Arc::new(RwLock::new(()));
    let closed = gate.write().unwrap_or_else(|e| e.into_inner());
    let mut started = Vec::with_capacity(count);
    let mut refused = None;
    for _ in 0..count {
        let gate = Arc::clone(&gate);
        // The default stack size, as tokio's workers get: a limit on
        // address space refuses them as it would refuse tokio.
        let spawned = std::thread::Builder::new().spawn(move || drop(gate.read()));
        match spawned {
            Ok(handle) => started.push(handle),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    drop(closed);
    for handle in started {
        let _ = handle.join();
    }
    match refused {
        None => Ok(()),
        Some(source) => Err(RuntimeError::Threads {
            threads: count,
            source,
        }),
    }
}
