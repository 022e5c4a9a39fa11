//! Replies given after the handler returned.

use std::fmt::Display;
use std::sync::{Arc, Mutex};

use abi_stable::std_types::{RErr, RNone, ROk, ROption, RResult, RSome, RString};

use crate::abi::{HookFailure, Outcome, PendingReply};
use crate::line::push_line;
use crate::push::Pusher;

/// A reply promised by [`Reply::later`](crate::Reply::later), to be
/// written and sent from any thread.
///
/// Dropping it unsent answers the client with an error, so that a request
/// is never left without a reply.
pub struct Later {
    shared: Arc<PendingShared>,
    lines: RString,
    close: bool,
    sent: bool,
}

/// The meeting point of a [`Later`] and the host waiting for it.
pub(crate) struct PendingShared {
    done: Mutex<Option<Result<(RString, bool), String>>>,
    pusher: Pusher,
    connection: u64,
}

impl Later {
    pub(crate) fn new(
        lines: RString,
        pusher: Pusher,
        connection: u64,
    ) -> (Later, Arc<PendingShared>) {
        let shared = Arc::new(PendingShared {
            done: Mutex::new(None),
            pusher,
            connection,
        });
        let later = Later {
            shared: Arc::clone(&shared),
            lines,
            close: false,
            sent: false,
        };
        (later, shared)
    }

    /// Appends one reply line, as [`Reply::line`](crate::Reply::line) does.
    pub fn line(&mut self, text: impl Display) -> &mut Self {
        push_line(&mut self.lines, text);
        self
    }

    /// Asks the host to close the connection once this reply is sent.
    pub fn close(&mut self) -> &mut Self {
        self.close = true;
        self
    }

    /// Sends the reply.
    pub fn send(mut self) {
        let lines = std::mem::take(&mut self.lines);
        self.complete(Ok((lines, self.close)));
    }

    /// Answers `ERR <message>` instead.
    pub fn fail(mut self, message: impl Display) {
        self.complete(Err(message.to_string()));
    }

    fn complete(&mut self, result: Result<(RString, bool), String>) {
        self.sent = true;
        // A poisoned lock only means another thread panicked while holding
        // it; the slot itself is still sound.
        let mut done = self.shared.done.lock().unwrap_or_else(|e| e.into_inner());
        *done = Some(result);
        drop(done);
        self.shared.pusher.wake(self.shared.connection);
    }
}

impl Drop for Later {
    fn drop(&mut self) {
        if !self.sent {
            self.complete(Err("the plugin dropped this request without a reply".into()));
        }
    }
}

/// The host's side of a pending reply.
pub(crate) struct Pending(pub Arc<PendingShared>);

impl PendingReply for Pending {
    fn take(&self, out: &mut RString) -> ROption<RResult<Outcome, HookFailure>> {
        let taken = crate::panic::catch(|| {
            let mut done = self.0.done.lock().unwrap_or_else(|e| e.into_inner());
            done.take()
        });
        match taken {
            Ok(None) => RNone,
            Ok(Some(Ok((lines, close)))) => {
                out.push_str(&lines);
                RSome(ROk(Outcome {
                    close,
                    ..Outcome::default()
                }))
            }
            Ok(Some(Err(message))) => RSome(RErr(HookFailure::Error(message.into()))),
            Err(panic) => RSome(RErr(HookFailure::Panic(panic.into()))),
        }
    }
}
