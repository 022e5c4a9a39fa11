//! The interactive session: a line-editing prompt on the main thread, and a
//! reader thread that shows the server's lines as they arrive.
//!
//! Plain threads rather than an async runtime: rustyline's `readline`
//! blocks its thread anyway, and the other side is one blocking socket
//! reader, so two threads are the whole design. rustyline's
//! `ExternalPrinter` lets the reader print above the prompt without
//! garbling what the user is typing.

use std::io::{self, IsTerminal, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use anyhow::Context;
use rustyline::config::{CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Editor, ExternalPrinter};

use crate::completion::CommandHelper;
use crate::exit::{Exit, Failure};
use crate::hooks::{self, Effect, Request};
use crate::lines::{self, LineReader, Next};
use crate::render::{self, Stream};

/// How long leaving waits for `CLOSE CONFIRM` before going anyway.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How long the reader waits for the prompt loop to notice the server has
/// gone before it ends the process itself.
const WAKE_WAIT: Duration = Duration::from_secs(1);

/// How the connection ended, as seen by the reader thread.
#[derive(Debug, Clone)]
enum End {
    /// `CLOSE CONFIRM` arrived.
    Confirmed,
    /// End of stream before any confirmation.
    ServerClosed,
    /// A read error.
    Broken(String),
}

/// State shared by the prompt loop and the reader thread.
#[derive(Default)]
struct Shared {
    end: Mutex<Option<End>>,
    changed: Condvar,
    /// The prompt loop is leaving on its own and waits for the end itself.
    closing: AtomicBool,
    /// The prompt loop has seen the end.
    noticed: AtomicBool,
}

impl Shared {
    fn set_end(&self, end: End) {
        *self.end.lock().unwrap_or_else(|e| e.into_inner()) = Some(end);
        self.changed.notify_all();
    }

    fn notice(&self) -> Option<End> {
        // Under the lock, so the reader cannot miss the wake-up between
        // checking `noticed` and starting to wait.
        let end = self.end.lock().unwrap_or_else(|e| e.into_inner());
        if end.is_some() {
            self.noticed.store(true, Ordering::SeqCst);
            self.changed.notify_all();
        }
        end.clone()
    }

    fn start_closing(&self) {
        let _guard = self.end.lock().unwrap_or_else(|e| e.into_inner());
        self.closing.store(true, Ordering::SeqCst);
        self.changed.notify_all();
    }

    /// Waits up to `limit` for `done` to hold.
    fn wait_for(&self, limit: Duration, done: impl Fn(&Option<End>) -> bool) -> bool {
        let guard = self.end.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, limit, |end| !done(end))
            .unwrap_or_else(|e| e.into_inner());
        done(&guard)
    }
}

/// Where the reader thread's output goes.
struct Screen {
    printer: Option<Box<dyn ExternalPrinter + Send>>,
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
}

impl Screen {
    /// Returns once every line handed to the printer has been shown.
    ///
    /// The printer queues one message and `readline` shows it when it next
    /// polls; the wake-up signal sent after the last line would win that
    /// poll and the line (typically "Server shutting down") would be lost.
    /// Queueing one more message blocks until the previous one was taken.
    /// This last one moves the cursor up a row and back down: it shows
    /// nothing, so it does not matter whether it is shown or dropped.
    fn drain(&mut self) {
        if let Some(p) = self.printer.as_mut() {
            let _ = p.print("\x1b[1A\n".into());
        }
    }
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
    // Shown before the first prompt, so the session starts like a
    // conversation rather than with the greeting printed over the prompt.
    stream
        .set_read_timeout(Some(timeout))
        .context("setting the socket read timeout")?;
    match reader.next_line() {
        Ok(Next::Line(line)) => {
            let mut screen = Screen {
                printer: None,
                err_is_terminal: io::stderr().is_terminal(),
            };
            let (stream, text, _) = shown(&line, raw);
            screen.show(stream, text);
        }
        Ok(Next::Pending) => {}
        Ok(Next::Eof) => {
            return Err(Failure::ConnectionLost("server closed the connection".into()).into());
        }
        Err(e) => return Err(Failure::ConnectionLost(e.to_string()).into()),
    }
    stream
        .set_read_timeout(None)
        .context("clearing the socket read timeout")?;

    // The reader wakes a blocked `readline` with SIGINT, which rustyline
    // turns into `Interrupted` while its editor lives. Outside that window
    // the signal must do nothing rather than kill the client, and a Ctrl-C
    // in cooked mode while waiting for CLOSE CONFIRM is harmless to drop.
    ignore_sigint();
    let saved_terminal = TerminalMode::save();

    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .max_history_size(1000)
        .context("history size")?
        .build();
    let mut editor: Editor<CommandHelper, DefaultHistory> =
        Editor::with_config(config).context("starting the line editor")?;
    editor.set_helper(Some(CommandHelper));
    if let Some(path) = &history {
        match editor.load_history(path) {
            Ok(()) => {}
            Err(ReadlineError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => eprintln!("client: cannot read history {}: {e}", path.display()),
        }
    }
    let printer: Option<Box<dyn ExternalPrinter + Send>> = match editor.create_external_printer() {
        Ok(p) => Some(Box::new(p)),
        Err(_) => None,
    };

    let shared = Arc::new(Shared::default());
    {
        let shared = Arc::clone(&shared);
        let screen = Screen {
            printer,
            err_is_terminal: io::stderr().is_terminal(),
        };
        std::thread::Builder::new()
            .name("reader".into())
            .spawn(move || read_lines(reader, screen, raw, &shared, saved_terminal))
            .context("starting the reader thread")?;
    }

    let exit = prompt_loop(&mut editor, &stream, &shared, &format!("{prompt_addr}> "));
    if let Some(path) = &history {
        save_history(&mut editor, path);
    }
    exit
}

fn prompt_loop(
    editor: &mut Editor<CommandHelper, DefaultHistory>,
    mut stream: &TcpStream,
    shared: &Shared,
    prompt: &str,
) -> anyhow::Result<Exit> {
    loop {
        if let Some(end) = shared.notice() {
            return Ok(farewell(&end));
        }
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted | ReadlineError::Eof) => {
                if let Some(end) = shared.notice() {
                    return Ok(farewell(&end));
                }
                return Ok(leave(stream, shared, Some("CLOSE")));
            }
            Err(e) => return Err(e).context("reading the prompt"),
        };
        if let Some(end) = shared.notice() {
            return Ok(farewell(&end));
        }
        if !line.trim().is_empty() {
            let _ = editor.add_history_entry(line.as_str());
        }
        let sent = match hooks::request(&line) {
            Request::Skip => continue,
            Request::Send(line) => line,
            Request::SendThenClose(line) => {
                shared.start_closing();
                if send(&mut stream, &line).is_err() {
                    return Ok(Exit::Ok);
                }
                return Ok(leave(stream, shared, None));
            }
        };
        if let Err(e) = send(&mut stream, &sent) {
            return Err(Failure::ConnectionLost(e.to_string()).into());
        }
    }
}

fn send(stream: &mut &TcpStream, line: &str) -> io::Result<()> {
    stream.write_all(format!("{line}\n").as_bytes())
}

/// Ends the session from the user's side: sends `close` if given, then
/// waits briefly for the server's confirmation or its end of stream.
fn leave(mut stream: &TcpStream, shared: &Shared, close: Option<&str>) -> Exit {
    shared.start_closing();
    if let Some(close) = close {
        // If the server is already gone there is nothing to confirm, and
        // leaving is what the user asked for either way.
        let _ = send(&mut stream, close);
    }
    if !shared.wait_for(CLOSE_WAIT, Option::is_some) {
        eprintln!(
            "no CLOSE CONFIRM within {}s, leaving anyway",
            CLOSE_WAIT.as_secs()
        );
    }
    Exit::Ok
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

fn save_history(editor: &mut Editor<CommandHelper, DefaultHistory>, path: &std::path::Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = editor.save_history(path) {
        eprintln!("client: cannot save history {}: {e}", path.display());
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

/// The reader thread: shows every line, and reports how the connection ended.
fn read_lines(
    mut reader: LineReader<TcpStream>,
    mut screen: Screen,
    raw: bool,
    shared: &Shared,
    saved_terminal: Option<TerminalMode>,
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
    if !shared.closing.load(Ordering::SeqCst) {
        screen.drain();
    }
    shared.set_end(end.clone());
    if shared.closing.load(Ordering::SeqCst) {
        return;
    }
    wake_prompt();
    let noticed = shared.wait_for(WAKE_WAIT, |_| {
        shared.noticed.load(Ordering::SeqCst) || shared.closing.load(Ordering::SeqCst)
    });
    if !noticed {
        // `readline` could not be interrupted (no full terminal, so
        // rustyline installed no signal handler): leave from here, with the
        // terminal as it was found.
        if let Some(mode) = saved_terminal {
            mode.restore();
        }
        eprintln!();
        let exit = farewell(&end);
        std::process::exit(exit as i32);
    }
}

fn ignore_sigint() {
    // SAFETY: installing SIG_IGN has no preconditions; it is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
}

/// Interrupts a blocked `readline` (see `run`).
fn wake_prompt() {
    // SAFETY: kill(2) on our own pid; SIGINT is ignored or handled by rustyline.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGINT);
    }
}

/// The terminal's settings at start, to put back if the client has to exit
/// while the line editor holds the terminal in raw mode.
struct TerminalMode(libc::termios);

impl TerminalMode {
    fn save() -> Option<TerminalMode> {
        // SAFETY: tcgetattr writes a termios into the zeroed value we own.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            (libc::tcgetattr(libc::STDIN_FILENO, &mut t) == 0).then_some(TerminalMode(t))
        }
    }

    fn restore(&self) {
        // SAFETY: tcsetattr reads the termios we saved from the same fd.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.0);
        }
    }
}
