//! Bounding how long a connection may go without progress.

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::time::{Duration, Instant};

use tokio::time::Sleep;

/// Fails an I/O operation once nothing has progressed for `limit`.
///
/// Arming a fresh timer for every read would cost a timer-wheel insertion
/// per reply; instead one timer is kept and only re-armed when it fires,
/// moved to `limit` after the last recorded progress.
pub struct Watchdog {
    sleep: Pin<Box<Sleep>>,
    last_progress: Instant,
    limit: Duration,
}

impl Watchdog {
    pub fn new(limit: Duration) -> Self {
        Watchdog {
            sleep: Box::pin(tokio::time::sleep(limit)),
            last_progress: Instant::now(),
            limit,
        }
    }

    /// Records that the connection made progress at `now`.
    pub fn progress(&mut self, now: Instant) {
        self.last_progress = now;
    }

    /// Runs `op` unless the connection stalls past the limit first.
    pub async fn guard<T>(&mut self, op: impl Future<Output = io::Result<T>>) -> io::Result<T> {
        let mut op = pin!(op);
        loop {
            tokio::select! {
                biased;
                result = &mut op => return result,
                () = &mut self.sleep => {
                    let due = self.last_progress + self.limit;
                    if Instant::now() >= due {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("no reply for {:?}", self.limit),
                        ));
                    }
                    self.sleep.as_mut().reset(due.into());
                }
            }
        }
    }
}
