//! The connection a request or an event comes from.

use crate::abi::ClientFfi;

/// A client's connection, as the host describes it to plugins.
#[derive(Clone, Copy)]
pub struct Client<'a> {
    raw: &'a ClientFfi<'a>,
}

impl<'a> Client<'a> {
    pub(crate) fn new(raw: &'a ClientFfi<'a>) -> Self {
        Client { raw }
    }

    /// A number that identifies the connection for the life of the host
    /// process; what [`Pusher::push`](crate::Pusher::push) takes.
    pub fn id(&self) -> u64 {
        self.raw.id
    }

    /// The client's address, as text (`127.0.0.1:50412`). Behind a load
    /// balancer speaking the PROXY protocol, the client's own address.
    pub fn peer(&self) -> &'a str {
        self.raw.peer.as_str()
    }

    /// The subject of the certificate the client presented over TLS, if any.
    pub fn tls_subject(&self) -> Option<&'a str> {
        Some(self.raw.tls_subject.as_str()).filter(|s| !s.is_empty())
    }
}
