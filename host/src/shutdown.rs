//! The signals the host answers: those that stop it gracefully, and those
//! an operator or a service manager may send that must not kill it.

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tracing::info;

use crate::reload_socket::ReloadRequest;

/// SIGINT (Ctrl-C), SIGTERM and SIGQUIT stop the host gracefully; SIGHUP
/// reloads where [`StopSignals::reload_on_hangup`] says where to, and is
/// ignored elsewhere; SIGUSR1, SIGUSR2 and SIGALRM, whose default action
/// would end the host at once, are logged and ignored. Caught from the
/// moment this is created.
///
/// Created before the host announces its address: a signal that arrives
/// between the announcement and the first poll must still stop the host
/// gracefully rather than kill it.
pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
    quit: Signal,
    hangup: Signal,
    user1: Signal,
    user2: Signal,
    alarm: Signal,
    reloads: Option<mpsc::Sender<ReloadRequest>>,
}

impl StopSignals {
    pub fn install() -> std::io::Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            quit: signal(SignalKind::quit())?,
            hangup: signal(SignalKind::hangup())?,
            user1: signal(SignalKind::user_defined1())?,
            user2: signal(SignalKind::user_defined2())?,
            alarm: signal(SignalKind::alarm())?,
            reloads: None,
        })
    }

    /// SIGHUP sends a reload request to `requests` (in the supervisor).
    pub fn reload_on_hangup(mut self, requests: mpsc::Sender<ReloadRequest>) -> StopSignals {
        self.reloads = Some(requests);
        self
    }

    /// Completes when a stopping signal arrives.
    pub async fn recv(mut self) {
        loop {
            tokio::select! {
                _ = self.interrupt.recv() => return info!("received SIGINT"),
                _ = self.terminate.recv() => return info!("received SIGTERM"),
                _ = self.quit.recv() => return info!("received SIGQUIT"),
                _ = self.hangup.recv() => match &self.reloads {
                    Some(requests) => {
                        info!("received SIGHUP: reloading");
                        // A reload already waiting will read the same files.
                        let _ = requests.try_send(ReloadRequest { reply: None });
                    }
                    None => info!("received SIGHUP: ignored here; the supervisor reloads"),
                },
                _ = self.user1.recv() => info!("received SIGUSR1: ignored"),
                _ = self.user2.recv() => info!("received SIGUSR2: ignored"),
                _ = self.alarm.recv() => info!("received SIGALRM: ignored"),
            }
        }
    }
}
