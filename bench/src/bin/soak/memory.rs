//! Watching the host's memory while the soak runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bench::rss;

/// How often the host's memory is sampled.
const EVERY: Duration = Duration::from_millis(250);

/// Peaks seen so far; 0 means never read.
#[derive(Default)]
pub struct Peaks {
    pub hwm_kib: AtomicU64,
    pub rss_kib: AtomicU64,
}

/// Polls `/proc/<pid>/status` until the returned handle is aborted.
///
/// VmHWM alone would give the peak, but it is lost if the host exits
/// before the end, so the largest values seen are kept as they come.
pub fn watch(pid: u32) -> (Arc<Peaks>, tokio::task::JoinHandle<()>) {
    let peaks = Arc::new(Peaks::default());
    let shared = Arc::clone(&peaks);
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            if let Some(k) = rss::peak_rss_kib(pid) {
                shared.hwm_kib.fetch_max(k, Ordering::Relaxed);
            }
            if let Some(k) = rss::rss_kib(pid) {
                shared.rss_kib.fetch_max(k, Ordering::Relaxed);
            }
        }
    });
    (peaks, task)
}

impl Peaks {
    pub fn read(&self) -> (Option<u64>, Option<u64>) {
        let seen = |a: &AtomicU64| Some(a.load(Ordering::Relaxed)).filter(|&k| k > 0);
        (seen(&self.hwm_kib), seen(&self.rss_kib))
    }
}
