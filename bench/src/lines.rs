//! Splitting a byte stream into newline-terminated reply lines without
//! allocating per line.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt as _};

/// A reusable receive buffer that hands out complete lines.
///
/// Lines are borrowed from the buffer, so steady-state reading costs no
/// allocation; the buffer only grows when one line is longer than it.
pub struct LineBuf {
    buf: Vec<u8>,
    /// Start of the first byte not yet handed out as part of a line.
    start: usize,
    /// End of the received bytes.
    end: usize,
    /// Bytes from `start` known to hold no newline, so a long line is not
    /// rescanned after each read.
    scanned: usize,
    max_line: usize,
}

impl LineBuf {
    /// A buffer of `capacity` bytes that accepts lines up to `max_line` bytes.
    pub fn new(capacity: usize, max_line: usize) -> Self {
        LineBuf {
            buf: vec![0; capacity.max(64)],
            start: 0,
            end: 0,
            scanned: 0,
            max_line,
        }
    }

    /// Reads more bytes from `reader`; returns how many (0 at end of stream).
    ///
    /// Fails with `InvalidData` if a line grows past `max_line` bytes.
    pub async fn fill<R: AsyncRead + Unpin>(&mut self, reader: &mut R) -> io::Result<usize> {
        self.make_room()?;
        let n = reader.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// The next complete line, without its `\n` (and `\r` before it), if one
    /// has been received.
    pub fn next_line(&mut self) -> Option<&[u8]> {
        let from = self.start + self.scanned;
        match memchr::memchr(b'\n', &self.buf[from..self.end]) {
            Some(i) => {
                let line_start = self.start;
                let newline = from + i;
                self.start = newline + 1;
                self.scanned = 0;
                let line = &self.buf[line_start..newline];
                Some(line.strip_suffix(b"\r").unwrap_or(line))
            }
            None => {
                self.scanned = self.end - self.start;
                None
            }
        }
    }

    /// Bytes received after the last complete line.
    pub fn pending(&self) -> usize {
        self.end - self.start
    }

    /// Ensures free space after `end`: first by moving a partial line to the
    /// front, then by growing, up to the line limit.
    fn make_room(&mut self) -> io::Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end < self.buf.len() {
            return Ok(());
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            return Ok(());
        }
        if self.buf.len() > self.max_line {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("reply line longer than {} bytes", self.max_line),
            ));
        }
        let grown = (self.buf.len() * 2).min(self.max_line + 1);
        self.buf.resize(grown.max(self.buf.len() + 1), 0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines_of(chunks: &[&[u8]], capacity: usize) -> io::Result<Vec<Vec<u8>>> {
        let mut data: &[u8] = &chunks.concat();
        let mut lb = LineBuf::new(capacity, 1024);
        let mut out = Vec::new();
        loop {
            while let Some(line) = lb.next_line() {
                out.push(line.to_vec());
            }
            if lb.fill(&mut data).await? == 0 {
                return Ok(out);
            }
        }
    }

    #[tokio::test]
    async fn splits_and_strips_cr() {
        let got = lines_of(&[b"+PONG\r\nMSG a\n", b"MSG b\n"], 64)
            .await
            .unwrap();
        assert_eq!(
            got,
            vec![b"+PONG".to_vec(), b"MSG a".to_vec(), b"MSG b".to_vec()]
        );
    }

    #[tokio::test]
    async fn lines_longer_than_the_buffer() {
        let long = vec![b'x'; 500];
        let mut input = long.clone();
        input.extend_from_slice(b"\nshort\n");
        let got = lines_of(&[&input], 64).await.unwrap();
        assert_eq!(got, vec![long, b"short".to_vec()]);
    }

    #[tokio::test]
    async fn rejects_endless_line() {
        let input = vec![b'x'; 5000];
        let err = lines_of(&[&input], 64).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
