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
    if out.as_str()[start..].contains(['\r', '\n']) {
        let clean = out.as_str()[start..].replace(['\r', '\n'], " ");
        out.drain(start..);
        out.push_str(&clean);
    }
    out.push('\n');
}
