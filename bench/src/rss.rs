//! Memory figures of the server under test, from Linux `/proc` (`status`
//! and `smaps_rollup`) of every process in its tree.
//!
//! Sums of the resident set size over the tree count pages shared between
//! the processes (the executable, shared libraries) once per process, so a
//! supervisor with one serving child reads above what the machine spends;
//! the growth per connection is unaffected. The proportional set size
//! counts a page shared by k processes as 1/k in each, so its sum over the
//! tree is what the tree costs the machine (its pages shared with processes
//! outside the tree count in part).

use procfs::process::Process;

use crate::tree;

/// Resident set size (`VmRSS`) of `pid` and its descendants in KiB, if
/// `pid` is readable.
pub fn rss_kib(pid: u32) -> Option<u64> {
    sum(pid, |pid| {
        Process::new(pid).and_then(|p| p.status()).ok()?.vmrss
    })
}

/// Sum of the peak resident set sizes (`VmHWM`) of `pid` and its
/// descendants in KiB, if `pid` is readable: an upper bound on the tree's
/// peak, and that peak exactly when it is a single process.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    sum(pid, |pid| {
        Process::new(pid).and_then(|p| p.status()).ok()?.vmhwm
    })
}

/// Proportional set size (`Pss` of `/proc/<pid>/smaps_rollup`) of `pid`
/// and its descendants in KiB, if `pid` is readable: `None` as well on
/// kernels before 4.14, which lack the file, and for a process of another
/// user, whose mappings need ptrace access to read.
pub fn pss_kib(pid: u32) -> Option<u64> {
    sum(pid, |pid| {
        let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
        pss_of_rollup(&rollup)
    })
}

/// The `Pss:` line of an `smaps_rollup`, in KiB (the kernel writes `kB`).
fn pss_of_rollup(rollup: &str) -> Option<u64> {
    rollup.lines().find_map(|line| {
        line.strip_prefix("Pss:")?
            .trim()
            .strip_suffix("kB")?
            .trim_end()
            .parse()
            .ok()
    })
}

fn sum(pid: u32, figure: impl Fn(i32) -> Option<u64>) -> Option<u64> {
    let members = tree::members(pid)?;
    let mut total = None;
    for stat in members {
        // A member that exits between the scan and this read costs nothing.
        if let Some(kib) = figure(stat.pid) {
            total = Some(total.unwrap_or(0) + kib);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead as _, BufReader};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use procfs::process::Process;

    #[test]
    fn reads_own_rss() {
        let pid = std::process::id();
        assert!(super::rss_kib(pid).is_some_and(|k| k > 0));
        assert!(super::peak_rss_kib(pid).is_some_and(|k| k > 0));
    }

    #[test]
    fn reads_own_pss() {
        let pid = std::process::id();
        let pss = super::pss_kib(pid);
        assert!(pss.is_some_and(|k| k > 0), "{pss:?}");
        // Within the process's own RSS (both read at about the same
        // moment, and this process's memory barely moves meanwhile).
        let rss = super::rss_kib(pid);
        assert!(pss <= rss.map(|k| k + 1024), "PSS {pss:?}, RSS {rss:?}");
    }

    #[test]
    fn parses_the_pss_line_only() {
        let rollup = "\
563957c03000-7ffe3966f000 ---p 00000000 00:00 0                          [rollup]
Rss:                1692 kB
Pss:                 628 kB
Pss_Dirty:           112 kB
Pss_Anon:            112 kB
SwapPss:               0 kB
";
        assert_eq!(super::pss_of_rollup(rollup), Some(628));
        assert_eq!(
            super::pss_of_rollup("Rss: 1692 kB\nPss_Anon: 112 kB\n"),
            None
        );
    }

    #[test]
    fn sums_rss_of_a_shell_and_its_child() {
        let alone = |pid: u32| {
            Process::new(i32::try_from(pid).ok()?)
                .ok()?
                .status()
                .ok()?
                .vmrss
        };
        let shell = ShellWithChild::spawn();
        let (shell_alone, child_alone, tree) = shell.settled(alone, super::rss_kib);
        drop(shell);
        let (Some(shell_alone), Some(child_alone)) = (shell_alone, child_alone) else {
            panic!("could not read the shell ({shell_alone:?}) or its child");
        };
        assert!(child_alone > 0);
        assert_eq!(tree, Some(shell_alone + child_alone));
    }

    #[test]
    fn sums_pss_of_a_shell_and_its_child() {
        // Each process's own figure through procfs's parser (in bytes),
        // not through the one under test.
        let alone = |pid: u32| {
            let rollup = Process::new(i32::try_from(pid).ok()?)
                .ok()?
                .smaps_rollup()
                .ok()?;
            let map = rollup.memory_map_rollup.iter().next()?;
            Some(map.extension.map.get("Pss")? / 1024)
        };
        let shell = ShellWithChild::spawn();
        let (shell_alone, child_alone, tree) = shell.settled(alone, super::pss_kib);
        drop(shell);
        let (Some(shell_alone), Some(child_alone)) = (shell_alone, child_alone) else {
            panic!("could not read the shell ({shell_alone:?}) or its child");
        };
        assert!(child_alone > 0);
        // The child's share counts on top of the shell's (which held still
        // across the tree's read). Not an equality: a page the two share
        // moves between their figures when a third process maps or drops
        // it, and other tests start shells meanwhile.
        assert!(
            tree.is_some_and(|t| t > shell_alone),
            "tree {tree:?}, shell alone {shell_alone}, child alone {child_alone}"
        );
    }

    /// An idle shell with an idle child, both stopped (the child by its
    /// own pid) when dropped.
    struct ShellWithChild {
        shell: Child,
        child: Option<u32>,
    }

    impl ShellWithChild {
        fn spawn() -> Self {
            let mut shell = Command::new("sh")
                .args(["-c", "sleep 30 & echo $!; wait"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawning sh");
            let mut line = String::new();
            let mut out = BufReader::new(shell.stdout.take().expect("piped stdout"));
            out.read_line(&mut line).expect("reading sh");
            let child = line.trim().parse().ok();
            ShellWithChild { shell, child }
        }

        /// The shell's and the child's own figures (`alone`) and the
        /// shell's tree figure (`tree`), read once neither process moved
        /// across the tree's read (or after 10 s).
        fn settled(
            &self,
            alone: impl Fn(u32) -> Option<u64>,
            tree: impl Fn(u32) -> Option<u64>,
        ) -> (Option<u64>, Option<u64>, Option<u64>) {
            let shell = self.shell.id();
            // Asleep: `sleep` in its nanosleep, the shell in `wait`.
            let asleep = |pid: Option<u32>, comm: &str| {
                pid.and_then(|pid| Process::new(i32::try_from(pid).ok()?).ok()?.stat().ok())
                    .is_some_and(|s| s.comm == comm && s.state == 'S')
            };
            // The pid is printed once the child is forked, before it has
            // become `sleep` and mapped its libraries, and the shell is
            // still on its way to `wait`: read until neither moved across
            // the tree's read (bounded).
            let started = Instant::now();
            loop {
                let shell_alone = alone(shell);
                let child_alone = self.child.and_then(&alone);
                let tree = tree(shell);
                let settled = shell_alone == alone(shell)
                    && child_alone == self.child.and_then(&alone)
                    && asleep(self.child, "sleep")
                    && asleep(Some(shell), "sh");
                if settled || started.elapsed() > Duration::from_secs(10) {
                    return (shell_alone, child_alone, tree);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    impl Drop for ShellWithChild {
        fn drop(&mut self) {
            if let Some(pid) = self.child {
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
            let _ = self.shell.kill();
            let _ = self.shell.wait();
        }
    }
}
