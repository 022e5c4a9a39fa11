//! The figures `INFO` and the metrics endpoint show: per server, per plugin
//! and per hook.
//!
//! Counted on the request path, so counting must cost next to nothing
//! there: the counts every request bumps (requests, hook calls) are spread
//! over cache-line-sized shards, one picked per thread, so threads on
//! different cores never write the same line. A serving thread has a shard
//! to itself ([`own_a_shard`]) and bumps it with a plain load and store,
//! without the locked instruction of an atomic read-modify-write, which
//! costs more than the rest of the count; other threads share the rest.
//! Rarer events (errors, panics, timeouts, connections) use one relaxed
//! atomic each. Latency needs
//! the clock: calls on blocking threads are timed anyway, and of the calls
//! that run inline, where no clock is read otherwise, one in
//! [`SAMPLE_EVERY`] per thread is timed.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Shards of a hot counter.
const SHARDS: usize = 8;
/// One inline call in this many is timed, per thread.
pub const SAMPLE_EVERY: u32 = 64;
/// Upper bounds of the latency buckets, in seconds; the last bucket is
/// everything above. Prometheus' usual spread, down to a microsecond.
pub const BUCKETS: [f64; 22] = [
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
];

thread_local! {
    static SHARD: Cell<Option<Shard>> = const { Cell::new(None) };
    static SAMPLE: Cell<u32> = const { Cell::new(0) };
}

/// Where a thread's counts go.
#[derive(Clone, Copy)]
enum Shard {
    /// The `owned` half of this shard: no other thread writes it.
    Owned(usize),
    /// The `shared` half of this shard, which other threads bump too.
    Shared(usize),
}

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);
static NEXT_OWNED: AtomicUsize = AtomicUsize::new(0);

/// Gives the calling thread the `owned` half of a shard of every counter,
/// while one is left: a thread that counts every request, and lives as
/// long as the process, calls it before it counts. The halves are never
/// handed out again, so none ever has two writers.
pub fn own_a_shard() {
    if let Some(Shard::Owned(_)) = SHARD.get() {
        return;
    }
    let i = NEXT_OWNED.fetch_add(1, Ordering::Relaxed);
    if i < SHARDS {
        SHARD.set(Some(Shard::Owned(i)));
    }
}

/// This thread's shard: its own if it has one, else a shared one, handed
/// out in turn on first use.
#[inline]
fn shard() -> Shard {
    SHARD.with(|s| match s.get() {
        Some(shard) => shard,
        None => {
            let shard = Shard::Shared(NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS);
            s.set(Some(shard));
            shard
        }
    })
}

/// A cache line of its own: one thread's own count, and the count of the
/// threads that share it.
#[derive(Default)]
#[repr(align(128))]
struct Line {
    owned: AtomicU64,
    shared: AtomicU64,
}

/// A count bumped from many threads at once.
#[derive(Default)]
pub struct Counter([Line; SHARDS]);

impl Counter {
    #[inline]
    pub fn add(&self) {
        self.add_n(1);
    }

    #[inline]
    pub fn add_n(&self, n: u64) {
        match shard() {
            // Only this thread writes it, so a load and a store lose no
            // count; readers see the one or the other value, whole.
            Shard::Owned(i) => {
                let owned = &self.0[i].owned;
                owned.store(owned.load(Ordering::Relaxed) + n, Ordering::Relaxed);
            }
            Shard::Shared(i) => {
                self.0[i].shared.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    pub fn get(&self) -> u64 {
        self.0
            .iter()
            .map(|l| l.owned.load(Ordering::Relaxed) + l.shared.load(Ordering::Relaxed))
            .sum()
    }
}

/// Whether this inline call is one to time; its start if so.
#[inline]
pub fn sample() -> Option<Instant> {
    SAMPLE.with(|n| {
        let next = n.get().wrapping_add(1);
        n.set(next);
        (next % SAMPLE_EVERY == 0).then(Instant::now)
    })
}

/// Call durations: a histogram over [`BUCKETS`], their count and sum.
#[derive(Default)]
pub struct Latency {
    buckets: [AtomicU64; BUCKETS.len() + 1],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Latency {
    pub fn record(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = BUCKETS.partition_point(|&b| b < secs);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Calls timed, and their total time.
    pub fn count_and_sum(&self) -> (u64, Duration) {
        (
            self.count.load(Ordering::Relaxed),
            Duration::from_nanos(self.sum_ns.load(Ordering::Relaxed)),
        )
    }

    /// How many timed calls fell in each bucket (not cumulative).
    pub fn buckets(&self) -> Vec<u64> {
        self.buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }

    pub fn mean(&self) -> Option<Duration> {
        let (count, sum) = self.count_and_sum();
        (count > 0).then(|| sum / u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// The upper bound of the bucket that holds the 99th percentile;
    /// `None` without timed calls, `Some(None)` if above the last bound.
    pub fn p99(&self) -> Option<Option<f64>> {
        let buckets = self.buckets();
        let total: u64 = buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = (total * 99).div_ceil(100);
        let mut seen = 0;
        for (i, n) in buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(BUCKETS.get(i).copied());
            }
        }
        Some(None)
    }
}

/// One hook's figures.
#[derive(Default)]
pub struct HookStats {
    pub calls: Counter,
    /// Calls that returned an error.
    pub errors: AtomicU64,
    pub panics: AtomicU64,
    pub timeouts: AtomicU64,
    pub latency: Latency,
}

impl HookStats {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One plugin instance's figures: kept by a reload that keeps the instance.
pub struct PluginStats {
    pub loaded_at: SystemTime,
    pub hooks: Vec<HookStats>,
}

impl PluginStats {
    /// When the instance started, since the Unix epoch.
    pub fn loaded_unix(&self) -> Duration {
        self.loaded_at
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    }

    pub fn new(hooks: usize) -> PluginStats {
        PluginStats {
            loaded_at: SystemTime::now(),
            hooks: (0..hooks).map(|_| HookStats::default()).collect(),
        }
    }
}

/// The serving process's own figures.
pub struct ServerStats {
    pub started: Instant,
    pub connections: AtomicU64,
    pub connections_total: AtomicU64,
    pub requests: Counter,
    pub reloads: AtomicU64,
    /// Serving processes the supervisor started before this one.
    pub restarts: AtomicU64,
    /// This process's id, for `INFO`.
    pub pid: u32,
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats::new()
    }
}

impl ServerStats {
    pub fn new() -> ServerStats {
        ServerStats {
            started: Instant::now(),
            connections: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            requests: Counter::default(),
            reloads: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            pid: std::process::id(),
        }
    }

    pub fn connected(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn disconnected(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_many_threads_add_up() {
        let counter = Counter::default();
        std::thread::scope(|s| {
            for t in 0..24 {
                let counter = &counter;
                s.spawn(move || {
                    // More threads ask for a shard of their own than
                    // there are: the rest share, and nothing is lost.
                    if t % 2 == 0 {
                        own_a_shard();
                    }
                    (0..100_000).for_each(|_| counter.add());
                    counter.add_n(10);
                    // Counted before and after taking one.
                    own_a_shard();
                    counter.add();
                });
            }
        });
        assert_eq!(counter.get(), 24 * 100_011);
    }

    #[test]
    fn the_p99_is_the_bound_of_its_bucket() {
        let latency = Latency::default();
        assert_eq!(latency.p99(), None);
        for _ in 0..99 {
            latency.record(Duration::from_micros(3));
        }
        assert_eq!(latency.p99(), Some(Some(0.000_005)));
        latency.record(Duration::from_secs(20));
        assert_eq!(latency.p99(), Some(Some(0.000_005)));
        latency.record(Duration::from_secs(20));
        assert_eq!(latency.p99(), Some(None));
        assert_eq!(latency.count_and_sum().0, 101);
    }
}
