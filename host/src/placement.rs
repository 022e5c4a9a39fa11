//! Where a hook's calls run: inline on the connection's thread, or on a
//! blocking thread.
//!
//! Inline is the cheapest (no thread hand-off per request), but a call
//! that sleeps or spins inline holds up every connection of its thread.
//! So no hook is trusted with its thread until it has shown that it is
//! quick: every hook starts on blocking threads, and runs inline once it
//! has answered [`PROVEN`] calls in a row each within [`QUICK`]. An inline
//! call that the watchdog sees running longer than [`STALL`] sends the hook
//! back to blocking threads for good. Hooks declared `.blocking()` never
//! run inline.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Quick calls in a row that earn a hook its place inline.
pub const PROVEN: u32 = 100;
/// What counts as a quick call.
pub const QUICK: Duration = Duration::from_millis(1);
/// An inline call longer than this has stalled its thread.
pub const STALL: Duration = Duration::from_millis(20);

/// The value of a placement that runs inline.
const INLINE: u32 = u32::MAX - 1;
/// The value of a placement that stays on blocking threads.
const BLOCKING: u32 = u32::MAX;

/// One hook's placement; below [`PROVEN`], the quick calls in a row so far.
#[derive(Debug)]
pub struct Placement(AtomicU32);

impl Placement {
    pub fn new(declared_blocking: bool) -> Placement {
        Placement(AtomicU32::new(if declared_blocking { BLOCKING } else { 0 }))
    }

    /// Takes the state of `other`, the same hook's placement in the table
    /// a reload replaced.
    pub fn take_over(&self, other: &Placement) {
        self.0
            .store(other.0.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Whether the next call runs inline.
    pub fn inline(&self) -> bool {
        self.0.load(Ordering::Relaxed) == INLINE
    }

    /// Counts a call that ran on a blocking thread. Concurrent calls may
    /// race on the count; a lost increment only delays the promotion.
    pub fn ran_blocking(&self, took: Duration) {
        let streak = self.0.load(Ordering::Relaxed);
        if streak >= PROVEN {
            return;
        }
        let next = if took <= QUICK { streak + 1 } else { 0 };
        let next = if next == PROVEN { INLINE } else { next };
        // Never overwrite a demotion that happened meanwhile.
        let _ = self
            .0
            .compare_exchange(streak, next, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Sends the hook to blocking threads for good, after an inline call
    /// stalled its thread; true if it ran inline until now.
    pub fn demote(&self) -> bool {
        self.0.swap(BLOCKING, Ordering::Relaxed) == INLINE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_earns_inline_with_quick_calls_and_loses_it_for_good() {
        let placement = Placement::new(false);
        for _ in 0..PROVEN - 1 {
            placement.ran_blocking(Duration::from_micros(10));
        }
        assert!(!placement.inline());
        placement.ran_blocking(Duration::from_millis(5));
        for _ in 0..PROVEN - 1 {
            placement.ran_blocking(Duration::from_micros(10));
        }
        assert!(!placement.inline(), "a slow call restarts the count");
        placement.ran_blocking(Duration::from_micros(10));
        assert!(placement.inline());
        assert!(placement.demote());
        assert!(!placement.demote(), "demoted once");
        assert!(!placement.inline());
        for _ in 0..2 * PROVEN {
            placement.ran_blocking(Duration::from_micros(10));
        }
        assert!(!placement.inline(), "for good");
    }

    #[test]
    fn declared_blocking_hooks_never_run_inline() {
        let placement = Placement::new(true);
        for _ in 0..2 * PROVEN {
            placement.ran_blocking(Duration::ZERO);
        }
        assert!(!placement.inline());
    }
}
