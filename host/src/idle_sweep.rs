//! The idle limit of every connection, kept by one thread: it looks at
//! each connection's time of last complete line a few times a second and
//! nudges those past the limit, which then close themselves. A timer per
//! connection would do the same at the cost of memory in every connection
//! and a timer update on every request.

use std::sync::Arc;
use std::time::Duration;

use crate::shared::Shared;

/// How often connections are looked at: one passes its limit by at most
/// this much (and the time to take a lock on each shard of the registry)
/// before it is told.
pub const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// Starts the sweep for the rest of the process's life, if the config
/// sets an idle limit.
pub fn start(shared: Arc<Shared>) -> std::io::Result<()> {
    let Some(limit) = shared.limits.idle_timeout else {
        return Ok(());
    };
    std::thread::Builder::new()
        .name("idle-sweep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(SWEEP_EVERY);
                shared.registry.nudge_idle(limit);
            }
        })
        .map(drop)
}
