//! The open-files limit: every connection costs a descriptor.

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the new
/// soft limit.
///
/// The default soft limit (often 1024) is far below the thousands of
/// sockets a server or a load generator holds, while the hard limit
/// usually allows them.
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}
