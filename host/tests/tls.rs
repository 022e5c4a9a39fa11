//! The `[tls]` listener over real sockets against the real host: the
//! protocol over TLS beside or instead of plain TCP, client certificates,
//! and bad TLS input treated as one more hostile client: that connection is
//! closed with a log line, and every other one is served.
//!
//! Certificates and keys are made for each test (`test_support::tls`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use test_support::tls::{CLIENT_SUBJECT, Pki, TlsConn};
use test_support::{Conn, HostProcess, HostStart, WAIT, plugin_entry, wait_until};

/// hello, and testkit, whose `WHO` says what plugins learn of the client.
fn config(pki: &Pki, tls_extra: &str) -> String {
    format!(
        "server_name = \"tlstest\"\n{}{}{}",
        plugin_entry("hello"),
        plugin_entry("testkit"),
        pki.tls_table(tls_extra)
    )
}

fn host(pki: &Pki, tls_extra: &str) -> HostProcess {
    HostStart::new().config(config(pki, tls_extra)).spawn()
}

/// Greets over TLS and answers `HELLO`.
fn assert_served(
    host: &HostProcess,
    pki: &Pki,
    client: Option<(std::path::PathBuf, std::path::PathBuf)>,
) {
    let mut conn = TlsConn::connect(host.tls_addr(), &pki.ca_cert(), client).expect("handshake");
    assert_eq!(conn.line().expect("greeting"), "MSG Welcome aboard !");
    assert_eq!(conn.ask("HELLO").expect("reply"), "MSG Hello from tlstest");
}

/// A plain client on the plain port is served too.
fn assert_plain_served(host: &HostProcess) {
    let (mut conn, greeting) = Conn::open(host.addr());
    assert_eq!(greeting, "MSG Welcome aboard !");
    assert_eq!(conn.ask("HELLO"), "MSG Hello from tlstest");
}

/// Waits until the host has logged `what`.
fn wait_for_log(host: &HostProcess, what: &str) {
    assert!(
        wait_until(WAIT, || host.stderr().contains(what)),
        "no {what:?} in the log:\n{}",
        host.stderr()
    );
}

/// Reads a raw socket to its end, bounded; what the host sent.
fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut all = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&chunk[..n]),
            // A reset after the host closed with our bytes unread: closed.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return all,
            Err(e) => panic!("connection not closed within {WAIT:?}: {e}"),
        }
    }
}

#[test]
fn a_tls_client_is_served_beside_plain_ones() {
    let pki = Pki::new();
    let host = host(&pki, "");
    assert_served(&host, &pki, None);
    assert_plain_served(&host);
    assert_ne!(host.addr(), host.tls_addr());
    wait_for_log(&host, "connected");
    assert!(!host.stderr().contains("subject="), "{}", host.stderr());
}

#[test]
fn a_required_client_certificate_is_accepted_and_its_subject_logged_and_told_plugins() {
    let pki = Pki::new();
    let host = host(&pki, &format!("client_ca = {:?}\n", pki.ca_cert()));
    assert_served(&host, &pki, Some(pki.client_cert()));
    wait_for_log(&host, &format!("subject={CLIENT_SUBJECT} "));
    let mut conn = TlsConn::connect(host.tls_addr(), &pki.ca_cert(), Some(pki.client_cert()))
        .expect("handshake");
    conn.line().expect("greeting");
    let who = conn.ask("WHO").expect("reply");
    assert!(who.starts_with("MSG peer=127.0.0.1:"), "{who}");
    assert!(
        who.ends_with(&format!(" subject={CLIENT_SUBJECT}")),
        "{who}"
    );
    // Without a client certificate, plugins learn of none.
    let host = self::host(&pki, "");
    let mut conn = TlsConn::connect(host.tls_addr(), &pki.ca_cert(), None).expect("handshake");
    conn.line().expect("greeting");
    let who = conn.ask("WHO").expect("reply");
    assert!(!who.contains("subject="), "{who}");
}

/// Connects without a usable client certificate where one is required:
/// the host must send nothing of the protocol, close, and say why.
fn assert_refused(
    host: &HostProcess,
    pki: &Pki,
    client: Option<(std::path::PathBuf, std::path::PathBuf)>,
) {
    // With TLS 1.3 the client's side of the handshake ends before the host
    // has judged its certificate; the refusal arrives as an alert.
    match TlsConn::connect(host.tls_addr(), &pki.ca_cert(), client) {
        Err(_) => {}
        Ok(mut conn) => {
            let got = conn.line();
            assert!(got.is_err(), "served without a good certificate: {got:?}");
        }
    }
    wait_for_log(host, "closing TLS connection");
}

#[test]
fn a_missing_client_certificate_is_refused() {
    let pki = Pki::new();
    let host = host(&pki, &format!("client_ca = {:?}\n", pki.ca_cert()));
    assert_refused(&host, &pki, None);
    assert_served(&host, &pki, Some(pki.client_cert()));
    assert_plain_served(&host);
}

#[test]
fn a_client_certificate_from_another_ca_is_refused() {
    let pki = Pki::new();
    let host = host(&pki, &format!("client_ca = {:?}\n", pki.ca_cert()));
    assert_refused(&host, &pki, Some(pki.stranger_cert()));
    assert!(!host.stderr().contains("mallory"), "{}", host.stderr());
    assert_served(&host, &pki, Some(pki.client_cert()));
}

#[test]
fn plain_text_on_the_tls_port_gets_no_protocol_and_is_closed() {
    let pki = Pki::new();
    let host = host(&pki, "");
    let mut raw = TcpStream::connect(host.tls_addr()).expect("connect");
    raw.write_all(b"HELLO\r\n").expect("send");
    let got = read_to_close(&mut raw);
    let text = String::from_utf8_lossy(&got);
    assert!(
        !text.contains("MSG"),
        "protocol over a plain connection: {text:?}"
    );
    wait_for_log(&host, "closing TLS connection");
    assert_served(&host, &pki, None);
    assert_plain_served(&host);
}

#[test]
fn a_stalled_handshake_is_closed_after_the_handshake_timeout() {
    let pki = Pki::new();
    let host = host(&pki, "handshake_timeout_secs = 1\n");
    let started = Instant::now();
    // Half a ClientHello record header, then nothing.
    let mut stalled = TcpStream::connect(host.tls_addr()).expect("connect");
    stalled.write_all(&[0x16, 0x03]).expect("send");
    // Others are served while it stalls.
    assert_served(&host, &pki, None);
    let got = read_to_close(&mut stalled);
    assert!(got.is_empty(), "sent {got:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed after {:?}, before the timeout",
        started.elapsed()
    );
    wait_for_log(&host, "closing TLS connection: no TLS handshake within 1 s");
    assert_served(&host, &pki, None);
}

#[test]
fn garbage_records_close_only_their_connection() {
    let pki = Pki::new();
    let host = host(&pki, "");
    let mut good = TlsConn::connect(host.tls_addr(), &pki.ca_cert(), None).expect("handshake");
    assert_eq!(good.line().expect("greeting"), "MSG Welcome aboard !");
    let garbage: [&[u8]; 3] = [
        // A handshake record whose message is nonsense.
        &[0x16, 0x03, 0x01, 0x00, 0x05, 0xff, 0xff, 0xff, 0xff, 0xff],
        // Application data before any handshake.
        &[0x17, 0x03, 0x03, 0x00, 0x04, 1, 2, 3, 4],
        // A record claiming to be longer than TLS allows.
        &[0x16, 0x03, 0x03, 0xff, 0xff, 0, 0, 0],
    ];
    for bytes in garbage {
        let mut raw = TcpStream::connect(host.tls_addr()).expect("connect");
        raw.write_all(bytes).expect("send");
        let got = read_to_close(&mut raw);
        assert!(!String::from_utf8_lossy(&got).contains("MSG"), "{got:?}");
    }
    assert!(
        wait_until(WAIT, || host
            .stderr()
            .matches("closing TLS connection")
            .count()
            == 3),
        "not one log line per bad connection:\n{}",
        host.stderr()
    );
    // The connection opened before is still served, and new ones are.
    assert_eq!(good.ask("HELLO").expect("reply"), "MSG Hello from tlstest");
    assert_served(&host, &pki, None);
}

#[test]
fn a_key_others_can_read_is_refused_at_start() {
    let pki = Pki::new();
    for (mode, who) in [(0o644, "all users"), (0o640, "its group")] {
        std::fs::set_permissions(pki.server_key(), std::fs::Permissions::from_mode(mode))
            .expect("chmod");
        let out = HostStart::new().config(config(&pki, "")).run();
        assert!(!out.status.success(), "started with a key of mode {mode:o}");
        let expected = format!(
            "refusing to read key {}: it is readable by {who} (mode {mode:o})",
            pki.server_key().display()
        );
        assert!(out.stderr.contains(&expected), "{}", out.stderr);
    }
}

#[test]
fn a_certificate_others_can_change_is_refused_at_start() {
    let pki = Pki::new();
    std::fs::set_permissions(pki.server_cert(), std::fs::Permissions::from_mode(0o666))
        .expect("chmod");
    let out = HostStart::new().config(config(&pki, "")).run();
    assert!(!out.status.success());
    let expected = format!(
        "refusing to read certificate {}: file {} is writable by all users (mode 666)",
        pki.server_cert().display(),
        pki.server_cert().display()
    );
    assert!(out.stderr.contains(&expected), "{}", out.stderr);
}

#[test]
fn with_plain_off_only_tls_is_served() {
    let pki = Pki::new();
    let host = HostStart::new()
        .config(config(&pki, "plain = false\n"))
        .without_listen_arg()
        .spawn();
    assert_eq!(host.addr(), host.tls_addr());
    assert_served(&host, &pki, None);
    // The serving process got no plain listener (it logs `addr=` for one).
    wait_for_log(&host, "serving tls=127.0.0.1:");
    assert!(
        !host.stderr().contains("serving addr="),
        "{}",
        host.stderr()
    );
    let out = HostStart::new()
        .config(config(&pki, "plain = false\n"))
        .run();
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("`[tls] plain = false`"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_reload_that_changes_tls_is_refused_and_tls_serves_on() {
    let pki = Pki::new();
    let host = host(&pki, "");
    let changed = config(&pki, "handshake_timeout_secs = 3\n");
    std::fs::write(host.config_file(), changed).expect("rewrite config");
    let out = host.reload();
    assert!(!out.status.success(), "reload accepted a new [tls]");
    assert!(out.stderr.contains("[tls] changed"), "{}", out.stderr);
    // A reload with [tls] as it was goes through.
    std::fs::write(host.config_file(), config(&pki, "")).expect("rewrite config");
    let out = host.reload();
    assert!(out.status.success(), "{}\n{}", out.stderr, host.stderr());
    assert_served(&host, &pki, None);
    // And a serving process started after it serves TLS as before.
    let first = host.serving_pid();
    // SAFETY: kill(2) on the host's serving process, our grandchild.
    assert_eq!(
        unsafe { libc::kill(first as libc::pid_t, libc::SIGKILL) },
        0
    );
    assert_served(&host, &pki, None);
}

#[test]
fn the_tls_listener_outlives_a_crashed_serving_process() {
    let pki = Pki::new();
    let host = host(&pki, "");
    assert_served(&host, &pki, None);
    let first = host.serving_pid();
    // SAFETY: kill(2) on the host's serving process, our grandchild.
    assert_eq!(
        unsafe { libc::kill(first as libc::pid_t, libc::SIGKILL) },
        0
    );
    // Connecting at once: the socket stays open in the supervisor, and the
    // handshake waits in the backlog for the next serving process.
    assert_served(&host, &pki, None);
    assert_ne!(host.serving_pid(), first);
}

#[test]
fn a_tls_connection_moves_off_a_thread_a_hook_holds_and_is_served_on() {
    let pki = Pki::new();
    // One serving thread: the TLS connection shares it with the stalled
    // call, and moves to the spare thread.
    let host = HostStart::new()
        .config(format!(
            "server_name = \"tlstest\"\nworker_threads = 1\n{}{}{}",
            plugin_entry("hello"),
            plugin_entry("crashkit"),
            pki.tls_table("")
        ))
        .spawn();
    let mut tls = TlsConn::connect(host.tls_addr(), &pki.ca_cert(), None).expect("handshake");
    assert_eq!(tls.line().expect("greeting"), "MSG Welcome aboard !");
    assert_eq!(tls.ask("HELLO").expect("reply"), "MSG Hello from tlstest");
    // Fast calls earn STALL its place inline; then one stalls.
    let (mut stuck, _) = Conn::open(host.addr());
    stuck.make_inline("STALL 0", "MSG stalled 0", "crashkit", 4);
    let sent = Instant::now();
    stuck.send("STALL 3000");
    wait_for_log(&host, "its waiting connections move to thread 1");
    // The session goes on over the moved socket, during the stall.
    for _ in 0..3 {
        assert_eq!(tls.ask("HELLO").expect("reply"), "MSG Hello from tlstest");
    }
    let served = sent.elapsed();
    assert!(
        served < Duration::from_millis(2000),
        "the TLS client was served {served:?} after the stall began, not during it"
    );
    assert_eq!(stuck.line(), "MSG stalled 3000");
    assert_eq!(tls.ask("HELLO").expect("reply"), "MSG Hello from tlstest");
    println!("TLS connection served {served:?} after the stall began");
}
