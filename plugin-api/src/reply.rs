//! The reply a hook handler writes.

use std::fmt::{Display, Write};

use abi_stable::std_types::RString;

/// Reply lines being written by a hook handler.
///
/// Lines go straight into the host's output buffer, which is reused from
/// one request to the next, so a reply costs no allocation of its own.
pub struct Reply<'a> {
    out: &'a mut RString,
    close: bool,
}

impl<'a> Reply<'a> {
    pub(crate) fn new(out: &'a mut RString) -> Self {
        Reply { out, close: false }
    }

    /// Appends one reply line. The line ending is added here; a `\r` or `\n`
    /// inside `text` is replaced by a space so that one call is always
    /// exactly one line on the wire.
    pub fn line(&mut self, text: impl Display) -> &mut Self {
        let start = self.out.len();
        // Writing into a String-like buffer cannot fail unless `Display`
        // itself reports an error; keep whatever it wrote.
        let _ = write!(self.out, "{text}");
        if self.out.as_str()[start..].contains(['\r', '\n']) {
            let clean = self.out.as_str()[start..].replace(['\r', '\n'], " ");
            self.out.drain(start..);
            self.out.push_str(&clean);
        }
        self.out.push('\n');
        self
    }

    /// Asks the host to close the connection once this reply is sent.
    pub fn close(&mut self) -> &mut Self {
        self.close = true;
        self
    }

    pub(crate) fn wants_close(&self) -> bool {
        self.close
    }
}
