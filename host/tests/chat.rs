//! The bundled `chat` plugin over real sockets: lines pushed to the other
//! members of a room, a reply of several lines, members leaving however
//! their connection ends, and a member that does not read.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use test_support::{Conn, HostProcess, HostStart, WAIT, plugin_entry, wait_until};

/// A host serving chat, then testkit (for `SLEEP`; chat's `WHO` comes first).
fn host(limits: &str) -> HostProcess {
    HostStart::new()
        .config(format!(
            "{limits}\n{}{}",
            plugin_entry("chat"),
            plugin_entry("testkit")
        ))
        .spawn()
}

/// A client named `nick`, in room `room`.
fn member(addr: SocketAddr, nick: &str, room: &str) -> Conn {
    let (mut c, _) = Conn::open(addr);
    assert_eq!(
        c.ask(&format!("NICK {nick}")),
        format!("MSG you are {nick}")
    );
    let joined = c.ask(&format!("JOIN {room}"));
    assert!(
        joined.starts_with(&format!("MSG joined {room}")),
        "{joined}"
    );
    c
}

/// Waits until `watch` has heard that `who_left` left and its `WHO` no
/// longer lists them (asking keeps `watch` from idling out meanwhile).
fn gone(who_left: &str, watch: &mut Conn) {
    let left = format!("lobby * {who_left} left");
    let mut heard = Vec::new();
    let mut listed = true;
    assert!(
        wait_until(WAIT, || {
            watch.send("WHO");
            let reply = watch.reply();
            heard.extend(reply.pushed);
            listed = reply.lines.iter().any(|n| n == who_left);
            !listed && heard.contains(&left)
        }),
        "{who_left}: still listed {listed}, heard {heard:?}"
    );
}

/// Bytes `c` sent that the host has not read yet: the receive queue of
/// the host's end of the connection, from `/proc/net/tcp`.
fn unread_by_host(host: SocketAddr, c: &Conn) -> Option<u64> {
    let hex = |a: SocketAddr| match a {
        SocketAddr::V4(a) => format!(
            "{:08X}:{:04X}",
            u32::from_ne_bytes(a.ip().octets()),
            a.port()
        ),
        SocketAddr::V6(_) => unreachable!("the tests listen on 127.0.0.1"),
    };
    let (local, remote) = (hex(host), hex(c.stream().local_addr().ok()?));
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) != Some(&local.as_str()) || fields.get(2) != Some(&remote.as_str()) {
            return None;
        }
        let queues = fields.get(4)?;
        u64::from_str_radix(queues.split(':').nth(1)?, 16).ok()
    })
}

/// Who `c`'s room holds, as `WHO` lists it.
fn who(c: &mut Conn) -> Vec<String> {
    c.send("WHO");
    let mut lines = c.reply().lines;
    lines.pop();
    lines
}

#[test]
fn say_reaches_the_other_members_and_no_one_else() {
    let host = host("");
    let addr = host.addr();
    let mut ada = member(addr, "ada", "lobby");
    let mut bob = member(addr, "bob", "lobby");
    let mut cy = member(addr, "cy", "attic");
    let mut dee = member(addr, "dee", "attic");
    assert_eq!(ada.pushed(), "lobby * bob joined");
    assert_eq!(cy.pushed(), "attic * dee joined");

    ada.send("SAY hello, lobby");
    let said = ada.reply();
    assert_eq!(said.lines, ["MSG said to 1"]);
    assert!(said.pushed.is_empty(), "the sender got {:?}", said.pushed);
    assert_eq!(bob.pushed(), "lobby ada: hello, lobby");

    // Pushes to one connection arrive in the order they were made: if ada's
    // line had gone to her or to the attic, it would come before these.
    assert_eq!(bob.ask("SAY back"), "MSG said to 1");
    assert_eq!(ada.pushed(), "lobby bob: back");
    assert_eq!(dee.ask("SAY upstairs"), "MSG said to 1");
    assert_eq!(cy.pushed(), "attic dee: upstairs");

    assert_eq!(who(&mut ada), ["ada", "bob"]);
    assert_eq!(who(&mut cy), ["cy", "dee"]);
}

#[test]
fn pushed_lines_never_split_a_reply_and_pipelined_replies_keep_their_order() {
    const ROUNDS: usize = 10;
    const PER_ROUND: usize = 100;
    const MAX_FLOOD: usize = 200_000;
    let host = host("");
    let addr = host.addr();
    let mut pipe = member(addr, "pipe", "lobby");
    let mut flood = member(addr, "flood", "lobby");
    assert_eq!(pipe.pushed(), "lobby * flood joined");

    // The flooder says numbered lines until told to stop, reading its
    // replies (and pipe's renames) as it goes.
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(Barrier::new(2));
    let flooder = {
        let (stop, started) = (Arc::clone(&stop), Arc::clone(&started));
        std::thread::spawn(move || {
            started.wait();
            let began = Instant::now();
            let mut said = 0;
            while !stop.load(Ordering::Relaxed) && said < MAX_FLOOD && began.elapsed() < WAIT {
                let batch: String = (said..said + 50).map(|n| format!("SAY {n}\n")).collect();
                flood.send_raw(batch.as_bytes());
                for _ in 0..50 {
                    assert_eq!(flood.reply().lines, ["MSG said to 1"]);
                }
                said += 50;
            }
            said
        })
    };
    started.wait();

    // Pipe sends rounds of pipelined WHO and NICK, each WHO's reply naming
    // the nick the NICK before it set, while the flood's lines come in.
    let mut heard = Vec::new();
    let mut nick = "pipe".to_owned();
    for round in 0..ROUNDS {
        let mut batch = String::new();
        for i in 0..PER_ROUND {
            batch.push_str(&format!("WHO\nNICK p{round}x{i}\n"));
        }
        pipe.send_raw(batch.as_bytes());
        for i in 0..PER_ROUND {
            let who = pipe.reply();
            assert_eq!(who.lines, ["flood", &nick, "MSG 2 in lobby"]);
            heard.extend(who.pushed);
            nick = format!("p{round}x{i}");
            let renamed = pipe.reply();
            assert_eq!(renamed.lines, [format!("MSG you are {nick}")]);
            heard.extend(renamed.pushed);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let said = flooder.join().expect("flooder");
    let during = heard.len();
    while heard.len() < said {
        heard.push(pipe.pushed());
    }
    let expected: Vec<String> = (0..said).map(|n| format!("lobby flood: {n}")).collect();
    assert_eq!(heard, expected, "every line said, once, in order");
    assert!(
        during > 0,
        "no pushed line came while replies did; the test proved nothing"
    );
}

#[test]
fn members_leave_however_their_connection_ends() {
    // Pipe keeps itself from idling out by asking WHO while it waits.
    let host = host("idle_timeout_secs = 2\nshutdown_timeout_secs = 10");
    let addr = host.addr();
    let mut watch = member(addr, "watch", "lobby");
    let closer = member(addr, "closer", "lobby");
    assert_eq!(who(&mut watch), ["closer", "watch"]);
    drop(closer);
    gone("closer", &mut watch);

    let mut quitter = member(addr, "quitter", "lobby");
    assert_eq!(quitter.ask("CLOSE"), "CLOSE CONFIRM");
    gone("quitter", &mut watch);

    let mut idler = member(addr, "idler", "lobby");
    gone("idler", &mut watch);
    assert!(idler.line().starts_with("MSG Closing idle connection"));

    // At shutdown, a request already received is still answered: watch's
    // WHO, queued behind a sleep, is answered after the idle member left.
    let mut last = member(addr, "last", "lobby");
    assert_eq!(who(&mut watch), ["last", "watch"]);
    watch.send("SLEEP 1500\nWHO");
    // Once the host has read them, both lines are answered before it
    // looks for the signal again.
    assert!(
        wait_until(WAIT, || unread_by_host(addr, &watch) == Some(0)),
        "the host did not read the requests"
    );
    host.signal(libc::SIGTERM);
    assert_eq!(last.line(), "MSG Server shutting down");
    assert!(watch.reply().lines[0].starts_with("MSG slept"));
    let after = watch.reply();
    assert_eq!(after.lines, ["watch", "MSG 1 in lobby"], "{after:?}");
}

#[test]
fn a_member_that_does_not_read_is_let_go_and_the_others_are_served() {
    const MAX_LINES: usize = 200_000;
    let host = host("max_pushed_bytes = 4096");
    let addr = host.addr();
    let mut watch = member(addr, "watch", "lobby");
    let mut flood = member(addr, "flood", "lobby");
    assert_eq!(watch.pushed(), "lobby * flood joined");

    // A member with a small receive buffer that never reads again.
    let slow =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    slow.set_recv_buffer_size(4096)
        .expect("small receive buffer");
    slow.connect(&addr.into()).expect("connect");
    let mut slow = std::net::TcpStream::from(slow);
    std::io::Write::write_all(&mut slow, b"NICK slow\nJOIN lobby\n").expect("join");
    assert_eq!(watch.pushed(), "lobby * slow joined");
    assert_eq!(flood.pushed(), "lobby * slow joined");

    // Flood until a line no longer reaches it; watch reads all the while.
    let text = "x".repeat(100);
    let began = Instant::now();
    let mut said = 0;
    let mut reached_slow = true;
    while reached_slow {
        assert!(
            said < MAX_LINES && began.elapsed() < WAIT,
            "the slow member still took lines after {said}"
        );
        flood.send_raw(format!("SAY {said} {text}\n").repeat(5).as_bytes());
        for _ in 0..5 {
            let reply = flood.reply().lines;
            reached_slow = reply == ["MSG said to 2"];
            assert!(reached_slow || reply == ["MSG said to 1"], "{reply:?}");
            assert_eq!(watch.pushed(), format!("lobby flood: {said} {text}"));
        }
        said += 1;
    }
    // Its connection ends at once, not when its stalled write times out,
    // and its member leaves.
    assert_eq!(watch.pushed(), "lobby * slow left");
    assert!(
        wait_until(WAIT, || host.stderr().contains(
            "closing connection: the client does not read its pushed lines"
        )),
        "log:\n{}",
        host.stderr()
    );
    // The others are still served.
    flood.send("SAY still here");
    assert_eq!(flood.reply().lines, ["MSG said to 1"]);
    assert_eq!(watch.pushed(), "lobby flood: still here");
    assert_eq!(who(&mut watch), ["flood", "watch"]);
}
