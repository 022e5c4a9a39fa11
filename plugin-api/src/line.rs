//! One reply line as plugins write it, whether at once or later.

use std::fmt::{Display, Write};

use abi_stable::std_types::RString;

/// Appends `text` and a line ending to `out`, with line breaks inside
/// `text` replaced by spaces.
pub(crate) fn push_line(out: &mut RString, text: impl Display) {
    let start = out.len();
    // Writing into a String-like buffer cannot fail unless `Display`
    // itself reports an error; keep whatever it wrote.
    let _ = write!(out, "{text}");
    end_line(out, start);
}

/// [`push_line`] for text that is a `&str` already: a plain copy, without
/// the formatting machinery that `Display` goes through.
pub(crate) fn push_str_line(out: &mut RString, text: &str) {
    // `text` is searched, not its copy: reading back bytes just written
    // stalls the processor until the writes are done.
    if has_line_break(text) {
        return push_line(out, text);
    }
    out.push_str(text);
    out.push('\n');
}

/// Ends the line that starts at `start` in `out`.
fn end_line(out: &mut RString, start: usize) {
    if has_line_break(&out.as_str()[start..]) {
        let clean = out.as_str()[start..].replace(['\r', '\n'], " ");
        out.drain(start..);
        out.push_str(&clean);
    }
    out.push('\n');
}

/// Searched bytewise: line breaks are ASCII, and a search by `char`
/// decodes UTF-8 one character at a time.
fn has_line_break(text: &str) -> bool {
    memchr::memchr2(b'\r', b'\n', text.as_bytes()).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_line_however_it_is_given() {
        let mut out = RString::from("earlier\n");
        push_line(&mut out, format_args!("a\r\nb{}", "\nc"));
        push_str_line(&mut out, "d\re\n");
        push_str_line(&mut out, "é");
        assert_eq!(out.as_str(), "earlier\na  b c\nd e \né\n");
    }
}
