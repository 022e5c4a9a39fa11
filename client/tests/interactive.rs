//! Interactive mode in a pseudo-terminal, against the real host.

mod common;

use std::process::Command;

use common::*;
use expectrl::{ControlCode, Eof, Regex, Session, WaitStatus};
use test_support::{HostProcess, WAIT, wait_until};

/// The client in a pty, with history and data directories in `home`.
fn spawn(host: &HostProcess, home: &std::path::Path) -> Session {
    let mut cmd: Command = client_cmd(host);
    cmd.arg("--history-file")
        .arg(home.join("history.txt"))
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("TERM", "xterm");
    let mut session = Session::spawn(cmd).expect("spawn client in a pty");
    session.set_expect_timeout(Some(WAIT));
    session
}

/// A whole line of the screen holding something shaped like a date and a
/// time: after a line feed or a line erase, up to the carriage return.
const DATE_TIME_LINE: &str = r"(?:\n|\x1b\[K)([^\x1b\r\n]*\d+\.\d+\.\d+ [0-9:]+[^\x1b\r\n]*)\r";

/// Waits for the client to exit and returns its exit code.
fn exit_code(session: &mut Session) -> i32 {
    // Drains the rest of the output so the client never blocks on a full pty.
    let _ = session.expect(Eof);
    let mut code = None;
    wait_until(WAIT, || match session.get_process().status() {
        Ok(WaitStatus::Exited(_, c)) => {
            code = Some(c);
            true
        }
        Ok(WaitStatus::StillAlive) => false,
        other => panic!("client did not exit normally: {other:?}"),
    });
    code.unwrap_or_else(|| panic!("client still running after {WAIT:?}"))
}

#[test]
fn hello_then_ctrl_d_exits_zero_and_keeps_history() {
    let host = host();
    let home = tempfile::tempdir().expect("temp dir");
    let mut s = spawn(&host, home.path());
    s.expect("Welcome aboard !").expect("greeting");
    s.expect("> ").expect("prompt");
    s.send_line("HELLO").expect("type HELLO");
    s.expect("Hello from testhost").expect("reply");
    s.expect("> ").expect("prompt again");
    s.send(ControlCode::EOT).expect("Ctrl-D");
    s.expect("connection closed").expect("close confirmed");
    assert_eq!(exit_code(&mut s), EXIT_OK);
    let history = std::fs::read_to_string(home.path().join("history.txt")).expect("history");
    assert!(history.lines().any(|l| l == "HELLO"), "{history:?}");
}

#[test]
fn ctrl_c_leaves_cleanly() {
    let host = host();
    let home = tempfile::tempdir().expect("temp dir");
    let mut s = spawn(&host, home.path());
    s.expect("> ").expect("prompt");
    s.send("HEL").expect("type part of a line");
    s.send(ControlCode::ETX).expect("Ctrl-C");
    s.expect("connection closed").expect("close confirmed");
    assert_eq!(exit_code(&mut s), EXIT_OK);
}

#[test]
fn typed_close_waits_for_confirmation() {
    let host = host();
    let home = tempfile::tempdir().expect("temp dir");
    let mut s = spawn(&host, home.path());
    s.expect("> ").expect("prompt");
    s.send_line("TIME").expect("type TIME");
    let shown = s.expect(Regex(DATE_TIME_LINE)).expect("the time, rendered");
    let line = String::from_utf8_lossy(shown.get(1).unwrap_or_default()).into_owned();
    assert!(is_time(&line), "not a rendered TIME reply: {line:?}");
    s.send_line("CLOSE").expect("type CLOSE");
    s.expect("connection closed").expect("close confirmed");
    assert_eq!(exit_code(&mut s), EXIT_OK);
}

#[test]
fn server_leaving_while_the_user_types_is_reported() {
    let host = host();
    let home = tempfile::tempdir().expect("temp dir");
    let mut s = spawn(&host, home.path());
    s.expect("> ").expect("prompt");
    s.send("HEL").expect("type part of a line");
    host.terminate();
    s.expect("Server shutting down")
        .expect("unsolicited line shown");
    s.expect("connection closed by server").expect("reported");
    assert_eq!(exit_code(&mut s), EXIT_CONNECTION_LOST);
}
