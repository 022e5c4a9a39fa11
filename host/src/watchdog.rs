//! A thread that watches the hook calls in progress and says which ones
//! run long, while they run: a stalled hook is named in the log before it
//! returns, or if it never does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::warn;

use crate::call_slots;
use crate::shared::Shared;

/// A call running this long is reported...
pub const REPORT_AFTER: Duration = Duration::from_secs(1);
/// ...and again this often while it goes on.
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// How often the calls are looked at.
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// Starts the watchdog for the rest of the process's life.
pub fn start(shared: Arc<Shared>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || watch(&shared))
        .map(drop)
}

fn watch(shared: &Shared) {
    // Per slot: the start of the call last reported, and when.
    let mut reported: HashMap<usize, (u64, Instant)> = HashMap::new();
    loop {
        std::thread::sleep(LOOK_EVERY);
        let now = Instant::now();
        for (index, slot) in call_slots::all().iter().enumerate() {
            let Some(call) = slot.busy(now) else {
                reported.remove(&index);
                continue;
            };
            if call.running < REPORT_AFTER {
                continue;
            }
            let due = match reported.get(&index) {
                Some(&(started, last)) if started == call.started => {
                    now.duration_since(last) >= REPORT_EVERY
                }
                _ => true,
            };
            if due {
                let dispatcher = shared.dispatch.load();
                if call.route < dispatcher.route_count() {
                    let (plugin, hook) = dispatcher.names(call.route);
                    warn!(
                        plugin = %plugin,
                        hook = %hook,
                        running_ms = call.running.as_millis() as u64,
                        "hook still running"
                    );
                }
                reported.insert(index, (call.started, now));
            }
        }
    }
}
