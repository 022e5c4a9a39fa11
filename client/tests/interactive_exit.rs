//! The ways out of interactive mode, in a pseudo-terminal: each keeps the
//! history typed so far, puts the terminal back, and shows what the server
//! said before the client's last word.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::num::NonZeroU16;
use std::sync::mpsc;

use common::*;
use expectrl::{ControlCode, Session};
use nix::sys::termios::{self, LocalFlags};
use test_support::WAIT;

/// True when the terminal is back in line mode: the line editor switches
/// canonical input and signal keys off while it reads, and a shell needs
/// them back once the client has gone. (Echo says nothing here: the pty is
/// created with echo off.)
fn terminal_in_line_mode(session: &Session) -> bool {
    let pty = session.get_process().get_raw_handle().expect("pty handle");
    let settings = termios::tcgetattr(&pty).expect("read the pty's settings");
    settings
        .local_flags
        .contains(LocalFlags::ICANON | LocalFlags::ISIG)
}

/// What a terminal of the pty's size shows after `output`.
fn screen(output: &[u8]) -> String {
    // The size expectrl gives the pty.
    let (rows, cols) = (NonZeroU16::new(24), NonZeroU16::new(80));
    let (Some(rows), Some(cols)) = (rows, cols) else {
        unreachable!("non-zero literals")
    };
    let mut terminal = vt100::Parser::new(rows, cols, 0);
    terminal.process(output);
    terminal.screen().contents()
}

/// Types `HELLO` and waits for the reply, so one line is in the history.
fn say_hello(s: &mut Session) {
    s.expect("> ").expect("prompt");
    s.send_line("HELLO").expect("type HELLO");
    s.expect("Hello from testhost").expect("reply");
    s.expect("> ").expect("prompt again");
}

#[test]
fn server_leaving_mid_line_keeps_history_and_restores_the_terminal() {
    let host = host();
    let home = tempfile::tempdir().expect("temp dir");
    let mut s = spawn(host.addr(), home.path());
    say_hello(&mut s);
    s.send("TI").expect("type part of a line");
    host.terminate();
    s.expect("connection closed by server").expect("reported");
    assert_eq!(exit_code(&mut s), EXIT_CONNECTION_LOST);
    assert!(terminal_in_line_mode(&s), "terminal left in raw mode");
    assert_eq!(
        history(home.path()).last().map(String::as_str),
        Some("HELLO")
    );
}

#[test]
fn ctrl_c_mid_line_keeps_history_and_restores_the_terminal() {
    let host = host();
    let home = tempfile::tempdir().expect("temp dir");
    let mut s = spawn(host.addr(), home.path());
    say_hello(&mut s);
    s.send("TI").expect("type part of a line");
    s.send(ControlCode::ETX).expect("Ctrl-C");
    s.expect("connection closed").expect("close confirmed");
    assert_eq!(exit_code(&mut s), EXIT_OK);
    assert!(terminal_in_line_mode(&s), "terminal left in raw mode");
    assert_eq!(
        history(home.path()).last().map(String::as_str),
        Some("HELLO")
    );
}

/// How many lines the scripted server sends in its last burst.
const BURST: usize = 200;

/// A server that greets, waits for `go`, then sends [`BURST`] lines at
/// once and closes: the client is still drawing the burst when the
/// connection ends.
fn bursting_server(go: mpsc::Receiver<()>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        serve_burst(stream, &go);
    });
    addr
}

fn serve_burst(mut stream: TcpStream, go: &mpsc::Receiver<()>) {
    let _ = stream.write_all(b"MSG Welcome aboard !\n");
    if go.recv_timeout(WAIT).is_err() {
        return;
    }
    let burst: String = (1..=BURST).map(|i| format!("MSG burst {i:03}\n")).collect();
    let _ = stream.write_all(burst.as_bytes());
    // Half-close, then drain what the client may still send, so the
    // client sees a clean end of stream rather than a reset.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut rest = BufReader::new(stream);
    let mut line = String::new();
    while rest.read_line(&mut line).is_ok_and(|n| n > 0) {
        line.clear();
    }
}

/// How many sessions the burst test runs: where the editor is in its
/// drawing when the connection ends differs from run to run, and each
/// session meets a different moment.
const ROUNDS: usize = 5;

#[test]
fn a_last_burst_is_shown_before_the_farewell_with_no_prompt_left() {
    for _ in 0..ROUNDS {
        last_burst_session();
    }
}

fn last_burst_session() {
    let (go, go_rx) = mpsc::channel();
    let addr = bursting_server(go_rx);
    let home = tempfile::tempdir().expect("temp dir");
    let mut s = spawn(addr, home.path());
    s.expect("Welcome aboard !").expect("greeting");
    s.expect("> ").expect("prompt");
    s.send("TI").expect("type part of a line");
    go.send(()).expect("server waiting");
    let farewell = s.expect("connection closed by server").expect("farewell");
    let shown = String::from_utf8_lossy(farewell.before()).into_owned();
    let mut from = 0;
    for i in 1..=BURST {
        let line = format!("burst {i:03}");
        match shown[from..].find(&line) {
            Some(at) => from += at + line.len(),
            None => panic!(
                "{line:?} not shown, in order, before the farewell; last shown: {:?}",
                shown
                    .get(from.saturating_sub(200)..from)
                    .unwrap_or_default()
            ),
        }
    }
    // The session is over: a prompt left on the screen would offer input
    // that goes nowhere.
    let screen = screen(farewell.before());
    assert!(
        !screen.contains("> "),
        "prompt left on the screen:\n{screen}"
    );
    assert_eq!(exit_code(&mut s), EXIT_CONNECTION_LOST);
    assert!(terminal_in_line_mode(&s), "terminal left in raw mode");
}
