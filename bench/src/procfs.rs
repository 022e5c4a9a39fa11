//! Memory figures of another process, read from Linux `/proc/<pid>/status`.

/// Current resident set size (`VmRSS`) of `pid` in KiB, if readable.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// Peak resident set size (`VmHWM`) of `pid` in KiB, if readable.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
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
