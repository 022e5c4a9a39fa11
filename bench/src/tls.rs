//! `--tls`: load over TLS, as the host's `[tls]` listener or Redis's
//! `tls-port` serve it. The handshake is part of opening a connection; a
//! connection is then a [`Stream`], plain or TLS.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// How to open TLS connections: whom to trust, what to present, and the
/// name the server's certificate must carry.
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("name", &self.name)
            .finish()
    }
}

impl TlsClient {
    /// Trusts the PEM CA certificates in `ca`; presents `client` (PEM
    /// certificate and key files) if given.
    pub fn new(
        ca: &Path,
        client: Option<(PathBuf, PathBuf)>,
        server_name: &str,
    ) -> anyhow::Result<TlsClient> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in certificates(ca)? {
            roots
                .add(cert)
                .with_context(|| format!("--ca {}", ca.display()))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let config = match client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = certificates(&cert)?;
                let key = PrivateKeyDer::from_pem_file(&key)
                    .with_context(|| format!("--key {}", key.display()))?;
                builder.with_client_auth_cert(chain, key)?
            }
        };
        let name = ServerName::try_from(server_name.to_owned())
            .with_context(|| format!("server name {server_name:?}"))?;
        Ok(TlsClient {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }

    /// The handshake on `tcp`, bounded by `timeout`.
    pub async fn connect(&self, tcp: TcpStream, timeout: Duration) -> io::Result<Stream> {
        let tls = tokio::time::timeout(timeout, self.connector.connect(self.name.clone(), tcp))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

fn certificates(file: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificates from {}", file.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "no PEM certificate in {}",
        file.display()
    );
    Ok(certs)
}

/// The host part of `host:port` (brackets of an IPv6 literal removed):
/// the default name to check the server's certificate against.
pub fn host_part(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// A connection to the server.
pub enum Stream {
    Plain(TcpStream),
    /// Boxed: the session's buffers are large.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Writes all of `bytes` and sends them: a TLS session may hold the
    /// last record until flushed.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes).await?;
        if let Stream::Tls(tls) = self {
            tls.flush().await?;
        }
        Ok(())
    }

    /// Reads without waiting from the socket itself: for telling whether an
    /// idle server has closed or written to the connection.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.try_read(buf),
            Stream::Tls(s) => s.get_ref().0.try_read(buf),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_server_name_is_the_host_part() {
        assert_eq!(host_part("127.0.0.1:1991"), "127.0.0.1");
        assert_eq!(host_part("localhost:6380"), "localhost");
        assert_eq!(host_part("[::1]:1991"), "::1");
    }
}
