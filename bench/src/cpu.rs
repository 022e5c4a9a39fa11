//! CPU time of the server under test, from Linux `/proc/<pid>/stat`: user
//! plus system time of every thread of every process in its tree.

use procfs::process::Stat;

use crate::tree;

/// CPU seconds spent so far by `root` and its descendants; `None` if
/// `root` cannot be read. Only differences between two reads mean
/// anything, and their resolution is one clock tick (10 ms at 100 Hz) per
/// process.
pub fn tree_cpu_seconds(root: u32) -> Option<f64> {
    let ticks: u64 = tree::members(root)?.iter().map(spent_ticks).sum();
    Some(ticks as f64 / procfs::ticks_per_second() as f64)
}

/// A process's `utime` and `stime` already cover all its threads, live and
/// exited. Its `cutime` and `cstime` hold the children it has reaped, so a
/// serving child that exits between two reads is still counted, in its
/// parent, instead of vanishing from the sum.
fn spent_ticks(stat: &Stat) -> u64 {
    let reaped = |t: i64| u64::try_from(t).unwrap_or(0);
    stat.utime + stat.stime + reaped(stat.cutime) + reaped(stat.cstime)
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use procfs::process::Process;

    /// CPU the spinning child must have spent before the figures are read.
    const SPIN: f64 = 0.2;
    /// Wall-clock bound on waiting for that, on a loaded 2-core machine.
    const SPIN_LIMIT: Duration = Duration::from_secs(20);

    fn own_tree() -> f64 {
        super::tree_cpu_seconds(std::process::id()).expect("own /proc/<pid>/stat")
    }

    #[test]
    fn counts_a_spinning_child_while_it_runs_and_after_it_is_reaped() {
        let before = own_tree();
        let mut child = Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawning sh");
        let proc = i32::try_from(child.id())
            .ok()
            .and_then(|pid| Process::new(pid).ok());
        let child_cpu = || {
            proc.as_ref().and_then(|p| p.stat().ok()).map_or(0.0, |s| {
                (s.utime + s.stime) as f64 / procfs::ticks_per_second() as f64
            })
        };
        let started = Instant::now();
        while child_cpu() < SPIN && started.elapsed() < SPIN_LIMIT {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Read the child before the tree: the tree's read comes later, so
        // it must include at least this much of the child.
        let spun = child_cpu();
        let running = own_tree() - before;
        let _ = child.kill();
        let _ = child.wait();
        let reaped = own_tree() - before;

        assert!(spun >= SPIN, "the child spent only {spun} s of CPU");
        // This process itself only slept meanwhile, far below SPIN.
        assert!(
            running >= spun,
            "tree counted {running} s while its child alone had spent {spun} s"
        );
        assert!(
            reaped >= spun,
            "tree counted {reaped} s once the child was reaped, after {spun} s"
        );
    }

    #[test]
    fn unknown_pid_is_none() {
        assert!(super::tree_cpu_seconds(u32::MAX).is_none());
    }
}
