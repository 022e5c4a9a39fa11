//! A thread's CPU clock, readable from any thread of the process: how the
//! balancer sees how busy each serving thread is.

use std::time::Duration;

/// The CPU clock of one thread.
#[derive(Debug, Clone, Copy)]
pub struct ThreadClock(libc::clockid_t);

impl ThreadClock {
    /// The calling thread's clock; `None` if the system gives none.
    pub fn current() -> Option<ThreadClock> {
        let mut clock: libc::clockid_t = 0;
        // SAFETY: writes the clock id of the calling thread into `clock`.
        let found = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) };
        (found == 0).then_some(ThreadClock(clock))
    }

    /// The thread's CPU time so far; `None` once it has ended.
    pub fn read(self) -> Option<Duration> {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the timespec we own; a clock id of a
        // thread that has ended is an error, not undefined behaviour.
        if unsafe { libc::clock_gettime(self.0, &mut t) } != 0 {
            return None;
        }
        Some(Duration::new(
            u64::try_from(t.tv_sec).ok()?,
            u32::try_from(t.tv_nsec).ok()?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::ThreadClock;
    use std::time::{Duration, Instant};

    #[test]
    fn a_thread_clock_counts_that_threads_cpu_time_only() {
        let spinner = std::thread::spawn(|| {
            let clock = ThreadClock::current().expect("clock");
            // Spins until its own clock shows 100 ms, however long a busy
            // machine makes that take (at most 10 s).
            let started = Instant::now();
            while clock.read().expect("read") < Duration::from_millis(100)
                && started.elapsed() < Duration::from_secs(10)
            {
                std::hint::black_box(0u64);
            }
            (clock, clock.read().expect("read"))
        });
        // This thread sleeps while the other spins: its clock stands still.
        let mine = ThreadClock::current().expect("clock");
        let before = mine.read().expect("read");
        std::thread::sleep(Duration::from_millis(60));
        let slept = mine.read().expect("read") - before;
        let (clock, spun) = spinner.join().expect("spinner");
        assert!(spun >= Duration::from_millis(100), "{spun:?}");
        assert!(
            slept < Duration::from_millis(20),
            "{slept:?} on the CPU while sleeping"
        );
        // The ended thread's clock no longer reads, or reads a thread that
        // took its id: never a panic.
        let _ = clock.read();
    }
}
