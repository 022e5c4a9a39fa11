//! The scriptable modes, driven through the real client binary against the
//! real host: one-shot, pipe, `--raw`, and the failure exit codes.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use test_support::WAIT;

#[test]
fn one_shot_prints_rendered_replies_in_order() {
    let host = host();
    let mut cmd = client_cmd(&host);
    cmd.args(["-c", "HELLO", "-c", "TIME", "-c", "NOPE"]);
    let out = run(cmd, b"");
    assert_eq!(out.code, Some(EXIT_OK), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    assert_eq!(lines[0], "Hello from testhost");
    assert!(is_time(lines[1]), "not a time: {:?}", lines[1]);
    assert_eq!(lines[2], "Command not found");
    assert_eq!(out.stderr, "");
}

#[test]
fn one_shot_after_double_dash() {
    let host = host();
    let mut cmd = client_cmd(&host);
    cmd.args(["--", "HELLO"]);
    let out = run(cmd, b"");
    assert_eq!(out.code, Some(EXIT_OK), "{out:?}");
    assert_eq!(out.stdout, "Hello from testhost\n");
}

#[test]
fn pipe_mode_keeps_1000_replies_complete_and_in_order() {
    let host = host();
    let words = ["HELLO", "TIME", "NOPE"];
    let input: String = (0..1000).map(|i| format!("{}\n", words[i % 3])).collect();
    let start = Instant::now();
    let out = run(client_cmd(&host), input.as_bytes());
    assert_eq!(out.code, Some(EXIT_OK), "{}", out.stderr);
    assert_eq!(out.stderr, "");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1000);
    for (i, line) in lines.iter().enumerate() {
        match i % 3 {
            0 => assert_eq!(*line, "Hello from testhost", "line {i}"),
            1 => assert!(is_time(line), "line {i}: {line:?}"),
            _ => assert_eq!(*line, "Command not found", "line {i}"),
        }
    }
    // Pipelined, a thousand requests take about one round trip on loopback.
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn pipe_mode_skips_blank_lines_and_accepts_crlf() {
    let host = host();
    let out = run(client_cmd(&host), b"HELLO\r\n\n   \nHELLO");
    assert_eq!(out.code, Some(EXIT_OK), "{out:?}");
    assert_eq!(out.stdout, "Hello from testhost\nHello from testhost\n");
}

#[test]
fn raw_prints_replies_exactly_as_received() {
    let host = host();
    let mut cmd = client_cmd(&host);
    cmd.args(["--raw", "-c", "HELLO", "-c", "NOPE", "-c", "TIME"]);
    let out = run(cmd, b"");
    assert_eq!(out.code, Some(EXIT_OK), "{out:?}");
    let lines: Vec<&str> = out.stdout.split_inclusive('\n').collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    assert_eq!(lines[0], "MSG Hello from testhost\n");
    assert_eq!(lines[1], "MSG Command not found\n");
    let time = lines[2].strip_prefix("TIME ").expect("TIME reply");
    assert!(is_time(time.trim_end_matches('\n')), "{time:?}");
}

#[test]
fn raw_pipe_prints_the_users_own_close() {
    let host = host();
    let mut cmd = client_cmd(&host);
    cmd.arg("--raw");
    let out = run(cmd, b"HELLO\nCLOSE\nHELLO\n");
    assert_eq!(out.code, Some(EXIT_OK), "{out:?}");
    assert_eq!(out.stdout, "MSG Hello from testhost\nCLOSE CONFIRM\n");
}

#[test]
fn err_reply_goes_to_stderr_and_sets_its_exit_code() {
    let host = host();
    let mut cmd = client_cmd(&host);
    let long = "A".repeat(10_000);
    cmd.args(["-c", "HELLO", "-c", &long, "-c", "HELLO"]);
    let out = run(cmd, b"");
    assert_eq!(out.code, Some(EXIT_ERR_REPLY), "{out:?}");
    assert_eq!(out.stdout, "Hello from testhost\nHello from testhost\n");
    assert!(
        out.stderr.starts_with("error: line too long"),
        "{:?}",
        out.stderr
    );
}

#[test]
fn connection_refused_is_one_line_and_its_own_exit_code() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let mut cmd = Command::new(CLIENT);
    cmd.args(["127.0.0.1", &port.to_string(), "-c", "HELLO"]);
    let out = run(cmd, b"");
    assert_eq!(out.code, Some(EXIT_CANNOT_CONNECT), "{out:?}");
    assert_eq!(
        out.stderr,
        format!("cannot connect to 127.0.0.1:{port}: connection refused\n")
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn server_gone_mid_session_is_connection_lost() {
    let host = host();
    let mut child = client_cmd(&host)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn client");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = line_reader(child.stdout.take().expect("stdout"));
    let stderr = line_reader(child.stderr.take().expect("stderr"));
    // Stdin stays open: the session is still going when the host leaves.
    stdin.write_all(b"HELLO\n").expect("write");
    stdin.flush().expect("flush");
    assert_eq!(
        stdout.recv_timeout(WAIT).expect("first reply"),
        "Hello from testhost"
    );
    host.terminate();
    let status = wait_bounded(&mut child, WAIT);
    assert_eq!(status.code(), Some(EXIT_CONNECTION_LOST));
    assert_eq!(
        stdout.recv_timeout(WAIT).expect("shutdown notice"),
        "Server shutting down"
    );
    let err: Vec<String> = stderr.iter().collect();
    assert_eq!(
        err,
        ["connection lost: server closed the connection"],
        "{err:?}"
    );
    drop(stdin);
}

#[test]
fn usage_errors_and_help() {
    let out = run(
        {
            let mut c = Command::new(CLIENT);
            c.arg("--no-such-flag");
            c
        },
        b"",
    );
    assert_eq!(out.code, Some(EXIT_USAGE), "{out:?}");
    let out = run(
        {
            let mut c = Command::new(CLIENT);
            c.arg("--help");
            c
        },
        b"",
    );
    assert_eq!(out.code, Some(EXIT_OK), "{out:?}");
    assert!(out.stdout.contains("Exit codes:"), "{}", out.stdout);
    assert!(out.stdout.contains("[IP]"), "{}", out.stdout);
}
