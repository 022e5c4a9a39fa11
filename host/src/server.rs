//! The listener: accepts connections, enforces the connection limit and
//! runs each connection in a task of its own until the host stops.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use crate::connection::{Connection, linger};
use crate::handover;
use crate::proxy_header::{self, HEADER_TIMEOUT};
use crate::reply::Reply;
use crate::shared::Shared;
use crate::tls::Tls;

/// Longest wait between accept attempts after errors such as running out
/// of file descriptors.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);
/// Refused clients being told `ERR server busy` at once.
const MAX_REFUSALS: usize = 64;

#[derive(Debug, Clone, Copy)]
pub struct ServerSettings {
    pub max_connections: usize,
    /// How long connections get to finish once the host is stopping.
    pub shutdown_timeout: Duration,
    /// Blocking threads each serving thread's runtime may start: enough
    /// for every plugin's bound of calls and the abandoned ones, so that
    /// no plugin can wait for a thread another plugin holds.
    pub blocking_threads: usize,
    /// The PROXY protocol header every connection starts with, if any.
    pub proxy_protocol: Option<proxy_header::Mode>,
}

/// The listening sockets the supervisor bound: plain, TLS, or both.
pub struct Listeners<L = std::net::TcpListener> {
    pub plain: Option<L>,
    pub tls: Option<(L, Tls)>,
}

impl Listeners {
    /// Another handle on the same sockets, for another thread.
    fn try_clone(&self) -> io::Result<Listeners> {
        Ok(Listeners {
            plain: self.plain.as_ref().map(|l| l.try_clone()).transpose()?,
            tls: match &self.tls {
                Some((l, tls)) => Some((l.try_clone()?, tls.clone())),
                None => None,
            },
        })
    }

    /// Registers the sockets with this thread's runtime.
    fn into_tokio(self) -> io::Result<Listeners<TcpListener>> {
        Ok(Listeners {
            plain: self.plain.map(TcpListener::from_std).transpose()?,
            tls: match self.tls {
                Some((l, tls)) => Some((TcpListener::from_std(l)?, tls)),
                None => None,
            },
        })
    }
}

/// What every serving thread shares: one connection limit, one stop.
#[derive(Clone)]
struct Serving {
    shared: Arc<Shared>,
    settings: ServerSettings,
    limit: Arc<Semaphore>,
    refusals: Arc<Semaphore>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

/// Serves `listener` on `threads` threads until `stop` completes, then lets
/// connections finish their current requests, tells them the server is
/// going away, and waits for them at most `shutdown_timeout`.
///
/// Each thread runs a single-threaded runtime of its own and accepts from
/// the same listening socket; a connection stays on the thread that
/// accepted it. No task ever moves between threads and no thread wakes
/// another, which costs the least CPU per request: the model of one Redis
/// per core. This thread is the first of them, and the one that waits for
/// `stop`: call it from inside a single-threaded runtime.
///
/// The first thread always accepts; the others accept only while it is
/// busy, or held by a hook ([`Spread`]). Spreading connections over threads
/// that have little to do costs CPU for nothing: each thread's poll finds
/// fewer ready sockets, and the threads take turns on the cores. So the
/// connections of a lightly loaded host share one thread, and new ones go
/// to the other threads, and cores, once that thread has work enough.
pub async fn run(
    listener: Listeners,
    threads: usize,
    shared: Arc<Shared>,
    settings: ServerSettings,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    let serving = Serving {
        shared,
        settings,
        limit: Arc::new(Semaphore::new(settings.max_connections)),
        refusals: Arc::new(Semaphore::new(MAX_REFUSALS)),
        tracker: TaskTracker::new(),
        shutdown: CancellationToken::new(),
    };
    for l in listener
        .plain
        .iter()
        .chain(listener.tls.iter().map(|(l, _)| l))
    {
        l.set_nonblocking(true)?;
    }
    let (spread, gate) = tokio::sync::watch::channel(false);
    let mut others = Vec::new();
    for index in 1..threads.max(1) {
        let thread = serving.spawn_thread(index, listener.try_clone()?, Some(gate.clone()))?;
        others.push(thread);
    }
    if threads <= 1 {
        // A spare: it accepts only while a hook holds the one serving
        // thread, and takes over the connections waiting there.
        others.push(serving.spawn_thread(1, listener.try_clone()?, Some(gate.clone()))?);
    }
    let listener = listener.into_tokio()?;
    let stopper = serving.clone();
    Spread::start(spread, threads > 1)?;
    tokio::select! {
        () = serving.serve_until_stopped(listener, 0, None) => {}
        () = async {
            stop.await;
            info!("stopping: no new connections; finishing current requests");
            stopper.stop();
            std::future::pending::<()>().await
        } => {}
    }
    for thread in others {
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error!("a serving thread failed: {e}"),
            Err(_) => error!("a serving thread panicked"),
        }
    }
    Ok(())
}

impl Serving {
    /// Starts serving thread number `index`, with a runtime of its own.
    fn spawn_thread(
        &self,
        index: usize,
        listener: Listeners,
        gate: Option<Gate>,
    ) -> io::Result<std::thread::JoinHandle<io::Result<()>>> {
        let serving = self.clone();
        let blocking_threads = self.settings.blocking_threads;
        std::thread::Builder::new()
            .name(format!("serve-{index}"))
            .spawn(move || -> io::Result<()> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .max_blocking_threads(blocking_threads)
                    .build()?;
                runtime.block_on(async move {
                    let listener = listener.into_tokio()?;
                    serving.serve_until_stopped(listener, index, gate).await;
                    io::Result::Ok(())
                })?;
                // Blocking hooks still running hold up nothing past here.
                runtime.shutdown_background();
                Ok(())
            })
    }

    /// Tells every thread to stop accepting and every connection to end.
    fn stop(&self) {
        self.shared.begin_stopping();
        // Connections waiting for input learn it from a nudge: they hold
        // no waiter on the shutdown token, which would cost each memory.
        self.shared.registry.nudge_all();
        self.shutdown.cancel();
    }

    /// Accepts on this thread (while `gate` is open, if given) until the
    /// host stops, then waits for the connections of every thread to end.
    async fn serve_until_stopped(
        &self,
        listener: Listeners<TcpListener>,
        thread: usize,
        gate: Option<Gate>,
    ) {
        let moves = self.shared.threads.enter(thread);
        // Every request is counted on this thread, which lives as long as
        // the process: cheaper in a shard of its own.
        crate::stats::own_a_shard();
        let tls = async {
            match &listener.tls {
                Some((l, tls)) => accept_loop(l, self, thread, gate.clone(), Some(tls)).await,
                None => std::future::pending().await,
            }
        };
        let plain = async {
            match &listener.plain {
                Some(l) => accept_loop(l, self, thread, gate.clone(), None).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = plain => {}
            () = tls => {}
            () = self.take_over(thread, moves) => {}
            () = self.shutdown.cancelled() => {}
        }
        drop(listener);
        self.tracker.close();
        if tokio::time::timeout(self.settings.shutdown_timeout, self.tracker.wait())
            .await
            .is_err()
        {
            warn!(
                remaining = self.tracker.len(),
                "connections still open after {:?}; closing them", self.settings.shutdown_timeout
            );
        }
    }

    /// Takes over, for serving thread `thread`, the waiting connections of
    /// each held serving thread named on `moves` ([`crate::handover`]).
    async fn take_over(&self, thread: usize, mut moves: mpsc::UnboundedReceiver<usize>) {
        while let Some(from) = moves.recv().await {
            let moved = handover::take_over(&self.shared.registry, from, thread, |conn| {
                self.tracker.spawn(conn.resume());
            });
            if moved == 0 {
                // The thread was free again before this one looked.
                debug!(from, to = thread, "no waiting connections to move");
                continue;
            }
            warn!(
                from,
                to = thread,
                moved,
                "a hook holds serving thread {from}: its waiting connections move to thread {thread}"
            );
        }
    }
}

/// Whether the threads after the first accept connections.
type Gate = tokio::sync::watch::Receiver<bool>;

/// Opens the gate of the other threads while the first thread is busy, or
/// stuck in a hook.
///
/// It watches from a thread of its own: from the first thread itself, a
/// hook holding that thread would hold the watching too.
struct Spread {
    open: tokio::sync::watch::Sender<bool>,
    /// The first thread's CPU clock.
    clock: libc::clockid_t,
    /// Counted up by the first thread every [`Spread::BEAT`]: a count that
    /// stands still means the thread is held, whatever its CPU use.
    beats: Arc<AtomicU64>,
    /// Whether a busy first thread opens the gate; else only a held one
    /// does (the other thread is a spare: `worker_threads = 1`).
    when_busy: bool,
}

impl Spread {
    /// How often the first thread is looked at...
    const EVERY: Duration = Duration::from_millis(100);
    /// ...and how often it counts a beat when it is free to.
    const BEAT: Duration = Duration::from_millis(20);
    /// Busier than this (share of its time on the CPU), it shares new
    /// connections; less busy than `CLOSE`, it keeps them.
    const OPEN: f64 = 0.75;
    const CLOSE: f64 = 0.40;

    /// Starts watching the calling thread, the first serving thread.
    fn start(open: tokio::sync::watch::Sender<bool>, when_busy: bool) -> io::Result<()> {
        let mut clock: libc::clockid_t = 0;
        // SAFETY: writes the clock id of this thread into `clock`.
        if unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) } != 0 {
            // Without the first thread's clock, every thread accepts.
            open.send_replace(when_busy);
            return Ok(());
        }
        let beats = Arc::new(AtomicU64::new(0));
        let beating = Arc::clone(&beats);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Self::BEAT);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                beating.fetch_add(1, Ordering::Relaxed);
            }
        });
        let spread = Spread {
            open,
            clock,
            beats,
            when_busy,
        };
        std::thread::Builder::new()
            .name("spread".into())
            .spawn(move || spread.watch())
            .map(drop)
    }

    fn watch(self) {
        let mut last = (Instant::now(), self.cpu_time(), 0);
        // Until every serving thread has stopped listening to the gate.
        while !self.open.is_closed() {
            std::thread::sleep(Self::EVERY);
            let Some(cpu) = self.cpu_time() else {
                return;
            };
            let now = (
                Instant::now(),
                Some(cpu),
                self.beats.load(Ordering::Relaxed),
            );
            let wall = now.0.duration_since(last.0).as_secs_f64();
            let busy = match last.1 {
                Some(before) if wall > 0.0 => cpu.saturating_sub(before).as_secs_f64() / wall,
                _ => 1.0,
            };
            let stuck = now.2 == last.2;
            last = now;
            let open = *self.open.borrow();
            let busy_opens = self.when_busy && busy > Self::OPEN;
            let busy_keeps = self.when_busy && busy >= Self::CLOSE;
            if !open && (busy_opens || stuck) {
                debug!(busy, stuck, "first thread busy: all threads accept");
                self.open.send_replace(true);
            } else if open && !busy_keeps && !stuck {
                debug!(busy, "first thread idle enough: it alone accepts");
                self.open.send_replace(false);
            }
        }
    }

    /// CPU time of the first thread so far.
    fn cpu_time(&self) -> Option<Duration> {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the timespec we own.
        if unsafe { libc::clock_gettime(self.clock, &mut t) } != 0 {
            return None;
        }
        Some(Duration::new(
            u64::try_from(t.tv_sec).ok()?,
            u32::try_from(t.tv_nsec).ok()?,
        ))
    }
}

/// Waits until `gate` is open; false if it is gone.
async fn opened(gate: &mut Gate) -> bool {
    gate.wait_for(|open| *open).await.is_ok()
}

/// Accepts connections on serving thread number `thread` (0 is the first).
async fn accept_loop(
    listener: &TcpListener,
    serving: &Serving,
    thread: usize,
    mut gate: Option<Gate>,
    tls: Option<&Tls>,
) {
    let Serving {
        shared,
        settings,
        limit,
        refusals,
        tracker,
        ..
    } = serving;
    let mut backoff = Duration::from_millis(1);
    loop {
        let accepted = match gate.as_mut() {
            None => listener.accept().await,
            Some(gate) => {
                if !opened(gate).await {
                    return;
                }
                tokio::select! {
                    accepted = listener.accept() => accepted,
                    // Closed again while waiting: back to waiting for it.
                    _ = gate.wait_for(|open| !*open) => continue,
                }
            }
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = Duration::from_millis(1);
                accepted
            }
            Err(e) => {
                // Typically EMFILE/ENFILE: wait for connections to close
                // rather than spin, and try again.
                error!("accept failed: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = Arc::clone(limit).try_acquire_owned() else {
            warn!(%peer, "refusing connection: server busy");
            // Telling a refused client why costs a task for up to a second;
            // under a connection flood, past a bound, they are just closed.
            if let Ok(refusing) = Arc::clone(refusals).try_acquire_owned() {
                tracker.spawn(async move {
                    refuse(stream).await;
                    drop(refusing);
                });
            }
            continue;
        };
        let mode = settings.proxy_protocol;
        if mode.is_none() && tls.is_none() {
            let connection = Connection::new(
                stream,
                peer.to_string().into(),
                None,
                Arc::clone(shared),
                thread,
                permit,
            );
            tracker.spawn(serve(Box::new(connection), peer, None, thread));
            continue;
        }
        let shared = Arc::clone(shared);
        let tls = tls.cloned();
        tracker.spawn(async move {
            let mut stream = stream;
            // Read in the connection's task: a client slow to send its
            // header holds up only itself. `peer` is then the balancer.
            let (client, proxy) = match mode {
                None => (peer, None),
                Some(mode) => {
                    match Box::pin(proxy_header::read(&mut stream, mode, HEADER_TIMEOUT)).await {
                        Ok(client) => (client.unwrap_or(peer), Some(peer)),
                        Err(e) => {
                            warn!(proxy = %peer, "closing connection: {e}");
                            return;
                        }
                    }
                }
            };
            // A balancer passing TLS through sends its header first, in
            // the clear; the handshake follows it.
            let connection = match &tls {
                None => Connection::new(
                    stream,
                    client.to_string().into(),
                    None,
                    shared,
                    thread,
                    permit,
                ),
                // Boxed: the handshake's state is large, and would otherwise
                // stay part of the task for the connection's whole life.
                Some(tls) => match Box::pin(tls.handshake(stream)).await {
                    Ok((stream, subject)) => Connection::new(
                        stream,
                        client.to_string().into(),
                        subject,
                        shared,
                        thread,
                        permit,
                    ),
                    Err(e) => {
                        let proxy = proxy.map(tracing::field::display);
                        warn!(peer = %client, proxy, "closing TLS connection: {e}");
                        return;
                    }
                },
            };
            serve(Box::new(connection), client, proxy, thread).await;
        });
    }
}

/// Runs an accepted connection to its end (which it logs), logging its
/// start at once; `proxy` is the load balancer it came through.
///
/// Not an `async fn`: nothing but the connection is held across the await,
/// since this future is part of every open connection's memory.
fn serve(
    connection: Box<Connection>,
    peer: SocketAddr,
    proxy: Option<SocketAddr>,
    thread: usize,
) -> impl Future<Output = ()> {
    let id = connection.id();
    let proxy = proxy.map(tracing::field::display);
    let subject = connection.tls_subject().map(tracing::field::display);
    info!(connection = id, %peer, proxy, subject, thread, "connected");
    connection.run()
}

/// Tells a client over the connection limit why it is being closed.
async fn refuse(mut stream: TcpStream) {
    let told = tokio::time::timeout(
        Duration::from_secs(1),
        stream.write_all(Reply::Busy.line().as_bytes()),
    )
    .await;
    if matches!(told, Ok(Ok(()))) {
        linger(&mut stream).await;
    }
}
