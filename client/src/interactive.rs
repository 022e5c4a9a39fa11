//! The interactive session: a line-editing prompt for the user while the
//! server's lines appear above it as they arrive.
//!
//! Three plain threads, no async runtime (`readline` blocks its thread
//! anyway, and the other side is one blocking socket reader):
//! - the editor thread runs rustyline and sends each input (a line,
//!   Ctrl-C, Ctrl-D) to the main thread, then waits to be told to read on;
//! - the reader thread shows each server line, through rustyline's
//!   `ExternalPrinter` so it does not garble what the user is typing, and
//!   reports how the connection ended;
//! - the main thread receives both on one channel and makes every decision:
//!   it sends lines to the server, and on any end puts the terminal back,
//!   says goodbye and returns the exit code from [`run`].
//!
//! History is appended as each line is entered (see `history.rs`), so no
//! way out loses it.
//!
//! rustyline cannot stop `readline` from another thread
//! (kkawakam/rustyline#780). When the server ends the session while the user
//! sits at the prompt, the editor thread is therefore halted where it next
//! draws the prompt (see [`Gate`]) and the process ends around it.

use std::io::{self, IsTerminal, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::termios::{self, SetArg, Termios};
use rustyline::config::{CompletionType, Config, Configurer};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Editor, ExternalPrinter, Prompt};

use crate::completion::CommandHelper;
use crate::exit::{Exit, Failure};
use crate::history::History;
use crate::hooks::{self, Effect, Request};
use crate::lines::{self, LineReader, Next};
use crate::render::{self, Stream};

/// How long leaving waits for `CLOSE CONFIRM` before going anyway.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How long the end of a session waits for the editor thread to halt. It
/// halts within one redraw; the bound only keeps an unforeseen editor state
/// from holding the client open.
const HALT_WAIT: Duration = Duration::from_secs(2);

type LineEditor = Editor<CommandHelper, DefaultHistory>;
type Printer = Box<dyn ExternalPrinter + Send>;

/// What the main thread hears about.
enum Event {
    /// From the editor thread.
    Input(Input),
    /// From the reader thread: the connection is over.
    Ended(End),
    /// From the editor thread, through the [`Gate`]: it has stopped for good.
    Halted,
}

/// What the user did at the prompt.
enum Input {
    Line(String),
    /// Ctrl-C.
    Interrupted,
    /// Ctrl-D on an empty line.
    Eof,
    Failed(ReadlineError),
}

/// How the connection ended, as seen by the reader thread.
#[derive(Debug)]
enum End {
    /// `CLOSE CONFIRM` arrived.
    Confirmed,
    /// End of stream before any confirmation.
    ServerClosed,
    /// A read error.
    Broken(String),
}

/// Runs the interactive session on `stream`.
pub fn run(
    stream: TcpStream,
    prompt_addr: &str,
    raw: bool,
    timeout: Duration,
    history: Option<PathBuf>,
) -> anyhow::Result<Exit> {
    let mut reader = LineReader::new(stream.try_clone().context("cloning the socket")?);
    greet(&stream, &mut reader, raw, timeout)?;

    // Taken before the editor ever switches the terminal to raw mode.
    let terminal = TerminalMode::save();
    let mut editor = new_editor()?;
    let history = history.map(|path| History::load(&mut editor, path));
    let printer: Option<Printer> = editor
        .create_external_printer()
        .ok()
        .map(|p| Box::new(p) as Printer);
    // Without a printer (no full terminal) nothing draws over the prompt
    // unasked, so there is nothing to halt.
    let draws_unasked = printer.is_some();

    let (events_tx, events) = mpsc::channel();
    let gate = Arc::new(Gate::new(events_tx.clone()));
    let screen = Screen {
        printer,
        err_is_terminal: io::stderr().is_terminal(),
    };
    {
        let (gate, events) = (Arc::clone(&gate), events_tx.clone());
        std::thread::Builder::new()
            .name("reader".into())
            .spawn(move || read_lines(reader, screen, raw, &gate, &events))
            .context("starting the reader thread")?;
    }
    let (resume, resume_rx) = mpsc::channel();
    let prompt = GatedPrompt {
        text: format!("{prompt_addr}> "),
        gate,
    };
    std::thread::Builder::new()
        .name("editor".into())
        .spawn(move || edit(editor, &prompt, history, &events_tx, &resume_rx))
        .context("starting the editor thread")?;

    let mut session = Session {
        stream: &stream,
        events,
        resume,
        editor: EditorState::Reading,
        draws_unasked,
    };
    let ending = session.converse();
    match session.editor {
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

/// Shows the server's greeting before the first prompt, so the session
/// starts like a conversation rather than with the greeting printed over
/// the prompt.
fn greet(
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
            Screen {
                printer: None,
                err_is_terminal: io::stderr().is_terminal(),
            }
            .show(stream, text);
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

fn new_editor() -> anyhow::Result<LineEditor> {
    let mut config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .max_history_size(1000)
        .context("history size")?;
    // A synchronized update brackets each redraw; the editor thread can be
    // halted inside a redraw (see `Gate`) and would leave the terminal
    // holding back its output.
    config.enable_synchronized_output(false);
    let config = config.build();
    let mut editor = LineEditor::with_config(config).context("starting the line editor")?;
    editor.set_helper(Some(CommandHelper));
    Ok(editor)
}

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
struct Session<'a> {
    stream: &'a TcpStream,
    events: Receiver<Event>,
    resume: Sender<()>,
    editor: EditorState,
    draws_unasked: bool,
}

impl Session<'_> {
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

/// The editor thread: reads lines until the user leaves, records each in
/// the history before anything is done with it, and waits after each one
/// for the main thread to say whether to read on.
fn edit(
    mut editor: LineEditor,
    prompt: &GatedPrompt,
    mut history: Option<History>,
    events: &Sender<Event>,
    resume: &Receiver<()>,
) {
    loop {
        let input = match editor.readline(prompt) {
            Ok(line) => {
                if let Some(history) = history.as_mut() {
                    history.record(&mut editor, &line);
                }
                Input::Line(line)
            }
            Err(ReadlineError::Interrupted) => Input::Interrupted,
            Err(ReadlineError::Eof) => Input::Eof,
            Err(e) => Input::Failed(e),
        };
        let read_on = matches!(input, Input::Line(_));
        // Waiting for the go-ahead keeps the prompt off the screen while
        // the main thread may still decide that the session is over.
        if events.send(Event::Input(input)).is_err() || !read_on || resume.recv().is_err() {
            return;
        }
    }
}

/// Stops the editor thread for good at its next redraw of the prompt.
///
/// rustyline reads the prompt's text every time it draws the prompt: when
/// it starts a line, after each message from the printer (which it draws
/// above the prompt and then draws the prompt again), and after edits. Once
/// the gate is closed, that read never returns: the editor thread reports
/// `Halted` and waits for the process to end. Whatever it drew before is
/// on the screen, nothing it could draw later can land under the farewell,
/// and it never takes its own copy of the terminal back, which is why the
/// main thread restores the terminal itself.
struct Gate {
    closed: AtomicBool,
    events: Sender<Event>,
}

impl Gate {
    fn new(events: Sender<Event>) -> Gate {
        Gate {
            closed: AtomicBool::new(false),
            events,
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    fn pass(&self) {
        if !self.closed.load(Ordering::SeqCst) {
            return;
        }
        let _ = self.events.send(Event::Halted);
        loop {
            std::thread::park();
        }
    }
}

/// The prompt text, read through the gate.
struct GatedPrompt {
    text: String,
    gate: Arc<Gate>,
}

impl Prompt for GatedPrompt {
    // `styled` defaults to this too, so every draw comes through here.
    fn raw(&self) -> &str {
        self.gate.pass();
        &self.text
    }
}

/// Where the reader thread's output goes.
struct Screen {
    printer: Option<Printer>,
    err_is_terminal: bool,
}

impl Screen {
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
fn read_lines(
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

/// The terminal's settings before the line editor changed them.
struct TerminalMode(Option<Termios>);

impl TerminalMode {
    fn save() -> TerminalMode {
        TerminalMode(termios::tcgetattr(io::stdin().as_fd()).ok())
    }

    /// Puts back what the halted editor would have put back on leaving
    /// `readline`: the saved settings, and bracketed paste turned off.
    fn restore(&self) {
        if let Some(saved) = &self.0 {
            let _ = termios::tcsetattr(io::stdin().as_fd(), SetArg::TCSADRAIN, saved);
        }
        // rustyline's own sequence for leaving bracketed-paste mode.
        const BRACKETED_PASTE_OFF: &str = "\x1b[?2004l";
        let mut out = io::stdout().lock();
        let _ = out
            .write_all(BRACKETED_PASTE_OFF.as_bytes())
            .and_then(|()| out.flush());
    }
}
