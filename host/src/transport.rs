//! What a connection reads from and writes to: a plain TCP socket, or a TLS
//! session over one.
//!
//! Plain TCP keeps its fast paths (readiness, then one non-blocking read;
//! one non-blocking write per batch of replies), which save a system call
//! and a timer per request. TLS cannot use them: bytes on the socket are
//! records, not requests, so a TLS connection reads and writes through
//! `tokio-rustls` and flushes what the session holds after each batch.

use std::io;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWriteExt, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_util::either::Either;

/// Free space kept in the input buffer before each read.
const READ_CHUNK: usize = 4 * 1024;

pub enum Transport {
    Plain(TcpStream),
    /// Boxed: the session's buffers would make every connection's future
    /// several times larger, plain ones included.
    Tls(Box<TlsStream<TcpStream>>),
}

impl From<TcpStream> for Transport {
    fn from(stream: TcpStream) -> Transport {
        Transport::Plain(stream)
    }
}

impl From<TlsStream<TcpStream>> for Transport {
    fn from(stream: TlsStream<TcpStream>) -> Transport {
        Transport::Tls(Box::new(stream))
    }
}

impl Transport {
    /// Reads what there is into `input` once there is input; 0 when the
    /// client has closed its side. Nothing is read unless it is returned.
    ///
    /// A poll function rather than an `async fn`: the connection waits in
    /// it, and a future would hold its arguments in every idle
    /// connection's memory.
    pub fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        input: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        match self {
            // `poll_read_ready` uses the socket's single reader slot rather
            // than a list of waiters.
            Transport::Plain(stream) => {
                ready!(stream.poll_read_ready(cx))?;
                Poll::Ready(read_plain(stream, input))
            }
            Transport::Tls(stream) => {
                let read = if input.capacity() > 0 {
                    input.reserve(READ_CHUNK);
                    ready!(tokio_util::io::poll_read_buf(
                        Pin::new(stream.as_mut()),
                        cx,
                        input
                    ))
                } else {
                    // As for plain TCP: a waiting connection holds no buffer.
                    let mut scratch = [0u8; READ_CHUNK];
                    let mut buf = ReadBuf::new(&mut scratch);
                    ready!(Pin::new(stream.as_mut()).poll_read(cx, &mut buf)).map(|()| {
                        if !buf.filled().is_empty() {
                            input.reserve(READ_CHUNK);
                            input.extend_from_slice(buf.filled());
                        }
                        buf.filled().len()
                    })
                };
                Poll::Ready(read.map_err(|e| {
                    // rustls's own text for this carries a link to its manual.
                    if e.kind() == io::ErrorKind::UnexpectedEof {
                        io::Error::new(e.kind(), "client closed without a TLS close_notify")
                    } else {
                        e
                    }
                }))
            }
        }
    }

    /// Writes what it can of `bytes` without waiting. TLS takes none this
    /// way: its records are written, and flushed, by [`Transport::write_out`].
    pub fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.try_write(bytes),
            Transport::Tls(_) => Ok(0),
        }
    }

    /// Writes all of `bytes` and, for TLS, the records the session holds.
    pub async fn write_out(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Transport::Plain(stream) => stream.write_all(bytes).await,
            Transport::Tls(stream) => {
                stream.write_all(bytes).await?;
                stream.flush().await
            }
        }
    }
}

/// Reads what the socket holds into `input`.
///
/// A connection without a buffer (it has been quiet) reads into the stack
/// first, and allocates its buffer only if something came: a wake-up with
/// nothing to read, or a client that only closes, allocates nothing, so
/// that idle connections never hold a buffer even for a moment.
fn read_plain(stream: &TcpStream, input: &mut BytesMut) -> io::Result<usize> {
    if input.capacity() > 0 {
        input.reserve(READ_CHUNK);
        let room = input.capacity() - input.len();
        return read_draining(stream, room, |s| {
            let n = s.try_read_buf(input)?;
            Ok((n, input.last().copied()))
        });
    }
    let mut scratch = [0u8; READ_CHUNK];
    let n = read_draining(stream, READ_CHUNK, |s| {
        let n = s.try_read(&mut scratch)?;
        Ok((n, n.checked_sub(1).map(|last| scratch[last])))
    })?;
    if n > 0 {
        input.reserve(READ_CHUNK);
        input.extend_from_slice(&scratch[..n]);
    }
    Ok(n)
}

/// Makes one read with `read` (which returns the bytes read and the last
/// of them) into `room` bytes of space.
///
/// A read that returns less than it had room for, ending in a line ending,
/// has drained the socket, so readiness is cleared right away: otherwise
/// the next wait would return at once, and a second read would fail with
/// `WouldBlock`, one wasted system call per request. (Tokio tags readiness
/// with a tick, so data that arrives meanwhile is not lost.) A short read
/// that stops mid-line is not trusted: TCP stops a read at an urgent mark
/// (telnet's Synch) with more data queued behind it, and no new wake-up
/// would come for that data.
fn read_draining(
    stream: &TcpStream,
    room: usize,
    mut read: impl FnMut(&TcpStream) -> io::Result<(usize, Option<u8>)>,
) -> io::Result<usize> {
    let mut got = None;
    let result = stream.try_io(Interest::READABLE, || {
        let (n, last) = read(stream)?;
        got = Some(n);
        if n > 0 && n < room && last == Some(b'\n') {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(())
        }
    });
    match (got, result) {
        (Some(n), _) => Ok(n),
        (None, Err(e)) => Err(e),
        (None, Ok(())) => Ok(0),
    }
}

impl Transport {
    /// Registers the socket with the calling thread's runtime instead of
    /// the one it was registered with, which may be held by a hook: a
    /// duplicate of the descriptor is registered here, then the first one
    /// is dropped, and with it its registration there. A TLS session keeps
    /// its state; only the socket under it changes.
    pub fn move_here(&mut self) -> io::Result<()> {
        let socket = match self {
            Transport::Plain(stream) => stream,
            Transport::Tls(stream) => stream.get_mut().0,
        };
        let duplicate = std::net::TcpStream::from(socket.as_fd().try_clone_to_owned()?);
        let here = TcpStream::from_std(duplicate)?;
        drop(std::mem::replace(socket, here));
        Ok(())
    }

    /// The connection as a plain byte stream, for the few callers that
    /// want one (lingering after the end); the hot paths above do not go
    /// through it.
    pub fn as_stream(&mut self) -> Either<&mut TcpStream, &mut TlsStream<TcpStream>> {
        match self {
            Transport::Plain(s) => Either::Left(s),
            Transport::Tls(s) => Either::Right(s.as_mut()),
        }
    }
}
