//! How replies and pushed lines go on the wire, so that a client pairs
//! replies with requests without knowing any command:
//!
//! - `MSG > text`: a pushed line, sent between replies, never inside one;
//! - `MSG | text`: a line of a reply with more lines to come;
//! - any other line: the last (often only) line of a reply.
//!
//! The markers start with `MSG ` so that a client that shows only `MSG`
//! lines, as the original Python client does (dropping the `MSG `), still
//! shows every line: `> text` and `| text`.
//!
//! A plugin writes plain lines; the host frames them here, after the call,
//! so that no plugin can break the framing. A last line that would read as
//! a marker gets a space in front of it. A reply of no lines gets `OK`, so
//! that every request still has exactly one reply.

use abi_stable::std_types::RString;

/// Starts a pushed line.
pub const PUSHED: &str = "MSG > ";
/// Starts a line of a reply that goes on.
pub const CONTINUED: &str = "MSG | ";

/// What a hook that wrote no line answers.
const EMPTY_REPLY: &str = "OK\n";

/// Frames the reply that starts at `start` in `out`: plain lines, each
/// ending in `\n`, as a plugin wrote them.
pub fn frame_reply(out: &mut RString, start: usize) {
    if out.len() > start && !out.as_str().ends_with('\n') {
        // Only a library that bypasses `plugin-api` can leave a line open.
        out.push('\n');
    }
    let reply = &out.as_bytes()[start..];
    if reply.is_empty() {
        out.push_str(EMPTY_REPLY);
        return;
    }
    // The common case, one plain line, is left as it is: its first line
    // ending is its last byte.
    if memchr::memchr(b'\n', reply) == Some(reply.len() - 1) && !looks_like_marker(reply) {
        return;
    }
    let text = out.as_str()[start..].to_owned();
    out.drain(start..);
    let mut rest = text.split_inclusive('\n').peekable();
    while let Some(line) = rest.next() {
        if rest.peek().is_some() {
            out.push_str(CONTINUED);
        } else if looks_like_marker(line.as_bytes()) {
            out.push(' ');
        }
        out.push_str(line);
    }
}

fn looks_like_marker(line: &[u8]) -> bool {
    line.starts_with(PUSHED.as_bytes()) || line.starts_with(CONTINUED.as_bytes())
}

/// The bytes [`write_pushed`] writes for `line`.
pub fn pushed_len(line: &str) -> usize {
    PUSHED.len() + line.len() + 1
}

/// Appends `line` as a pushed line, line breaks inside it turned to spaces.
pub fn write_pushed(out: &mut String, line: &str) {
    out.push_str(PUSHED);
    let start = out.len();
    out.push_str(line);
    if line.contains(['\r', '\n']) {
        let tail: String = out[start..].replace(['\r', '\n'], " ");
        out.truncate(start);
        out.push_str(&tail);
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(reply: &str) -> String {
        let mut out = RString::from("earlier\n");
        out.push_str(reply);
        frame_reply(&mut out, "earlier\n".len());
        out.into_string()
    }

    #[test]
    fn replies_are_framed_by_their_last_line() {
        assert_eq!(framed("MSG one\n"), "earlier\nMSG one\n");
        assert_eq!(
            framed("a\nb\nc\n"),
            "earlier\nMSG | a\nMSG | b\nc\n",
            "every line but the last is marked"
        );
        assert_eq!(framed(""), "earlier\nOK\n");
        assert_eq!(framed("MSG > not pushed\n"), "earlier\n MSG > not pushed\n");
        assert_eq!(framed("x\nMSG | y\n"), "earlier\nMSG | x\n MSG | y\n");
        assert_eq!(
            framed("> y\n"),
            "earlier\n> y\n",
            "old markers mean nothing"
        );
    }

    #[test]
    fn pushed_lines_stay_one_line() {
        let mut out = String::new();
        write_pushed(&mut out, "alice: hi\r\nthere");
        assert_eq!(out, "MSG > alice: hi  there\n");
        assert_eq!(out.len(), pushed_len("alice: hi\r\nthere"));
    }
}
