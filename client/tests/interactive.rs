//! Interactive mode in a pseudo-terminal, against the real host.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use expectrl::{ControlCode, Eof, Session, WaitStatus};
use test_support::{HostProcess, WAIT};

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

/// Waits for the client to exit and returns its exit code.
fn exit_code(session: &mut Session) -> i32 {
    // Drains the rest of the output so the client never blocks on a full pty.
    let _ = session.expect(Eof);
    let start = Instant::now();
    loop {
        match session.get_process().status() {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::StillAlive) if start.elapsed() < WAIT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => panic!("client did not exit normally: {other:?}"),
        }
    }
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
