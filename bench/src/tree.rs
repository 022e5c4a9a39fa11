//! The process tree of the server under test, from Linux `/proc`.
//!
//! A server may be a supervisor with serving children (and children that
//! come and go when one crashes), so its cost is that of every process
//! descending from the pid that was started, measured afresh at each read.

use std::collections::HashMap;

use procfs::process::{Process, Stat};

/// `/proc/<pid>/stat` of `root` and of every process descending from it,
/// `root` first; `None` if `root` itself cannot be read.
///
/// Parents are found by scanning every process's `ppid`, not through
/// `/proc/<pid>/task/<tid>/children`: that file only exists on kernels
/// built with `CONFIG_PROC_CHILDREN`, and not on every machine this runs on.
pub fn members(root: u32) -> Option<Vec<Stat>> {
    let root_stat = Process::new(i32::try_from(root).ok()?).ok()?.stat().ok()?;
    let mut by_parent: HashMap<i32, Vec<Stat>> = HashMap::new();
    if let Ok(all) = procfs::process::all_processes() {
        // A process that exits during the scan is simply not in the tree.
        for stat in all.flatten().filter_map(|p| p.stat().ok()) {
            by_parent.entry(stat.ppid).or_default().push(stat);
        }
    }
    let mut tree = vec![root_stat];
    let mut next = 0;
    while let Some(parent) = tree.get(next).map(|s| s.pid) {
        if let Some(children) = by_parent.remove(&parent) {
            tree.extend(children);
        }
        next += 1;
    }
    Some(tree)
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};

    #[test]
    fn finds_children_and_grandchildren() {
        // This test process, a shell it starts, and the shell's own child,
        // whose pid the shell prints once it has forked it.
        let mut shell = Command::new("sh")
            .args(["-c", "sleep 30 & echo $!; wait"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawning sh");
        let mut line = String::new();
        let mut out = std::io::BufReader::new(shell.stdout.take().expect("piped stdout"));
        std::io::BufRead::read_line(&mut out, &mut line).expect("reading sh");
        let tree = super::members(std::process::id());
        // Stop the grandchild by its own pid, then the shell, before
        // asserting anything.
        let grandchild: Option<i32> = line.trim().parse().ok();
        if let Some(pid) = grandchild {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        let _ = shell.kill();
        let _ = shell.wait();

        let tree = tree.expect("own tree");
        let pids: Vec<i32> = tree.iter().map(|s| s.pid).collect();
        let own = i32::try_from(std::process::id()).expect("pid fits i32");
        let shell_pid = i32::try_from(shell.id()).expect("pid fits i32");
        let grandchild = grandchild.expect("sh printed its child's pid");
        assert_eq!(pids[0], own);
        assert!(pids.contains(&shell_pid), "child missing from {pids:?}");
        assert!(
            pids.contains(&grandchild),
            "grandchild missing from {pids:?}"
        );
    }

    #[test]
    fn unknown_pid_is_none() {
        assert!(super::members(u32::MAX).is_none());
    }
}
