//! Misbehaving clients: every case is answered clearly, loses nothing and
//! leaves other connections served.

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use test_support::{Conn, HostProcess, HostStart, plugin_entry};

/// RSS figures from `/proc` are in KiB.
const MIB_IN_KIB: u64 = 1024;

fn host_with(extra: &str) -> HostProcess {
    HostStart::new()
        .config(format!(
            "server_name = \"h\"\n{extra}\n{}{}",
            plugin_entry("hello"),
            plugin_entry("testkit")
        ))
        .spawn()
}

#[test]
fn an_over_long_line_is_refused_and_the_connection_goes_on() {
    let host = host_with("max_line_length = 64");
    let (mut c, _) = Conn::open(host.addr());
    c.send_raw(&[b'A'; 100]);
    c.send_raw(b"\nHELLO\n");
    assert_eq!(c.line(), "ERR line too long (max 64 bytes)");
    assert_eq!(c.line(), "MSG Hello from h");
    // Exactly the limit is fine.
    assert_eq!(
        c.ask(&format!("ECHO {}", "x".repeat(59))),
        format!("MSG {}", "x".repeat(59))
    );
}

#[test]
fn the_default_limit_is_8_kib() {
    let host = host_with("");
    let (mut c, _) = Conn::open(host.addr());
    c.send(&"A".repeat(8193));
    assert_eq!(c.line(), "ERR line too long (max 8192 bytes)");
    assert_eq!(c.ask("HELLO"), "MSG Hello from h");
}

#[test]
fn a_hundred_mib_without_newline_costs_no_memory() {
    let host = host_with("");
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(c.ask("HELLO"), "MSG Hello from h");
    let before = host.rss_kib();
    let chunk = vec![b'x'; 64 * 1024];
    let start = Instant::now();
    for _ in 0..1600 {
        c.send_raw(&chunk);
        assert!(start.elapsed() < Duration::from_secs(60), "too slow");
    }
    c.send_raw(b"\nHELLO\n");
    assert_eq!(c.line(), "ERR line too long (max 8192 bytes)");
    assert_eq!(c.line(), "MSG Hello from h");
    let peak = host.peak_rss_kib();
    assert!(
        peak.saturating_sub(before) < 16 * MIB_IN_KIB,
        "RSS grew from {before} KiB to a peak of {peak} KiB"
    );
}

#[test]
fn invalid_utf8_is_refused_and_the_next_line_served() {
    let host = host_with("");
    let (mut c, _) = Conn::open(host.addr());
    c.send_raw(b"ECHO \xff\xfe\nHELLO\n");
    assert_eq!(c.line(), "ERR invalid UTF-8");
    assert_eq!(c.line(), "MSG Hello from h");
}

#[test]
fn control_characters_reach_only_hooks_that_ask_for_them() {
    let host = host_with("");
    let (mut c, _) = Conn::open(host.addr());
    // `ECHO (.*)` would match these, but does not ask for control characters.
    c.send_raw(b"ECHO a\0b\nECHO \x1b[2J\n");
    assert_eq!(c.line(), "ERR control characters are not accepted");
    assert_eq!(c.line(), "ERR control characters are not accepted");
    c.send_raw(b"CTRL \x01\x02\x00\n");
    assert_eq!(c.line(), "MSG 3 control bytes");
    assert_eq!(c.ask("ECHO tab\tok"), "MSG tab\tok");
}

#[test]
fn idle_connections_are_told_and_closed() {
    let host = host_with("idle_timeout_secs = 1");
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(c.ask("HELLO"), "MSG Hello from h");
    let start = Instant::now();
    assert_eq!(c.line(), "MSG Closing idle connection: no request for 1 s");
    assert!(c.is_closed());
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

#[test]
fn a_client_dribbling_bytes_cannot_outstay_the_idle_timeout() {
    let host = host_with("idle_timeout_secs = 1");
    let (mut c, _) = Conn::open(host.addr());
    let start = Instant::now();
    let mut stream = c.stream().try_clone().unwrap();
    let dribbler = std::thread::spawn(move || {
        // One byte every 200 ms, never a newline; stops when the host closes.
        for _ in 0..50 {
            if stream.write_all(b"x").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    assert_eq!(c.line(), "MSG Closing idle connection: no request for 1 s");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(c.is_closed());
    dribbler.join().unwrap();
}

#[test]
fn past_max_connections_new_clients_are_told_busy() {
    let host = host_with("max_connections = 2");
    let (mut a, _) = Conn::open(host.addr());
    let (mut b, _) = Conn::open(host.addr());
    let (mut refused, first) = Conn::open(host.addr());
    assert_eq!(first, "ERR server busy");
    assert!(refused.is_closed());
    assert_eq!(a.ask("HELLO"), "MSG Hello from h");
    assert_eq!(b.ask("HELLO"), "MSG Hello from h");
    // Once a client leaves, its place is free again.
    assert_eq!(a.ask("CLOSE"), "CLOSE CONFIRM");
    assert!(a.is_closed());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (mut c, greeting) = Conn::open(host.addr());
        if greeting == "MSG Welcome aboard !" {
            assert_eq!(c.ask("HELLO"), "MSG Hello from h");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the freed place was never reused"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn running_out_of_file_descriptors_is_survived() {
    let host = HostStart::new()
        .config(format!("server_name = \"h\"\n{}", plugin_entry("hello")))
        .fd_limit(48)
        .spawn();
    // More connections than the host has descriptors for.
    let flood: Vec<TcpStream> = (0..80)
        .map(|_| TcpStream::connect(host.addr()).expect("connect"))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !host.stderr().contains("accept failed") {
        assert!(
            Instant::now() < deadline,
            "host never ran out: {}",
            host.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(flood);
    // The host backs off, then accepts again once descriptors are free.
    let (mut c, greeting) = Conn::open(host.addr());
    assert_eq!(greeting, "MSG Welcome aboard !");
    assert_eq!(c.ask("HELLO"), "MSG Hello from h");
}

#[test]
fn a_client_that_never_reads_is_not_buffered_for() {
    let host = host_with("");
    let (mut reader, _) = Conn::open(host.addr());
    let before = host.rss_kib();
    let stalled = TcpStream::connect(host.addr()).unwrap();
    stalled.set_nonblocking(true).unwrap();
    let request = "HELLO\n".repeat(10_000);
    let mut sent: u64 = 0;
    let start = Instant::now();
    let mut last_progress = Instant::now();
    // Write until the host has stopped taking requests for 1 s, or 20 s pass.
    while last_progress.elapsed() < Duration::from_secs(1)
        && start.elapsed() < Duration::from_secs(20)
    {
        match (&stalled).write(request.as_bytes()) {
            Ok(n) => {
                sent += n as u64;
                last_progress = Instant::now();
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("write failed: {e}"),
        }
    }
    assert!(
        last_progress.elapsed() >= Duration::from_secs(1),
        "the host kept reading requests whose replies nobody reads ({sent} bytes)"
    );
    assert!(sent < 256 * 1024 * 1024, "{sent} bytes were taken");
    let grown = host.peak_rss_kib().saturating_sub(before);
    assert!(
        grown < 16 * MIB_IN_KIB,
        "RSS grew by {grown} KiB for {sent} bytes of requests"
    );
    // Everybody else is still served.
    assert_eq!(reader.ask("HELLO"), "MSG Hello from h");
}

#[test]
fn one_client_panicking_under_load_disturbs_no_one() {
    let host = host_with("");
    let addr = host.addr();
    let clients: Vec<_> = (0..50)
        .map(|i| {
            std::thread::spawn(move || {
                let (mut c, _) = Conn::open(addr);
                for n in 0..200 {
                    if i == 0 {
                        let r = c.ask("PANIC");
                        assert!(r.starts_with("ERR plugin testkit failed: "), "{r:?}");
                    } else if n % 2 == 0 {
                        assert_eq!(c.ask(&format!("ECHO {i}-{n}")), format!("MSG {i}-{n}"));
                    } else {
                        assert_eq!(c.ask("HELLO"), "MSG Hello from h");
                    }
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("a client saw a wrong reply");
    }
}

#[test]
fn a_client_streaming_one_endless_line_is_closed_when_idle() {
    let host = host_with("idle_timeout_secs = 1");
    let (mut c, _) = Conn::open(host.addr());
    let mut stream = c.stream().try_clone().unwrap();
    let start = Instant::now();
    let streamer = std::thread::spawn(move || {
        // As fast as the host takes it, never a newline; stops when closed.
        let chunk = vec![b'x'; 64 * 1024];
        while start.elapsed() < Duration::from_secs(10) {
            if stream.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    assert_eq!(c.line(), "ERR line too long (max 8192 bytes)");
    assert_eq!(c.line(), "MSG Closing idle connection: no request for 1 s");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    streamer.join().unwrap();
}
