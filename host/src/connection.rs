//! One client connection: read request lines, answer each in order.
//!
//! Requests are answered in batches: every complete line already received
//! is answered, the replies collect in one buffer and go out in one write.
//! Pipelining clients thus cost one system call per batch, not per line.
//! Nothing more is read while replies are waiting to be written, so a
//! client that does not read its replies stops being read from instead of
//! making the host buffer without bound.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

use crate::session::{Action, GREETING, SHUTTING_DOWN, Session};
use crate::shared::Shared;

/// Write replies out once this much is waiting, even mid-batch.
const FLUSH_AT: usize = 64 * 1024;
/// Free space kept in the input buffer before each read.
const READ_CHUNK: usize = 4 * 1024;
/// How long a write may stall when no idle timeout is configured.
const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client closed its side.
    ClientClosed,
    /// `CLOSE`, or a hook that asked to close.
    Closed,
    /// No complete line within the idle timeout.
    Idle,
    /// The host is stopping.
    Shutdown,
}

pub struct Connection {
    stream: TcpStream,
    shared: Arc<Shared>,
    input: bytes::BytesMut,
    session: Session,
}

impl Connection {
    pub fn new(stream: TcpStream, peer: Arc<str>, shared: Arc<Shared>) -> Connection {
        let session = Session::new(
            shared.limits.max_line_length,
            peer,
            shared.next_connection_id(),
        );
        Connection {
            stream,
            shared,
            input: bytes::BytesMut::new(),
            session,
        }
    }

    pub fn id(&self) -> u64 {
        self.session.id
    }

    /// Serves the connection until it ends, or `shutdown` is cancelled
    /// between two batches of requests.
    pub async fn run(mut self, shutdown: CancellationToken) -> io::Result<End> {
        self.session.out.push_str(GREETING);
        self.flush().await?;
        let idle = self.shared.limits.idle_timeout;
        let mut deadline = idle.map(|d| Instant::now() + d);
        loop {
            while let Some(frame) = self.session.decoder.decode(&mut self.input)? {
                // The timeout counts from the last complete line, so a
                // client trickling bytes cannot hold the connection forever.
                deadline = idle.map(|d| Instant::now() + d);
                if self.answer(frame).await {
                    self.flush().await?;
                    return Ok(End::Closed);
                }
                if self.session.out.len() >= FLUSH_AT {
                    self.flush().await?;
                }
            }
            self.flush().await?;
            self.input.reserve(READ_CHUNK);
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    self.session.out.push_str(SHUTTING_DOWN);
                    self.flush().await?;
                    return Ok(End::Shutdown);
                }
                () = sleep_until(deadline) => {
                    let secs = idle.map_or(0, |d| d.as_secs());
                    self.session.out.push_str(&format!(
                        "MSG Closing idle connection: no request for {secs} s\n"
                    ));
                    self.flush().await?;
                    return Ok(End::Idle);
                }
                read = self.stream.read_buf(&mut self.input) => {
                    if read? == 0 {
                        // Answer a last line sent without a line ending,
                        // for clients that half-close after writing.
                        if let Some(frame) = self.session.decoder.finish(&mut self.input) {
                            self.answer(frame).await;
                            self.flush().await?;
                        }
                        return Ok(End::ClientClosed);
                    }
                }
            }
        }
    }

    /// Answers one frame; true if the connection must close.
    async fn answer(&mut self, frame: crate::framing::Frame) -> bool {
        let mut action = self.session.respond(frame, &self.shared.dispatch);
        if let Action::Blocking {
            dispatcher,
            route,
            line,
        } = action
        {
            action = self.call_blocking(dispatcher, route, line).await;
        }
        matches!(action, Action::Close)
    }

    /// Runs a hook declared blocking on tokio's blocking pool, so that it
    /// holds up only this connection.
    async fn call_blocking(
        &mut self,
        dispatcher: Arc<crate::dispatch::Dispatcher>,
        route: usize,
        line: bytes::BytesMut,
    ) -> Action {
        // The session moves to the blocking thread and back: it holds the
        // reply buffer the hook writes into.
        let peer = Arc::clone(&self.session.peer);
        let placeholder = Session::new(1, peer, self.session.id);
        let mut session = std::mem::replace(&mut self.session, placeholder);
        let joined = tokio::task::spawn_blocking(move || {
            let action = session.call_here(&dispatcher, route, &line);
            (session, action)
        })
        .await;
        match joined {
            Ok((session, action)) => {
                self.session = session;
                action
            }
            // Plugin panics are caught inside the call; this is the runtime
            // shutting down under it. The session is gone with the task.
            Err(_) => Action::Close,
        }
    }

    /// Writes out the waiting replies. A client that stops reading stalls
    /// this write; it is given the idle timeout before being dropped.
    async fn flush(&mut self) -> io::Result<()> {
        if self.session.out.is_empty() {
            return Ok(());
        }
        let limit = self
            .shared
            .limits
            .idle_timeout
            .unwrap_or(DEFAULT_WRITE_TIMEOUT);
        let write = self.stream.write_all(self.session.out.as_bytes());
        match tokio::time::timeout(limit, write).await {
            Ok(result) => {
                self.session.out.clear();
                result
            }
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client did not read its replies",
            )),
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
