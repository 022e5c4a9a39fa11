//! Bounded waits: every wait in a test has a limit, and waits on a
//! condition rather than sleeping for a time that hopes it is met.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(10);

/// Waits for `child` to exit, at most `limit`; `None` if it is still running.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// Waits for `child` to exit; kills it and fails the test past `limit`.
pub fn wait_or_kill(child: &mut Child, limit: Duration) -> ExitStatus {
    match wait_bounded(child, limit) {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process {} did not exit within {limit:?}", child.id());
        }
    }
}

/// Polls `condition` until it holds, at most `limit`; false if it never did.
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if condition() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(POLL);
    }
}
