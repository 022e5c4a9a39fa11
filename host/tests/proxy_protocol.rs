//! The PROXY protocol header a load balancer sends before the client's own
//! bytes, over real sockets against the real host: with `proxy_protocol`
//! set, plugins and logs see the client's address from the header; without
//! it, a header is an ordinary request line.

use std::net::Shutdown;
use std::time::{Duration, Instant};

use test_support::{Conn, HostProcess, HostStart, WAIT, plugin_entry, wait_until};

/// A host with testkit, whose `WHO` answers the peer address plugins see.
fn host(proxy_protocol: Option<&str>) -> HostProcess {
    let key = proxy_protocol.map_or(String::new(), |v| format!("proxy_protocol = \"{v}\"\n"));
    HostStart::new()
        .config(format!(
            "server_name = \"proxied\"\n{key}{}",
            plugin_entry("testkit")
        ))
        .spawn()
}

const V1: &[u8] = b"PROXY TCP4 127.0.0.5 127.0.0.1 40000 1991\r\n";

/// A v2 header from `source` (IPv4 or IPv6) with `tlvs` after the addresses.
fn v2(source: std::net::SocketAddr, tlvs: &[u8]) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21); // version 2, PROXY
    let mut addresses = Vec::new();
    match source {
        std::net::SocketAddr::V4(a) => {
            h.push(0x11); // IPv4, stream
            addresses.extend_from_slice(&a.ip().octets());
            addresses.extend_from_slice(&[127, 0, 0, 1]);
        }
        std::net::SocketAddr::V6(a) => {
            h.push(0x21); // IPv6, stream
            addresses.extend_from_slice(&a.ip().octets());
            addresses.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
        }
    }
    addresses.extend_from_slice(&source.port().to_be_bytes());
    addresses.extend_from_slice(&1991u16.to_be_bytes());
    let length = u16::try_from(addresses.len() + tlvs.len()).expect("short header");
    h.extend_from_slice(&length.to_be_bytes());
    h.extend_from_slice(&addresses);
    h.extend_from_slice(tlvs);
    h
}

/// TLVs as HAProxy may send them: ALPN, authority, a unique id.
const TLVS: &[u8] = &[
    0x01, 0, 2, b'h', b'2', //
    0x02, 0, 9, b'l', b'i', b'n', b'e', b'.', b'h', b'o', b's', b't', //
    0x05, 0, 4, 1, 2, 3, 4,
];

/// What testkit's `WHO` says a connection's peer is.
fn who_peer(conn: &mut Conn) -> String {
    let who = conn.ask("WHO");
    who.strip_prefix("MSG peer=")
        .and_then(|rest| rest.split(" connection=").next())
        .unwrap_or_else(|| panic!("unexpected WHO reply {who:?}"))
        .to_owned()
}

/// Waits for the host to log `needle`; the log so far if it never does.
fn logged(host: &HostProcess, needle: &str) -> Result<(), String> {
    if wait_until(WAIT, || host.stderr().contains(needle)) {
        Ok(())
    } else {
        Err(host.stderr())
    }
}

#[test]
fn v1_header_gives_plugins_and_logs_the_client_address() {
    let host = host(Some("v1"));
    let mut c = Conn::connect(host.addr());
    // The request in the same write: bytes after the header stay for it.
    let mut first = V1.to_vec();
    first.extend_from_slice(b"WHO\r\n");
    c.send_raw(&first);
    assert_eq!(c.line(), "MSG Welcome aboard !");
    let who = c.line();
    assert!(
        who.starts_with("MSG peer=127.0.0.5:40000 connection="),
        "{who:?}"
    );
    let balancer = c.stream().local_addr().unwrap();
    let line = format!("peer=127.0.0.5:40000 proxy={balancer}");
    logged(&host, &line).unwrap_or_else(|log| panic!("no {line:?} in the log:\n{log}"));
}

#[test]
fn v2_header_with_tlvs_gives_the_client_address() {
    let host = host(Some("v2"));
    for source in ["127.0.0.5:40001", "[2001:db8::5]:40002"] {
        let mut c = Conn::connect(host.addr());
        let mut first = v2(source.parse().unwrap(), TLVS);
        first.extend_from_slice(b"ECHO after the header\r\n");
        c.send_raw(&first);
        assert_eq!(c.line(), "MSG Welcome aboard !");
        assert_eq!(c.line(), "MSG after the header");
        assert_eq!(who_peer(&mut c), source);
    }
}

#[test]
fn any_takes_either_version() {
    let host = host(Some("any"));
    let mut c = Conn::connect(host.addr());
    c.send_raw(V1);
    assert_eq!(c.line(), "MSG Welcome aboard !");
    assert_eq!(who_peer(&mut c), "127.0.0.5:40000");
    let mut c = Conn::connect(host.addr());
    c.send_raw(&v2("127.0.0.6:40003".parse().unwrap(), TLVS));
    assert_eq!(c.line(), "MSG Welcome aboard !");
    assert_eq!(who_peer(&mut c), "127.0.0.6:40003");
}

#[test]
fn a_header_split_over_several_writes_is_one_header() {
    let host = host(Some("any"));
    let v2 = v2("127.0.0.7:40004".parse().unwrap(), TLVS);
    // v1 cut after the space before its last port, where a parser that
    // does not wait for the line end refuses it; v2 inside its signature,
    // inside its fixed part and inside its TLVs.
    let v1_cut = V1.len() - "1991\r\n".len();
    let cases: [(&[u8], &[usize], &str); 2] = [
        (V1, &[3, v1_cut, V1.len() - 1], "127.0.0.5:40000"),
        (&v2, &[5, 14, v2.len() - 3], "127.0.0.7:40004"),
    ];
    for (header, cuts, client) in cases {
        let mut c = Conn::connect(host.addr());
        let mut from = 0;
        for &cut in cuts.iter().chain([&header.len()]) {
            c.send_raw(&header[from..cut]);
            from = cut;
            // Give the host time to read each piece on its own.
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(c.line(), "MSG Welcome aboard !", "{client}");
        assert_eq!(who_peer(&mut c), client);
    }
}

#[test]
fn a_truncated_header_closes_the_connection_with_a_log_line() {
    let host = host(Some("any"));
    for header in [V1.to_vec(), v2("127.0.0.5:1".parse().unwrap(), TLVS)] {
        let mut c = Conn::connect(host.addr());
        c.send_raw(&header[..header.len() - 4]);
        c.stream().shutdown(Shutdown::Write).unwrap();
        assert_eq!(c.try_line(), None, "no greeting without a header");
    }
    logged(
        &host,
        "closing connection: closed before a complete PROXY protocol header",
    )
    .unwrap_or_else(|log| panic!("{log}"));
}

#[test]
fn a_header_that_never_completes_is_given_up_after_a_timeout() {
    let host = host(Some("v1"));
    let mut stalled = Conn::connect(host.addr());
    stalled.send_raw(&V1[..20]);
    let start = Instant::now();
    // Meanwhile another client is served at once: the wait is the
    // stalled connection's own.
    let mut other = Conn::connect(host.addr());
    other.send_raw(V1);
    assert_eq!(other.line(), "MSG Welcome aboard !");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "held up by a stalled header for {:?}",
        start.elapsed()
    );
    assert_eq!(stalled.try_line(), None);
    // 5 s in the host; the upper bound is generous for a loaded machine.
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(15),
        "{waited:?}"
    );
    logged(&host, "no complete PROXY protocol header within 5s")
        .unwrap_or_else(|log| panic!("{log}"));
}

#[test]
fn garbage_or_the_wrong_version_closes_the_connection_with_a_log_line() {
    let v1_host = host(Some("v1"));
    let v2_host = host(Some("v2"));
    let long = {
        let mut l = b"PROXY TCP6 ".to_vec();
        l.resize(200, b'1');
        l
    };
    let bad_address = b"PROXY TCP4 127.0.0.300 127.0.0.1 1 2\r\n".to_vec();
    let cases: [(&HostProcess, Vec<u8>, &str); 6] = [
        (
            &v1_host,
            b"HELLO\r\n".to_vec(),
            "no PROXY protocol header (v1 expected)",
        ),
        (
            &v2_host,
            b"HELLO\r\n".to_vec(),
            "no PROXY protocol header (v2 expected)",
        ),
        (
            &v1_host,
            v2("127.0.0.5:1".parse().unwrap(), &[]),
            "no PROXY protocol header (v1 expected)",
        ),
        (
            &v2_host,
            V1.to_vec(),
            "no PROXY protocol header (v2 expected)",
        ),
        (&v1_host, long, "PROXY v1 header longer than 107 bytes"),
        (
            &v1_host,
            bad_address,
            "bad PROXY v1 header: Header contains invalid IP address for the source.",
        ),
    ];
    for (host, bytes, said) in cases {
        let mut c = Conn::connect(host.addr());
        c.send_raw(&bytes);
        assert!(c.is_closed(), "{said}: still open");
        let local = c.stream().local_addr().unwrap();
        logged(host, &format!("closing connection: {said} proxy={local}"))
            .unwrap_or_else(|log| panic!("{said}: not in the log:\n{log}"));
    }
    // Neither host greeted anyone.
    for host in [&v1_host, &v2_host] {
        assert!(!host.stderr().contains(" connected "), "{}", host.stderr());
    }
}

#[test]
fn without_the_key_a_header_is_an_ordinary_line() {
    let host = host(None);
    let (mut c, greeting) = Conn::open(host.addr());
    assert_eq!(greeting, "MSG Welcome aboard !");
    assert_eq!(
        c.ask(std::str::from_utf8(&V1[..V1.len() - 2]).unwrap()),
        "MSG Command not found"
    );
    let own = c.stream().local_addr().unwrap().to_string();
    assert_eq!(who_peer(&mut c), own);
}
