//! One client connection: read request lines, answer each in order.
//!
//! Requests are answered in batches: every complete line already received
//! is answered, the replies collect in one buffer and go out in one write.
//! Pipelining clients thus cost one system call per batch, not per line.
//! Nothing more is read while replies are waiting to be written, so a
//! client that does not read its replies stops being read from instead of
//! making the host buffer without bound.

use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::Duration;

use abi_stable::std_types::{RNone, RSome};
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::futures::Notified;
use tokio::time::{Instant, Sleep};
use tokio_util::codec::Decoder;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use tracing::warn;

use crate::admin_commands::{self, Access};
use crate::blocking_call;
use crate::inbox::{Inbox, Registered};
use crate::outgoing::frame_reply;
use crate::reply::Reply;
use crate::session::{Action, ClientInfo, PendingCall, Session};
use crate::shared::Shared;
use crate::transport::Transport;

/// Write replies out once this much is waiting, even mid-batch.
const FLUSH_AT: usize = 64 * 1024;
/// Free space kept in the input buffer before each read.
const READ_CHUNK: usize = 4 * 1024;
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
    pending: Option<Pending>,
}

/// A promised reply and the time limit on it.
struct Pending {
    call: PendingCall,
    deadline: Pin<Box<Sleep>>,
}

impl Connection {
    /// `tls_subject`: of the client's certificate, on a TLS connection
    /// that presented one; plugins learn it with the peer when it connects.
    pub fn new(
        stream: impl Into<Transport>,
        peer: Arc<str>,
        tls_subject: Option<Arc<str>>,
        shared: Arc<Shared>,
    ) -> Connection {
        let id = shared.next_connection_id();
        let admin = Access::new(&peer);
        let client = ClientInfo {
            id,
            peer,
            tls_subject,
        };
        let registered = shared.registry.open(id);
        let session = Session::new(shared.limits.max_line_length, client, &shared.dispatch);
        Connection {
            admin,
            uncounted: 0,
            stream: stream.into(),
            shared,
            input: BytesMut::new(),
            session,
            registered,
            pending: None,
        }
    }

    pub fn id(&self) -> u64 {
        self.session.client.id
    }

    /// The subject of the client's TLS certificate, if it presented one.
    pub fn tls_subject(&self) -> Option<&Arc<str>> {
        self.session.client.tls_subject.as_ref()
    }

    /// Serves the connection until it ends, or `shutdown` is cancelled
    /// between two batches of requests.
    ///
    /// The connection is boxed: a future owning it by value would hold it
    /// twice (the argument and the moved local), in every connection's task.
    pub async fn run(mut self: Box<Self>, shutdown: CancellationToken) -> io::Result<End> {
        let _counted = Counted::new(&self.shared);
        let served = self.serve(shutdown).await;
        let Connection {
            mut stream,
            session,
            registered,
            ..
        } = *self;
        // However the connection ended: no more pushes, and every plugin
        // hears that it closed.
        drop(registered);
        drop(session);
        let end = served?;
        if end != End::ClientClosed {
            // Boxed, as the slow write in `flush`.
            Box::pin(linger(&mut stream.as_stream())).await;
        }
        Ok(end)
    }

    /// Greets, then answers batches of lines until something ends the
    /// connection. Every way out is found in [`Connection::answer_batch`]
    /// or [`Connection::wait`] and said in [`Connection::finish`].
    async fn serve(&mut self, shutdown: CancellationToken) -> io::Result<End> {
        Reply::Greeting.write_to(&mut self.session.out);
        self.flush().await?;
        // Both live for the whole connection: creating them per request
        // would register a timer and a shutdown waiter (each behind a lock
        // shared by all connections) for every line.
        let mut stopping = pin!(shutdown.cancelled());
        let inbox = Arc::clone(&self.registered.inbox);
        let mut arrived = pin!(inbox.arrived());
        let mut idle = IdleClock::new(self.shared.limits.idle_timeout);
        let end = loop {
            if let Some(end) = self.answer_batch(&mut idle).await? {
                break end;
            }
            self.flush().await?;
            if self.input.is_empty() && self.input.capacity() > 0 {
                // An idle connection holds no input buffer: memory per
                // waiting client stays small.
                self.input = BytesMut::new();
            }
            if let Some(end) = self
                .wait(stopping.as_mut(), arrived.as_mut(), &inbox, &mut idle)
                .await?
            {
                break end;
            }
        };
        self.finish(end).await?;
        Ok(end)
    }

    /// Answers every complete line received so far; `Some(End::Closed)` if
    /// one of them closes the connection.
    async fn answer_batch(&mut self, idle: &mut IdleClock) -> io::Result<Option<End>> {
        let mut answered = false;
        while self.pending.is_none()
            && let Some(frame) = self.session.decoder.decode(&mut self.input)?
        {
            answered = true;
            if self.answer(frame).await {
                self.count_requests();
                return Ok(Some(End::Closed));
            }
            if self.session.out.len() >= FLUSH_AT {
                self.flush().await?;
            }
        }
        self.count_requests();
        if answered {
            // The idle clock restarts on complete lines only, so a client
            // trickling bytes cannot hold the connection forever.
            idle.restart();
        }
        Ok(None)
    }

    /// Waits until more input has been read, or for what ends the
    /// connection.
    async fn wait<'n>(
        &mut self,
        stopping: Pin<&mut WaitForCancellationFuture<'_>>,
        mut arrived: Pin<&mut Notified<'n>>,
        inbox: &'n Inbox,
        idle: &mut IdleClock,
    ) -> io::Result<Option<End>> {
        // Checked before waiting as well as raced below: a client that
        // keeps sending (even one endless line) makes readability win the
        // biased race every time, and would never see either.
        if self.shared.is_stopping() {
            return Ok(Some(End::Shutdown));
        }
        if inbox.has_news() {
            return Ok(self.take_news(inbox));
        }
        if self.pending.is_none() && idle.expired() {
            return Ok(Some(End::Idle));
        }
        let reading = self.pending.is_none();
        // Readability first: on the hot path it is the branch that is
        // ready, and the others are then not polled at all.
        tokio::select! {
            biased;
            read = self.stream.read_into(&mut self.input, READ_CHUNK), if reading => {
                match read {
                    Ok(0) => Ok(Some(End::ClientClosed)),
                    Ok(_) => Ok(None),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                    Err(e) => Err(e),
                }
            }
            () = stopping => Ok(Some(End::Shutdown)),
            () = arrived.as_mut() => {
                // Re-armed at once, before the news is taken in, so
                // that nothing arriving meanwhile goes unnoticed.
                arrived.set(inbox.arrived());
                Ok(self.take_news(inbox))
            }
            () = pending_deadline(&mut self.pending) => Ok(self.pending_timed_out()),
            () = idle.fired(), if reading => {
                // The timer is set lazily: it fires at the deadline of an
                // earlier line, and is moved on if lines came since.
                if idle.expired() {
                    Ok(Some(End::Idle))
                } else {
                    idle.rearm();
                    Ok(None)
                }
            }
        }
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
                RNone => self.pending = Some(Pending { call, ..pending }),
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
                if let Some(frame) = self.session.decoder.finish(&mut self.input) {
                    self.answer(frame).await;
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

    /// Answers one frame; true if the connection must close.
    async fn answer(&mut self, frame: crate::framing::Frame) -> bool {
        self.uncounted += 1;
        if let crate::framing::Frame::Line(line) = &frame
            && admin_commands::is_one(line)
            // Boxed, as the blocking call below: its wait for the
            // supervisor would otherwise grow this future, built per line.
            && Box::pin(admin_commands::answer(
                line,
                &mut self.admin,
                &self.shared,
                &mut self.session.out,
            ))
            .await
        {
            return false;
        }
        let mut action = self.session.respond(frame, &self.shared.dispatch);
        match &action {
            Action::Info => {
                self.count_requests();
                let admin = self.admin.granted(&self.shared);
                let start = self.session.out.len();
                crate::info::render(&self.shared, admin, &mut self.session.out);
                frame_reply(&mut self.session.out, start);
                return false;
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
                return false;
            }
            _ => {}
        }
        // A hook on a blocking thread may decline the line, and the next
        // hook may run on a blocking thread too.
        while let Action::Blocking {
            dispatcher,
            route,
            line,
        } = action
        {
            // Boxed: the wait for a blocking thread, with its timer, would
            // otherwise make this future, built and moved for every
            // request, several times larger.
            action = Box::pin(blocking_call::call(
                &mut self.session,
                dispatcher,
                route,
                line,
                self.shared.limits.max_abandoned_calls,
            ))
            .await;
        }
        if let Action::Pending(call) = action {
            let limit = call.dispatcher.plugins()[call.dispatcher.route(call.route).plugin]
                .limits
                .timeout;
            self.pending = Some(Pending {
                call,
                deadline: Box::pin(tokio::time::sleep(limit)),
            });
            return false;
        }
        matches!(action, Action::Close)
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

/// The idle limit of one connection: the time of its last complete line,
/// and a timer that wakes the connection when the limit may have passed.
struct IdleClock {
    limit: Option<Duration>,
    last_line: Instant,
    /// Armed for `last_line + limit` of some earlier line; `None` without
    /// a limit, so that an unlimited connection holds no timer at all.
    timer: Option<Pin<Box<Sleep>>>,
}

impl IdleClock {
    fn new(limit: Option<Duration>) -> IdleClock {
        let last_line = Instant::now();
        IdleClock {
            limit,
            last_line,
            timer: limit.map(|limit| Box::pin(tokio::time::sleep_until(last_line + limit))),
        }
    }

    fn restart(&mut self) {
        if self.limit.is_some() {
            self.last_line = Instant::now();
        }
    }

    fn expired(&self) -> bool {
        self.limit
            .is_some_and(|limit| self.last_line.elapsed() >= limit)
    }

    /// Moves the timer on to the current deadline.
    fn rearm(&mut self) {
        if let (Some(limit), Some(timer)) = (self.limit, self.timer.as_mut()) {
            timer.as_mut().reset(self.last_line + limit);
        }
    }

    /// Completes when the timer fires; never without a limit.
    async fn fired(&mut self) {
        match self.timer.as_mut() {
            Some(timer) => timer.as_mut().await,
            None => std::future::pending().await,
        }
    }
}

/// Completes once `inbox` overflowed. Polled, not woken: the inbox's
/// wake-up belongs to the connection's main wait, and a stalled write is
/// rare enough that a check every few milliseconds costs nothing.
async fn overflowed(inbox: &Inbox) {
    while !inbox.overflowed() {
        tokio::time::sleep(OVERFLOW_CHECK).await;
    }
}

/// Completes when the pending reply's time is up; never without one.
async fn pending_deadline(pending: &mut Option<Pending>) {
    match pending {
        Some(pending) => pending.deadline.as_mut().await,
        None => std::future::pending().await,
    }
}
