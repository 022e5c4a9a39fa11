//! The two hook tables: how the client treats each line the user types and
//! each line the server sends.
//!
//! Each table is one ordered list; the first entry whose pattern matches the
//! whole line wins, so specific entries go before the catch-all at the end.
//! Giving a new server command its client side is one entry in each table
//! at most (usually just a request entry, for completion).

use std::sync::LazyLock;

use regex::{Captures, Regex};

/// What to do with a line the user typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Send this line.
    Send(String),
    /// Send this line, then end the session once the server confirms.
    SendThenClose(String),
    /// Send nothing (and expect no reply).
    Skip,
}

/// What the server's line means to the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing beyond showing it.
    None,
    /// The server confirmed the close: the session is over.
    Closed,
    /// The server reported an error (script modes exit non-zero for it).
    Error,
}

/// How to show a line the server sent, and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub shown: Shown,
    pub effect: Effect,
}

/// Where a rendered line goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    Out(String),
    Err(String),
}

/// One entry of the request table.
pub struct RequestHook {
    /// Anchored to the whole typed line.
    pub pattern: &'static str,
    /// The word offered by tab completion, if any.
    pub word: Option<&'static str>,
    pub hook: RequestFn,
}

pub type RequestFn = fn(&Captures) -> Request;
pub type ResponseFn = fn(&Captures) -> Reply;

/// One entry of the response table.
pub struct ResponseHook {
    /// Anchored to the whole received line (without its `\n`).
    pub pattern: &'static str,
    pub hook: ResponseFn,
}

/// Lines the user types, in matching order.
pub const REQUEST_HOOKS: &[RequestHook] = &[
    RequestHook {
        pattern: r"\s*",
        word: None,
        hook: skip,
    },
    RequestHook {
        pattern: r"HELLO",
        word: Some("HELLO"),
        hook: send,
    },
    RequestHook {
        pattern: r"TIME",
        word: Some("TIME"),
        hook: send,
    },
    RequestHook {
        pattern: r"INFO",
        word: Some("INFO"),
        hook: send,
    },
    RequestHook {
        pattern: r"HELP(?: .*)?",
        word: Some("HELP"),
        hook: send,
    },
    RequestHook {
        pattern: r"CLOSE",
        word: Some("CLOSE"),
        hook: send_then_close,
    },
    // The chat plugin's commands, for completion.
    RequestHook {
        pattern: r"NICK .*",
        word: Some("NICK"),
        hook: send,
    },
    RequestHook {
        pattern: r"JOIN .*",
        word: Some("JOIN"),
        hook: send,
    },
    RequestHook {
        pattern: r"SAY .*",
        word: Some("SAY"),
        hook: send,
    },
    RequestHook {
        pattern: r"LEAVE",
        word: Some("LEAVE"),
        hook: send,
    },
    RequestHook {
        pattern: r"WHO",
        word: Some("WHO"),
        hook: send,
    },
    RequestHook {
        pattern: r"(?s).*",
        word: None,
        hook: send,
    },
];

/// Lines the server sends, in matching order.
pub const RESPONSE_HOOKS: &[ResponseHook] = &[
    ResponseHook {
        pattern: r"MSG (.*)",
        hook: show_text,
    },
    ResponseHook {
        pattern: r"TIME (.*)",
        hook: show_text,
    },
    ResponseHook {
        pattern: r"INFO (\w+) ?(.*)",
        hook: show_info,
    },
    ResponseHook {
        pattern: r"HELP end",
        hook: hidden_end,
    },
    ResponseHook {
        pattern: r"HELP (\S+) \(([^)]*)\) (.*)",
        hook: show_help,
    },
    ResponseHook {
        pattern: r"CLOSE CONFIRM",
        hook: closed,
    },
    ResponseHook {
        pattern: r"ERR (.*)",
        hook: error,
    },
    ResponseHook {
        pattern: r"(?s).*",
        hook: as_is,
    },
];

fn send(c: &Captures) -> Request {
    Request::Send(c[0].to_owned())
}

fn send_then_close(c: &Captures) -> Request {
    Request::SendThenClose(c[0].to_owned())
}

fn skip(_: &Captures) -> Request {
    Request::Skip
}

fn show_text(c: &Captures) -> Reply {
    Reply {
        shown: Shown::Out(c[1].to_owned()),
        effect: Effect::None,
    }
}

fn show_info(c: &Captures) -> Reply {
    Reply {
        shown: Shown::Out(crate::info::show(&c[1], &c[2])),
        effect: Effect::None,
    }
}

/// `HELP GREET (greeter, hook 1) /GREET (\w+)/`: the usage first, then
/// where the command comes from.
fn show_help(c: &Captures) -> Reply {
    let (usage, description) = match c[3].split_once(" -- ") {
        Some((usage, description)) => (usage, format!("  {description}")),
        None => (&c[3], String::new()),
    };
    Reply {
        shown: Shown::Out(format!("{usage:<24}{description}  [{}]", &c[2])),
        effect: Effect::None,
    }
}

fn hidden_end(_: &Captures) -> Reply {
    Reply {
        shown: Shown::Out(String::new()),
        effect: Effect::None,
    }
}

fn closed(_: &Captures) -> Reply {
    Reply {
        shown: Shown::Out("connection closed".into()),
        effect: Effect::Closed,
    }
}

fn error(c: &Captures) -> Reply {
    Reply {
        shown: Shown::Err(format!("error: {}", &c[1])),
        effect: Effect::Error,
    }
}

fn as_is(c: &Captures) -> Reply {
    Reply {
        shown: Shown::Out(c[0].to_owned()),
        effect: Effect::None,
    }
}

/// Both tables with their patterns compiled, anchored to the whole line.
struct Compiled {
    requests: Vec<(Regex, RequestFn)>,
    responses: Vec<(Regex, ResponseFn)>,
}

static COMPILED: LazyLock<Compiled> = LazyLock::new(|| Compiled {
    requests: REQUEST_HOOKS
        .iter()
        .map(|h| (anchored(h.pattern), h.hook))
        .collect(),
    responses: RESPONSE_HOOKS
        .iter()
        .map(|h| (anchored(h.pattern), h.hook))
        .collect(),
});

fn anchored(pattern: &str) -> Regex {
    // The patterns are constants above, checked by a unit test; a bad one
    // is a bug in this file, not something input can cause.
    Regex::new(&format!("^(?:{pattern})$")).expect("hook pattern compiles")
}

/// Runs the typed `line` (without its `\n`) through the request table.
pub fn request(line: &str) -> Request {
    COMPILED
        .requests
        .iter()
        .find_map(|(re, hook)| re.captures(line).map(|c| hook(&c)))
        .unwrap_or_else(|| Request::Send(line.to_owned()))
}

/// Runs the received `line` (without its `\n`) through the response table.
pub fn response(line: &str) -> Reply {
    COMPILED
        .responses
        .iter()
        .find_map(|(re, hook)| re.captures(line).map(|c| hook(&c)))
        .unwrap_or_else(|| Reply {
            shown: Shown::Out(line.to_owned()),
            effect: Effect::None,
        })
}

/// The command words offered by completion, in table order.
pub fn command_words() -> impl Iterator<Item = &'static str> {
    REQUEST_HOOKS.iter().filter_map(|h| h.word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        for h in REQUEST_HOOKS {
            Regex::new(h.pattern).unwrap();
        }
        for h in RESPONSE_HOOKS {
            Regex::new(h.pattern).unwrap();
        }
        LazyLock::force(&COMPILED);
    }

    #[test]
    fn requests() {
        assert_eq!(request("HELLO"), Request::Send("HELLO".into()));
        assert_eq!(request("CLOSE"), Request::SendThenClose("CLOSE".into()));
        assert_eq!(request(""), Request::Skip);
        assert_eq!(request("  \t"), Request::Skip);
        assert_eq!(request("CLOSE now"), Request::Send("CLOSE now".into()));
        assert_eq!(request("whatever"), Request::Send("whatever".into()));
    }

    #[test]
    fn responses() {
        let out = |s: &str, e| Reply {
            shown: Shown::Out(s.into()),
            effect: e,
        };
        assert_eq!(
            response("MSG Hello from x"),
            out("Hello from x", Effect::None)
        );
        assert_eq!(
            response("TIME 01.02.2026 03:04:05"),
            out("01.02.2026 03:04:05", Effect::None)
        );
        assert_eq!(
            response("CLOSE CONFIRM"),
            out("connection closed", Effect::Closed)
        );
        assert_eq!(
            response("ERR line too long"),
            Reply {
                shown: Shown::Err("error: line too long".into()),
                effect: Effect::Error,
            }
        );
        assert_eq!(response("PONG"), out("PONG", Effect::None));
        assert_eq!(response("MSG"), out("MSG", Effect::None));
        assert_eq!(response(""), out("", Effect::None));
    }

    #[test]
    fn words() {
        assert_eq!(
            command_words().collect::<Vec<_>>(),
            [
                "HELLO", "TIME", "INFO", "HELP", "CLOSE", "NICK", "JOIN", "SAY", "LEAVE", "WHO"
            ]
        );
    }
}
