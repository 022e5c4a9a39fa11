//! The scriptable modes: one-shot (`-c LINE`, `-- WORDS`) and pipe (stdin
//! is not a terminal).
//!
//! Both are the same session fed from different sources: a writer thread
//! sends every request pipelined while this thread prints the replies in
//! order, so a thousand lines cost about one round trip, not a thousand.
//! When the input ends the client sends its own `CLOSE` and the session is
//! over at `CLOSE CONFIRM`.
//!
//! Blocking sockets and one extra thread rather than an async runtime: one
//! connection, one producer, one consumer, and stdin reads block anyway.

use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::exit::{Exit, Failure};
use crate::framing::Part;
use crate::hooks::{self, Effect, Request};
use crate::lines::{self, LineReader, Next};
use crate::render::{self, ScriptOutput};

/// How often the reader wakes up to check the reply timeout and flush output.
const TICK: Duration = Duration::from_millis(100);

/// Where the requests come from.
pub enum Source {
    Commands(Vec<String>),
    Stdin,
}

/// What the writer has done so far, for the reader to tell replies apart.
#[derive(Default)]
struct Progress {
    /// Requests sent on behalf of the user.
    sent: AtomicUsize,
    /// No more user requests will be sent.
    input_done: AtomicBool,
    /// The client's own closing `CLOSE` is (about to be) sent; set before
    /// writing it, so its reply is always recognised.
    own_close: AtomicBool,
    /// Reading stdin failed; the session still closes cleanly.
    input_error: Mutex<Option<io::Error>>,
}

/// Runs one script session on `stream` and returns how it ended.
pub fn run(
    stream: TcpStream,
    source: Source,
    raw: bool,
    timeout: Duration,
) -> anyhow::Result<Exit> {
    let progress = Arc::new(Progress::default());
    let write_half = stream.try_clone().context("cloning the socket")?;
    {
        let progress = Arc::clone(&progress);
        // The writer is never joined: when the reader is done the process
        // exits, and a writer blocked on stdin must not hold it up.
        std::thread::Builder::new()
            .name("writer".into())
            .spawn(move || write_requests(write_half, source, &progress))
            .context("starting the writer thread")?;
    }
    stream
        .set_read_timeout(Some(TICK))
        .context("setting the socket read timeout")?;
    let mut out = ScriptOutput::new(raw);
    let status = match read_replies(stream, &progress, &mut out, timeout) {
        Ok(status) => status,
        Err(ReadError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(Exit::Ok),
        Err(ReadError::Output(e)) => return Err(e).context("writing output"),
        Err(ReadError::Lost(reason)) => {
            let _ = out.flush();
            return Err(Failure::ConnectionLost(reason).into());
        }
    };
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(e).context("writing output"),
        _ => {}
    }
    let input_error = progress
        .input_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(e) = input_error {
        eprintln!("client: reading stdin: {e}");
        return Ok(status.worst(Exit::Other));
    }
    Ok(status)
}

enum ReadError {
    Output(io::Error),
    Lost(String),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Output(e)
    }
}

fn read_replies(
    stream: TcpStream,
    progress: &Progress,
    out: &mut ScriptOutput,
    timeout: Duration,
) -> Result<Exit, ReadError> {
    let mut reader = LineReader::new(stream);
    let mut status = Exit::Ok;
    let mut greeted = false;
    let mut replies = 0usize;
    let mut last_activity = Instant::now();
    let mut input_done_seen = false;
    loop {
        let line = match reader.next_line() {
            Ok(Next::Line(line)) => line,
            Ok(Next::Pending) => {
                out.flush()?;
                if !input_done_seen && progress.input_done.load(Ordering::SeqCst) {
                    // The reply clock starts when the input ends, not before:
                    // a slow producer on stdin is not a slow server.
                    input_done_seen = true;
                    last_activity = Instant::now();
                }
                if input_done_seen && last_activity.elapsed() > timeout {
                    return Err(ReadError::Lost(format!(
                        "no reply within {}s",
                        timeout.as_secs_f64()
                    )));
                }
                continue;
            }
            Ok(Next::Eof) => {
                out.flush()?;
                let answered = progress.input_done.load(Ordering::SeqCst)
                    && replies >= progress.sent.load(Ordering::SeqCst);
                // Every request was answered, only the goodbye is missing:
                // nothing the caller asked for was lost.
                if answered {
                    return Ok(status);
                }
                return Err(ReadError::Lost("server closed the connection".into()));
            }
            Err(e) => return Err(ReadError::Lost(e.to_string())),
        };
        let rendered = render::render(&line, out.raw());
        if rendered.part == Part::Pushed {
            // Not a reply: shown, but it neither pairs with a request nor
            // counts as the server answering.
            out.show(&rendered)?;
            if !reader.has_buffered() {
                out.flush()?;
            }
            continue;
        }
        last_activity = Instant::now();
        if rendered.effect == Effect::Error {
            status = status.worst(Exit::ErrReply);
        }
        if !greeted {
            // The greeting is not a reply to anything; only a refusal
            // (`ERR ...` instead of the welcome) is worth printing.
            greeted = true;
            if rendered.effect == Effect::Error {
                out.show(&rendered)?;
            }
            continue;
        }
        if rendered.part == Part::More {
            out.show(&rendered)?;
            continue;
        }
        replies += 1;
        let own_close_reply = progress.own_close.load(Ordering::SeqCst)
            && replies == progress.sent.load(Ordering::SeqCst) + 1;
        if !(own_close_reply && rendered.effect == Effect::Closed) {
            out.show(&rendered)?;
        }
        if !reader.has_buffered() {
            out.flush()?;
        }
        if rendered.effect == Effect::Closed {
            return Ok(status);
        }
    }
}

/// Sends every request, then the closing `CLOSE` unless the user sent one.
///
/// Write errors end the writer quietly: the reader sees the same broken
/// connection and reports it once.
fn write_requests(stream: TcpStream, source: Source, progress: &Progress) {
    let mut w = BufWriter::with_capacity(64 * 1024, stream);
    let user_closed = match source {
        Source::Commands(commands) => send_commands(&mut w, commands, progress),
        Source::Stdin => send_stdin(&mut w, progress),
    };
    let Ok(user_closed) = user_closed else {
        return;
    };
    if !user_closed {
        progress.own_close.store(true, Ordering::SeqCst);
    }
    progress.input_done.store(true, Ordering::SeqCst);
    if !user_closed {
        let _ = w.write_all(b"CLOSE\n").and_then(|()| w.flush());
    }
}

/// Sends one typed line through the request hooks; true once it closed the session.
fn send_line(w: &mut impl Write, line: &str, progress: &Progress) -> io::Result<bool> {
    let (line, closes) = match hooks::request(line) {
        Request::Skip => return Ok(false),
        Request::Send(l) => (l, false),
        Request::SendThenClose(l) => (l, true),
    };
    w.write_all(line.as_bytes())?;
    w.write_all(b"\n")?;
    progress.sent.fetch_add(1, Ordering::SeqCst);
    Ok(closes)
}

fn send_commands(
    w: &mut impl Write,
    commands: Vec<String>,
    progress: &Progress,
) -> io::Result<bool> {
    for command in commands {
        if send_line(w, &command, progress)? {
            w.flush()?;
            return Ok(true);
        }
    }
    w.flush()?;
    Ok(false)
}

fn send_stdin(w: &mut impl Write, progress: &Progress) -> io::Result<bool> {
    let mut stdin = BufReader::with_capacity(64 * 1024, io::stdin().lock());
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match stdin.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                *progress
                    .input_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(e);
                break;
            }
        }
        if send_line(w, &lines::text(&buf), progress)? {
            w.flush()?;
            return Ok(true);
        }
        // Flush only when stdin has nothing more buffered: bulk input goes
        // out in big writes, a slow producer's lines go out at once.
        if stdin.buffer().is_empty() {
            w.flush()?;
        }
    }
    w.flush()?;
    Ok(false)
}
