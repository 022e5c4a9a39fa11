//! The client against the chat plugin: pushed lines shown apart from the
//! replies, as they arrive, and replies of several lines paired with their
//! requests, in the scriptable and the interactive modes.

mod common;

use std::io::Write;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;

use common::*;
use test_support::{Conn, HostProcess, WAIT, wait_or_kill};

/// A member of `room` speaking straight to the host.
fn member(host: &HostProcess, nick: &str, room: &str) -> Conn {
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(
        c.ask(&format!("NICK {nick}")),
        format!("MSG you are {nick}")
    );
    assert!(c.ask(&format!("JOIN {room}")).starts_with("MSG joined"));
    c
}

fn next(lines: &Receiver<String>) -> String {
    lines.recv_timeout(WAIT).expect("a line from the client")
}

/// The client in pipe mode: the process, its input, and its output lines.
fn piped_client(host: &HostProcess) -> (Child, ChildStdin, Receiver<String>) {
    let mut client = client_cmd(host)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn client");
    let input = client.stdin.take().expect("piped stdin");
    let lines = line_reader(client.stdout.take().expect("piped stdout"));
    (client, input, lines)
}

#[test]
fn pipe_mode_shows_pushed_lines_and_pairs_a_reply_of_several_lines() {
    let host = chat_host();
    let mut other = member(&host, "other", "lobby");
    let (mut client, mut input, lines) = piped_client(&host);

    input.write_all(b"NICK cli\nJOIN lobby\n").expect("write");
    assert_eq!(next(&lines), "you are cli");
    assert_eq!(next(&lines), "joined lobby, 2 here");
    assert_eq!(other.pushed(), "lobby * cli joined");
    assert_eq!(other.ask("SAY hi there"), "MSG said to 1");
    assert_eq!(next(&lines), "> lobby other: hi there");

    // WHO answers with three lines; the client's own CLOSE after it must
    // still pair with CLOSE CONFIRM, which is then not shown.
    input.write_all(b"WHO\n").expect("write");
    drop(input);
    assert_eq!(next(&lines), "cli");
    assert_eq!(next(&lines), "other");
    assert_eq!(next(&lines), "2 in lobby");
    assert!(
        lines.recv_timeout(WAIT).is_err(),
        "nothing after the last reply"
    );
    assert_eq!(wait_or_kill(&mut client, WAIT).code(), Some(EXIT_OK));
}

#[test]
fn pipelined_replies_pair_with_their_requests_while_pushes_arrive() {
    const ROUNDS: usize = 10;
    const PER_ROUND: usize = 30;
    let host = chat_host();
    let mut flood = member(&host, "flood", "lobby");
    let (mut client, mut input, lines) = piped_client(&host);
    input.write_all(b"NICK cli\nJOIN lobby\n").expect("write");
    assert_eq!(next(&lines), "you are cli");
    assert_eq!(next(&lines), "joined lobby, 2 here");
    assert_eq!(flood.pushed(), "lobby * cli joined");

    // The flood goes on, bounded, until the client is done.
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 100_000 {
                flood.send(&format!("SAY {n}"));
                // To none once the client has gone.
                let said = flood.reply().lines;
                assert!(
                    said == ["MSG said to 1"] || said == ["MSG said to 0"],
                    "{said:?}"
                );
                n += 1;
            }
        })
    };
    let mut pushed = 0;
    let mut replies = Vec::new();
    let mut read = |replies: &mut Vec<String>, line: String| {
        if line.starts_with("> ") {
            assert_eq!(line, format!("> lobby flood: {pushed}"));
            pushed += 1;
        } else {
            replies.push(line);
        }
    };
    // Rounds of pipelined requests, each sent once the last one's replies
    // came, so that the flood's lines come in between and among them.
    for round in 0..ROUNDS {
        let batch: String = (0..PER_ROUND)
            .map(|i| format!("WHO\nNICK c{round}x{i}\n"))
            .collect();
        input.write_all(batch.as_bytes()).expect("write");
        while replies.len() < (round + 1) * PER_ROUND * 4 {
            read(&mut replies, next(&lines));
        }
    }
    drop(input);
    while let Ok(line) = lines.recv_timeout(WAIT) {
        read(&mut replies, line);
    }
    stop.store(true, Ordering::Relaxed);
    flooder.join().expect("flooder");

    let mut expected = Vec::new();
    let mut nick = "cli".to_owned();
    for round in 0..ROUNDS {
        for i in 0..PER_ROUND {
            // Sorted by nick: `c...` come before `flood`.
            expected.extend([nick.clone(), "flood".into(), "2 in lobby".into()]);
            nick = format!("c{round}x{i}");
            expected.push(format!("you are {nick}"));
        }
    }
    assert_eq!(replies, expected);
    assert_eq!(wait_or_kill(&mut client, WAIT).code(), Some(EXIT_OK));
    assert!(pushed > 0, "no pushed line came; the test proved nothing");
}

#[test]
fn interactive_mode_shows_pushed_lines_while_the_user_types() {
    let host = chat_host();
    let mut other = member(&host, "other", "lobby");
    let home = tempfile::tempdir().expect("temp dir");
    let mut s = spawn(host.addr(), home.path());
    s.expect("> ").expect("prompt");
    s.send_line("NICK cli").expect("type NICK");
    s.expect("you are cli").expect("nick set");
    s.send_line("JOIN lobby").expect("type JOIN");
    s.expect("joined lobby").expect("joined");
    assert_eq!(other.pushed(), "lobby * cli joined");

    s.send("SAY hal").expect("type part of a line");
    assert_eq!(other.ask("SAY are you there?"), "MSG said to 1");
    s.expect("> lobby other: are you there?")
        .expect("pushed line shown while typing");
    // What was typed before the line came is still there to finish.
    s.send_line("lo").expect("finish the line");
    assert_eq!(other.pushed(), "lobby cli: hallo");
    s.expect("said to 1").expect("reply");
    s.send_line("CLOSE").expect("type CLOSE");
    s.expect("connection closed").expect("close confirmed");
    assert_eq!(exit_code(&mut s), EXIT_OK);
}
