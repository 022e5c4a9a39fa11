//! The signals that stop the host gracefully.

use tracing::{info, warn};

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
pub async fn signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => Some(s),
        Err(e) => {
            warn!("cannot listen for SIGTERM: {e}");
            None
        }
    };
    let term = async {
        match &mut term {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("received Ctrl-C"),
        () = term => info!("received SIGTERM"),
    }
}
