//! Stopping the host: in-flight requests finish, clients are told, exit 0.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use test_support::{Conn, HostStart, WAIT, plugin_entry, wait_until};

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
    let taken = wait_until(WAIT, || host.stderr().contains("request=\"SLEEP 1000\""));
    assert!(taken, "request never seen: {}", host.stderr());
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
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
}

/// The send and receive queues, in bytes, of the host's end of `client`,
/// from the kernel's table of IPv4 TCP sockets.
fn host_side_queues(client: &TcpStream) -> Option<(u64, u64)> {
    let host_port = client.peer_addr().ok()?.port();
    let client_port = client.local_addr().ok()?.port();
    let port = |field: &str| {
        field
            .rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        // sl local_address rem_address st tx_queue:rx_queue ...
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 5
            || port(fields[1]) != Some(host_port)
            || port(fields[2]) != Some(client_port)
        {
            return None;
        }
        let (tx, rx) = fields[4].split_once(':')?;
        Some((
            u64::from_str_radix(tx, 16).ok()?,
            u64::from_str_radix(rx, 16).ok()?,
        ))
    })
}

#[test]
fn a_client_that_does_not_read_cannot_hold_up_the_stop() {
    let mut host = HostStart::new()
        .config(format!(
            "shutdown_timeout_secs = 1\n{}",
            plugin_entry("hello")
        ))
        .spawn();
    let stalled = TcpStream::connect(host.addr()).unwrap();
    stalled.set_nonblocking(true).unwrap();
    let flood = "HELLO\n".repeat(100_000);
    // Send until the host is stuck: it has unread input, our writes are
    // refused, and neither of its queues has moved for a while, so it
    // neither reads nor writes.
    let mut last = None;
    let mut unchanged = 0;
    let stuck = wait_until(WAIT, || {
        let refused = match (&stalled).write(flood.as_bytes()) {
            Ok(_) => false,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
            Err(e) => panic!("{e}"),
        };
        let queues = host_side_queues(&stalled);
        let still = refused && queues.is_some_and(|(_, unread)| unread > 0) && queues == last;
        unchanged = if still { unchanged + 1 } else { 0 };
        last = queues;
        unchanged >= 20
    });
    assert!(stuck, "the host kept up: {:?}", host_side_queues(&stalled));
    let start = Instant::now();
    host.signal(libc::SIGTERM);
    let status = host
        .wait_exit(Duration::from_secs(10))
        .expect("host did not exit");
    assert!(status.success(), "{status:?}");
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
}
