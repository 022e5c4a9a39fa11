//! Reading replies by the host's framing, with pushed lines set aside:
//! `MSG > ` starts a pushed line, `MSG | ` a reply line with more to come,
//! and any other line ends a reply (`host/src/outgoing.rs`).

use crate::Conn;

/// Starts a pushed line.
pub const PUSHED: &str = "MSG > ";
/// Starts a line of a reply that goes on.
pub const CONTINUED: &str = "MSG | ";

/// One reply, and the lines pushed to the client before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framed {
    /// The reply's lines, without their `MSG | ` markers.
    pub lines: Vec<String>,
    /// Pushed lines read on the way, without their `MSG > ` marker.
    pub pushed: Vec<String>,
}

impl Conn {
    /// Reads one whole reply, setting aside the pushed lines before it.
    /// Panics if a pushed line comes inside the reply: the host promises
    /// never to split one.
    pub fn reply(&mut self) -> Framed {
        let mut framed = Framed {
            lines: Vec::new(),
            pushed: Vec::new(),
        };
        loop {
            let line = self.line();
            if let Some(pushed) = line.strip_prefix(PUSHED) {
                assert!(
                    framed.lines.is_empty(),
                    "pushed line {line:?} inside the reply {:?}",
                    framed.lines
                );
                framed.pushed.push(pushed.to_owned());
            } else if let Some(more) = line.strip_prefix(CONTINUED) {
                framed.lines.push(more.to_owned());
            } else {
                framed.lines.push(line);
                return framed;
            }
        }
    }

    /// Reads the next line, which must be a pushed line; returns it
    /// without its marker.
    pub fn pushed(&mut self) -> String {
        let line = self.line();
        match line.strip_prefix(PUSHED) {
            Some(pushed) => pushed.to_owned(),
            None => panic!("expected a pushed line, got {line:?}"),
        }
    }
}
