//! One client connection: read request lines, answer each in order.
//!
//! Requests are answered in batches: every complete line already received
//! is dispatched, the replies are collected in one buffer and written with
//! one write. Pipelining clients thus cost one system call per batch, not
//! per line. Nothing more is read while replies are waiting to be written,
//! so a client that does not read its replies stops being read from
//! instead of making the host buffer without bound.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use abi_stable::std_types::RString;
use bytes::BytesMut;
use plugin_api::abi::Span;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::dispatch::{CallError, Dispatcher, Target};
use crate::framing::{Frame, LineDecoder};
use crate::shared::Shared;

/// Sent to every client on connect, as the original program did.
pub const GREETING: &str = "MSG Welcome aboard !\n";
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

/// What to do after a request.
enum Step {
    Continue,
    Close,
}

pub struct Connection {
    stream: TcpStream,
    peer: Arc<str>,
    id: u64,
    shared: Arc<Shared>,
    decoder: LineDecoder,
    input: BytesMut,
    /// Replies waiting to be written; plugins append to it directly.
    out: RString,
    /// Capture-group scratch space, reused from request to request.
    spans: Vec<Span>,
}

impl Connection {
    pub fn new(stream: TcpStream, peer: Arc<str>, shared: Arc<Shared>) -> Connection {
        let id = shared.next_connection_id();
        let decoder = LineDecoder::new(shared.limits.max_line_length);
        Connection {
            stream,
            peer,
            id,
            shared,
            decoder,
            input: BytesMut::new(),
            out: RString::new(),
            spans: Vec::new(),
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Serves the connection until it ends, or `shutdown` is cancelled
    /// between two batches of requests.
    pub async fn run(mut self, shutdown: CancellationToken) -> io::Result<End> {
        self.out.push_str(GREETING);
        self.flush().await?;
        let idle = self.shared.limits.idle_timeout;
        let mut deadline = idle.map(|d| Instant::now() + d);
        loop {
            while let Some(frame) = self.decoder.decode(&mut self.input)? {
                // The timeout counts from the last complete line, so a
                // client trickling bytes cannot hold the connection forever.
                deadline = idle.map(|d| Instant::now() + d);
                if let Step::Close = self.handle(frame).await {
                    self.flush().await?;
                    return Ok(End::Closed);
                }
                if self.out.len() >= FLUSH_AT {
                    self.flush().await?;
                }
            }
            self.flush().await?;
            self.input.reserve(READ_CHUNK);
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    self.out.push_str("MSG Server shutting down\n");
                    self.flush().await?;
                    return Ok(End::Shutdown);
                }
                () = sleep_until(deadline) => {
                    let secs = idle.map_or(0, |d| d.as_secs());
                    self.out.push_str(&format!("MSG Closing idle connection: no request for {secs} s\n"));
                    self.flush().await?;
                    return Ok(End::Idle);
                }
                read = self.stream.read_buf(&mut self.input) => {
                    if read? == 0 {
                        // Answer a last line sent without a line ending,
                        // for clients that half-close after writing.
                        if let Some(frame) = self.decoder.finish(&mut self.input) {
                            let _ = self.handle(frame).await;
                            self.flush().await?;
                        }
                        return Ok(End::ClientClosed);
                    }
                }
            }
        }
    }

    async fn handle(&mut self, frame: Frame) -> Step {
        let line = match frame {
            Frame::Line(line) => line,
            Frame::TooLong => {
                let max = self.decoder.max_length();
                self.out
                    .push_str(&format!("ERR line too long (max {max} bytes)\n"));
                return Step::Continue;
            }
        };
        let Ok(text) = std::str::from_utf8(&line) else {
            self.out.push_str("ERR invalid UTF-8\n");
            return Step::Continue;
        };
        debug!(connection = self.id, request = text, "request");
        if text == "CLOSE" {
            self.out.push_str("CLOSE CONFIRM\n");
            return Step::Close;
        }
        let dispatcher = self.shared.dispatch.load();
        let index = match dispatcher.target(text) {
            Target::Hook(index) => index,
            Target::NotFound => {
                self.out.push_str("MSG Command not found\n");
                return Step::Continue;
            }
            Target::ControlCharacters => {
                self.out
                    .push_str("ERR control characters are not accepted\n");
                return Step::Continue;
            }
        };
        let result = if dispatcher.route(index).blocking {
            let dispatcher = arc_swap::Guard::into_inner(dispatcher);
            self.call_blocking(dispatcher, index, line).await
        } else {
            dispatcher.call(
                index,
                text,
                &mut self.spans,
                &self.peer,
                self.id,
                &mut self.out,
            )
        };
        match result {
            Ok(outcome) if outcome.close => Step::Close,
            Ok(_) => Step::Continue,
            Err(CallError::Failed(message)) => {
                self.out.push_str(&format!("ERR {message}\n"));
                Step::Continue
            }
            Err(CallError::Panicked { plugin, message }) => {
                warn!(connection = self.id, plugin, "hook panicked: {message}");
                self.out
                    .push_str(&format!("ERR plugin {plugin} failed: {message}\n"));
                Step::Continue
            }
        }
    }

    /// Runs a hook declared blocking on tokio's blocking pool, so that it
    /// holds up only this connection.
    async fn call_blocking(
        &mut self,
        dispatcher: Arc<Dispatcher>,
        index: usize,
        line: BytesMut,
    ) -> Result<plugin_api::abi::Outcome, CallError> {
        let mut out = std::mem::take(&mut self.out);
        let mut spans = std::mem::take(&mut self.spans);
        let peer = Arc::clone(&self.peer);
        let id = self.id;
        let joined = tokio::task::spawn_blocking(move || {
            // Checked as UTF-8 by the caller; checked again rather than
            // trusted across the move.
            let result = match std::str::from_utf8(&line) {
                Ok(text) => dispatcher.call(index, text, &mut spans, &peer, id, &mut out),
                Err(_) => Err(CallError::Failed("invalid UTF-8".into())),
            };
            (out, spans, result)
        })
        .await;
        match joined {
            Ok((out, spans, result)) => {
                self.out = out;
                self.spans = spans;
                result
            }
            // The closure catches plugin panics itself; this is the runtime
            // shutting down under it.
            Err(e) => Err(CallError::Failed(format!("hook did not complete: {e}"))),
        }
    }

    /// Writes out the waiting replies. A client that stops reading stalls
    /// this write; it is given the idle timeout before being dropped.
    async fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let limit = self
            .shared
            .limits
            .idle_timeout
            .unwrap_or(DEFAULT_WRITE_TIMEOUT);
        match tokio::time::timeout(limit, self.stream.write_all(self.out.as_bytes())).await {
            Ok(result) => {
                self.out.clear();
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
