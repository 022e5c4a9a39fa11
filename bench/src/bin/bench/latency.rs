//! Collecting reply latencies from many connections into one histogram.

use std::sync::{Arc, Mutex, PoisonError};

use hdrhistogram::Histogram;

/// Latencies are kept in nanoseconds up to an hour at 3 significant digits.
const MAX_NANOS: u64 = 3_600_000_000_000;

/// The histogram all connections report into.
#[derive(Clone)]
pub struct Latencies(Arc<Mutex<Histogram<u64>>>);

impl Latencies {
    pub fn new() -> anyhow::Result<Self> {
        let hist = Histogram::new_with_bounds(1, MAX_NANOS, 3)?;
        Ok(Latencies(Arc::new(Mutex::new(hist))))
    }

    /// A per-connection recorder that reports in batches.
    pub fn recorder(&self) -> Recorder {
        Recorder {
            shared: self.clone(),
            pending: Vec::with_capacity(BATCH),
        }
    }

    /// The merged histogram, once every recorder has flushed.
    pub fn snapshot(&self) -> Histogram<u64> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Samples held per connection before taking the shared lock.
const BATCH: usize = 1024;

/// Buffers samples so the shared lock is taken once per [`BATCH`] replies
/// rather than per reply, and each connection does not need a histogram of
/// its own (over 100 KiB each at this precision).
pub struct Recorder {
    shared: Latencies,
    pending: Vec<u64>,
}

impl Recorder {
    pub fn record(&mut self, nanos: u64) {
        self.pending.push(nanos.max(1));
        if self.pending.len() == BATCH {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut hist = self.shared.0.lock().unwrap_or_else(PoisonError::into_inner);
        for &n in &self.pending {
            hist.saturating_record(n);
        }
        self.pending.clear();
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
    }
}
