//! The idle limit of every connection, and the buffers of quiet ones, kept
//! by one thread: a few times a second it counts a tick and nudges the
//! connections whose last complete line came more than the limit's worth
//! of ticks ago, which then close themselves, and those that keep buffers
//! but have had no line for a whole tick, which then let them go. Timers
//! in each connection would do the same at the cost of memory in every
//! connection and a timer update on every request; and a connection that
//! let its buffers go after every request would pay for them again with
//! the next.

use std::sync::Arc;
use std::time::Duration;

use crate::shared::Shared;

/// How often connections are looked at. A tick lasts at least this long,
/// so a connection is never closed before its limit; it is closed at
/// most two ticks after it, when the sweep keeps time.
pub const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// Starts the sweep for the rest of the process's life.
pub fn start(shared: Arc<Shared>) -> std::io::Result<()> {
    let limit = shared.limits.idle_timeout;
    std::thread::Builder::new()
        .name("idle-sweep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(SWEEP_EVERY);
                shared.registry.sweep(SWEEP_EVERY, limit);
            }
        })
        .map(drop)
}
