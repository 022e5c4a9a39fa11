//! Memory figures of the server under test, from Linux `/proc/<pid>/status`.

use procfs::process::{Process, Status};

/// Current resident set size (`VmRSS`) of `pid` in KiB, if readable.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status(pid)?.vmrss
}

/// Peak resident set size (`VmHWM`) of `pid` in KiB, if readable.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status(pid)?.vmhwm
}

fn status(pid: u32) -> Option<Status> {
    Process::new(i32::try_from(pid).ok()?).ok()?.status().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_own_rss() {
        let pid = std::process::id();
        assert!(super::rss_kib(pid).is_some_and(|k| k > 0));
        assert!(super::peak_rss_kib(pid).is_some_and(|k| k > 0));
    }
}
