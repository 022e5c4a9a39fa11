//! Moving the waiting connections of a serving thread that a hook holds to
//! another serving thread.
//!
//! Each serving thread runs a single-threaded runtime, and a connection's
//! task belongs to the thread that accepted it. A hook running inline can
//! hold its thread (the watchdog sees it within `placement::STALL`, then
//! sends the hook to blocking threads for good); that one call still runs
//! on the thread, and no task of the thread can run meanwhile. So a
//! connection waiting for input does not wait inside its task: it rests in
//! a [`Berth`], where another thread can take it, move its socket to its
//! own runtime, and serve it from then on. The task left behind finds the
//! berth empty when its thread is free again, and ends.
//!
//! What is moved is only what rests: the connection whose request is in
//! the stalled call, and any in the middle of a write or of a call on a
//! blocking thread, stay with their thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};

use tokio::sync::mpsc;
use tracing::warn;

use crate::connection::Connection;

/// Where one connection rests while it waits. Every connection has one,
/// so it is kept small: the waiting task is reached through the inbox's
/// waker, which it registers in every wait.
pub struct Berth {
    resting: Mutex<Resting>,
}

struct Resting {
    /// The connection while it waits; `None` while its task runs it, or
    /// once another thread has taken it.
    conn: Option<Box<Connection>>,
    /// Counts the times the connection was taken over: a task that put it
    /// to rest before a take-over has no claim on it after.
    tenure: u32,
    /// The serving thread whose runtime serves the connection.
    thread: u32,
}

impl Berth {
    pub fn new(thread: usize) -> Berth {
        Berth {
            resting: Mutex::new(Resting {
                conn: None,
                tenure: 0,
                thread: thread_number(thread),
            }),
        }
    }

    fn resting(&self) -> MutexGuard<'_, Resting> {
        // Each field is whole at every step: a poisoned lock changes nothing.
        self.resting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `poll` is ready with `conn`: polled in place first, then
    /// with the connection resting here. `None` if another thread took the
    /// connection meanwhile: the caller's task has nothing left to do.
    pub fn rest<T, P>(&self, conn: Box<Connection>, poll: P) -> Rest<'_, P>
    where
        P: FnMut(&mut Connection, &mut Context<'_>) -> Poll<T> + Unpin,
    {
        Rest {
            berth: self,
            held: Some(conn),
            tenure: None,
            poll,
        }
    }

    /// The connection resting here if it is served by thread `from`; it
    /// is served by thread `to` from now on. The caller wakes the task
    /// left behind.
    fn take(&self, from: usize, to: usize) -> Option<Box<Connection>> {
        let mut resting = self.resting();
        if resting.conn.is_none() || resting.thread != thread_number(from) {
            return None;
        }
        resting.thread = thread_number(to);
        resting.tenure = resting.tenure.wrapping_add(1);
        resting.conn.take()
    }
}

/// A serving thread's index as the berth keeps it: there are never more
/// than a few hundred.
fn thread_number(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

/// The future of [`Berth::rest`].
pub struct Rest<'a, P> {
    berth: &'a Berth,
    /// The connection until it is put to rest.
    held: Option<Box<Connection>>,
    /// The berth's tenure when the connection was put to rest, until it is
    /// taken back.
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
        // The first poll, which on a busy connection is often ready, takes
        // no lock.
        if let Some(conn) = this.held.as_mut() {
            if let Poll::Ready(out) = (this.poll)(conn, cx) {
                return Poll::Ready(this.held.take().map(|conn| (conn, out)));
            }
            let mut resting = this.berth.resting();
            resting.conn = this.held.take();
            this.tenure = Some(resting.tenure);
            return Poll::Pending;
        }
        let mut resting = this.berth.resting();
        let Resting { conn, tenure, .. } = &mut *resting;
        let conn = match conn {
            Some(conn) if this.tenure == Some(*tenure) => conn,
            // Taken over by another thread.
            _ => {
                this.tenure = None;
                return Poll::Ready(None);
            }
        };
        match (this.poll)(conn, cx) {
            Poll::Ready(out) => {
                this.tenure = None;
                Poll::Ready(resting.conn.take().map(|conn| (conn, out)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<P> Drop for Rest<'_, P> {
    /// A task dropped while its connection rests (its runtime is going
    /// away) takes the connection with it: nothing else would end it.
    fn drop(&mut self) {
        if let Some(tenure) = self.tenure {
            let mut resting = self.berth.resting();
            if resting.tenure == tenure {
                let conn = resting.conn.take();
                drop(resting);
                drop(conn);
            }
        }
    }
}

/// The serving threads, as the watchdog knows them (by Linux thread id),
/// and how to ask each to take connections over.
#[derive(Default)]
pub struct Threads {
    list: Mutex<Vec<Entry>>,
}

struct Entry {
    index: usize,
    tid: u32,
    /// Takes the index of a held thread whose connections to take.
    requests: mpsc::UnboundedSender<usize>,
}

impl Threads {
    fn list(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Enters the calling thread as serving thread `index`; it takes over
    /// connections of the threads named on the returned channel.
    pub fn enter(&self, index: usize) -> mpsc::UnboundedReceiver<usize> {
        let (requests, received) = mpsc::unbounded_channel();
        let tid = crate::call_slots::thread_id();
        let mut list = self.list();
        list.retain(|e| e.index != index);
        list.push(Entry {
            index,
            tid,
            requests,
        });
        list.sort_by_key(|e| e.index);
        received
    }

    /// Asks another serving thread to take over the waiting connections of
    /// the serving thread `tid`, which a hook holds: the next one after it.
    /// False if `tid` is no serving thread, or there is no other.
    pub fn rescue(&self, tid: u32) -> bool {
        let list = self.list();
        let Some(at) = list.iter().position(|e| e.tid == tid) else {
            return false;
        };
        if list.len() < 2 {
            return false;
        }
        let to = &list[(at + 1) % list.len()];
        to.requests.send(list[at].index).is_ok()
    }
}

/// Takes every connection resting on serving thread `from` for the
/// calling thread, `to`, moves it to this thread's runtime, and hands it
/// to `spawn`. Returns how many moved.
pub fn take_over(
    registry: &crate::inbox::Registry,
    from: usize,
    to: usize,
    mut spawn: impl FnMut(Box<Connection>),
) -> usize {
    let mut taken = Vec::new();
    registry.each(|inbox| {
        if let Some(conn) = inbox.berth.take(from, to) {
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
