//! Which hook each thread is running, readable from outside the thread.
//!
//! Every thread that calls hooks owns one slot and marks it around each
//! call: route and start time. The watchdog reads the slots to report calls
//! that run long, and the supervisor reads them after the serving process
//! died, to name the hook that was running. That is why the slots can live
//! in memory shared with the supervisor ([`Region`]), beside the names of
//! the routes; they are plain atomics, so a process that dies mid-write
//! leaves nothing half-written that matters.

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Slots in a region: threads that call hooks (serving threads and
/// blocking threads) beyond this many are not tracked.
pub const SLOTS: usize = 4096;
/// Room for the names of the routes, one line each.
const NAMES: usize = 256 * 1024;

/// The memory the serving process shares with its supervisor.
#[repr(C)]
pub struct Region {
    slots: [Slot; SLOTS],
    /// The slot of the thread that took a fatal signal, plus one; 0 if
    /// none did ([`mark_crashes`]).
    crashed: AtomicU32,
    /// Bytes of `names` written; stored after them.
    names_len: AtomicU32,
    names: [AtomicU8; NAMES],
}

impl Region {
    /// A new region in a memory file, to be shared with a child process
    /// that inherits the descriptor.
    pub fn create() -> io::Result<(OwnedFd, &'static Region)> {
        // SAFETY: memfd_create takes a NUL-terminated name and flags; the
        // descriptor it returns is ours alone.
        let fd = unsafe {
            libc::memfd_create(
                c"linehost-calls".as_ptr(),
                libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned to us and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let size = libc::off_t::try_from(size_of::<Region>()).map_err(io::Error::other)?;
        // SAFETY: ftruncate and fcntl on a descriptor we own.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), size) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // Sealed at its size: the serving process, and so any plugin in
        // it, holds this file too, and shrinking it would make the
        // supervisor's next read of the mapping a SIGBUS.
        let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let region = Region::map(fd.as_raw_fd())?;
        Ok((fd, region))
    }

    /// Maps the region of the memory file `fd` (made by [`Region::create`])
    /// for the rest of the process's life.
    pub fn map(fd: RawFd) -> io::Result<&'static Region> {
        // SAFETY: a shared mapping of a file of at least this size; the
        // pages start zeroed, which is a valid, idle `Region` (atomics
        // only), and it is never unmapped, so the reference stays valid.
        unsafe {
            let at = libc::mmap(
                std::ptr::null_mut(),
                size_of::<Region>(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            if at == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            Ok(&*(at as *const Region))
        }
    }

    /// Marks every slot idle: what a dead process left is read before a
    /// new one starts.
    pub fn clear(&self) {
        for slot in &self.slots {
            slot.route.store(0, Ordering::Release);
        }
        self.crashed.store(0, Ordering::Release);
        self.names_len.store(0, Ordering::Release);
    }

    /// The slot of the thread that took a fatal signal, if one did.
    pub fn crashed(&self) -> Option<&Slot> {
        match self.crashed.load(Ordering::Acquire) {
            0 => None,
            n => self.slots.get(n as usize - 1),
        }
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Publishes the names of the routes, one line each in route order.
    pub fn publish_names(&self, names: &str) {
        let bytes = &names.as_bytes()[..names.len().min(NAMES)];
        for (cell, &b) in self.names.iter().zip(bytes) {
            cell.store(b, Ordering::Relaxed);
        }
        self.names_len.store(bytes.len() as u32, Ordering::Release);
    }

    /// The name of `route`, as published.
    pub fn name(&self, route: usize) -> Option<String> {
        let len = (self.names_len.load(Ordering::Acquire) as usize).min(NAMES);
        let bytes: Vec<u8> = self.names[..len]
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        String::from_utf8_lossy(&bytes)
            .lines()
            .nth(route)
            .map(str::to_owned)
    }
}

/// One thread's call in progress.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Slot {
    /// The route being called, plus one, with [`INLINE`] set for a call on
    /// a serving thread; 0 when idle.
    route: AtomicU32,
    /// Calls made in this slot so far: tells one call from the next.
    calls: AtomicU32,
    /// When the call started, in nanoseconds since [`epoch`]; 0 for an
    /// inline call, which is not timed (the watchdog times it from outside).
    started: AtomicU64,
    /// The thread that holds the slot (its Linux thread id).
    thread: AtomicU32,
    _pad: u32,
}

/// The bit of [`Slot::route`] that marks an inline call.
const INLINE: u32 = 1 << 31;

/// The region of this process, installed once.
static REGION: OnceLock<Option<&'static Region>> = OnceLock::new();
/// Slots handed out so far.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Slots given back by threads that ended, for the next thread to take.
static FREE: Mutex<Vec<usize>> = Mutex::new(Vec::new());

thread_local! {
    static MINE: Cell<Option<&'static Slot>> = const { Cell::new(None) };
    /// Gives the thread's slot back when the thread ends: blocking threads
    /// come and go, and slots must not run out.
    static CLAIM: Cell<Option<Claim>> = const { Cell::new(None) };
}

/// A slot index held by a thread.
struct Claim(usize);

impl Drop for Claim {
    fn drop(&mut self) {
        FREE.lock().unwrap_or_else(|e| e.into_inner()).push(self.0);
    }
}

/// The calling thread's Linux thread id, as `/proc` and the watchdog
/// name it.
pub fn thread_id() -> u32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    let tid = unsafe { libc::gettid() };
    u32::try_from(tid).unwrap_or(0)
}

/// A slot for this thread: one given back, else a new one.
fn claim() -> Option<&'static Slot> {
    let given_back = FREE.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let index = given_back.unwrap_or_else(|| NEXT.fetch_add(1, Ordering::Relaxed));
    let slot = all().get(index)?;
    slot.thread.store(thread_id(), Ordering::Relaxed);
    // Without a destructor at hand (the thread is ending), keep the slot.
    let _ = CLAIM.try_with(|c| c.set(Some(Claim(index))));
    Some(slot)
}

/// Uses `region` for this process: memory shared with the supervisor.
/// Without it, the first call makes a region of its own.
pub fn install(region: &'static Region) {
    let _ = REGION.set(Some(region));
}

/// The region of this process; `None` if no memory could be had for it,
/// and then calls are simply not tracked.
pub fn region() -> Option<&'static Region> {
    *REGION.get_or_init(|| match Region::create() {
        // The descriptor may close: the mapping keeps the memory.
        Ok((_fd, region)) => Some(region),
        Err(e) => {
            tracing::warn!("cannot map memory to track hook calls: {e}");
            None
        }
    })
}

/// Every slot of this process.
pub fn all() -> &'static [Slot] {
    region().map_or(&[], Region::slots)
}

/// The slots handed out to threads so far.
pub fn in_use() -> &'static [Slot] {
    let all = all();
    &all[..NEXT.load(Ordering::Relaxed).min(all.len())]
}

/// The start of this process's call clock.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Marks this thread as running `route` until the guard drops: timed from
/// `started` on a blocking thread, or inline (`None`), where the hot path
/// reads no clock and the watchdog times the call from outside.
pub fn enter(route: usize, started: Option<Instant>) -> CallMark {
    let slot = MINE.with(|mine| {
        if mine.get().is_none() {
            mine.set(claim());
        }
        mine.get()
    });
    if let Some(slot) = slot {
        let (started, inline) = match started {
            Some(at) => (
                at.saturating_duration_since(epoch()).as_nanos().max(1) as u64,
                0,
            ),
            None => (0, INLINE),
        };
        // Only this thread writes its slot.
        let calls = slot.calls.load(Ordering::Relaxed);
        slot.calls.store(calls.wrapping_add(1), Ordering::Relaxed);
        slot.started.store(started, Ordering::Relaxed);
        let route = u32::try_from(route + 1).unwrap_or(0) & !INLINE;
        slot.route.store(route | inline, Ordering::Release);
    }
    CallMark(slot)
}

/// Records slot `index` as the one to blame for the death of this process,
/// which the caller is about to bring about.
pub(crate) fn mark_crashed(index: usize) {
    if let Some(Some(region)) = REGION.get() {
        let _ = region.crashed.compare_exchange(
            0,
            index as u32 + 1,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }
}

/// Records this thread's slot as the one that took a fatal signal: called
/// from a signal handler, so it only loads and stores atomics.
pub(crate) fn mark_crashed_here() {
    let Some(Some(region)) = REGION.get() else {
        return;
    };
    let Ok(Some(slot)) = MINE.try_with(Cell::get) else {
        return;
    };
    let base = region.slots.as_ptr() as usize;
    let index = (slot as *const Slot as usize - base) / size_of::<Slot>();
    let _ =
        region
            .crashed
            .compare_exchange(0, index as u32 + 1, Ordering::AcqRel, Ordering::Relaxed);
}

/// A call in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    pub route: usize,
    /// On a serving thread, where a long call holds up other connections.
    pub inline: bool,
    /// Which call of the slot this is.
    pub call: u32,
    /// How long it has run, for a timed call.
    pub running: Option<Duration>,
    /// The thread making it.
    pub thread: u32,
}

/// Clears the thread's slot when the call is over.
pub struct CallMark(Option<&'static Slot>);

impl Drop for CallMark {
    fn drop(&mut self) {
        if let Some(slot) = self.0 {
            slot.route.store(0, Ordering::Release);
        }
    }
}

impl Slot {
    /// The call in progress, if any.
    pub fn busy(&self, now: Instant) -> Option<Busy> {
        let route = self.route.load(Ordering::Acquire);
        if route == 0 {
            return None;
        }
        let started = self.started.load(Ordering::Relaxed);
        let running = (started != 0)
            .then(|| now.saturating_duration_since(epoch() + Duration::from_nanos(started)));
        Some(Busy {
            route: (route & !INLINE) as usize - 1,
            inline: route & INLINE != 0,
            call: self.calls.load(Ordering::Relaxed),
            running,
            thread: self.thread.load(Ordering::Relaxed),
        })
    }

    /// The route being called, if any, seen from another process.
    pub fn route(&self) -> Option<usize> {
        match self.route.load(Ordering::Acquire) & !INLINE {
            0 => None,
            r => Some(r as usize - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_visible_while_it_runs_and_not_after() {
        // Calls are timed from the clock's start: start it first.
        epoch();
        let started = Instant::now();
        let mark = enter(7, Some(started));
        let busy: Vec<_> = in_use()
            .iter()
            .filter_map(|s| s.busy(started + Duration::from_millis(5)))
            .map(|b| (b.route, b.inline, b.running))
            .collect();
        assert!(
            busy.contains(&(7, false, Some(Duration::from_millis(5)))),
            "{busy:?}"
        );
        drop(mark);
        assert!(all().iter().all(|s| s.route() != Some(7)));
        let mark = enter(8, None);
        let busy: Vec<_> = in_use()
            .iter()
            .filter_map(|s| s.busy(started))
            .map(|b| (b.route, b.inline, b.running))
            .collect();
        assert!(busy.contains(&(8, true, None)), "{busy:?}");
        drop(mark);
    }

    #[test]
    fn the_shared_region_cannot_be_resized_by_whoever_holds_it() {
        let (fd, region) = Region::create().unwrap();
        // SAFETY: ftruncate on a descriptor this test owns.
        let shrunk = unsafe { libc::ftruncate(fd.as_raw_fd(), 0) };
        assert_eq!(shrunk, -1, "the region could be shrunk");
        region.publish_names("a\t1\tA\n");
        assert_eq!(region.name(0).as_deref(), Some("a\t1\tA"));
    }

    #[test]
    fn threads_that_end_give_their_slots_back() {
        let before = in_use().len();
        for _ in 0..200 {
            std::thread::spawn(|| drop(enter(3, None))).join().unwrap();
        }
        assert!(
            in_use().len() <= before + 8,
            "{} slots for one thread at a time",
            in_use().len() - before
        );
    }
}
