//! The listener: accepts connections, enforces the connection limit and
//! runs each connection in a task of its own until the host stops.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::connection::{Connection, linger};
use crate::reply::Reply;
use crate::shared::Shared;

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
/// another, which costs the least CPU per request (the model of one Redis
/// per core), while every core still serves. This thread is one of them,
/// and the one that waits for `stop`: call it from inside a
/// single-threaded runtime.
pub async fn run(
    listener: std::net::TcpListener,
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
    listener.set_nonblocking(true)?;
    let mut others = Vec::new();
    for index in 1..threads.max(1) {
        let listener = listener.try_clone()?;
        let serving = serving.clone();
        let thread = std::thread::Builder::new()
            .name(format!("serve-{index}"))
            .spawn(move || -> io::Result<()> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener)?;
                    serving.serve_until_stopped(listener).await;
                    io::Result::Ok(())
                })?;
                // Blocking hooks still running hold up nothing past here.
                runtime.shutdown_background();
                Ok(())
            })?;
        others.push(thread);
    }
    let listener = TcpListener::from_std(listener)?;
    let stopper = serving.clone();
    tokio::select! {
        () = serving.serve_until_stopped(listener) => {}
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
    /// Tells every thread to stop accepting and every connection to end.
    fn stop(&self) {
        self.shared.begin_stopping();
        self.shutdown.cancel();
    }

    /// Accepts on this thread until the host stops, then waits for the
    /// connections of every thread to end.
    async fn serve_until_stopped(&self, listener: TcpListener) {
        tokio::select! {
            () = accept_loop(&listener, self) => {}
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
}

async fn accept_loop(listener: &TcpListener, serving: &Serving) {
    let Serving {
        shared,
        limit,
        refusals,
        tracker,
        shutdown,
        ..
    } = serving;
    let mut backoff = Duration::from_millis(1);
    loop {
        let (stream, peer) = match listener.accept().await {
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
        let connection = Connection::new(stream, peer.to_string().into(), Arc::clone(shared));
        let token = shutdown.clone();
        tracker.spawn(async move {
            let id = connection.id();
            info!(connection = id, %peer, "connected");
            match connection.run(token).await {
                Ok(end) => info!(connection = id, %peer, ?end, "disconnected"),
                Err(e) => info!(connection = id, %peer, "disconnected: {e}"),
            }
            drop(permit);
        });
    }
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
