//! `--tls`: the connection to the server goes through TLS.
//!
//! The rest of the client reads and writes a `TcpStream` from two threads
//! (one reading replies, one sending requests), which a TLS session cannot
//! be split into. So, as stunnel does, the client completes the handshake
//! itself, then relays between the TLS connection and one end of a
//! loopback socket pair it made, on a thread of its own, and hands the
//! other end to the rest of the client. A half-close on that end becomes
//! a TLS close_notify, and the server's close ends the relay.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::TlsConnector;

use crate::exit::Failure;

/// What `--tls` and its options say.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// PEM CA certificates to trust; `None`: the system's trusted roots.
    pub ca: Option<PathBuf>,
    /// PEM client certificate (chain) and key, to present if asked.
    pub client: Option<(PathBuf, PathBuf)>,
    /// The name the server's certificate must carry: a DNS name or an IP.
    pub server_name: String,
}

/// Runs the TLS handshake on `tcp` (bounded by `timeout`) and returns the
/// local end of the relay, which the client then uses as it would the
/// server's socket. `shown` is the address, for messages.
pub fn wrap(
    tcp: TcpStream,
    options: &TlsOptions,
    timeout: Duration,
    shown: &str,
) -> Result<TcpStream, Failure> {
    let fail = |reason: String| Failure::CannotConnect {
        addr: shown.to_owned(),
        reason,
    };
    let config = client_config(options).map_err(|e| fail(e.to_string()))?;
    let name = ServerName::try_from(options.server_name.clone())
        .map_err(|e| fail(format!("server name {:?}: {e}", options.server_name)))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(format!("cannot start the TLS relay: {e}")))?;
    let tls = runtime
        .block_on(async {
            tcp.set_nonblocking(true)?;
            let tcp = tokio::net::TcpStream::from_std(tcp)?;
            let connector = TlsConnector::from(Arc::new(config));
            match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
                Ok(result) => result,
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no TLS handshake within {}s", timeout.as_secs_f64()),
                )),
            }
        })
        .map_err(|e| fail(format!("TLS handshake failed: {e}")))?;
    let (near, far) =
        loopback_pair().map_err(|e| fail(format!("cannot start the TLS relay: {e}")))?;
    std::thread::Builder::new()
        .name("tls-relay".into())
        .spawn(move || {
            runtime.block_on(async move {
                let mut tls = tls;
                let relayed = async {
                    far.set_nonblocking(true)?;
                    let mut far = tokio::net::TcpStream::from_std(far)?;
                    tokio::io::copy_bidirectional(&mut far, &mut tls).await
                };
                match relayed.await {
                    Ok(_) => {}
                    // A server that closes without close_notify ends the
                    // session as well as one that sends it.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {}
                    Err(e) => eprintln!("linehost-cli: TLS: {e}"),
                }
            })
        })
        .map_err(|e| fail(format!("cannot start the TLS relay: {e}")))?;
    Ok(near)
}

/// Both ends of a loopback TCP connection made here. The accepted end is
/// checked to be the one connected, so no other local process can take
/// the place of the client's end.
fn loopback_pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let near = TcpStream::connect(listener.local_addr()?)?;
    let (far, from) = listener.accept()?;
    if from != near.local_addr()? {
        return Err(io::Error::other("another process connected to the relay"));
    }
    near.set_nodelay(true)?;
    far.set_nodelay(true)?;
    Ok((near, far))
}

/// Why the TLS options could not be used.
#[derive(Debug, thiserror::Error)]
enum ConfigError {
    #[error("{}: {message}", file.display())]
    File { file: PathBuf, message: String },
    #[error("no trusted CA certificates: {0}; name one with --ca")]
    NoRoots(String),
    #[error("{0}")]
    Tls(#[from] rustls::Error),
}

fn client_config(options: &TlsOptions) -> Result<rustls::ClientConfig, ConfigError> {
    let file_error = |file: &Path, message: String| ConfigError::File {
        file: file.to_owned(),
        message,
    };
    let mut roots = rustls::RootCertStore::empty();
    match &options.ca {
        Some(ca) => {
            for cert in certificates(ca)? {
                roots.add(cert).map_err(|e| file_error(ca, e.to_string()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map_or("the system has none".to_owned(), |e| e.to_string());
                return Err(ConfigError::NoRoots(why));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    Ok(match &options.client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = certificates(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| file_error(key, format!("no usable PEM private key: {e}")))?;
            builder.with_client_auth_cert(chain, key)?
        }
    })
}

/// The PEM certificates in `file`, at least one.
fn certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let file_error = |message: String| ConfigError::File {
        file: file.to_owned(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(file)
        .map_err(|e| file_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(file_error(
            "no PEM certificate (BEGIN CERTIFICATE) in it".into(),
        ));
    }
    Ok(certs)
}
