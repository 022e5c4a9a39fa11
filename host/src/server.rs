//! The listener: accepts connections, enforces the connection limit and
//! runs each connection in a task of its own until the host stops.

use std::future::Future;
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

pub struct ServerSettings {
    pub max_connections: usize,
    /// How long connections get to finish once the host is stopping.
    pub shutdown_timeout: Duration,
}

/// Serves `listener` until `stop` completes, then lets connections finish
/// their current requests, tells them the server is going away, and waits
/// for them at most `shutdown_timeout`.
pub async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    settings: ServerSettings,
    stop: impl Future<Output = ()>,
) {
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let limit = Arc::new(Semaphore::new(settings.max_connections));
    tokio::select! {
        () = accept_loop(&listener, &shared, &limit, &tracker, &shutdown) => {}
        () = stop => info!("stopping: no new connections; finishing current requests"),
    }
    drop(listener);
    shared.begin_stopping();
    shutdown.cancel();
    tracker.close();
    if tokio::time::timeout(settings.shutdown_timeout, tracker.wait())
        .await
        .is_err()
    {
        warn!(
            remaining = tracker.len(),
            "connections still open after {:?}; closing them", settings.shutdown_timeout
        );
    }
}

async fn accept_loop(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    limit: &Arc<Semaphore>,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) {
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
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
            if let Ok(refusing) = Arc::clone(&refusals).try_acquire_owned() {
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
