//! Memory figures of the server under test, from Linux `/proc/<pid>/status`
//! of every process in its tree.
//!
//! Sums over the tree count pages shared between the processes (the
//! executable, shared libraries) once per process, so a supervisor with one
//! serving child reads a little above what the machine spends; the growth
//! per connection is unaffected.

use procfs::process::{Process, Status};

use crate::tree;

/// Resident set size (`VmRSS`) of `pid` and its descendants in KiB, if
/// `pid` is readable.
pub fn rss_kib(pid: u32) -> Option<u64> {
    sum(pid, |s| s.vmrss)
}

/// Sum of the peak resident set sizes (`VmHWM`) of `pid` and its
/// descendants in KiB, if `pid` is readable: an upper bound on the tree's
/// peak, and that peak exactly when it is a single process.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    sum(pid, |s| s.vmhwm)
}

fn sum(pid: u32, field: impl Fn(&Status) -> Option<u64>) -> Option<u64> {
    let members = tree::members(pid)?;
    let mut total = None;
    for stat in members {
        // A member that exits between the scan and this read costs nothing.
        let figure = Process::new(stat.pid)
            .and_then(|p| p.status())
            .ok()
            .and_then(|s| field(&s));
        if let Some(kib) = figure {
            total = Some(total.unwrap_or(0) + kib);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead as _, BufReader};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use procfs::process::Process;

    #[test]
    fn reads_own_rss() {
        let pid = std::process::id();
        assert!(super::rss_kib(pid).is_some_and(|k| k > 0));
        assert!(super::peak_rss_kib(pid).is_some_and(|k| k > 0));
    }

    #[test]
    fn sums_a_shell_and_its_child() {
        // An idle shell with an idle child: neither's memory moves while
        // the figures are read.
        let mut shell = Command::new("sh")
            .args(["-c", "sleep 30 & echo $!; wait"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawning sh");
        let mut line = String::new();
        let mut out = BufReader::new(shell.stdout.take().expect("piped stdout"));
        out.read_line(&mut line).expect("reading sh");
        let child: Option<u32> = line.trim().parse().ok();
        let alone = |pid: u32| {
            Process::new(i32::try_from(pid).ok()?)
                .ok()?
                .status()
                .ok()?
                .vmrss
        };
        // Asleep: `sleep` in its nanosleep, the shell in `wait`.
        let asleep = |pid: Option<u32>, comm: &str| {
            pid.and_then(|pid| Process::new(i32::try_from(pid).ok()?).ok()?.stat().ok())
                .is_some_and(|s| s.comm == comm && s.state == 'S')
        };
        // The pid is printed once the child is forked, before it has
        // become `sleep` and mapped its libraries, and the shell is still
        // on its way to `wait`: read until neither moved across the
        // tree's read (bounded).
        let started = Instant::now();
        let (shell_alone, child_alone, tree) = loop {
            let shell_alone = alone(shell.id());
            let child_alone = child.and_then(alone);
            let tree = super::rss_kib(shell.id());
            let settled = shell_alone == alone(shell.id())
                && child_alone == child.and_then(alone)
                && asleep(child, "sleep")
                && asleep(Some(shell.id()), "sh");
            if settled || started.elapsed() > Duration::from_secs(10) {
                break (shell_alone, child_alone, tree);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // Stop the child by its own pid, then the shell, before asserting.
        if let Some(pid) = child {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        let _ = shell.kill();
        let _ = shell.wait();

        let (Some(shell_alone), Some(child_alone)) = (shell_alone, child_alone) else {
            panic!("could not read the shell ({shell_alone:?}) or its child ({child:?})");
        };
        assert!(child_alone > 0);
        assert_eq!(tree, Some(shell_alone + child_alone));
    }
}
