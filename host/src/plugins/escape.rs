//! Paths and names as they appear in messages: control characters escaped.
//!
//! File names, config entries and the strings a plugin reports can hold
//! any byte but `/` and NUL. Printed raw, an escape sequence in one can
//! rewrite the operator's terminal or forge a line of the log, and a
//! bidirectional override can make a path read as another. So messages
//! show such characters as Rust escapes (`\u{1b}`, `\n`), and a backslash
//! as `\\`, which keeps the escaped form unambiguous.

use std::fmt;
use std::path::Path;

/// `path` for a message. Bytes that are not UTF-8 appear as `\xNN`.
pub fn path(path: &Path) -> Escaped<'_> {
    Escaped {
        bytes: path.as_os_str().as_encoded_bytes(),
        backslash: true,
    }
}

/// `text` for a message.
pub fn text(text: &str) -> Escaped<'_> {
    Escaped {
        bytes: text.as_bytes(),
        backslash: true,
    }
}

/// A regular expression for a message: backslashes are its own syntax and
/// stay as they are; control characters are escaped all the same.
pub fn pattern(pattern: &str) -> Escaped<'_> {
    Escaped {
        bytes: pattern.as_bytes(),
        backslash: false,
    }
}

/// Displays its bytes with control characters, bidirectional controls,
/// invalid UTF-8 and (unless told otherwise) backslashes escaped.
pub struct Escaped<'a> {
    bytes: &'a [u8],
    backslash: bool,
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.bytes.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '\\' if self.backslash => f.write_str("\\\\")?,
                    '\n' => f.write_str("\\n")?,
                    '\r' => f.write_str("\\r")?,
                    '\t' => f.write_str("\\t")?,
                    c if needs_escape(c) => write!(f, "\\u{{{:x}}}", c as u32)?,
                    c => write!(f, "{c}")?,
                }
            }
            for byte in chunk.invalid() {
                write!(f, "\\x{byte:02X}")?;
            }
        }
        Ok(())
    }
}

/// C0 and C1 controls, DEL, and the invisible characters that reorder or
/// hide text: marks, embeddings, overrides and isolates.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        || c == '\u{feff}'
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn plain_paths_are_unchanged() {
        let p = Path::new("/srv/app/plugins.d/libkv-2.so");
        assert_eq!(path(p).to_string(), "/srv/app/plugins.d/libkv-2.so");
        assert_eq!(text("héllo wörld").to_string(), "héllo wörld");
    }

    #[test]
    fn control_characters_and_invalid_bytes_are_escaped() {
        let p = Path::new(OsStr::from_bytes(b"/tmp/a\x1b[2Jb\nc\\d\xff\x7f"));
        assert_eq!(
            path(p).to_string(),
            "/tmp/a\\u{1b}[2Jb\\nc\\\\d\\xFF\\u{7f}"
        );
        assert_eq!(text("x\u{202e}y\u{9b}").to_string(), "x\\u{202e}y\\u{9b}");
        assert_eq!(pattern("\\w+\u{1b}").to_string(), "\\w+\\u{1b}");
    }
}
