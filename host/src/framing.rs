//! Splitting the byte stream into request lines.
//!
//! A line ends with `\n`, `\r\n`, or telnet's `\r\0`; the ending never
//! reaches a hook. A line longer than the limit is reported once as
//! [`Frame::TooLong`] and the rest of it, up to the next line ending, is
//! dropped as it arrives, so a client that never sends a newline costs
//! at most one buffer of memory.

use bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

/// One unit of input.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, without its ending. Not yet checked for UTF-8.
    Line(BytesMut),
    /// A line went past the limit; what follows of it is discarded.
    TooLong,
}

/// A [`Decoder`] of lines of at most `max_length` bytes.
#[derive(Debug)]
pub struct LineDecoder {
    max_length: usize,
    /// Bytes of the buffer already searched for a line ending.
    scanned: usize,
    /// Inside an over-long line: drop input until its end.
    discarding: bool,
}

impl LineDecoder {
    pub fn new(max_length: usize) -> Self {
        LineDecoder {
            max_length,
            scanned: 0,
            discarding: false,
        }
    }

    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The line left in `buf` when the client closes its side without a
    /// final line ending, if any.
    pub fn finish(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        let rest = buf.split();
        self.scanned = 0;
        if std::mem::take(&mut self.discarding) || rest.is_empty() {
            return None;
        }
        let mut line = rest;
        strip_cr(&mut line);
        Some(if line.len() > self.max_length {
            Frame::TooLong
        } else {
            Frame::Line(line)
        })
    }
}

impl Decoder for LineDecoder {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Self::Error> {
        loop {
            match find_ending(buf, self.scanned) {
                Some((end, ending_len)) => {
                    self.scanned = 0;
                    if self.discarding {
                        self.discarding = false;
                        buf.advance(end + ending_len);
                        continue;
                    }
                    let mut line = buf.split_to(end + ending_len);
                    line.truncate(end);
                    strip_cr(&mut line);
                    if line.len() > self.max_length {
                        return Ok(Some(Frame::TooLong));
                    }
                    return Ok(Some(Frame::Line(line)));
                }
                None if self.discarding => {
                    drop_all_but_a_final_cr(buf);
                    self.scanned = 0;
                    return Ok(None);
                }
                // One byte of slack for a `\r` whose `\n` has not arrived yet.
                None if buf.len() > self.max_length + 1 => {
                    drop_all_but_a_final_cr(buf);
                    self.scanned = 0;
                    self.discarding = true;
                    return Ok(Some(Frame::TooLong));
                }
                None => {
                    // Search again from the last byte: it may be the `\r` of `\r\0`.
                    self.scanned = buf.len().saturating_sub(1);
                    return Ok(None);
                }
            }
        }
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

/// Drops the buffered part of an over-long line, keeping a last `\r`:
/// it may be the start of a telnet `\r\0` ending whose `\0` comes in
/// the next read, and dropping it would swallow the next line too.
fn drop_all_but_a_final_cr(buf: &mut BytesMut) {
    let keep = usize::from(buf.last() == Some(&b'\r'));
    buf.advance(buf.len() - keep);
}

fn strip_cr(line: &mut BytesMut) {
    if line.last() == Some(&b'\r') {
        line.truncate(line.len() - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(decoder: &mut LineDecoder, input: &[u8]) -> Vec<Frame> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(f) = decoder.decode(&mut buf).unwrap() {
            out.push(f);
        }
        out
    }

    fn line(s: &str) -> Frame {
        Frame::Line(BytesMut::from(s.as_bytes()))
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
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"LO\r");
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"\0TIME\n");
        assert_eq!(d.decode(&mut buf).unwrap(), Some(line("HELLO")));
        assert_eq!(d.decode(&mut buf).unwrap(), Some(line("TIME")));
    }

    #[test]
    fn a_line_of_exactly_the_limit_passes() {
        let mut d = LineDecoder::new(4);
        assert_eq!(
            frames(&mut d, b"ABCD\r\nABCDE\n"),
            vec![line("ABCD"), Frame::TooLong]
        );
    }

    #[test]
    fn an_over_long_line_is_reported_once_and_dropped() {
        let mut d = LineDecoder::new(4);
        let mut buf = BytesMut::from(&b"ABCDEFG"[..]);
        assert_eq!(d.decode(&mut buf).unwrap(), Some(Frame::TooLong));
        assert!(buf.is_empty());
        buf.extend_from_slice(b"HIJKLMNOP");
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        assert!(buf.is_empty(), "discarded input must not be kept");
        buf.extend_from_slice(b"Q\nOK\n");
        assert_eq!(d.decode(&mut buf).unwrap(), Some(line("OK")));
    }

    #[test]
    fn a_telnet_ending_split_after_an_over_long_line_is_not_lost() {
        let mut d = LineDecoder::new(4);
        let mut buf = BytesMut::from(&b"ABCDEFG\r"[..]);
        assert_eq!(d.decode(&mut buf).unwrap(), Some(Frame::TooLong));
        buf.extend_from_slice(b"\0HI\r");
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"\0");
        assert_eq!(d.decode(&mut buf).unwrap(), Some(line("HI")));
        // And while discarding across several reads.
        let mut buf = BytesMut::from(&b"ABCDEFG"[..]);
        assert_eq!(d.decode(&mut buf).unwrap(), Some(Frame::TooLong));
        buf.extend_from_slice(b"HIJ\r");
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"\0OK\n");
        assert_eq!(d.decode(&mut buf).unwrap(), Some(line("OK")));
    }

    #[test]
    fn finish_yields_an_unterminated_last_line() {
        let mut d = LineDecoder::new(10);
        let mut buf = BytesMut::from(&b"HELLO"[..]);
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        assert_eq!(d.finish(&mut buf), Some(line("HELLO")));
        assert_eq!(d.finish(&mut buf), None);
    }
}
