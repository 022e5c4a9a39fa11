//! What reaches a connection from outside its own requests: lines pushed
//! by plugins, and the news that a pending reply may be ready.
//!
//! Every open connection has an [`Inbox`] in the [`Registry`], by id;
//! plugins reach the registry through the host object they were given at
//! start ([`crate::host_services`]), from any thread. The connection
//! drains its inbox between replies, so a pushed line never lands inside
//! a reply.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// Shards of the registry: pushes from many threads to many connections
/// contend on one shard's lock only when their ids fall together.
const SHARDS: usize = 64;

/// One connection's queue of pushed lines.
pub struct Inbox {
    queue: Mutex<Queue>,
    /// Woken on a push, on a pending reply's news, and on overflow.
    notify: Notify,
    /// Set on every push and wake: what a busy connection, which never
    /// waits on `notify`, checks between batches.
    news: AtomicBool,
    /// Set when a pending reply of this connection may be ready.
    woken: AtomicBool,
}

#[derive(Default)]
struct Queue {
    /// Pushed lines, each already framed (`> ` and the line ending).
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
    fn new(limit: usize) -> Inbox {
        Inbox {
            queue: Mutex::new(Queue {
                limit,
                ..Queue::default()
            }),
            notify: Notify::new(),
            news: AtomicBool::new(false),
            woken: AtomicBool::new(false),
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
        self.notify.notify_one();
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

    /// Completes when something arrived; one future serves a connection
    /// across many waits.
    pub fn arrived(&self) -> Notified<'_> {
        self.notify.notified()
    }
}

/// Open connections' inboxes by id: one shard of the registry.
type Shard = Mutex<HashMap<u64, Arc<Inbox>>>;

/// Every open connection's inbox, by connection id.
pub struct Registry {
    shards: Box<[Shard]>,
    /// How many bytes of pushed lines one connection may have waiting.
    limit: usize,
}

impl Registry {
    pub fn new(limit: usize) -> Arc<Registry> {
        Arc::new(Registry {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            limit,
        })
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
        let inbox = Arc::new(Inbox::new(self.limit));
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
}

/// A connection's place in the registry, for as long as it is open.
pub struct Registered {
    registry: Arc<Registry>,
    id: u64,
    pub inbox: Arc<Inbox>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.shard(self.id).remove(&self.id);
    }
}
