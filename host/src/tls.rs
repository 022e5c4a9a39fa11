//! The TLS side of the `[tls]` listener: the acceptor a serving process
//! builds from the material its supervisor read, and the handshake of one
//! connection, bounded in time, with the subject of the client's
//! certificate when it presented one.
//!
//! A failed handshake is one hostile or confused client: the connection is
//! closed and logged by the caller, and nothing else happens.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::TlsConfig;
use crate::tls_files::{Material, TlsFileError};

/// Why the acceptor could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AcceptorError {
    #[error(transparent)]
    Files(#[from] TlsFileError),
    #[error("[tls] client_ca: {0}")]
    ClientCa(String),
    #[error("[tls] certificate and key: {0}")]
    Certificate(rustls::Error),
    #[error("[tls] cannot hand the certificate and key to the serving process: {0}")]
    Seal(io::Error),
}

/// What the supervisor does with `[tls]` before serving (and `--check`):
/// reads and checks the files, builds an acceptor from them once to find
/// what is wrong now rather than in each serving process, and seals the
/// material for the serving processes.
pub fn prepare(config: &TlsConfig) -> Result<OwnedFd, AcceptorError> {
    let material = Material::load(config)?;
    Tls::new(&material, config)?;
    material.seal().map_err(AcceptorError::Seal)
}

/// What a serving thread needs to accept TLS connections.
#[derive(Clone)]
pub struct Tls {
    pub acceptor: TlsAcceptor,
    pub handshake_timeout: Duration,
}

impl Tls {
    /// Builds the acceptor: TLS 1.2 and 1.3 with ring's cipher suites; a
    /// client certificate chaining to `client_ca` is required when one is
    /// configured.
    pub fn new(material: &Material, config: &TlsConfig) -> Result<Tls, AcceptorError> {
        let parsed = material.parse(config)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(AcceptorError::Certificate)?;
        let builder = match parsed.client_roots {
            None => builder.with_no_client_auth(),
            Some(roots) => {
                let verifier =
                    rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider)
                        .build()
                        .map_err(|e| AcceptorError::ClientCa(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let server = builder
            .with_single_cert(parsed.chain, parsed.key)
            .map_err(AcceptorError::Certificate)?;
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            handshake_timeout: config.handshake_timeout,
        })
    }

    /// Runs the server side of the handshake on `stream`, for at most the
    /// handshake timeout. Returns the stream and the subject of the client
    /// certificate, if one was presented (and, being verified, required).
    pub async fn handshake(
        &self,
        stream: TcpStream,
    ) -> io::Result<(TlsStream<TcpStream>, Option<Arc<str>>)> {
        let stream = tokio::time::timeout(self.handshake_timeout, self.acceptor.accept(stream))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no TLS handshake within {} s",
                        self.handshake_timeout.as_secs()
                    ),
                )
            })??;
        let subject = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|cert| subject(cert.as_ref()));
        Ok((stream, subject))
    }
}

/// The subject of a DER certificate as RFC 4514 text (`CN=alice,O=Example`),
/// control characters escaped; the verifier has already parsed it, so a
/// failure here is only said, not fatal.
pub fn subject(der: &[u8]) -> Arc<str> {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => {
            let text = cert.subject().to_string();
            crate::plugins::escape::text(&text).to_string().into()
        }
        Err(_) => "(unreadable subject)".into(),
    }
}
