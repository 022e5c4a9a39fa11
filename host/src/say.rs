//! Lines for whoever started the host, on its standard streams.
//!
//! A closed stream must not bring the host down: `println!` and
//! `eprintln!` panic when writing fails (a pipe whose reader went away), so
//! these lines are written with the error ignored.

use std::fmt;
use std::io::Write;

/// One `error: ...` line on standard error.
pub fn error(message: impl fmt::Display) {
    let _ = writeln!(std::io::stderr(), "error: {message}");
}

/// Text on standard output, flushed at once.
pub fn out(text: impl fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{text}").and_then(|()| out.flush());
}
