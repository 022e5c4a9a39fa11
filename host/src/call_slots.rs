//! Which hook each thread is running, readable from outside the thread.
//!
//! Every thread that calls hooks owns one slot and marks it around each
//! call: route and start time. The watchdog reads the slots to report calls
//! that run long, and the supervisor reads them after the serving process
//! died, to name the hook that was running. That is why the slots can live
//! in memory shared with the supervisor ([`install`]); they are plain
//! atomics, so a process that dies mid-write leaves nothing half-written
//! that matters.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Slots in a region: threads that call hooks (serving threads and
/// blocking threads) beyond this many are not tracked.
pub const SLOTS: usize = 4096;

/// One thread's call in progress.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Slot {
    /// The route being called, plus one; 0 when idle.
    route: AtomicU32,
    _pad: u32,
    /// When the call started, in nanoseconds since [`epoch`].
    started: AtomicU64,
}

/// The slots of this process, installed once.
static REGION: OnceLock<&'static [Slot]> = OnceLock::new();
/// Slots handed out so far.
static NEXT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MINE: Cell<Option<&'static Slot>> = const { Cell::new(None) };
}

/// Uses `region` for the slots of this process: memory shared with the
/// supervisor. Without it, the first call allocates a private region.
pub fn install(region: &'static [Slot]) {
    let _ = REGION.set(region);
}

/// Every slot of this process.
pub fn all() -> &'static [Slot] {
    REGION.get_or_init(|| Box::leak((0..SLOTS).map(|_| Slot::default()).collect()))
}

/// The start of this process's call clock.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Marks this thread as running `route` from `now` until the guard drops.
pub fn enter(route: usize, now: Instant) -> CallMark {
    let slot = MINE.with(|mine| {
        if mine.get().is_none() {
            let index = NEXT.fetch_add(1, Ordering::Relaxed);
            mine.set(all().get(index));
        }
        mine.get()
    });
    if let Some(slot) = slot {
        let started = now.saturating_duration_since(epoch()).as_nanos() as u64;
        slot.started.store(started, Ordering::Relaxed);
        slot.route
            .store(u32::try_from(route + 1).unwrap_or(0), Ordering::Release);
    }
    CallMark(slot)
}

/// A call in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    pub route: usize,
    /// How long it has run.
    pub running: Duration,
    /// When it started, which tells one call from the next in the slot.
    pub started: u64,
}

/// Clears the thread's slot when the call is over.
pub struct CallMark(Option<&'static Slot>);

impl Drop for CallMark {
    fn drop(&mut self) {
        if let Some(slot) = self.0 {
            slot.route.store(0, Ordering::Release);
        }
    }
}

impl Slot {
    /// The call in progress, if any.
    pub fn busy(&self, now: Instant) -> Option<Busy> {
        let route = self.route.load(Ordering::Acquire);
        if route == 0 {
            return None;
        }
        let started = self.started.load(Ordering::Relaxed);
        let running = now.saturating_duration_since(epoch() + Duration::from_nanos(started));
        Some(Busy {
            route: route as usize - 1,
            running,
            started,
        })
    }

    /// The route being called, if any, seen from another process.
    pub fn route(&self) -> Option<usize> {
        match self.route.load(Ordering::Acquire) {
            0 => None,
            r => Some(r as usize - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_visible_while_it_runs_and_not_after() {
        // Calls are timed from the clock's start: start it first.
        epoch();
        let started = Instant::now();
        let mark = enter(7, started);
        let busy: Vec<_> = all()
            .iter()
            .filter_map(|s| s.busy(started + Duration::from_millis(5)))
            .map(|b| (b.route, b.running))
            .collect();
        assert!(busy.contains(&(7, Duration::from_millis(5))), "{busy:?}");
        drop(mark);
        assert!(all().iter().all(|s| s.route() != Some(7)));
    }
}
