//! A thread that watches the hook calls in progress, from outside the
//! threads that make them: it sends a hook whose inline call stalls its
//! thread to blocking threads, has the connections waiting on that thread
//! moved to another ([`crate::handover`]), and says which calls run long
//! while they run, so that a stalled hook is named in the log before it
//! returns, or if it never does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{error, warn};

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
    /// The thread's time on a CPU when the call was seen the second time,
    /// and when that was: the start of what tells a stall from a thread
    /// that merely waited for a CPU.
    cpu_at: Option<(u64, Instant)>,
    demoted: bool,
}

impl Seen {
    fn new(call: u32, now: Instant) -> Seen {
        Seen {
            call,
            first_seen: now,
            cpu_at: None,
            demoted: false,
        }
    }
}

/// Time thread `tid` of this process has spent on a CPU, in nanoseconds.
fn cpu_time(tid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// Whether thread `tid` is asleep or waiting on I/O, rather than running
/// or ready to run.
fn waiting(tid: u32) -> Option<bool> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // The state follows the command name, which is in parentheses.
    let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
    Some(matches!(state, "S" | "D"))
}

/// Whether an inline call seen busy since `since` holds its thread: it
/// sleeps or waits in the hook, or it has kept the CPU for at least half
/// that time. A thread that only waited for a CPU (the machine is busy)
/// holds nothing; what cannot be read counts as held.
fn holds_its_thread(tid: u32, since: Option<(u64, Instant)>, now: Instant) -> bool {
    if waiting(tid).unwrap_or(true) {
        return true;
    }
    match (since, cpu_time(tid)) {
        (Some((before, at)), Some(cpu)) => {
            let wall = now.duration_since(at).as_nanos() as u64;
            cpu.saturating_sub(before) >= wall / 2
        }
        _ => true,
    }
}

fn watch(shared: &Shared) {
    let mut seen: HashMap<usize, Seen> = HashMap::new();
    // Per route: when its long calls were last reported. One line per hook,
    // however many of its calls run long: 64 hung calls are one report.
    let mut reported: HashMap<usize, Instant> = HashMap::new();
    loop {
        std::thread::sleep(LOOK_EVERY);
        let now = Instant::now();
        let mut long: HashMap<usize, (usize, Duration)> = HashMap::new();
        for (index, slot) in call_slots::in_use().iter().enumerate() {
            let Some(call) = slot.busy(now) else {
                seen.remove(&index);
                continue;
            };
            let entry = seen
                .entry(index)
                .or_insert_with(|| Seen::new(call.call, now));
            if entry.call != call.call {
                *entry = Seen::new(call.call, now);
            } else if call.inline && entry.cpu_at.is_none() {
                // Seen twice: a call that may stall; note its thread's CPU.
                entry.cpu_at = cpu_time(call.thread).map(|cpu| (cpu, now));
            }
            // Inline calls are not timed by their thread: seen busy since.
            let running = call
                .running
                .unwrap_or_else(|| now.duration_since(entry.first_seen));
            if call.inline
                && running >= STALL
                && !entry.demoted
                && holds_its_thread(call.thread, entry.cpu_at, now)
            {
                entry.demoted = true;
                // The call goes on holding its thread: the connections
                // waiting on that thread move to another.
                shared.threads.rescue(call.thread);
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
            if call.inline {
                give_up_past_the_limit(shared, index, call.route, running);
            }
            if running >= REPORT_AFTER {
                let (calls, longest) = long.entry(call.route).or_default();
                *calls += 1;
                *longest = (*longest).max(running);
            }
        }
        reported.retain(|route, _| long.contains_key(route));
        for (route, (calls, longest)) in long {
            let due = reported
                .get(&route)
                .is_none_or(|last| now.duration_since(*last) >= REPORT_EVERY);
            if !due {
                continue;
            }
            reported.insert(route, now);
            let dispatcher = shared.dispatch.load();
            if route < dispatcher.route_count() {
                let (plugin, hook) = dispatcher.names(route);
                warn!(
                    plugin = %plugin,
                    hook = %hook,
                    calls,
                    running_ms = longest.as_millis() as u64,
                    "hook still running"
                );
            }
        }
    }
}

/// Ends the serving process if the inline call in slot `index` has run past
/// its plugin's time limit.
///
/// A call on a blocking thread that runs too long is left behind and its
/// client answered. An inline call cannot be: it holds a serving thread and
/// every connection on it, and nothing can take the thread back from it.
/// Past the limit the process aborts, its death blamed on the hook, and the
/// supervisor starts a new one: the connections of this process are lost,
/// but no thread stays held for good, and a hook that does it three times
/// is disabled.
fn give_up_past_the_limit(shared: &Shared, index: usize, route: usize, running: Duration) {
    let dispatcher = shared.dispatch.load();
    if route >= dispatcher.route_count() {
        return;
    }
    let plugin = &dispatcher.plugins()[dispatcher.route(route).plugin];
    if running < plugin.limits.timeout {
        return;
    }
    let (name, hook) = dispatcher.names(route);
    error!(
        plugin = %name,
        hook = %hook,
        running_ms = running.as_millis() as u64,
        "inline hook call past its time limit holds a serving thread; \
         ending the serving process"
    );
    call_slots::mark_crashed(index);
    std::process::abort();
}
