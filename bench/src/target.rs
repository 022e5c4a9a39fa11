//! Resolving the server address, and keeping load on this machine.

use std::net::SocketAddr;

use anyhow::{Context as _, bail};

/// Resolves `addr` (`host:port`) to one socket address.
///
/// Unless `allow_remote` is set, only loopback addresses are accepted: these
/// tools generate heavy traffic, and a typo must not aim it at another machine.
pub async fn resolve(addr: &str, allow_remote: bool) -> anyhow::Result<SocketAddr> {
    let mut found = tokio::net::lookup_host(addr)
        .await
        .with_context(|| format!("resolving {addr}"))?;
    let Some(first) = found.next() else {
        bail!("{addr} resolves to no address");
    };
    if !allow_remote && !first.ip().is_loopback() {
        bail!("{addr} is not a loopback address; pass --allow-remote to load another machine");
    }
    Ok(first)
}

/// Opens a TCP connection with Nagle off, bounded by `timeout`.
///
/// Nagle would hold back the small request lines and turn latency figures
/// into a measure of the delayed-ACK timer.
pub async fn connect(
    addr: SocketAddr,
    timeout: std::time::Duration,
) -> std::io::Result<tokio::net::TcpStream> {
    let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}
