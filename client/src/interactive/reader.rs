//! The server's side of the screen: the greeting, then the reader thread
//! that shows every line and reports how the connection ended.

use std::io::{self, IsTerminal, Write};
use std::net::TcpStream;
use std::sync::mpsc::Sender;
use std::time::Duration;

use anyhow::Context;
use rustyline::ExternalPrinter;

use super::Event;
use super::gate::Gate;
use crate::exit::Failure;
use crate::hooks::Effect;
use crate::lines::{self, LineReader, Next};
use crate::render::{self, Stream};

pub(super) type Printer = Box<dyn ExternalPrinter + Send>;

/// How the connection ended, as seen by the reader thread.
#[derive(Debug)]
pub(super) enum End {
    /// `CLOSE CONFIRM` arrived.
    Confirmed,
    /// End of stream before any confirmation.
    ServerClosed,
    /// A read error.
    Broken(String),
}

/// Shows the server's greeting before the first prompt, so the session
/// starts like a conversation rather than with the greeting printed over
/// the prompt.
pub(super) fn greet(
    stream: &TcpStream,
    reader: &mut LineReader<TcpStream>,
    raw: bool,
    timeout: Duration,
) -> anyhow::Result<()> {
    stream
        .set_read_timeout(Some(timeout))
        .context("setting the socket read timeout")?;
    match reader.next_line() {
        Ok(Next::Line(line)) => {
            let (stream, text, _) = shown(&line, raw);
            Screen::new(None).show(stream, text);
        }
        Ok(Next::Pending) => {}
        Ok(Next::Eof) => {
            return Err(Failure::ConnectionLost("server closed the connection".into()).into());
        }
        Err(e) => return Err(Failure::ConnectionLost(e.to_string()).into()),
    }
    stream
        .set_read_timeout(None)
        .context("clearing the socket read timeout")
}

/// Where the reader thread's output goes.
pub(super) struct Screen {
    printer: Option<Printer>,
    err_is_terminal: bool,
}

impl Screen {
    pub(super) fn new(printer: Option<Printer>) -> Screen {
        Screen {
            printer,
            err_is_terminal: io::stderr().is_terminal(),
        }
    }

    fn show(&mut self, stream: Stream, text: String) {
        // On a terminal, errors go through the printer too so they cannot
        // garble the prompt; redirected, they belong on stderr.
        let to_stderr = stream == Stream::Err && !self.err_is_terminal;
        if !to_stderr
            && let Some(p) = self.printer.as_mut()
            && p.print(format!("{text}\n")).is_ok()
        {
            return;
        }
        if stream == Stream::Err {
            eprintln!("{text}");
        } else {
            let mut out = io::stdout().lock();
            let _ = writeln!(out, "{text}").and_then(|()| out.flush());
        }
    }

    /// Hands the editor thread one empty message; returns once the message
    /// before it has been taken.
    ///
    /// The printer queues messages for the editor thread one at a time:
    /// `print` returns only once the editor has taken the message before
    /// it, and the editor draws a message in full before it next reads the
    /// prompt. So once this returns, the last line shown is drawn before
    /// the editor can stop at a closed gate. The message also wakes an idle
    /// editor so that it comes to the gate at all; if it gets drawn, it
    /// leaves an empty row where the prompt was. Outside `readline` the
    /// printer writes directly, and the empty message writes nothing.
    fn settle(&mut self) {
        if let Some(p) = self.printer.as_mut() {
            let _ = p.print(String::new());
        }
    }
}

/// The rendered stream and text of a received line, and its effect.
fn shown(line: &[u8], raw: bool) -> (Stream, String, Effect) {
    let r = render::render(line, raw);
    let text = if raw {
        // The printer ends every message with a newline of its own.
        lines::text(&r.bytes).into_owned()
    } else {
        String::from_utf8_lossy(&r.bytes).into_owned()
    };
    (r.stream, text, r.effect)
}

/// The reader thread: shows every line, and reports how the connection
/// ended once the editor can no longer draw over the last of them.
pub(super) fn read_lines(
    mut reader: LineReader<TcpStream>,
    mut screen: Screen,
    raw: bool,
    gate: &Gate,
    events: &Sender<Event>,
) {
    let end = loop {
        match reader.next_line() {
            Ok(Next::Line(line)) => {
                let (stream, text, effect) = shown(&line, raw);
                screen.show(stream, text);
                if effect == Effect::Closed {
                    break End::Confirmed;
                }
            }
            Ok(Next::Pending) => continue,
            Ok(Next::Eof) => break End::ServerClosed,
            Err(e) => break End::Broken(e.to_string()),
        }
    };
    screen.settle();
    gate.close();
    let _ = events.send(Event::Ended(end));
    // The editor may have drawn the empty message and the prompt after it
    // before the gate closed; one more message brings it to the gate. If
    // it stopped at the gate before taking the first, this one waits
    // forever, which is harmless: nothing waits for this thread any more.
    screen.settle();
}
