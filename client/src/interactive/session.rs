//! The main thread's side of the session: it hears the editor and reader
//! threads on one channel and decides every way out.

use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use super::Event;
use super::editor::Input;
use super::reader::End;
use super::terminal::TerminalMode;
use crate::exit::{Exit, Failure};
use crate::hooks::{self, Request};

/// How long leaving waits for `CLOSE CONFIRM` before going anyway.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How long the end of a session waits for the editor thread to halt. It
/// halts within one redraw; the bound only keeps an unforeseen editor state
/// from holding the client open.
const HALT_WAIT: Duration = Duration::from_secs(2);

/// Where the editor thread is, as far as the main thread knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EditorState {
    /// Inside `readline` (or about to be), the terminal in raw mode.
    Reading,
    /// Out of `readline`: waiting to be resumed, or finished.
    Waiting,
    /// Stopped for good at the gate, the terminal still in raw mode.
    Halted,
}

/// How the conversation ended.
enum Ending {
    /// The user left; the exit code is decided.
    Left(Exit),
    /// The server ended it; the farewell is said once the terminal is back.
    ServerEnded(End),
    Failed(anyhow::Error),
}

/// The main thread's side of the session.
pub(super) struct Session<'a> {
    stream: &'a TcpStream,
    events: Receiver<Event>,
    resume: Sender<()>,
    editor: EditorState,
    draws_unasked: bool,
}

impl<'a> Session<'a> {
    /// Starts with the editor thread reading; `draws_unasked` when the
    /// reader thread can draw over the prompt (see [`Session::halt_editor`]).
    pub(super) fn new(
        stream: &'a TcpStream,
        events: Receiver<Event>,
        resume: Sender<()>,
        draws_unasked: bool,
    ) -> Session<'a> {
        Session {
            stream,
            events,
            resume,
            editor: EditorState::Reading,
            draws_unasked,
        }
    }

    /// Holds the conversation until it ends, then puts the terminal back,
    /// says goodbye and gives the exit code.
    pub(super) fn conclude(mut self, terminal: &TerminalMode) -> anyhow::Result<Exit> {
        let ending = self.converse();
        match self.editor {
            EditorState::Waiting => {}
            EditorState::Halted => terminal.restore(),
            EditorState::Reading => {
                terminal.restore();
                // The prompt line is still on the screen; end it.
                eprintln!();
            }
        }
        match ending {
            Ending::Left(exit) => Ok(exit),
            Ending::ServerEnded(end) => Ok(farewell(&end)),
            Ending::Failed(e) => Err(e),
        }
    }

    fn converse(&mut self) -> Ending {
        loop {
            let Ok(event) = self.events.recv() else {
                // The reader thread reports before it ends, so this is only
                // reached if it panicked.
                return Ending::Failed(anyhow::anyhow!("the session's threads ended early"));
            };
            match event {
                Event::Input(input) => {
                    self.editor = EditorState::Waiting;
                    if let Some(ending) = self.answer(input) {
                        return ending;
                    }
                }
                Event::Ended(end) => {
                    self.halt_editor();
                    return Ending::ServerEnded(end);
                }
                // The reader closes the gate just before it reports the
                // end, so the editor may halt first.
                Event::Halted => self.editor = EditorState::Halted,
            }
        }
    }

    /// Acts on the user's input; `Some` when the session is over.
    fn answer(&mut self, input: Input) -> Option<Ending> {
        let line = match input {
            Input::Line(line) => line,
            Input::Interrupted | Input::Eof => return Some(Ending::Left(self.leave("CLOSE"))),
            Input::Failed(e) => {
                return Some(Ending::Failed(
                    anyhow::Error::new(e).context("reading the prompt"),
                ));
            }
        };
        match hooks::request(&line) {
            Request::Skip => {}
            Request::Send(line) => {
                if let Err(e) = send(self.stream, &line) {
                    return Some(Ending::Failed(
                        Failure::ConnectionLost(e.to_string()).into(),
                    ));
                }
            }
            Request::SendThenClose(line) => return Some(Ending::Left(self.leave(&line))),
        }
        // The editor thread is gone only if it panicked; the reader will
        // still report the end of the connection.
        if self.resume.send(()).is_ok() {
            self.editor = EditorState::Reading;
        }
        None
    }

    /// Ends the session from the user's side: sends `close`, then waits
    /// briefly for the server's confirmation or its end of stream.
    fn leave(&self, close: &str) -> Exit {
        // If the server is already gone there is nothing to confirm, and
        // leaving is what the user asked for either way.
        let _ = send(self.stream, close);
        let deadline = Instant::now() + CLOSE_WAIT;
        loop {
            match self
                .events
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(Event::Ended(_)) => return Exit::Ok,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    eprintln!(
                        "no CLOSE CONFIRM within {}s, leaving anyway",
                        CLOSE_WAIT.as_secs()
                    );
                    return Exit::Ok;
                }
            }
        }
    }

    /// Waits until the editor thread can no longer draw on the screen: it
    /// has halted at the gate, or it has left `readline` on its own.
    fn halt_editor(&mut self) {
        if self.editor != EditorState::Reading || !self.draws_unasked {
            return;
        }
        let deadline = Instant::now() + HALT_WAIT;
        loop {
            match self
                .events
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(Event::Halted) => {
                    self.editor = EditorState::Halted;
                    return;
                }
                // A line entered just as the server left; it is in the
                // history, but there is no one left to send it to.
                Ok(Event::Input(_)) => {
                    self.editor = EditorState::Waiting;
                    return;
                }
                Ok(Event::Ended(_)) => {}
                Err(_) => return,
            }
        }
    }
}

fn send(mut stream: &TcpStream, line: &str) -> io::Result<()> {
    stream.write_all(format!("{line}\n").as_bytes())
}

/// Says how the server ended the session and picks the exit code.
fn farewell(end: &End) -> Exit {
    match end {
        // "connection closed" was already shown by the CLOSE CONFIRM hook.
        End::Confirmed => Exit::Ok,
        End::ServerClosed => {
            eprintln!("connection closed by server");
            Exit::ConnectionLost
        }
        End::Broken(e) => {
            eprintln!("connection lost: {e}");
            Exit::ConnectionLost
        }
    }
}
