//! The host's reply framing, as far as counting replies needs it: a line
//! starting `MSG | ` is a reply line with more to come, one starting
//! `MSG > ` was pushed unasked, and any other line ends a reply. Servers that never
//! start a line so (Redis's inline replies, memcached) are counted as
//! before: one line, one reply.

/// Whether `line` (without its terminator) ends a reply.
pub fn ends_reply(line: &[u8]) -> bool {
    !(line.starts_with(b"MSG | ") || line.starts_with(b"MSG > "))
}

#[cfg(test)]
mod tests {
    use super::ends_reply;

    #[test]
    fn only_unmarked_lines_end_replies() {
        assert!(ends_reply(b"MSG 2 in lobby"));
        assert!(ends_reply(b"+PONG"));
        assert!(ends_reply(b" MSG > escaped by the host"));
        assert!(ends_reply(b"| not a marker"));
        assert!(!ends_reply(b"MSG | ada"));
        assert!(!ends_reply(b"MSG > lobby ada: hi"));
    }
}
