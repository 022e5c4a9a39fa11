//! Splitting the byte stream into request lines.
//!
//! A line ends with `\n`, `\r\n`, or telnet's `\r\0`; the ending never
//! reaches a hook. A line longer than the limit is reported once as
//! [`Frame::TooLong`] and the rest of it, up to the next line ending, is
//! dropped as it arrives, so a client that never sends a newline costs
//! at most one buffer of memory.

use bytes::{Buf, BytesMut};

/// One unit of input.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete line, without its ending, borrowed from the input
    /// buffer. Not yet checked for UTF-8.
    Line(&'a [u8]),
    /// A line went past the limit; what follows of it is discarded.
    TooLong,
}

/// Cuts lines of at most `max_length` bytes out of an input buffer.
///
/// Lines are lent out of the buffer rather than split off it: splitting
/// makes the buffer shared, and every line then costs an atomic increment
/// and decrement of its reference count. So the decoder only moves its
/// own offsets as it hands out lines, and the bytes behind them leave the
/// buffer when the caller, done with the lines, calls
/// [`LineDecoder::consume`]. Between two calls of `consume`, the decoder
/// must be given the same buffer each time, with bytes at most appended.
#[derive(Debug)]
pub struct LineDecoder {
    max_length: usize,
    /// Bytes at the front of the buffer already handed out or dropped.
    taken: usize,
    /// Bytes of the buffer, from its front, already searched for a line
    /// ending; never less than `taken`.
    scanned: usize,
    /// Inside an over-long line: drop input until its end.
    discarding: bool,
}

impl LineDecoder {
    pub fn new(max_length: usize) -> Self {
        LineDecoder {
            max_length,
            taken: 0,
            scanned: 0,
            discarding: false,
        }
    }

    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The next complete line in `buf`, or `None` until more input comes.
    pub fn decode<'a>(&mut self, buf: &'a [u8]) -> Option<Frame<'a>> {
        debug_assert!(self.scanned <= buf.len(), "the buffer lost bytes");
        loop {
            // Searched from `taken` on: a `\r` before it belongs to a line
            // already handed out.
            let rest = &buf[self.taken..];
            match find_ending(rest, self.scanned - self.taken) {
                Some((end, ending_len)) => {
                    let line = &rest[..end];
                    self.taken += end + ending_len;
                    self.scanned = self.taken;
                    if self.discarding {
                        self.discarding = false;
                        continue;
                    }
                    let line = strip_cr(line);
                    if line.len() > self.max_length {
                        return Some(Frame::TooLong);
                    }
                    return Some(Frame::Line(line));
                }
                None if self.discarding => {
                    self.drop_all_but_a_final_cr(buf);
                    return None;
                }
                // One byte of slack for a `\r` whose `\n` has not arrived yet.
                None if rest.len() > self.max_length + 1 => {
                    self.drop_all_but_a_final_cr(buf);
                    self.discarding = true;
                    return Some(Frame::TooLong);
                }
                None => {
                    // Search again from the last byte: it may be the `\r` of `\r\0`.
                    self.scanned = buf.len().saturating_sub(1).max(self.taken);
                    return None;
                }
            }
        }
    }

    /// The line left in `buf` when the client closes its side without a
    /// final line ending, if any. Whatever it returns, all of `buf` is
    /// then taken.
    pub fn finish<'a>(&mut self, buf: &'a [u8]) -> Option<Frame<'a>> {
        let rest = &buf[self.taken..];
        self.taken = buf.len();
        self.scanned = buf.len();
        if std::mem::take(&mut self.discarding) || rest.is_empty() {
            return None;
        }
        let line = strip_cr(rest);
        Some(if line.len() > self.max_length {
            Frame::TooLong
        } else {
            Frame::Line(line)
        })
    }

    /// Removes from the front of `buf` what was handed out or dropped
    /// since the last call: once the caller is done with those lines.
    pub fn consume(&mut self, buf: &mut BytesMut) {
        buf.advance(self.taken);
        self.scanned -= self.taken;
        self.taken = 0;
    }

    /// Drops the buffered part of an over-long line, keeping a last `\r`:
    /// it may be the start of a telnet `\r\0` ending whose `\0` comes in
    /// the next read, and dropping it would swallow the next line too.
    fn drop_all_but_a_final_cr(&mut self, buf: &[u8]) {
        let keep = usize::from(buf.len() > self.taken && buf.last() == Some(&b'\r'));
        self.taken = buf.len() - keep;
        self.scanned = self.taken;
    }
}

/// Finds the first line ending at or after `from`: its start and length.
fn find_ending(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut at = from;
    while let Some(i) = memchr::memchr2(b'\n', b'\0', &buf[at..]) {
        let i = at + i;
        if buf[i] == b'\n' {
            return Some((i, 1));
        }
        if i > 0 && buf[i - 1] == b'\r' {
            return Some((i - 1, 2));
        }
        at = i + 1;
    }
    None
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every frame in `input`, as owned lines (`None` for [`Frame::TooLong`]).
    fn frames(decoder: &mut LineDecoder, input: &[u8]) -> Vec<Option<Vec<u8>>> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(f) = decoder.decode(&buf) {
            out.push(owned(f));
        }
        decoder.consume(&mut buf);
        out
    }

    fn owned(frame: Frame<'_>) -> Option<Vec<u8>> {
        match frame {
            Frame::Line(line) => Some(line.to_vec()),
            Frame::TooLong => None,
        }
    }

    fn line(s: &str) -> Option<Vec<u8>> {
        Some(s.as_bytes().to_vec())
    }

    #[test]
    fn endings_are_stripped() {
        let mut d = LineDecoder::new(100);
        assert_eq!(
            frames(&mut d, b"A\nB\r\nC\r\0D\0E\n"),
            vec![line("A"), line("B"), line("C"), line("D\0E")]
        );
    }

    #[test]
    fn lines_split_across_reads() {
        let mut d = LineDecoder::new(100);
        let mut buf = BytesMut::from(&b"HEL"[..]);
        assert_eq!(d.decode(&buf), None);
        d.consume(&mut buf);
        buf.extend_from_slice(b"LO\r");
        assert_eq!(d.decode(&buf), None);
        d.consume(&mut buf);
        buf.extend_from_slice(b"\0TIME\n");
        assert_eq!(d.decode(&buf), Some(Frame::Line(b"HELLO")));
        assert_eq!(d.decode(&buf), Some(Frame::Line(b"TIME")));
        assert_eq!(d.decode(&buf), None);
        d.consume(&mut buf);
        assert!(buf.is_empty());
    }

    #[test]
    fn lines_stay_in_the_buffer_until_consumed() {
        let mut d = LineDecoder::new(100);
        let mut buf = BytesMut::from(&b"ONE\nTWO\r\nTH"[..]);
        let one = d.decode(&buf);
        let two = d.decode(&buf);
        // Both lines are still readable: nothing was cut off the buffer.
        assert_eq!(
            (one, two),
            (
                Some(Frame::Line(&b"ONE"[..])),
                Some(Frame::Line(&b"TWO"[..]))
            )
        );
        assert_eq!(d.decode(&buf), None);
        assert_eq!(buf.len(), 11, "nothing leaves before consume");
        d.consume(&mut buf);
        assert_eq!(&buf[..], b"TH", "only the unfinished line is kept");
        // A line that began before a consume ends after more input came.
        buf.extend_from_slice(b"REE\nFOUR");
        assert_eq!(d.decode(&buf), Some(Frame::Line(b"THREE")));
        assert_eq!(d.decode(&buf), None);
        // Without a consume in between, more input is appended behind.
        buf.extend_from_slice(b"\n");
        assert_eq!(d.decode(&buf), Some(Frame::Line(b"FOUR")));
        d.consume(&mut buf);
        assert!(buf.is_empty());
    }

    #[test]
    fn a_telnet_ending_is_found_across_a_consume() {
        let mut d = LineDecoder::new(100);
        let mut buf = BytesMut::from(&b"A\nB\r"[..]);
        assert_eq!(d.decode(&buf), Some(Frame::Line(b"A")));
        assert_eq!(d.decode(&buf), None);
        d.consume(&mut buf);
        buf.extend_from_slice(b"\0");
        assert_eq!(d.decode(&buf), Some(Frame::Line(b"B")));
        d.consume(&mut buf);
        assert!(buf.is_empty());
    }

    #[test]
    fn a_line_of_exactly_the_limit_passes() {
        let mut d = LineDecoder::new(4);
        assert_eq!(frames(&mut d, b"ABCD\r\nABCDE\n"), vec![line("ABCD"), None]);
    }

    #[test]
    fn an_over_long_line_is_reported_once_and_dropped() {
        let mut d = LineDecoder::new(4);
        let mut buf = BytesMut::from(&b"ABCDEFG"[..]);
        assert_eq!(d.decode(&buf), Some(Frame::TooLong));
        d.consume(&mut buf);
        assert!(buf.is_empty());
        buf.extend_from_slice(b"HIJKLMNOP");
        assert_eq!(d.decode(&buf), None);
        d.consume(&mut buf);
        assert!(buf.is_empty(), "discarded input must not be kept");
        buf.extend_from_slice(b"Q\nOK\n");
        assert_eq!(d.decode(&buf), Some(Frame::Line(b"OK")));
    }

    #[test]
    fn an_over_long_line_after_a_short_one_is_measured_from_its_start() {
        let mut d = LineDecoder::new(4);
        let mut buf = BytesMut::from(&b"AB\nCDEF"[..]);
        assert_eq!(d.decode(&buf), Some(Frame::Line(b"AB")));
        assert_eq!(d.decode(&buf), None, "CDEF may still end in time");
        buf.extend_from_slice(b"G");
        assert_eq!(d.decode(&buf), None, "one byte of slack for a \\r");
        buf.extend_from_slice(b"H");
        assert_eq!(d.decode(&buf), Some(Frame::TooLong));
        d.consume(&mut buf);
        assert!(buf.is_empty());
    }

    #[test]
    fn a_telnet_ending_split_after_an_over_long_line_is_not_lost() {
        let mut d = LineDecoder::new(4);
        let mut buf = BytesMut::from(&b"ABCDEFG\r"[..]);
        assert_eq!(d.decode(&buf), Some(Frame::TooLong));
        d.consume(&mut buf);
        buf.extend_from_slice(b"\0HI\r");
        assert_eq!(d.decode(&buf), None);
        d.consume(&mut buf);
        buf.extend_from_slice(b"\0");
        assert_eq!(d.decode(&buf), Some(Frame::Line(b"HI")));
        d.consume(&mut buf);
        // And while discarding across several reads.
        let mut buf = BytesMut::from(&b"ABCDEFG"[..]);
        assert_eq!(d.decode(&buf), Some(Frame::TooLong));
        d.consume(&mut buf);
        buf.extend_from_slice(b"HIJ\r");
        assert_eq!(d.decode(&buf), None);
        d.consume(&mut buf);
        buf.extend_from_slice(b"\0OK\n");
        assert_eq!(d.decode(&buf), Some(Frame::Line(b"OK")));
    }

    #[test]
    fn finish_yields_an_unterminated_last_line() {
        let mut d = LineDecoder::new(10);
        let mut buf = BytesMut::from(&b"HELLO"[..]);
        assert_eq!(d.decode(&buf), None);
        assert_eq!(d.finish(&buf), Some(Frame::Line(b"HELLO")));
        d.consume(&mut buf);
        assert!(buf.is_empty());
        assert_eq!(d.finish(&buf), None);
        // After lines handed out but not yet consumed: only what follows them.
        let mut buf = BytesMut::from(&b"A\nB\r"[..]);
        assert_eq!(d.decode(&buf), Some(Frame::Line(b"A")));
        assert_eq!(d.finish(&buf), Some(Frame::Line(b"B")));
        d.consume(&mut buf);
        assert!(buf.is_empty());
    }
}
