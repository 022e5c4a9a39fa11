//! Opening the TCP connection, with a timeout and a one-line reason on failure.

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::exit::Failure;

/// Connects to `host:port`, trying each resolved address in turn, each
/// bounded by `timeout`.
pub fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, Failure> {
    let shown = display_addr(host, port);
    let fail = |reason: String| Failure::CannotConnect {
        addr: shown.clone(),
        reason,
    };
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| fail(format!("cannot resolve host: {e}")))?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(stream) => {
                // Requests are single short lines; waiting to coalesce them
                // only adds latency to interactive use.
                stream
                    .set_nodelay(true)
                    .map_err(|e| fail(describe(&e, timeout)))?;
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(fail(match last {
        Some(e) => describe(&e, timeout),
        None => "no address found".into(),
    }))
}

/// `host:port`, with brackets around IPv6 literals.
pub fn display_addr(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A short lower-case reason, as a person would say it; the OS text
/// ("Connection refused (os error 111)") is noisier than it needs to be.
fn describe(e: &io::Error, timeout: Duration) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            format!("no answer within {}s", timeout.as_secs_f64())
        }
        io::ErrorKind::HostUnreachable => "host unreachable".into(),
        io::ErrorKind::NetworkUnreachable => "network unreachable".into(),
        io::ErrorKind::AddrNotAvailable => "address not available".into(),
        _ => e.to_string(),
    }
}
