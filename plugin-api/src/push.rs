//! Sending lines to connections that did not ask.

use abi_stable::std_types::RStr;

use crate::abi::{HostBox, PushStatus};

/// A handle for sending lines to open connections, at any time and from
/// any thread ([`Host::pusher`](crate::Host::pusher)). Cheap to clone.
///
/// A pushed line reaches the client as `MSG > ` and the line, between replies,
/// never inside one, so that a client tells it from a reply without knowing
/// the plugin. Each connection holds a bounded queue of pushed lines; a
/// client that lets it fill up (it does not read) is disconnected, as Redis
/// does with a subscriber that falls behind.
#[derive(Clone)]
pub struct Pusher {
    host: HostBox,
}

/// Why a pushed line was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// No connection with this id is open.
    #[error("no such connection")]
    Gone,
    /// The connection's queue was full; the host closes it.
    #[error("the client is not reading; it is being disconnected")]
    Overflow,
}

impl Pusher {
    pub(crate) fn new(host: HostBox) -> Self {
        Pusher { host }
    }

    /// Queues `line` for connection `connection` ([`Client::id`](crate::Client::id)).
    /// Line breaks in `line` are sent as spaces.
    pub fn push(&self, connection: u64, line: &str) -> Result<(), PushError> {
        match self.host.push(connection, RStr::from_str(line)) {
            PushStatus::Queued => Ok(()),
            PushStatus::Gone => Err(PushError::Gone),
            PushStatus::Overflow => Err(PushError::Overflow),
        }
    }

    /// Queues `line` for each of `connections`, in one call to the host;
    /// returns how many connections took it.
    pub fn push_many(&self, connections: &[u64], line: &str) -> usize {
        let queued = self
            .host
            .push_many(connections.into(), RStr::from_str(line));
        usize::try_from(queued).unwrap_or(usize::MAX)
    }

    pub(crate) fn wake(&self, connection: u64) {
        self.host.wake(connection);
    }
}
