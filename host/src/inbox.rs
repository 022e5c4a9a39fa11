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
use std::time::{Duration, Instant};

use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

/// Shards of the registry: pushes from many threads to many connections
/// contend on one shard's lock only when their ids fall together.
const SHARDS: usize = 64;

/// One connection's queue of pushed lines.
pub struct Inbox {
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
    /// When the connection last received a complete line, in milliseconds
    /// since the registry's epoch: what the idle sweep reads.
    last_line: AtomicU64,
}

#[derive(Default)]
struct Queue {
    /// Pushed lines, each already framed (`MSG > ` and the line ending).
    lines: String,
    /// The bound on `lines`, in bytes.
    limit: usize,
    /// A push did not fit: the client is not reading, and is let go.
    overflowed: bool,
}

/// Whether a pushed line was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    Yes,
    Overflow,
}

impl Inbox {
    fn new(limit: usize, now: u64) -> Inbox {
        Inbox {
            queue: Mutex::new(Queue {
                limit,
                ..Queue::default()
            }),
            waker: AtomicWaker::new(),
            news: AtomicBool::new(false),
            woken: AtomicBool::new(false),
            last_line: AtomicU64::new(now),
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        // The queue is a string and two flags, valid at every step: a panic
        // elsewhere while holding the lock leaves nothing half-done.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `line` as a pushed line, if it fits.
    pub fn push(&self, line: &str) -> Queued {
        let mut queue = self.queue();
        if queue.overflowed {
            return Queued::Overflow;
        }
        let framed = crate::outgoing::pushed_len(line);
        let verdict = if queue.lines.len() + framed > queue.limit {
            queue.overflowed = true;
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
        self.queue().overflowed
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

    /// Wakes the connection with nothing new for it: it then looks at its
    /// idle time and at whether the host is stopping.
    fn nudge(&self) {
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
        queue.overflowed
    }

    /// Whether a pending reply may be ready since the last call.
    pub fn take_wake(&self) -> bool {
        self.woken.swap(false, Ordering::Acquire)
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
    /// The zero of the inboxes' `last_line` times.
    epoch: Instant,
}

impl Registry {
    pub fn new(limit: usize) -> Arc<Registry> {
        Arc::new(Registry {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            limit,
            epoch: Instant::now(),
        })
    }

    fn millis(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn shard(&self, id: u64) -> MutexGuard<'_, HashMap<u64, Arc<Inbox>>> {
        // Ids are sequential, so the low bits spread them evenly. A map is
        // valid after every operation, so a poisoned lock is still sound.
        self.shards[(id % SHARDS as u64) as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Opens connection `id`'s inbox; it is closed when the returned
    /// guard is dropped, however the connection ends.
    pub fn open(self: &Arc<Self>, id: u64) -> Registered {
        let inbox = Arc::new(Inbox::new(self.limit, self.millis()));
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

    /// Queues `line` for each of `ids`; returns how many took it.
    pub fn push_many(&self, ids: &[u64], line: &str) -> u64 {
        let mut queued = 0;
        for &id in ids {
            if let Some(inbox) = self.get(id)
                && inbox.push(line) == Queued::Yes
            {
                queued += 1;
            }
        }
        queued
    }

    /// Nudges every connection that has had no complete line for `limit`,
    /// so that it closes itself: one sweep over all connections stands in
    /// for a timer in each, which would cost every connection its memory
    /// and every request a timer update.
    pub fn nudge_idle(&self, limit: Duration) {
        let limit = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        let now = self.millis();
        self.each(|inbox| {
            if now.saturating_sub(inbox.last_line.load(Ordering::Relaxed)) >= limit {
                inbox.nudge();
            }
        });
    }

    /// Nudges every connection, for them to see that the host is stopping.
    pub fn nudge_all(&self) {
        self.each(Inbox::nudge);
    }

    fn each(&self, mut f: impl FnMut(&Inbox)) {
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
        (self.inbox.last_line).store(self.registry.millis(), Ordering::Relaxed);
    }

    /// How long since the last complete line (or the connection's start).
    pub fn idle_for(&self) -> Duration {
        let last = self.inbox.last_line.load(Ordering::Relaxed);
        Duration::from_millis(self.registry.millis().saturating_sub(last))
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.shard(self.id).remove(&self.id);
    }
}
