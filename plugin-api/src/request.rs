//! The request a hook handler receives.

use crate::Client;
use crate::abi::{RequestFfi, Span};

/// A request line that matched a hook's pattern, with its capture groups
/// and the connection it came from.
pub struct Request<'a> {
    raw: &'a RequestFfi<'a>,
}

impl<'a> Request<'a> {
    pub(crate) fn new(raw: &'a RequestFfi<'a>) -> Self {
        Request { raw }
    }

    /// The whole line, without its line ending.
    pub fn line(&self) -> &'a str {
        self.raw.line.as_str()
    }

    /// Capture group `index` of the hook's pattern (0 is the whole line),
    /// or `None` if the group did not take part in the match.
    pub fn group(&self, index: usize) -> Option<&'a str> {
        let Span { start, end } = *self.raw.groups.as_slice().get(index)?;
        // `get` rather than indexing: a span is data from the host and must
        // not be able to make the plugin panic.
        self.line().get(start..end)
    }

    /// The capture group named `name` (`(?P<name>...)` in the pattern).
    pub fn named(&self, name: &str) -> Option<&'a str> {
        let index = self
            .raw
            .names
            .iter()
            .find_map(|g| (g.name.as_str() == name).then_some(g.index))?;
        self.group(index)
    }

    /// The connection the line came from.
    pub fn client(&self) -> Client<'a> {
        Client::new(&self.raw.client)
    }

    /// The client's address, as text (`127.0.0.1:50412`).
    pub fn peer(&self) -> &'a str {
        self.raw.client.peer.as_str()
    }

    /// A number that identifies the connection for the life of the host.
    pub fn connection_id(&self) -> u64 {
        self.raw.client.id
    }
}
