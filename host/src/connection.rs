//! One client connection: read request lines, answer each in order.
//!
//! Requests are answered in batches: every complete line already received
//! is answered, the replies collect in one buffer and go out in one write.
//! Pipelining clients thus cost one system call per batch, not per line.
//! Nothing more is read while replies are waiting to be written, so a
//! client that does not read its replies stops being read from instead of
//! making the host buffer without bound.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use abi_stable::std_types::RString;
use abi_stable::std_types::{RNone, RSome};
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Sleep;
use tracing::{info, warn};

use crate::admin_commands::{self, Access};
use crate::blocking_call::{self, InFlight};
use crate::framing::Frame;
use crate::handover;
use crate::idle_sweep::SWEEP_EVERY;
use crate::inbox::{Inbox, Registered};
use crate::outgoing::frame_reply;
use crate::reply::Reply;
use crate::session::{Action, ClientInfo, PendingCall, Session};
use crate::shared::Shared;
use crate::transport::Transport;

/// Write replies out once this much is waiting, even mid-batch.
const FLUSH_AT: usize = 64 * 1024;
/// After the host ends a connection: how long, and how much, it still reads
/// and drops while the client learns that it is closed.
const LINGER_TIME: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 64 * 1024;
/// How long a write may stall when no idle timeout is configured.
const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a stalled write looks whether the client's pushed lines
/// overflowed meanwhile.
const OVERFLOW_CHECK: Duration = Duration::from_millis(50);

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
    /// Lines pushed to the client piled up past their bound: it does not read.
    PushOverflow,
}

pub struct Connection {
    stream: Transport,
    shared: Arc<Shared>,
    input: BytesMut,
    session: Session,
    admin: Access,
    /// Requests answered and not yet added to the shared count: added once
    /// per batch, not once per line.
    uncounted: u64,
    /// Where plugins' pushed lines and news of pending replies arrive.
    registered: Registered,
    /// A reply a hook promised: nothing else is answered until it comes.
    /// Boxed: few connections have one.
    pending: Option<Box<Pending>>,
    /// A call on a blocking thread: nothing else is answered until it ends.
    blocking: Option<Box<InFlight>>,
    /// Held while the connection is open, whichever thread serves it.
    _open: Open,
}

/// What an open connection holds of the host: its place under the
/// connection limit, and its count in the figures.
struct Open {
    _permit: OwnedSemaphorePermit,
    _counted: Counted,
}

/// A promised reply and the time limit on it.
struct Pending {
    call: PendingCall,
    deadline: Pin<Box<Sleep>>,
}

/// Where in the input buffer [`Connection::answer`] looks for a request.
#[derive(Clone, Copy)]
enum Input {
    /// The next complete line.
    Lines,
    /// What is left after the client closed its side, line ending or not.
    Last,
}

/// How far a request got without waiting.
enum Answer {
    /// Answered, or its call is in flight; true if the connection must
    /// close.
    Done(bool),
    /// An admin command, which may wait for the supervisor: a copy of the
    /// line, since more input may be read into the buffer meanwhile.
    Admin(Box<[u8]>),
}

impl Connection {
    /// `tls_subject`: of the client's certificate, on a TLS connection
    /// that presented one; plugins learn it with the peer when it connects.
    /// `thread`: the serving thread that accepted it; `permit`: its place
    /// under the connection limit.
    pub fn new(
        stream: impl Into<Transport>,
        peer: Arc<str>,
        tls_subject: Option<Arc<str>>,
        shared: Arc<Shared>,
        thread: usize,
        permit: OwnedSemaphorePermit,
    ) -> Connection {
        let id = shared.next_connection_id();
        let admin = Access::new(&peer);
        let client = ClientInfo {
            id,
            peer,
            tls_subject,
        };
        let registered = shared.registry.open(id, thread);
        let session = Session::new(shared.limits.max_line_length, client, &shared.dispatch);
        Connection {
            _open: Open {
                _permit: permit,
                _counted: Counted::new(&shared),
            },
            admin,
            uncounted: 0,
            stream: stream.into(),
            shared,
            input: BytesMut::new(),
            session,
            registered,
            pending: None,
            blocking: None,
        }
    }

    pub fn id(&self) -> u64 {
        self.session.client.id
    }

    /// The subject of the client's TLS certificate, if it presented one.
    pub fn tls_subject(&self) -> Option<&Arc<str>> {
        self.session.client.tls_subject.as_ref()
    }

    /// Greets, then serves the connection until it ends, or the host stops
    /// between two batches of requests, and logs how it ended; or until
    /// another serving thread takes it over ([`crate::handover`]).
    ///
    /// The connection is boxed: a future owning it by value would hold it
    /// in every connection's task, and it moves between the task and its
    /// inbox at every wait.
    pub async fn run(self: Box<Self>) {
        self.serve_to_the_end(true).await;
    }

    /// Goes on serving a connection taken over from another serving thread.
    pub async fn resume(self: Box<Self>) {
        self.serve_to_the_end(false).await;
    }

    async fn serve_to_the_end(self: Box<Self>, greet: bool) {
        let Some((conn, served)) = self.serve(greet).await else {
            return;
        };
        // In a block of its own: what is dropped here is not kept in this
        // future while it lingers.
        let (mut stream, open) = {
            let Connection {
                stream,
                session,
                registered,
                pending,
                blocking,
                input,
                _open,
                ..
            } = *conn;
            let ClientInfo { id, peer, .. } = &session.client;
            match &served {
                Ok(end) => info!(connection = id, %peer, ?end, "disconnected"),
                Err(e) => info!(connection = id, %peer, "disconnected: {e}"),
            }
            // However the connection ended: no more pushes, and every
            // plugin hears that it closed (a call in flight, or a reply
            // promised, included) before it counts as closed.
            drop(registered);
            drop(pending);
            drop(blocking);
            drop(session);
            drop(input);
            (stream, _open)
        };
        if matches!(served, Ok(end) if end != End::ClientClosed) {
            // Boxed, as the slow write in `flush`.
            Box::pin(linger(&mut stream.as_stream())).await;
        }
        // Counted as open, and under the limit, until the socket is closed.
        drop(stream);
        drop(open);
    }

    /// Greets (a new connection), then answers batches of lines until
    /// something ends the connection. Every way out is found in
    /// [`Connection::answer_batch`] or [`Connection::poll_wait`] and said
    /// in [`Connection::finish`]. `None` if another thread took the
    /// connection over while it waited.
    ///
    /// This future is most of an idle connection's memory: what it holds
    /// across its waits is kept small, and the rare slow paths are boxed.
    async fn serve(mut self: Box<Self>, greet: bool) -> Option<(Box<Self>, io::Result<End>)> {
        if greet {
            Reply::Greeting.write_to(&mut self.session.out);
            if let Err(e) = self.flush().await {
                return Some((self, Err(e)));
            }
            // A client that never sends a request holds no reply buffer.
            self.session.out = RString::new();
        }
        let inbox = Arc::clone(&self.registered.inbox);
        let end = loop {
            match self.answer_and_flush().await {
                Ok(None) => {}
                Ok(Some(end)) => break end,
                Err(e) => return Some((self, Err(e))),
            }
            let waited = handover::rest(&inbox, self, |conn, cx| conn.poll_wait(cx, &inbox)).await;
            let (conn, waited) = waited?;
            self = conn;
            match waited {
                Ok(None) => {}
                Ok(Some(end)) => break end,
                Err(e) => return Some((self, Err(e))),
            }
        };
        let finished = self.finish(end).await;
        Some((self, finished.map(|()| end)))
    }

    /// Answers what has come, writes the replies, and keeps or frees the
    /// buffers for the wait that follows.
    async fn answer_and_flush(&mut self) -> io::Result<Option<End>> {
        if let Some(end) = self.answer_batch().await? {
            return Ok(Some(end));
        }
        self.flush().await?;
        self.keep_or_free_buffers();
        Ok(None)
    }

    /// Answers every complete line received so far; `Some(End::Closed)` if
    /// one of them closes the connection.
    async fn answer_batch(&mut self) -> io::Result<Option<End>> {
        let mut answered = false;
        while self.pending.is_none() && self.blocking.is_none() {
            let Some(answer) = self.answer(Input::Lines) else {
                break;
            };
            answered = true;
            let close = match answer {
                Answer::Done(close) => close,
                // Boxed: its waits would otherwise take room in every
                // connection's future.
                slow => Box::pin(self.answer_slow(slow)).await,
            };
            if close {
                self.count_requests();
                return Ok(Some(End::Closed));
            }
            if self.session.out.len() >= FLUSH_AT {
                self.flush().await?;
            }
        }
        // The lines answered were borrowed from the buffer until now.
        self.session.decoder.consume(&mut self.input);
        self.count_requests();
        if answered {
            // The idle time restarts on complete lines only, so a client
            // trickling bytes cannot hold the connection forever.
            self.registered.line_seen();
        }
        Ok(None)
    }

    /// Ready once more input has been read, or with what ends the
    /// connection.
    fn poll_wait(&mut self, cx: &mut Context<'_>, inbox: &Inbox) -> Poll<io::Result<Option<End>>> {
        // A request in flight is finished first, even by a stopping host.
        if self.blocking.is_some() {
            // What arrives meanwhile waits for the call, but a nudge still
            // wakes the task: a connection moved to another thread leaves
            // its old task to be woken this way, and end.
            inbox.wake_on_news(cx);
            let close = ready!(self.poll_blocking(cx));
            return Poll::Ready(Ok(close.then_some(End::Closed)));
        }
        // Looked at on every poll rather than waited for: the idle sweep
        // and a stopping host nudge the inbox, which brings the connection
        // back here, and a client that keeps sending (even one endless
        // line) comes back here after every read.
        if self.shared.is_stopping() {
            return Poll::Ready(Ok(Some(End::Shutdown)));
        }
        if inbox.has_news() {
            return Poll::Ready(Ok(self.take_news(inbox)));
        }
        if self.pending.is_none() {
            if self.idle_expired() {
                return Poll::Ready(Ok(Some(End::Idle)));
            }
            // Readability first: on the hot path it is what is ready, and
            // the rest is then not looked at.
            if let Poll::Ready(read) = self.stream.poll_read_into(cx, &mut self.input) {
                return Poll::Ready(match read {
                    Ok(0) => Ok(Some(End::ClientClosed)),
                    Ok(_) => Ok(None),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                    Err(e) => Err(e),
                });
            }
        }
        if inbox.poll_arrived(cx).is_ready() {
            return Poll::Ready(Ok(self.take_news(inbox)));
        }
        if let Some(pending) = &mut self.pending
            && pending.deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Ok(self.pending_timed_out()));
        }
        Poll::Pending
    }

    /// Moves the connection, taken over from another serving thread, to
    /// the runtime of the calling one: its socket and its timer.
    pub fn move_here(&mut self) -> io::Result<()> {
        self.stream.move_here()?;
        if let Some(call) = &mut self.blocking {
            call.move_here();
        }
        if let Some(pending) = &mut self.pending {
            pending.deadline = Box::pin(tokio::time::sleep_until(pending.deadline.deadline()));
        }
        Ok(())
    }

    /// Keeps the buffers for the next request while the client is busy,
    /// and lets them go once it has been quiet for a whole tick of the idle
    /// sweep (which nudges it then): memory per waiting client stays small,
    /// and a busy one does not allocate its buffers anew for each request.
    fn keep_or_free_buffers(&mut self) {
        if self.registered.quiet() {
            if self.input.is_empty() && self.input.capacity() > 0 {
                self.input = BytesMut::new();
            }
            if self.session.out.is_empty() && self.session.out.capacity() > 0 {
                self.session.out = RString::new();
            }
        }
        let holds = self.input.capacity() > 0 || self.session.out.capacity() > 0;
        self.registered.holds_buffers(holds);
    }

    /// Whether the connection has gone without a complete line for longer
    /// than the idle limit.
    fn idle_expired(&self) -> bool {
        (self.shared.limits.idle_timeout)
            .is_some_and(|limit| self.registered.idle_past(SWEEP_EVERY, limit))
    }

    /// Takes in what arrived in the inbox: pushed lines go out after the
    /// replies already waiting, and a pending reply that came is answered.
    fn take_news(&mut self, inbox: &Inbox) -> Option<End> {
        if inbox.take_pushed(&mut self.session.out) {
            warn!(
                connection = self.id(),
                "closing connection: the client does not read its pushed lines"
            );
            return Some(End::PushOverflow);
        }
        if inbox.take_wake()
            && let Some(pending) = self.pending.take()
        {
            let mut call = pending.call;
            // The reply goes after whatever was written since the call.
            call.start = self.session.out.len();
            match call.reply.take(&mut self.session.out) {
                RNone => self.pending = Some(Box::new(Pending { call, ..*pending })),
                RSome(result) => {
                    let result = call.dispatcher.outcome(call.route, result);
                    if let Action::Close = self.session.after_pending(call, result) {
                        return Some(End::Closed);
                    }
                }
            }
        }
        None
    }

    /// Answers in place of a pending reply that did not come in time.
    fn pending_timed_out(&mut self) -> Option<End> {
        let pending = self.pending.take()?;
        let call = pending.call;
        let (plugin, hook) = call.dispatcher.names(call.route);
        warn!(
            connection = self.id(),
            plugin = %plugin,
            hook = %hook,
            "pending reply timed out"
        );
        Reply::PluginTimedOut { plugin }.write_to(&mut self.session.out);
        None
    }

    /// Sends what the way the connection ended calls for.
    async fn finish(&mut self, end: End) -> io::Result<()> {
        match end {
            End::ClientClosed => {
                // Answer a last line sent without a line ending, for
                // clients that half-close after writing.
                if let Some(answer) = self.answer(Input::Last) {
                    self.session.decoder.consume(&mut self.input);
                    if let slow @ Answer::Admin(_) = answer {
                        Box::pin(self.answer_slow(slow)).await;
                    }
                    std::future::poll_fn(|cx| self.poll_blocking(cx)).await;
                    self.count_requests();
                }
            }
            End::Closed => {}
            End::Idle => Reply::Idle {
                secs: self.shared.limits.idle_timeout.map_or(0, |d| d.as_secs()),
            }
            .write_to(&mut self.session.out),
            End::Shutdown => Reply::ShuttingDown.write_to(&mut self.session.out),
            // It does not read: nothing more is sent.
            End::PushOverflow => return Ok(()),
        }
        self.flush().await
    }

    fn count_requests(&mut self) {
        if self.uncounted > 0 {
            self.shared.stats.requests.add_n(self.uncounted);
            self.uncounted = 0;
        }
    }

    /// Answers the next frame in the input buffer, if there is one, at
    /// once if it can; what must wait (an admin command, a call on a
    /// blocking thread) is left to [`Connection::answer_slow`]. The frame
    /// is borrowed from the buffer, which therefore holds on to it until
    /// the decoder's `consume`.
    fn answer(&mut self, input: Input) -> Option<Answer> {
        let decoder = &mut self.session.decoder;
        let frame = match input {
            Input::Lines => decoder.decode(&self.input)?,
            Input::Last => decoder.finish(&self.input)?,
        };
        self.uncounted += 1;
        if let Frame::Line(line) = frame
            && admin_commands::is_one(line)
        {
            return Some(Answer::Admin(line.into()));
        }
        let action = self.session.respond(frame, &self.shared.dispatch);
        Some(Answer::Done(self.act(action)))
    }

    /// Finishes what [`Connection::answer`] could not; true if the
    /// connection must close.
    async fn answer_slow(&mut self, answer: Answer) -> bool {
        let line = match answer {
            Answer::Done(close) => return close,
            Answer::Admin(line) => line,
        };
        if admin_commands::answer(&line, &mut self.admin, &self.shared, &mut self.session.out).await
        {
            return false;
        }
        let action = self
            .session
            .respond(Frame::Line(&line), &self.shared.dispatch);
        self.act(action)
    }

    /// Ready once no call on a blocking thread is in flight: a hook on a
    /// blocking thread may decline the line, and the next hook may run on
    /// a blocking thread too. True if the connection must close.
    fn poll_blocking(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        while let Some(call) = &mut self.blocking {
            let action = ready!(call.poll_finish(cx, &mut self.session));
            self.blocking = None;
            if self.act(action) {
                return Poll::Ready(true);
            }
        }
        Poll::Ready(false)
    }

    /// Carries out what dispatching a request asked of the connection;
    /// true if the connection must close. A call on a blocking thread is
    /// started, and waited for between batches ([`Connection::poll_blocking`]).
    fn act(&mut self, action: Action) -> bool {
        match action {
            Action::Continue => false,
            Action::Close => true,
            Action::Info => {
                self.count_requests();
                let admin = self.admin.granted(&self.shared);
                let start = self.session.out.len();
                crate::info::render(&self.shared, admin, &mut self.session.out);
                frame_reply(&mut self.session.out, start);
                false
            }
            Action::Help { topic } => {
                let admin = self.admin.granted(&self.shared);
                let auth = self
                    .shared
                    .admin
                    .load()
                    .as_ref()
                    .is_some_and(|a| a.has_secret());
                let table = self.shared.dispatch.load();
                let start = self.session.out.len();
                crate::help::render(&table, topic.as_deref(), admin, auth, &mut self.session.out);
                frame_reply(&mut self.session.out, start);
                false
            }
            Action::Blocking {
                dispatcher,
                route,
                line,
            } => {
                let max_abandoned = self.shared.limits.max_abandoned_calls;
                match blocking_call::start(
                    &mut self.session,
                    dispatcher,
                    route,
                    line,
                    max_abandoned,
                ) {
                    Ok(call) => {
                        self.blocking = Some(call);
                        false
                    }
                    Err(action) => self.act(action),
                }
            }
            Action::Pending(call) => {
                let limit = call.dispatcher.plugins()[call.dispatcher.route(call.route).plugin]
                    .limits
                    .timeout;
                self.pending = Some(Box::new(Pending {
                    call,
                    deadline: Box::pin(tokio::time::sleep(limit)),
                }));
                false
            }
        }
    }

    /// Writes out the waiting replies. A client that stops reading stalls
    /// this write; it is given the idle timeout before being dropped.
    async fn flush(&mut self) -> io::Result<()> {
        if self.session.out.is_empty() {
            return Ok(());
        }
        // Nearly always the socket takes the whole reply at once: write it
        // without setting up a timed asynchronous write (which would read
        // the clock for its deadline on every request).
        let written = match self.stream.try_write(self.session.out.as_bytes()) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e),
        };
        if written == self.session.out.len() {
            self.session.out.clear();
            return Ok(());
        }
        let limit = self
            .shared
            .limits
            .idle_timeout
            .unwrap_or(DEFAULT_WRITE_TIMEOUT);
        let rest = &self.session.out.as_bytes()[written..];
        let id = self.session.client.id;
        // Boxed: this slow path's timers and write would otherwise take room
        // in every connection's future, idle ones included.
        let result = Box::pin(write_stalled(
            &mut self.stream,
            rest,
            limit,
            &self.registered.inbox,
            id,
        ))
        .await;
        self.session.out.clear();
        result
    }
}

/// Writes what the socket did not take at once, within `limit`. Pushes go
/// on piling up while the write stalls: their bound ends the connection
/// as soon as it is passed, not when the write times out.
async fn write_stalled(
    stream: &mut Transport,
    rest: &[u8],
    limit: Duration,
    inbox: &Inbox,
    id: u64,
) -> io::Result<()> {
    tokio::select! {
        written = tokio::time::timeout(limit, stream.write_out(rest)) => {
            written.unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "client did not read its replies",
                ))
            })
        }
        () = overflowed(inbox) => {
            warn!(
                connection = id,
                "closing connection: the client does not read its pushed lines"
            );
            Err(io::Error::other("the client does not read its pushed lines"))
        }
    }
}

/// Counts a connection as open while it lives.
struct Counted(Arc<Shared>);

impl Counted {
    fn new(shared: &Arc<Shared>) -> Counted {
        shared.stats.connected();
        Counted(Arc::clone(shared))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.stats.disconnected();
    }
}

/// Closes our side after a last message, then reads and drops whatever the
/// client still sends, for a moment. Closing a socket with unread input
/// makes the kernel send a reset, which can destroy the last message before
/// the client reads it.
pub async fn linger(stream: &mut (impl AsyncRead + AsyncWrite + Unpin)) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut scratch = [0u8; 1024];
        let mut left = LINGER_BYTES;
        while left > 0 {
            match stream.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// Completes once `inbox` overflowed. Polled, not woken: the inbox's
/// wake-up belongs to the connection's main wait, and a stalled write is
/// rare enough that a check every few milliseconds costs nothing.
async fn overflowed(inbox: &Inbox) {
    while !inbox.overflowed() {
        tokio::time::sleep(OVERFLOW_CHECK).await;
    }
}
