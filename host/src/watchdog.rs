//! A thread that watches the hook calls in progress, from outside the
//! threads that make them: it sends a hook whose inline call stalls its
//! thread to blocking threads, and says which calls run long while they
//! run, so that a stalled hook is named in the log before it returns, or
//! if it never does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::warn;

use crate::call_slots;
use crate::placement::STALL;
use crate::shared::Shared;

/// A call running this long is reported...
pub const REPORT_AFTER: Duration = Duration::from_secs(1);
/// ...and again this often while it goes on.
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// How often the calls are looked at: a stall is seen within `STALL` and
/// this much.
const LOOK_EVERY: Duration = Duration::from_millis(10);

/// Starts the watchdog for the rest of the process's life.
pub fn start(shared: Arc<Shared>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || watch(&shared))
        .map(drop)
}

/// What the watchdog knows of the call in one slot.
struct Seen {
    call: u32,
    first_seen: Instant,
    demoted: bool,
    reported: Option<Instant>,
}

fn watch(shared: &Shared) {
    let mut seen: HashMap<usize, Seen> = HashMap::new();
    loop {
        std::thread::sleep(LOOK_EVERY);
        let now = Instant::now();
        for (index, slot) in call_slots::in_use().iter().enumerate() {
            let Some(call) = slot.busy(now) else {
                seen.remove(&index);
                continue;
            };
            let entry = seen.entry(index).or_insert(Seen {
                call: call.call,
                first_seen: now,
                demoted: false,
                reported: None,
            });
            if entry.call != call.call {
                *entry = Seen {
                    call: call.call,
                    first_seen: now,
                    demoted: false,
                    reported: None,
                };
            }
            // Inline calls are not timed by their thread: seen busy since.
            let running = call
                .running
                .unwrap_or_else(|| now.duration_since(entry.first_seen));
            if call.inline && running >= STALL && !entry.demoted {
                entry.demoted = true;
                let dispatcher = shared.dispatch.load();
                if call.route < dispatcher.route_count()
                    && dispatcher.route(call.route).placement.demote()
                {
                    let (plugin, hook) = dispatcher.names(call.route);
                    warn!(
                        plugin = %plugin,
                        hook = %hook,
                        running_ms = running.as_millis() as u64,
                        "hook stalled its thread; it runs on blocking threads from now on"
                    );
                }
            }
            let due = running >= REPORT_AFTER
                && entry
                    .reported
                    .is_none_or(|last| now.duration_since(last) >= REPORT_EVERY);
            if due {
                entry.reported = Some(now);
                let dispatcher = shared.dispatch.load();
                if call.route < dispatcher.route_count() {
                    let (plugin, hook) = dispatcher.names(call.route);
                    warn!(
                        plugin = %plugin,
                        hook = %hook,
                        running_ms = running.as_millis() as u64,
                        "hook still running"
                    );
                }
            }
        }
    }
}
