//! The scriptable modes, driven through the real client binary against the
//! real host: one-shot, pipe, `--raw`, and the failure exit codes.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use test_support::{WAIT, wait_or_kill, wait_until};

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
}

/// How long the holding server waits for the lines it holds out for: far
/// beyond what a pipelining client needs, and inside the test's own waits.
const HOLD: Duration = Duration::from_secs(10);

/// A stand-in server that answers nothing until it has received `hold`
/// request lines, then answers each (`MSG got <line>`, `CLOSE CONFIRM`).
/// A client that waits for each reply before sending the next line stalls
/// at its first line; the server then hangs up after [`HOLD`]. The thread
/// returns every line it received.
fn holding_server(hold: usize) -> (SocketAddr, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let server = std::thread::spawn(move || {
        let mut accepted = None;
        wait_until(WAIT, || {
            accepted = listener.accept().ok().map(|(stream, _)| stream);
            accepted.is_some()
        });
        let Some(stream) = accepted else {
            return Vec::new();
        };
        serve_held(stream, hold)
    });
    (addr, server)
}

fn serve_held(stream: TcpStream, hold: usize) -> Vec<String> {
    stream.set_nonblocking(false).expect("blocking stream");
    // Short reads, so that the deadline is checked between them.
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("read timeout");
    let mut writer = stream.try_clone().expect("clone stream");
    let mut reader = BufReader::new(stream);
    let deadline = Instant::now() + HOLD;
    let mut received: Vec<String> = Vec::new();
    let mut answered = 0;
    let mut partial = Vec::new();
    if writer.write_all(b"MSG Welcome aboard !\n").is_err() {
        return received;
    }
    while Instant::now() < deadline {
        if received.len() >= hold {
            for line in &received[answered..] {
                let reply = if line == "CLOSE" {
                    "CLOSE CONFIRM\n".to_owned()
                } else {
                    format!("MSG got {line}\n")
                };
                if writer.write_all(reply.as_bytes()).is_err() {
                    return received;
                }
            }
            answered = received.len();
            if received.last().is_some_and(|l| l == "CLOSE") {
                break;
            }
        }
        match reader.read_until(b'\n', &mut partial) {
            Ok(0) => break,
            Ok(_) if partial.ends_with(b"\n") => {
                let line = String::from_utf8_lossy(&partial).trim_end().to_owned();
                received.push(line);
                partial.clear();
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    received
}

/// The client run against a [`holding_server`] that holds out for all of
/// `lines`: it must have sent them all before it saw a single reply.
fn assert_pipelined(mut client: Command, lines: &[&str], stdin: &[u8]) {
    let (addr, server) = holding_server(lines.len());
    client
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string());
    let out = run(client, stdin);
    let received = server.join().expect("holding server");
    let mut expected = lines.to_vec();
    expected.push("CLOSE");
    assert_eq!(received, expected, "the server got only these; {out:?}");
    assert_eq!(out.code, Some(EXIT_OK), "{out:?}");
    let shown: String = lines.iter().map(|l| format!("got {l}\n")).collect();
    assert_eq!(out.stdout, shown);
}

#[test]
fn pipe_mode_sends_every_line_without_waiting_for_replies() {
    let lines = ["ONE", "TWO", "THREE", "FOUR", "FIVE"];
    let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    assert_pipelined(Command::new(CLIENT), &lines, input.as_bytes());
}

#[test]
fn one_shot_sends_every_command_without_waiting_for_replies() {
    let lines = ["ONE", "TWO", "THREE", "FOUR", "FIVE"];
    let mut cmd = Command::new(CLIENT);
    for l in lines {
        cmd.arg("-c").arg(l);
    }
    assert_pipelined(cmd, &lines, b"");
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
    // Bound but not listening: connections are refused, and, unlike a
    // port closed again, no other test can take it meanwhile.
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .expect("bind");
    let port = socket
        .local_addr()
        .expect("addr")
        .as_socket()
        .expect("an IP address")
        .port();
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
    let status = wait_or_kill(&mut child, WAIT);
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
