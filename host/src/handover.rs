//! Moving waiting connections to another serving thread: all of them off
//! a thread that a hook holds, or a share of them off a busy thread while
//! a core is free (`crate::balance`).
//!
//! Each serving thread runs a single-threaded runtime, and a connection's
//! task belongs to the thread that serves it. A hook running inline can
//! hold its thread (the watchdog sees it within `placement::STALL`, then
//! sends the hook to blocking threads for good); that one call still runs
//! on the thread, and no task of the thread can run meanwhile. So a
//! connection that waits (for input, a pending reply, or a call on a
//! blocking thread) does not wait inside its task: it rests in its inbox
//! ([`Resting`]), where another thread can take it, move its socket and
//! timers to its own runtime, and serve it from then on. The task left
//! behind finds the connection gone when its thread next runs it (once
//! free again, if held), and ends. The balancer moves connections off a
//! thread that is merely busy the same way.
//!
//! What is moved is only what rests: the connection whose request is in
//! the stalled call, and any in the middle of writing to a client that
//! does not read, of an admin command, or of the last line of a client
//! that closed its side, stay with their thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::warn;

use crate::connection::Connection;
use crate::inbox::Inbox;
use crate::thread_clock::ThreadClock;

/// Where one connection rests while it waits: kept in its inbox, under
/// the lock of its pushed lines, since every connection has one.
pub struct Resting {
    /// The connection while it waits; `None` while its task runs it, or
    /// once another thread has taken it.
    conn: Option<Box<Connection>>,
    /// Counts the times the connection was taken over: a task that put it
    /// to rest before a take-over has no claim on it after.
    tenure: u32,
    /// The serving thread whose runtime serves the connection.
    thread: u32,
}

impl Resting {
    pub fn new(thread: usize) -> Resting {
        Resting {
            conn: None,
            tenure: 0,
            thread: thread_number(thread),
        }
    }

    /// The connection resting here if it is served by thread `from`; it
    /// is served by thread `to` from now on. The caller wakes the task
    /// left behind.
    fn take(&mut self, from: usize, to: usize) -> Option<Box<Connection>> {
        if !self.rests_on(from) {
            return None;
        }
        self.thread = thread_number(to);
        self.tenure = self.tenure.wrapping_add(1);
        self.conn.take()
    }

    /// Whether a connection rests here, served by thread `thread`.
    fn rests_on(&self, thread: usize) -> bool {
        self.conn.is_some() && self.thread == thread_number(thread)
    }
}

/// A serving thread's index as it is kept here: there are never more than
/// a few hundred.
fn thread_number(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

/// Waits until `poll` is ready with `conn`: polled in place first, then
/// with the connection resting in `inbox`. `None` if another thread took
/// the connection meanwhile: the caller's task has nothing left to do.
///
/// The connection is polled outside the lock (the poll takes pushed lines
/// from the same inbox); while it is, it is not resting, and no other
/// thread can take it.
pub fn rest<T, P>(inbox: &Inbox, conn: Box<Connection>, poll: P) -> Rest<'_, P>
where
    P: FnMut(&mut Connection, &mut Context<'_>) -> Poll<T> + Unpin,
{
    Rest {
        inbox,
        held: Some(conn),
        tenure: None,
        poll,
    }
}

/// The future of [`rest`].
pub struct Rest<'a, P> {
    inbox: &'a Inbox,
    /// The connection until it is put to rest.
    held: Option<Box<Connection>>,
    /// The tenure when the connection was put to rest, until it is taken
    /// back.
    tenure: Option<u32>,
    poll: P,
}

impl<T, P> Future for Rest<'_, P>
where
    P: FnMut(&mut Connection, &mut Context<'_>) -> Poll<T> + Unpin,
{
    type Output = Option<(Box<Connection>, T)>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut conn = match this.held.take() {
            Some(conn) => conn,
            None => {
                let mine = this.tenure;
                let taken = this.inbox.resting(|r| {
                    if mine == Some(r.tenure) {
                        r.conn.take()
                    } else {
                        None
                    }
                });
                match taken {
                    Some(conn) => conn,
                    // Taken over by another thread.
                    None => {
                        this.tenure = None;
                        return Poll::Ready(None);
                    }
                }
            }
        };
        match (this.poll)(&mut conn, cx) {
            Poll::Ready(out) => {
                this.tenure = None;
                Poll::Ready(Some((conn, out)))
            }
            Poll::Pending => {
                let (tenure, there) = this.inbox.resting(|r| (r.tenure, r.conn.replace(conn)));
                // Only this task puts the connection to rest; anything found
                // there is dropped outside the lock all the same.
                debug_assert!(there.is_none());
                drop(there);
                this.tenure = Some(tenure);
                Poll::Pending
            }
        }
    }
}

impl<P> Drop for Rest<'_, P> {
    /// A task dropped while its connection rests (its runtime is going
    /// away) takes the connection with it: nothing else would end it.
    fn drop(&mut self) {
        if let Some(mine) = self.tenure {
            let conn = self.inbox.resting(|r| {
                if r.tenure == mine {
                    r.conn.take()
                } else {
                    None
                }
            });
            drop(conn);
        }
    }
}

/// The serving threads, as the watchdog and the balancer know them (by
/// Linux thread id and CPU clock), and how to ask each to take connections
/// over.
#[derive(Default)]
pub struct Threads {
    list: Mutex<Vec<Entry>>,
}

struct Entry {
    index: usize,
    tid: u32,
    clock: Option<ThreadClock>,
    /// Takes the connections to take from other threads.
    requests: mpsc::UnboundedSender<Move>,
    /// A share asked of this thread that it has not taken yet: one at a
    /// time, or a thread that a hook holds for a while would find a pile
    /// of them, each decided on figures long gone, once free.
    asked: bool,
}

/// Waiting connections of thread `from` that thread `to` is to take: this
/// share of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share {
    pub from: usize,
    pub to: usize,
    pub fraction: f64,
}

/// Connections a serving thread is asked to take from another.
#[derive(Debug, Clone, Copy)]
pub enum Move {
    /// Every one waiting on thread `from`, which a hook holds.
    Held { from: usize },
    /// A share of those waiting on a thread busier than this one.
    Share(Share),
}

impl Threads {
    fn list(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Enters the calling thread as serving thread `index`; it takes over
    /// connections of the threads named on the returned channel.
    pub fn enter(&self, index: usize) -> mpsc::UnboundedReceiver<Move> {
        let (requests, received) = mpsc::unbounded_channel();
        let tid = crate::call_slots::thread_id();
        let mut list = self.list();
        list.retain(|e| e.index != index);
        list.push(Entry {
            index,
            tid,
            clock: ThreadClock::current(),
            requests,
            asked: false,
        });
        list.sort_by_key(|e| e.index);
        received
    }

    /// Each serving thread's CPU time so far, by index; `None` where it is
    /// unknown.
    pub fn cpu_times(&self) -> Vec<Option<Duration>> {
        let list = self.list();
        let mut times = vec![None; list.last().map_or(0, |e| e.index + 1)];
        for e in list.iter() {
            times[e.index] = e.clock.and_then(ThreadClock::read);
        }
        times
    }

    /// Asks another serving thread to take over the waiting connections of
    /// the serving thread `tid`, which a hook holds: the next one after it
    /// that still takes requests. False, and logged, if none does.
    pub fn rescue(&self, tid: u32) -> bool {
        let list = self.list();
        let Some(at) = list.iter().position(|e| e.tid == tid) else {
            return false;
        };
        let from = list[at].index;
        let taken = (1..list.len())
            .map(|step| &list[(at + step) % list.len()])
            .any(|to| to.requests.send(Move::Held { from }).is_ok());
        if !taken {
            warn!(
                from,
                "a hook holds serving thread {from}, and no other thread can take its connections"
            );
        }
        taken
    }

    /// Asks serving thread `share.to` to take its share of the waiting
    /// connections of `share.from`; false if it no longer takes any, or
    /// has yet to take the last share asked of it.
    pub fn share(&self, share: Share) -> bool {
        let mut list = self.list();
        let Some(to) = list.iter_mut().find(|e| e.index == share.to) else {
            return false;
        };
        if to.asked {
            return false;
        }
        to.asked = to.requests.send(Move::Share(share)).is_ok();
        to.asked
    }

    /// Serving thread `index` took the share asked of it.
    pub fn took_share(&self, index: usize) {
        if let Some(e) = self.list().iter_mut().find(|e| e.index == index) {
            e.asked = false;
        }
    }
}

/// Takes connections resting on serving thread `from` for the calling
/// thread, `to` (`fraction` of them, or all), moves each to this thread's
/// runtime, and hands it to `spawn`. Returns how many moved.
pub fn take_over(
    registry: &crate::inbox::Registry,
    from: usize,
    to: usize,
    fraction: Option<f64>,
    mut spawn: impl FnMut(Box<Connection>),
) -> usize {
    let wanted = match fraction {
        None => usize::MAX,
        Some(fraction) => {
            let mut resting = 0usize;
            registry.each(|inbox| {
                if inbox.resting(|r| r.rests_on(from)) {
                    resting += 1;
                }
            });
            // Rounded down: the one connection of a thread, however busy,
            // would only take its load along.
            (resting as f64 * fraction.clamp(0.0, 1.0)).floor() as usize
        }
    };
    let mut taken = Vec::new();
    registry.each(|inbox| {
        if taken.len() >= wanted {
            return;
        }
        if let Some(conn) = inbox.resting(|r| r.take(from, to)) {
            taken.push(conn);
            // The task left behind ends as soon as its thread is free.
            inbox.nudge();
        }
    });
    let mut moved = 0;
    for mut conn in taken {
        match conn.move_here() {
            Ok(()) => {
                spawn(conn);
                moved += 1;
            }
            Err(e) => warn!(
                connection = conn.id(),
                "closing connection: it could not move to another serving thread: {e}"
            ),
        }
    }
    moved
}
