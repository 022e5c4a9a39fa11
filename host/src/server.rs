//! The listener: accepts connections, enforces the connection limit and
//! runs each connection in a task of its own until the host stops.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use crate::balance::{self, Gate};
use crate::connection::{Connection, linger};
use crate::handover::{self, Move};
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
/// the same listening socket; a connection is served by one thread at a
/// time, and no thread wakes another per request, which costs the least
/// CPU per request: the model of one Redis per core. This thread is the
/// first of them, and the one that waits for `stop`: call it from inside a
/// single-threaded runtime.
///
/// The first thread always accepts; another accepts too while the first
/// is busy and a core is free, or while a hook holds it, and waiting
/// connections move off a thread that is busy while a core is free, or
/// held (`crate::balance`, `crate::handover`).
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
    let stopper = serving.clone();
    let gate = balance::start(Arc::clone(&serving.shared), threads > 1)?;
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
    async fn take_over(&self, thread: usize, mut moves: mpsc::UnboundedReceiver<Move>) {
        while let Some(request) = moves.recv().await {
            let (from, fraction) = match request {
                Move::Held { from } => (from, None),
                Move::Share(share) => (share.from, Some(share.fraction)),
            };
            let moved =
                handover::take_over(&self.shared.registry, from, thread, fraction, |conn| {
                    self.tracker.spawn(conn.resume());
                });
            if fraction.is_some() {
                self.shared.threads.took_share(thread);
            }
            match request {
                // The thread was free again, or every connection on it
                // busy, before this one looked.
                _ if moved == 0 => debug!(from, to = thread, "no waiting connections to move"),
                Move::Held { .. } => warn!(
                    from,
                    to = thread,
                    moved,
                    "a hook holds serving thread {from}: its waiting connections move to thread {thread}"
                ),
                Move::Share(_) => info!(
                    from,
                    to = thread,
                    moved,
                    "serving thread {from} is busy and a core is free: some of its waiting connections move to thread {thread}"
                ),
            }
        }
    }
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
                if gate.wait_for(|a| a.admits(thread)).await.is_err() {
                    return;
                }
                tokio::select! {
                    accepted = listener.accept() => accepted,
                    // Closed again while waiting: back to waiting for it.
                    _ = gate.wait_for(|a| !a.admits(thread)) => continue,
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
