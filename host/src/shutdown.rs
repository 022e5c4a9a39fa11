//! The signals the host answers: those that stop it gracefully, and those
//! an operator or a service manager may send that must not kill it.

use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::{info, warn};

/// SIGINT (Ctrl-C), SIGTERM and SIGQUIT stop the host gracefully; SIGHUP,
/// SIGUSR1, SIGUSR2 and SIGALRM, whose default action would end it at
/// once, are logged and ignored. Caught from the moment this is created.
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
        })
    }

    /// Completes when a stopping signal arrives.
    pub async fn recv(mut self) {
        loop {
            tokio::select! {
                _ = self.interrupt.recv() => return info!("received SIGINT"),
                _ = self.terminate.recv() => return info!("received SIGTERM"),
                _ = self.quit.recv() => return info!("received SIGQUIT"),
                _ = self.hangup.recv() => {
                    warn!("received SIGHUP: reloading is not supported yet; serving on as before")
                }
                _ = self.user1.recv() => info!("received SIGUSR1: ignored"),
                _ = self.user2.recv() => info!("received SIGUSR2: ignored"),
                _ = self.alarm.recv() => info!("received SIGALRM: ignored"),
            }
        }
    }
}
