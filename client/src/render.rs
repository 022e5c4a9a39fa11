//! Turning the server's lines into output: through the response hooks, or
//! byte for byte with `--raw`.

use std::io::{self, BufWriter, Stdout, Write};

use crate::framing::{self, Part};
use crate::hooks::{self, Effect, Shown};
use crate::lines;

/// A received line, ready to show.
pub struct Rendered {
    /// Whether it is pushed, or ends a reply: what pairs replies with requests.
    pub part: Part,
    pub effect: Effect,
    pub stream: Stream,
    /// Without a trailing newline, except in raw mode where the bytes are
    /// kept exactly as received.
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

/// Renders one received line (terminator included, as read): a reply's
/// lines through the response hooks, without their framing; a pushed line
/// after `> `, so that it reads apart from the replies.
pub fn render(line: &[u8], raw: bool) -> Rendered {
    let (part, text) = framing::split(line);
    let mut reply = match part {
        Part::Pushed => hooks::Reply {
            shown: Shown::Out(format!("> {}", lines::text(text))),
            effect: Effect::None,
        },
        Part::More | Part::Last => hooks::response(&lines::text(text)),
    };
    if part != Part::Last && reply.effect == Effect::Closed {
        // Only a line that ends a reply can be the answer to `CLOSE`.
        reply.effect = Effect::None;
    }
    if raw {
        // Raw output keeps one stream so the replies stay in order.
        return Rendered {
            part,
            effect: reply.effect,
            stream: Stream::Out,
            bytes: line.to_vec(),
        };
    }
    let (stream, text) = match reply.shown {
        Shown::Out(t) => (Stream::Out, t),
        Shown::Err(t) => (Stream::Err, t),
    };
    Rendered {
        part,
        effect: reply.effect,
        stream,
        bytes: text.into_bytes(),
    }
}

/// Buffered stdout plus unbuffered stderr for the script modes, keeping
/// the two in order as far as a reader of both can see.
pub struct ScriptOutput {
    out: BufWriter<Stdout>,
    raw: bool,
}

impl ScriptOutput {
    pub fn new(raw: bool) -> Self {
        ScriptOutput {
            out: BufWriter::with_capacity(64 * 1024, io::stdout()),
            raw,
        }
    }

    pub fn raw(&self) -> bool {
        self.raw
    }

    pub fn show(&mut self, r: &Rendered) -> io::Result<()> {
        match r.stream {
            Stream::Out => {
                self.out.write_all(&r.bytes)?;
                if !self.raw {
                    self.out.write_all(b"\n")?;
                }
            }
            Stream::Err => {
                // Whatever came before this error is printed before it.
                self.out.flush()?;
                let mut err = io::stderr().lock();
                err.write_all(&r.bytes)?;
                err.write_all(b"\n")?;
            }
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
