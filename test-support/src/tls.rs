//! Certificates for TLS tests, made at test time and never committed: a
//! CA, a server certificate for `localhost` and `127.0.0.1` signed by it, a
//! client certificate signed by it, and a client certificate signed by
//! another CA. Written to a private (0700) directory, keys 0600. Also a
//! blocking TLS client that talks to the host.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::WAIT;

/// The subject of [`Pki::client_cert`], as the host logs it.
pub const CLIENT_SUBJECT: &str = "CN=alice, O=linehost tests";

/// A test PKI in a private temporary directory.
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// Makes every certificate and key; panics if it cannot.
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod 700");
        let pki = Pki { dir };
        let ca = pki.ca("linehost test CA", "ca");
        let other = pki.ca("some other CA", "other-ca");
        pki.leaf(
            &ca,
            "server",
            "localhost",
            None,
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        pki.leaf(
            &ca,
            "client",
            "alice",
            Some("linehost tests"),
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        pki.leaf(
            &other,
            "stranger",
            "mallory",
            None,
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        pki
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `NAME.pem` (a certificate) or `NAME.key` in the directory.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// The CA that signed the server and client certificates.
    pub fn ca_cert(&self) -> PathBuf {
        self.path("ca.pem")
    }

    pub fn server_cert(&self) -> PathBuf {
        self.path("server.pem")
    }

    pub fn server_key(&self) -> PathBuf {
        self.path("server.key")
    }

    /// Signed by [`Pki::ca_cert`], subject [`CLIENT_SUBJECT`].
    pub fn client_cert(&self) -> (PathBuf, PathBuf) {
        (self.path("client.pem"), self.path("client.key"))
    }

    /// A client certificate signed by another CA.
    pub fn stranger_cert(&self) -> (PathBuf, PathBuf) {
        (self.path("stranger.pem"), self.path("stranger.key"))
    }

    /// A `[tls]` table for the host: this PKI's server certificate, and
    /// `extra` lines (`client_ca = ...`, `handshake_timeout_secs = 1`).
    pub fn tls_table(&self, extra: &str) -> String {
        format!(
            "[tls]\nlisten = \"127.0.0.1:0\"\ncertificate = {:?}\nkey = {:?}\n{extra}",
            self.server_cert(),
            self.server_key()
        )
    }

    fn ca(&self, name: &str, file: &str) -> Issuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        self.write(&format!("{file}.pem"), &cert.pem(), 0o644);
        Issuer::new(params, key)
    }

    fn leaf(
        &self,
        issuer: &Issuer<'static, KeyPair>,
        file: &str,
        cn: &str,
        org: Option<&str>,
        usage: ExtendedKeyUsagePurpose,
    ) {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, cn);
        if let Some(org) = org {
            params
                .distinguished_name
                .push(DnType::OrganizationName, org);
        }
        params.extended_key_usages.push(usage);
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, issuer).expect("leaf certificate");
        self.write(&format!("{file}.pem"), &cert.pem(), 0o644);
        self.write(&format!("{file}.key"), &key.serialize_pem(), 0o600);
    }

    fn write(&self, file: &str, text: &str, mode: u32) {
        let path = self.path(file);
        std::fs::write(&path, text).expect("write PEM");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

/// A blocking TLS connection to the host, reading lines.
pub struct TlsConn {
    stream: BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>,
}

impl TlsConn {
    /// Connects to `addr`, trusting `ca`, presenting `client` (certificate
    /// and key files) if given, and completes the handshake. Reads and
    /// writes are bounded by [`WAIT`].
    pub fn connect(
        addr: SocketAddr,
        ca: &Path,
        client: Option<(PathBuf, PathBuf)>,
    ) -> std::io::Result<TlsConn> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).expect("read CA") {
            roots.add(cert.expect("CA PEM")).expect("add CA");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots);
        let config = match client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(&cert)
                    .expect("read client certificate")
                    .collect::<Result<Vec<_>, _>>()
                    .expect("client certificate PEM");
                let key = PrivateKeyDer::from_pem_file(&key).expect("client key");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client certificate")
            }
        };
        let name = ServerName::try_from("localhost").expect("server name");
        let conn =
            rustls::ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(WAIT))?;
        tcp.set_write_timeout(Some(WAIT))?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(TlsConn {
            stream: BufReader::new(stream),
        })
    }

    /// Sends `line` and a line ending.
    pub fn send(&mut self, line: &str) -> std::io::Result<()> {
        let stream = self.stream.get_mut();
        stream.write_all(format!("{line}\r\n").as_bytes())?;
        stream.flush()
    }

    /// The next line, without its ending; an error if the connection
    /// ended or failed first.
    pub fn line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        if self.stream.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }

    /// Sends `line` and returns the reply.
    pub fn ask(&mut self, line: &str) -> std::io::Result<String> {
        self.send(line)?;
        self.line()
    }
}
