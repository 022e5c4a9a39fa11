//! What reaches a connection from outside its own requests: lines pushed
//! by plugins, the news that a pending reply may be ready, and the nudges
//! that make it look whether it has been idle too long or the host is
//! stopping.
//!
//! Every open connection has an [`Inbox`] in the [`Registry`], by id;
//! plugins reach the registry through the host object they were given at
//! start ([`crate::host_services`]), from any thread. The connection
//! drains its inbox between replies, so a pushed line never lands inside
//! a reply.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

use crate::handover::Resting;

/// Shards of the registry: pushes from many threads to many connections
/// contend on one shard's lock only when their ids fall together.
const SHARDS: usize = 64;

/// One connection's queue of pushed lines, and what brings the connection
/// back from a wait: its waker and the flags it looks at then.
pub struct Inbox {
    /// Pushed lines, and the connection itself while it waits: one lock
    /// and one allocation per connection serve both.
    queue: Mutex<Queue>,
    /// The connection's task, woken on a push, on a pending reply's news,
    /// on overflow, and by nudges. One waker, not a list of waiters: only
    /// the connection waits here, and its wait then needs no memory of
    /// its own.
    waker: AtomicWaker,
    /// Set before every wake-up: what a busy connection, which does not
    /// wait, checks between batches, and what a waiting one looks at
    /// after registering its waker, so that no wake-up is lost.
    news: AtomicBool,
    /// Set when a pending reply of this connection may be ready.
    woken: AtomicBool,
    /// The idle sweep's tick in which the connection last received a
    /// complete line.
    last_line: AtomicU64,
    /// The connection keeps buffers between requests: the sweep nudges it
    /// to let them go once it has been quiet for a while.
    holds_buffers: AtomicBool,
    /// A push did not fit: the client is not reading, and is let go. Set
    /// under the queue's lock.
    overflowed: AtomicBool,
}

struct Queue {
    /// Pushed lines, each already framed (`MSG > ` and the line ending).
    lines: String,
    /// Where the connection rests while it waits ([`crate::handover`]):
    /// here, so that the registry, which lists every connection, finds the
    /// resting ones of a thread.
    resting: Resting,
}

/// Whether a pushed line was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    Yes,
    Overflow,
}

impl Inbox {
    fn new(now: u64, thread: usize) -> Inbox {
        Inbox {
            queue: Mutex::new(Queue {
                lines: String::new(),
                resting: Resting::new(thread),
            }),
            waker: AtomicWaker::new(),
            news: AtomicBool::new(false),
            woken: AtomicBool::new(false),
            last_line: AtomicU64::new(now),
            holds_buffers: AtomicBool::new(false),
            overflowed: AtomicBool::new(false),
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        // The queue is a string and a resting place, valid at every step: a
        // panic elsewhere while holding the lock leaves nothing half-done.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on where the connection rests, under the queue's lock.
    pub fn resting<R>(&self, f: impl FnOnce(&mut Resting) -> R) -> R {
        f(&mut self.queue().resting)
    }

    /// Queues `line` as a pushed line, if it fits within `limit` bytes.
    fn push(&self, line: &str, limit: usize) -> Queued {
        let mut queue = self.queue();
        if self.overflowed.load(Ordering::Relaxed) {
            return Queued::Overflow;
        }
        let framed = crate::outgoing::pushed_len(line);
        let verdict = if queue.lines.len() + framed > limit {
            self.overflowed.store(true, Ordering::Relaxed);
            Queued::Overflow
        } else {
            crate::outgoing::write_pushed(&mut queue.lines, line);
            Queued::Yes
        };
        drop(queue);
        self.tell();
        verdict
    }

    /// Whether a push found the queue full.
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// Says that a pending reply may be ready.
    pub fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        self.tell();
    }

    fn tell(&self) {
        self.news.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Wakes the connection with nothing queued for it (busy or waiting,
    /// it sees the news flag): it then looks at its idle time, its buffers
    /// and whether the host is stopping.
    pub fn nudge(&self) {
        self.tell();
    }

    /// Whether anything arrived since the last [`Inbox::take_pushed`]; one
    /// load of a flag, cheap enough for every batch.
    pub fn has_news(&self) -> bool {
        self.news.load(Ordering::Relaxed)
    }

    /// Moves the queued lines to the end of `out`; true if the queue
    /// overflowed and the connection must end.
    pub fn take_pushed(&self, out: &mut abi_stable::std_types::RString) -> bool {
        // Cleared before the queue is read: a push after this sets it again.
        self.news.store(false, Ordering::Release);
        let mut queue = self.queue();
        out.push_str(&queue.lines);
        queue.lines.clear();
        if queue.lines.capacity() > 4096 {
            // A burst of pushes leaves no large buffer behind on an idle
            // connection.
            queue.lines.shrink_to(0);
        }
        self.overflowed.load(Ordering::Relaxed)
    }

    /// Whether a pending reply may be ready since the last call.
    pub fn take_wake(&self) -> bool {
        self.woken.swap(false, Ordering::Acquire)
    }

    /// Has the connection's task woken by the next push or nudge, whatever
    /// is already waiting.
    pub fn wake_on_news(&self, cx: &Context<'_>) {
        self.waker.register(cx.waker());
    }

    /// Ready once something arrived (or a nudge) since the last
    /// [`Inbox::take_pushed`].
    pub fn poll_arrived(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.has_news() {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // Looked at again after registering: a wake-up between the first
        // look and the registration found no waker to wake.
        if self.news.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Open connections' inboxes by id: one shard of the registry.
type Shard = Mutex<HashMap<u64, Arc<Inbox>>>;

/// Every open connection's inbox, by connection id.
pub struct Registry {
    shards: Box<[Shard]>,
    /// How many bytes of pushed lines one connection may have waiting.
    limit: usize,
    /// The idle sweep's count of its passes: the clock of the inboxes'
    /// `last_line`. Counted rather than read from the system clock, so
    /// that a line costs no clock read, and a sweep that runs late makes
    /// connections close late, never early.
    tick: AtomicU64,
}

impl Registry {
    pub fn new(limit: usize) -> Arc<Registry> {
        Arc::new(Registry {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            limit,
            tick: AtomicU64::new(0),
        })
    }

    fn tick(&self) -> u64 {
        self.tick.load(Ordering::Relaxed)
    }

    fn shard(&self, id: u64) -> MutexGuard<'_, HashMap<u64, Arc<Inbox>>> {
        // Ids are sequential, so the low bits spread them evenly. A map is
        // valid after every operation, so a poisoned lock is still sound.
        self.shards[(id % SHARDS as u64) as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Opens the inbox of connection `id`, served by serving thread
    /// `thread`; it is closed when the returned guard is dropped, however
    /// the connection ends.
    pub fn open(self: &Arc<Self>, id: u64, thread: usize) -> Registered {
        let inbox = Arc::new(Inbox::new(self.tick(), thread));
        if let Entry::Vacant(slot) = self.shard(id).entry(id) {
            slot.insert(Arc::clone(&inbox));
        }
        Registered {
            registry: Arc::clone(self),
            id,
            inbox,
        }
    }

    pub fn get(&self, id: u64) -> Option<Arc<Inbox>> {
        self.shard(id).get(&id).cloned()
    }

    /// Queues `line` for connection `id`; `None` if it is gone.
    pub fn push(&self, id: u64, line: &str) -> Option<Queued> {
        Some(self.get(id)?.push(line, self.limit))
    }

    /// Queues `line` for each of `ids`; returns how many took it.
    pub fn push_many(&self, ids: &[u64], line: &str) -> u64 {
        let mut queued = 0;
        for &id in ids {
            if self.push(id, line) == Some(Queued::Yes) {
                queued += 1;
            }
        }
        queued
    }

    /// Counts one pass of the idle sweep, made at least `every` after the
    /// last, and nudges every connection whose last complete line came
    /// `limit` or longer ago, so that it closes itself, and every quiet
    /// one that still holds buffers, so that it lets them go. One sweep
    /// over all connections stands in for timers in each, which would cost
    /// every connection its memory and every request a timer update.
    pub fn sweep(&self, every: Duration, limit: Option<Duration>) {
        let now = self.tick.fetch_add(1, Ordering::Relaxed) + 1;
        let limit = limit.map_or(u64::MAX, |limit| idle_ticks(every, limit));
        self.each(|inbox| {
            let since = now.saturating_sub(inbox.last_line.load(Ordering::Relaxed));
            if since > limit
                || (since >= QUIET_TICKS && inbox.holds_buffers.load(Ordering::Relaxed))
            {
                inbox.nudge();
            }
        });
    }

    /// Nudges every connection, for them to see that the host is stopping.
    pub fn nudge_all(&self) {
        self.each(Inbox::nudge);
    }

    /// Calls `f` with every open connection's inbox, under its shard's lock.
    pub fn each(&self, mut f: impl FnMut(&Inbox)) {
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            shard.values().for_each(|inbox| f(inbox));
        }
    }
}

/// A connection's place in the registry, for as long as it is open.
pub struct Registered {
    registry: Arc<Registry>,
    id: u64,
    pub inbox: Arc<Inbox>,
}

impl Registered {
    /// Notes that a complete line arrived: the idle time starts again.
    pub fn line_seen(&self) {
        (self.inbox.last_line).store(self.registry.tick(), Ordering::Relaxed);
    }

    /// Whether the connection has had no complete line for a whole tick of
    /// the sweep: it then keeps no buffers.
    pub fn quiet(&self) -> bool {
        self.ticks_since_line() >= QUIET_TICKS
    }

    /// Says whether the connection keeps buffers while it waits.
    pub fn holds_buffers(&self, holds: bool) {
        let flag = &self.inbox.holds_buffers;
        if flag.load(Ordering::Relaxed) != holds {
            flag.store(holds, Ordering::Relaxed);
        }
    }

    /// Whether the connection has gone `limit` without a complete line,
    /// as the idle sweep (passing every `every`) counts it: more than
    /// `limit / every` whole passes since the pass of its last line.
    pub fn idle_past(&self, every: Duration, limit: Duration) -> bool {
        self.ticks_since_line() > idle_ticks(every, limit)
    }

    fn ticks_since_line(&self) -> u64 {
        let last = self.inbox.last_line.load(Ordering::Relaxed);
        self.registry.tick().saturating_sub(last)
    }
}

/// Ticks without a line after which a connection counts as quiet: at
/// least one whole tick.
const QUIET_TICKS: u64 = 2;

/// Passes of a sweep made every `every` that make up `limit`, rounded up.
fn idle_ticks(every: Duration, limit: Duration) -> u64 {
    let every = every.as_nanos().max(1);
    u64::try_from(limit.as_nanos().div_ceil(every)).unwrap_or(u64::MAX)
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.shard(self.id).remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY: Duration = Duration::from_millis(250);

    fn one_connection() -> (Arc<Registry>, Registered) {
        let registry = Registry::new(1024);
        let conn = registry.open(1, 0);
        (registry, conn)
    }

    #[test]
    fn a_connection_is_idle_once_its_limit_in_whole_ticks_has_passed() {
        let (registry, conn) = one_connection();
        let limit = Duration::from_secs(1);
        // The first tick may come right after the line: four more make a
        // second.
        for _ in 0..4 {
            registry.sweep(EVERY, Some(limit));
            assert!(!conn.idle_past(EVERY, limit));
            assert!(!conn.inbox.has_news(), "nudged before its time");
        }
        registry.sweep(EVERY, Some(limit));
        assert!(conn.idle_past(EVERY, limit));
        assert!(conn.inbox.has_news(), "the sweep nudges an idle connection");
        conn.line_seen();
        assert!(
            !conn.idle_past(EVERY, limit),
            "a line starts the time again"
        );
    }

    #[test]
    fn a_quiet_connection_holding_buffers_is_nudged_once_a_tick_has_passed() {
        let (registry, conn) = one_connection();
        conn.holds_buffers(true);
        registry.sweep(EVERY, None);
        assert!(!conn.quiet());
        assert!(!conn.inbox.has_news(), "nudged within its first tick");
        registry.sweep(EVERY, None);
        assert!(conn.quiet());
        assert!(conn.inbox.has_news(), "a quiet holder is nudged");

        let mut out = abi_stable::std_types::RString::new();
        conn.inbox.take_pushed(&mut out);
        conn.holds_buffers(false);
        registry.sweep(EVERY, None);
        assert!(!conn.inbox.has_news(), "one holding nothing is left alone");
    }
}
