//! The host's reply framing, as far as counting replies needs it: a line
//! starting `| ` is a reply line with more to come, one starting `> ` was
//! pushed unasked, and any other line ends a reply. Servers that never
//! start a line so (Redis's inline replies, memcached) are counted as
//! before: one line, one reply.

/// Whether `line` (without its terminator) ends a reply.
pub fn ends_reply(line: &[u8]) -> bool {
    !(line.starts_with(b"| ") || line.starts_with(b"> "))
}

#[cfg(test)]
mod tests {
    use super::ends_reply;

    #[test]
    fn only_unmarked_lines_end_replies() {
        assert!(ends_reply(b"MSG 2 in lobby"));
        assert!(ends_reply(b"+PONG"));
        assert!(ends_reply(b" > escaped by the host"));
        assert!(!ends_reply(b"| ada"));
        assert!(!ends_reply(b"> lobby ada: hi"));
    }
}
