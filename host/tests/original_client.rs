//! The host's framing as the original Python client shows it.
//!
//! That client (Chavjoh/ClientServerPython, `Client.py`; not part of this
//! repository) prints only the lines its reception table matches from
//! their start: `MSG .*`, printed with every `MSG ` in it removed, and
//! `CLOSE CONFIRM`, which ends its session. The host's markers start with
//! `MSG ` so that every line of a reply of several lines, and every pushed
//! line, still reaches its user: as `| <line>` and `> <line>`.
//!
//! The first test applies that rule to what the host sends; the second
//! runs the client itself, where a copy of it is given.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use test_support::{Conn, HostProcess, HostStart, WAIT, plugin_entry};

fn chat_host() -> HostProcess {
    HostStart::new().config(plugin_entry("chat")).spawn()
}

/// What the original client prints for a line it receives, if anything
/// (its reception table, restated).
fn shown_by_original(line: &str) -> Option<String> {
    line.starts_with("MSG ").then(|| line.replace("MSG ", ""))
}

/// `bob` joins `addr`'s lobby and says `hi` there; returns his connection.
fn bob_says_hi(addr: SocketAddr) -> Conn {
    let (mut bob, _) = Conn::open(addr);
    assert_eq!(bob.ask("NICK bob"), "MSG you are bob");
    assert!(bob.ask("JOIN lobby").starts_with("MSG joined lobby"));
    assert_eq!(bob.ask("SAY hi"), "MSG said to 1");
    bob
}

#[test]
fn every_line_of_a_long_reply_and_every_pushed_line_is_shown() {
    let host = chat_host();
    let (mut ada, greeting) = Conn::open(host.addr());
    let mut received = vec![greeting];
    for line in ["NICK ada", "JOIN lobby"] {
        received.push(ada.ask(line));
    }
    let _bob = bob_says_hi(host.addr());
    ada.send("WHO");
    // Two pushed lines, then the reply's three lines.
    for _ in 0..5 {
        received.push(ada.line());
    }
    let shown: Vec<String> = received
        .iter()
        .filter_map(|l| shown_by_original(l))
        .collect();
    assert_eq!(
        shown,
        [
            "Welcome aboard !",
            "you are ada",
            "joined lobby, 1 here",
            "> lobby * bob joined",
            "> lobby bob: hi",
            "| ada",
            "| bob",
            "2 in lobby",
        ],
        "received {received:?}"
    );
}

/// Lines the child prints, as they come, read on a thread of their own.
fn printed(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a printed line equal to `want`, keeping what came before.
fn expect(lines: &mpsc::Receiver<String>, seen: &mut Vec<String>, want: &str) {
    let deadline = Instant::now() + WAIT;
    while !seen.iter().any(|l| l == want) {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left.max(Duration::from_millis(1))) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("the original client did not print {want:?}; it printed {seen:?}"),
        }
    }
}

#[test]
#[ignore = "runs the original Python client, which this repository does not hold: \
            set LINEHOST_ORIGINAL_CLIENT to its Client.py and run with --ignored"]
fn the_original_client_shows_a_long_reply_and_pushed_lines() {
    let client = std::env::var("LINEHOST_ORIGINAL_CLIENT")
        .expect("LINEHOST_ORIGINAL_CLIENT must name the original Client.py");
    let host = chat_host();
    let addr = host.addr();
    // Unbuffered, so that each line is printed as it is received.
    let mut child = Command::new("python3")
        .arg("-u")
        .arg(&client)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs the original client");
    let mut input = child.stdin.take().expect("piped stdin");
    let lines = printed(child.stdout.take().expect("piped stdout"));
    let mut seen = Vec::new();

    input.write_all(b"NICK ada\nJOIN lobby\n").expect("write");
    expect(&lines, &mut seen, "joined lobby, 1 here");
    let _bob = bob_says_hi(addr);
    expect(&lines, &mut seen, "> lobby bob: hi");
    input.write_all(b"WHO\n").expect("write");
    expect(&lines, &mut seen, "2 in lobby");
    input.write_all(b"CLOSE\n").expect("write");
    expect(
        &lines,
        &mut seen,
        "The connection to the server has been closed.",
    );
    let from_who: Vec<&str> = seen
        .iter()
        .skip_while(|l| *l != "> lobby bob: hi")
        .skip(1)
        .take(3)
        .map(String::as_str)
        .collect();
    assert_eq!(from_who, ["| ada", "| bob", "2 in lobby"], "{seen:?}");

    // Its threads may outlive the session: it is stopped (by its PID).
    let _ = child.kill();
    let _ = child.wait();
}
