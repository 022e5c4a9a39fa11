//! Every line the host itself sends, as one type.
//!
//! Plugins write their own replies; these are the host's: the greeting,
//! the built-in `CLOSE`, and every error or farewell the host answers in a
//! plugin's place. Clients match on these texts (the bundled client's
//! tables, the original Python client), so they change here or nowhere.

use std::fmt::{self, Write};

use abi_stable::std_types::RString;

/// A line from the host, without its ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// Sent to every client on connect, as the original program did.
    Greeting,
    /// The answer to `CLOSE`; the connection then closes.
    CloseConfirm,
    /// No hook's pattern matches the line.
    NotFound,
    /// The line went past `max_line_length`.
    LineTooLong { max: usize },
    /// The line is not UTF-8.
    InvalidUtf8,
    /// The line holds control characters and no hook asks for them.
    ControlCharacters,
    /// A hook returned an error: its message, for the client.
    HookError { message: &'a str },
    /// A hook panicked.
    PluginFailed { plugin: &'a str, message: &'a str },
    /// A hook call ran past the plugin's time limit.
    PluginTimedOut { plugin: &'a str },
    /// The plugin has as many calls running as it may.
    PluginBusy { plugin: &'a str },
    /// Too many timed-out calls are still running to start another.
    PluginUnavailable { plugin: &'a str },
    /// The hook crashed the serving process too often.
    PluginDisabled { plugin: &'a str, reason: &'a str },
    /// The host's own code failed around a hook call.
    InternalError,
    /// The connection limit is reached; the connection then closes.
    Busy,
    /// No complete line within the idle timeout; the connection then closes.
    Idle { secs: u64 },
    /// The host is stopping; the connection then closes.
    ShuttingDown,
    /// `AUTH` with the admin secret.
    Authenticated,
    /// `RELOAD` done.
    Reloaded,
    /// `RELOAD` failed; nothing changed.
    ReloadFailed { message: &'a str },
}

impl Reply<'_> {
    /// Appends the reply and its line ending to `out`.
    pub fn write_to(&self, out: &mut RString) {
        // Writing to an in-memory string only fails if a `Display` impl does.
        let _ = writeln!(out, "{self}");
    }

    /// The reply with its line ending, for writing to a socket directly.
    pub fn line(&self) -> String {
        format!("{self}\n")
    }
}

impl fmt::Display for Reply<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Reply::Greeting => f.write_str("MSG Welcome aboard !"),
            Reply::CloseConfirm => f.write_str("CLOSE CONFIRM"),
            Reply::NotFound => f.write_str("MSG Command not found"),
            Reply::LineTooLong { max } => write!(f, "ERR line too long (max {max} bytes)"),
            Reply::InvalidUtf8 => f.write_str("ERR invalid UTF-8"),
            Reply::ControlCharacters => f.write_str("ERR control characters are not accepted"),
            Reply::HookError { message } => {
                f.write_str("ERR ")?;
                one_line(f, message)
            }
            Reply::PluginFailed { plugin, message } => {
                write!(f, "ERR plugin {plugin} failed: ")?;
                one_line(f, message)
            }
            Reply::PluginTimedOut { plugin } => write!(f, "ERR plugin {plugin} timed out"),
            Reply::PluginBusy { plugin } => write!(f, "ERR plugin {plugin} busy"),
            Reply::PluginUnavailable { plugin } => write!(
                f,
                "ERR plugin {plugin} unavailable: too many timed-out calls still running"
            ),
            Reply::PluginDisabled { plugin, reason } => {
                write!(f, "ERR plugin {plugin} disabled: ")?;
                one_line(f, reason)
            }
            Reply::InternalError => f.write_str("ERR internal error"),
            Reply::Busy => f.write_str("ERR server busy"),
            Reply::Idle { secs } => {
                write!(f, "MSG Closing idle connection: no request for {secs} s")
            }
            Reply::ShuttingDown => f.write_str("MSG Server shutting down"),
            Reply::Authenticated => f.write_str("MSG authenticated"),
            Reply::Reloaded => f.write_str("MSG reloaded"),
            Reply::ReloadFailed { message } => {
                write!(f, "ERR reload failed; serving on as before: {message}")
            }
        }
    }
}

/// Writes `text` as exactly one line: a message from a plugin (an
/// `assert_eq!` panic, say) may hold line breaks, and each would otherwise
/// look like one more reply to a pipelining client.
fn one_line(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    let mut parts = text.split(['\r', '\n']).filter(|p| !p.is_empty());
    if let Some(first) = parts.next() {
        f.write_str(first)?;
    }
    for part in parts {
        f.write_char(' ')?;
        f.write_str(part)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Reply;

    #[test]
    fn messages_from_plugins_stay_on_one_line() {
        let reply = Reply::PluginFailed {
            plugin: "kv",
            message: "assertion failed\n  left: 1\r\n right: 2\n",
        };
        assert_eq!(
            reply.line(),
            "ERR plugin kv failed: assertion failed   left: 1  right: 2\n"
        );
        assert_eq!(Reply::HookError { message: "\n" }.line(), "ERR \n");
    }
}
