//! The tokio runtime the load runs on, sized by the user.

use anyhow::Context as _;

/// Builds a runtime with `threads` workers.
///
/// One thread gets a current-thread runtime: no work stealing and no
/// cross-thread wake-ups, which is the cheapest way to drive many sockets
/// from a single core and leaves the other cores to the server under test.
pub fn build(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    builder
        .enable_all()
        .build()
        .context("building the tokio runtime")
}

/// Number of cores, as a default for thread counts.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
