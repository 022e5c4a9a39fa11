//! Reading the server's lines, with waits the caller can bound.

use std::io::{self, BufRead, BufReader, Read};

/// The longest line accepted from the server; past it the peer is not
/// speaking the protocol and holding more would only grow memory.
const MAX_LINE: usize = 1 << 20;

/// What one attempt to read a line produced.
#[derive(Debug)]
pub enum Next {
    /// A complete line, with its terminator as received (`\n` or `\r\n`;
    /// none for a last line cut off by the end of the stream).
    Line(Vec<u8>),
    /// The server closed its side.
    Eof,
    /// The socket's read timeout expired before a whole line arrived; what
    /// was read so far is kept for the next call.
    Pending,
}

/// Splits a byte stream into lines without losing partial lines to timeouts.
pub struct LineReader<R> {
    inner: BufReader<R>,
    partial: Vec<u8>,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R) -> Self {
        LineReader {
            inner: BufReader::with_capacity(64 * 1024, inner),
            partial: Vec::new(),
        }
    }

    pub fn next_line(&mut self) -> io::Result<Next> {
        loop {
            let buf = match self.inner.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(Next::Pending);
                }
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                if self.partial.is_empty() {
                    return Ok(Next::Eof);
                }
                return Ok(Next::Line(std::mem::take(&mut self.partial)));
            }
            if let Some(i) = buf.iter().position(|&b| b == b'\n') {
                self.partial.extend_from_slice(&buf[..=i]);
                self.inner.consume(i + 1);
                return Ok(Next::Line(std::mem::take(&mut self.partial)));
            }
            let n = buf.len();
            self.partial.extend_from_slice(buf);
            self.inner.consume(n);
            if self.partial.len() > MAX_LINE {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("server sent a line longer than {MAX_LINE} bytes"),
                ));
            }
        }
    }

    /// True when more received data is already buffered, so output can be
    /// flushed only once the burst is drained.
    pub fn has_buffered(&self) -> bool {
        !self.inner.buffer().is_empty()
    }
}

/// The line's text without its terminator, invalid UTF-8 replaced.
pub fn text(line: &[u8]) -> std::borrow::Cow<'_, str> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8_lossy(line)
}
