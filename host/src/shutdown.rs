//! The signals that stop the host gracefully.

use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::info;

/// SIGINT (Ctrl-C) and SIGTERM, caught from the moment this is created.
///
/// Created before the host announces its address: a signal that arrives
/// between the announcement and the first poll must still stop the host
/// gracefully rather than kill it.
pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    pub fn install() -> std::io::Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Completes when either signal arrives.
    pub async fn recv(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => info!("received Ctrl-C"),
            _ = self.terminate.recv() => info!("received SIGTERM"),
        }
    }
}
