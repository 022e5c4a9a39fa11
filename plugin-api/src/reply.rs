//! The reply a hook handler writes.

use std::fmt::Display;

use abi_stable::std_types::RString;

use crate::later::{Later, PendingShared};
use crate::line::{push_line, push_str_line};
use crate::push::Pusher;

/// Reply lines being written by a hook handler, and what else the handler
/// can do about its request: keep per-connection state, close the
/// connection, pass the line on, or answer later.
///
/// Lines go straight into the host's output buffer, which is reused from
/// one request to the next, so a reply costs no allocation of its own.
/// A reply of several lines reaches the client framed (each line but the
/// last starts with `MSG | `), so that clients pair replies with requests
/// without knowing the command.
pub struct Reply<'a, S = ()> {
    out: &'a mut RString,
    /// Where this reply's lines start in `out`.
    start: usize,
    state: &'a mut S,
    close: bool,
    decline: bool,
    later: Option<std::sync::Arc<PendingShared>>,
    pusher: &'a Pusher,
    connection: u64,
}

impl<'a, S> Reply<'a, S> {
    pub(crate) fn new(
        out: &'a mut RString,
        state: &'a mut S,
        pusher: &'a Pusher,
        connection: u64,
    ) -> Self {
        let start = out.len();
        Reply {
            out,
            start,
            state,
            close: false,
            decline: false,
            later: None,
            pusher,
            connection,
        }
    }

    /// Appends one reply line. The line ending is added here; a `\r` or `\n`
    /// inside `text` is replaced by a space so that one call is always
    /// exactly one line on the wire.
    pub fn line(&mut self, text: impl Display) -> &mut Self {
        push_line(self.out, text);
        self
    }

    /// Appends one reply line, as [`Reply::line`] does, for text that is a
    /// `&str` already (a reply built once, a `String` field): copied as it
    /// is, it costs less than through `Display`.
    pub fn line_str(&mut self, text: &str) -> &mut Self {
        push_str_line(self.out, text);
        self
    }

    /// Asks the host to close the connection once this reply is sent.
    pub fn close(&mut self) -> &mut Self {
        self.close = true;
        self
    }

    /// This connection's state in the plugin ([`Plugin::State`](crate::Plugin::State)).
    pub fn state(&mut self) -> &mut S {
        self.state
    }

    /// Passes the line on: the host drops this reply and offers the line to
    /// the next hook, in config order, whose pattern matches it (or answers
    /// that the command is not found). For middleware: an `auth` plugin
    /// listed first that declines once the client has logged in.
    pub fn decline(&mut self) {
        self.decline = true;
    }

    /// Answers later: the handler returns at once, and the reply is what is
    /// written to the returned [`Later`], from any thread, whenever it is
    /// ready. Lines already written to this reply come first. The requests
    /// the client sent after this one are answered after it, in order; the
    /// plugin's time limit bounds the wait.
    ///
    /// # Panics
    /// If called twice for one request.
    pub fn later(&mut self) -> Later {
        assert!(self.later.is_none(), "Reply::later called twice");
        let mut lines = RString::new();
        lines.push_str(&self.out.as_str()[self.start..]);
        self.out.drain(self.start..);
        let (later, shared) = Later::new(lines, self.pusher.clone(), self.connection);
        self.later = Some(shared);
        later
    }

    pub(crate) fn finish(self) -> Finished {
        Finished {
            close: self.close,
            decline: self.decline,
            later: self.later,
        }
    }
}

/// What a handler decided, once it returned.
pub(crate) struct Finished {
    pub close: bool,
    pub decline: bool,
    pub later: Option<std::sync::Arc<PendingShared>>,
}
