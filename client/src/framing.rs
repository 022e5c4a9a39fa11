//! How the server frames what it sends, so that replies pair with requests
//! whatever the command (the host's `outgoing.rs` is the other side):
//!
//! - `MSG > text`: a pushed line, not a reply to anything, sent between
//!   replies;
//! - `MSG | text`: a line of a reply with more lines to come;
//! - any other line: the last (often only) line of a reply.

/// Which part of the conversation a received line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// A line the server sent unasked.
    Pushed,
    /// A line of a reply that goes on.
    More,
    /// The line that ends a reply.
    Last,
}

const PUSHED: &[u8] = b"MSG > ";
const MORE: &[u8] = b"MSG | ";

/// The part `line` is, and its text without the marker.
pub fn split(line: &[u8]) -> (Part, &[u8]) {
    if let Some(text) = line.strip_prefix(PUSHED) {
        (Part::Pushed, text)
    } else if let Some(text) = line.strip_prefix(MORE) {
        (Part::More, text)
    } else {
        (Part::Last, line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_say_the_part() {
        assert_eq!(
            split(b"MSG > lobby ada: hi\n"),
            (Part::Pushed, &b"lobby ada: hi\n"[..])
        );
        assert_eq!(split(b"MSG | ada\n"), (Part::More, &b"ada\n"[..]));
        assert_eq!(
            split(b"MSG 2 in lobby\n"),
            (Part::Last, &b"MSG 2 in lobby\n"[..])
        );
        // The host escapes a last line that would read as a marker.
        assert_eq!(
            split(b" MSG > quoted\n"),
            (Part::Last, &b" MSG > quoted\n"[..])
        );
        assert_eq!(split(b"MSG >no space\n").0, Part::Last);
        assert_eq!(split(b"> not a marker\n").0, Part::Last);
    }
}
