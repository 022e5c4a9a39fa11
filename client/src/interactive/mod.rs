//! The interactive session: a line-editing prompt for the user while the
//! server's lines appear above it as they arrive.
//!
//! Three plain threads, no async runtime (`readline` blocks its thread
//! anyway, and the other side is one blocking socket reader):
//! - the editor thread (`editor.rs`) runs rustyline and sends each input (a
//!   line, Ctrl-C, Ctrl-D) to the main thread, then waits to be told to read
//!   on;
//! - the reader thread (`reader.rs`) shows each server line, through
//!   rustyline's `ExternalPrinter` so it does not garble what the user is
//!   typing, and reports how the connection ended;
//! - the main thread (`session.rs`) receives both on one channel and makes
//!   every decision: it sends lines to the server, and on any end puts the
//!   terminal back (`terminal.rs`), says goodbye and returns the exit code
//!   from [`run`].
//!
//! History is appended as each line is entered (see `history.rs`), so no
//! way out loses it.
//!
//! rustyline cannot stop `readline` from another thread
//! (kkawakam/rustyline#780). When the server ends the session while the user
//! sits at the prompt, the editor thread is therefore halted where it next
//! draws the prompt (see [`Gate`]) and the process ends around it.

mod editor;
mod gate;
mod reader;
mod session;
mod terminal;

use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;

use crate::exit::Exit;
use crate::help_words::Learned;
use crate::history::History;
use crate::lines::LineReader;

use self::editor::Input;
use self::gate::{Gate, GatedPrompt};
use self::reader::{End, Printer, Screen};
use self::session::Session;
use self::terminal::TerminalMode;

/// What the main thread hears about.
enum Event {
    /// From the editor thread.
    Input(Input),
    /// From the reader thread: the connection is over.
    Ended(End),
    /// From the editor thread, through the [`Gate`]: it has stopped for good.
    Halted,
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
    reader::greet(&stream, &mut reader, raw, timeout)?;

    // Taken before the editor ever switches the terminal to raw mode.
    let terminal = TerminalMode::save();
    let learned = Learned::default();
    if let Ok(addr) = stream.peer_addr() {
        crate::help_words::learn(addr, timeout, Arc::clone(&learned));
    }
    let mut editor = editor::new_editor(learned)?;
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
    let screen = Screen::new(printer);
    {
        let (gate, events) = (Arc::clone(&gate), events_tx.clone());
        std::thread::Builder::new()
            .name("reader".into())
            .spawn(move || reader::read_lines(reader, screen, raw, &gate, &events))
            .context("starting the reader thread")?;
    }
    let (resume, resume_rx) = mpsc::channel();
    let prompt = GatedPrompt::new(format!("{prompt_addr}> "), gate);
    std::thread::Builder::new()
        .name("editor".into())
        .spawn(move || editor::edit(editor, &prompt, history, &events_tx, &resume_rx))
        .context("starting the editor thread")?;

    Session::new(&stream, events, resume, draws_unasked).conclude(&terminal)
}
