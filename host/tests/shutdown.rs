//! Stopping the host: in-flight requests finish, clients are told, exit 0.

use std::time::{Duration, Instant};

use test_support::{Conn, HostStart, plugin_entry};

#[test]
fn sigterm_finishes_requests_tells_clients_and_exits_zero() {
    let mut host = HostStart::new()
        .config(format!(
            "server_name = \"h\"\n{}{}",
            plugin_entry("hello"),
            plugin_entry("testkit")
        ))
        .arg("--log-level=debug")
        .spawn();
    let (mut idle, _) = Conn::open(host.addr());
    let (mut busy, _) = Conn::open(host.addr());
    assert_eq!(idle.ask("HELLO"), "MSG Hello from h");
    busy.send("SLEEP 1000");
    // Stop only once the host has taken the request (it logs each at debug).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !host.stderr().contains("request=\"SLEEP 1000\"") {
        assert!(
            Instant::now() < deadline,
            "request never seen: {}",
            host.stderr()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let start = Instant::now();
    host.signal(libc::SIGTERM);

    assert_eq!(idle.line(), "MSG Server shutting down");
    assert!(idle.is_closed());
    // The request already running completes and its reply goes out first.
    assert_eq!(busy.line(), "MSG slept 1000");
    assert_eq!(busy.line(), "MSG Server shutting down");
    assert!(busy.is_closed());

    let status = host
        .wait_exit(Duration::from_secs(10))
        .expect("host did not exit");
    assert!(status.success(), "{status:?}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_client_that_does_not_read_cannot_hold_up_the_stop() {
    let mut host = HostStart::new()
        .config(format!(
            "shutdown_timeout_secs = 1\n{}",
            plugin_entry("hello")
        ))
        .spawn();
    let stalled = std::net::TcpStream::connect(host.addr()).unwrap();
    stalled.set_nonblocking(true).unwrap();
    let flood = "HELLO\n".repeat(100_000);
    // Fill the socket buffers both ways, until the host stops reading.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        use std::io::Write;
        match (&stalled).write(flood.as_bytes()) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("{e}"),
        }
    }
    let start = Instant::now();
    host.signal(libc::SIGTERM);
    let status = host
        .wait_exit(Duration::from_secs(10))
        .expect("host did not exit");
    assert!(status.success(), "{status:?}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
}
