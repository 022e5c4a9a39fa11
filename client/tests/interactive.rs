//! Interactive mode in a pseudo-terminal, against the real host.

mod common;

use common::*;
use expectrl::{ControlCode, Regex};

/// A whole line of the screen holding something shaped like a date and a
/// time: after a line feed or a line erase, up to the carriage return.
const DATE_TIME_LINE: &str = r"(?:\n|\x1b\[K)([^\x1b\r\n]*\d+\.\d+\.\d+ [0-9:]+[^\x1b\r\n]*)\r";

#[test]
fn hello_then_ctrl_d_exits_zero_and_keeps_history() {
    let host = host();
    let home = tempfile::tempdir().expect("temp dir");
    let mut s = spawn(host.addr(), home.path());
    s.expect("Welcome aboard !").expect("greeting");
    s.expect("> ").expect("prompt");
    s.send_line("HELLO").expect("type HELLO");
    s.expect("Hello from testhost").expect("reply");
    s.expect("> ").expect("prompt again");
    s.send(ControlCode::EOT).expect("Ctrl-D");
    s.expect("connection closed").expect("close confirmed");
    assert_eq!(exit_code(&mut s), EXIT_OK);
    let lines = history(home.path());
    assert!(lines.iter().any(|l| l == "HELLO"), "{lines:?}");
}

#[test]
fn ctrl_c_leaves_cleanly() {
    let host = host();
    let home = tempfile::tempdir().expect("temp dir");
    let mut s = spawn(host.addr(), home.path());
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
    let mut s = spawn(host.addr(), home.path());
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
    let mut s = spawn(host.addr(), home.path());
    s.expect("> ").expect("prompt");
    s.send("HEL").expect("type part of a line");
    host.terminate();
    s.expect("Server shutting down")
        .expect("unsolicited line shown");
    s.expect("connection closed by server").expect("reported");
    assert_eq!(exit_code(&mut s), EXIT_CONNECTION_LOST);
}

#[test]
fn tab_completes_the_commands_the_server_lists_in_help() {
    // RELOAD is in no table of the client: only the server's HELP names it
    // (to this loopback client, which [admin] admits).
    let host = test_support::HostStart::new()
        .config(format!("{}[admin]\n", test_support::plugin_entry("hello")))
        .spawn();
    let home = tempfile::tempdir().expect("temp dir");
    let mut s = spawn(host.addr(), home.path());
    s.expect("> ").expect("prompt");
    s.send("REL").expect("type the start of a word");
    s.set_expect_timeout(Some(std::time::Duration::from_millis(500)));
    // The words arrive on a connection of their own, soon after the prompt.
    let completed = (0..40).any(|_| {
        s.send("\t").expect("Tab");
        s.expect("RELOAD").is_ok()
    });
    assert!(completed, "REL was not completed to RELOAD");
    s.set_expect_timeout(Some(test_support::WAIT));
    s.send_line("").expect("Enter");
    s.expect("reloaded").expect("the reload's reply");
    s.send_line("CLOSE").expect("type CLOSE");
    s.expect("connection closed").expect("close confirmed");
    assert_eq!(exit_code(&mut s), EXIT_OK);
}
