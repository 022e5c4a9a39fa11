//! The `[tls]` certificate, key and client CA files: opened, checked like
//! the config and plugin libraries, read once by the supervisor, and handed
//! to each serving process through a sealed in-memory file rather than a
//! path, so that the key never needs to be readable anywhere else.
//!
//! The files are always trust-checked, whatever `strict_modes` says: whoever
//! can replace the certificate or the CA chooses whom clients, or the host,
//! trust. The key must be readable by this user alone.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;
use crate::plugins::escape;
use crate::plugins::regular_file::{self, OpenError};
use crate::plugins::trust::{self, TrustError};

/// Largest certificate, key or CA file read: a long chain or a CA bundle
/// is a few hundred KiB.
pub const MAX_PEM_BYTES: u64 = 1 << 20;

/// Why the TLS files cannot be used. Each names the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    #[error("[tls] {key} {}: {error}", escape::path(file))]
    Open {
        key: &'static str,
        file: PathBuf,
        error: OpenError,
    },
    #[error("[tls] {key} {}: cannot read it: {error}", escape::path(file))]
    Read {
        key: &'static str,
        file: PathBuf,
        error: io::Error,
    },
    #[error(
        "[tls] {key} {}: it is {size} bytes, more than such a file may be ({MAX_PEM_BYTES})",
        escape::path(file)
    )]
    TooLarge {
        key: &'static str,
        file: PathBuf,
        size: u64,
    },
    #[error(
        "[tls] refusing to read {key} {}: {reason}; only this user or root may be able to \
         change it",
        escape::path(file)
    )]
    Untrusted {
        key: &'static str,
        file: PathBuf,
        reason: TrustError,
    },
    #[error(
        "[tls] refusing to read key {}: it is readable by {by} (mode {mode:o}); a private key \
         must be readable by its owner alone (chmod 600)",
        escape::path(file)
    )]
    KeyReadable {
        file: PathBuf,
        by: &'static str,
        mode: u32,
    },
    #[error("[tls] {key} {}: {message}", escape::path(file))]
    Invalid {
        key: &'static str,
        file: PathBuf,
        message: String,
    },
}

/// The contents of the three files, as read and checked: PEM text.
#[derive(Debug, Clone)]
pub struct Material {
    pub certificate: Vec<u8>,
    pub key: Vec<u8>,
    /// Empty: no client certificate is asked for.
    pub client_ca: Vec<u8>,
}

/// What a serving process builds its acceptor from.
pub struct Parsed {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub client_roots: Option<Arc<rustls::RootCertStore>>,
}

impl Material {
    /// Reads the files `tls` names, refusing untrusted ones and a key that
    /// others can read, and checks that they parse.
    pub fn load(tls: &TlsConfig) -> Result<Material, TlsFileError> {
        let material = Material {
            certificate: read("certificate", &tls.certificate)?,
            key: read("key", &tls.key)?,
            client_ca: match &tls.client_ca {
                Some(file) => read("client_ca", file)?,
                None => Vec::new(),
            },
        };
        material.parse(tls)?;
        Ok(material)
    }

    /// The certificates, key and client roots; `tls` names the files for
    /// messages.
    pub fn parse(&self, tls: &TlsConfig) -> Result<Parsed, TlsFileError> {
        let invalid = |key, file: &Path, message: String| TlsFileError::Invalid {
            key,
            file: file.to_owned(),
            message,
        };
        let chain = CertificateDer::pem_slice_iter(&self.certificate)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("certificate", &tls.certificate, e.to_string()))?;
        if chain.is_empty() {
            return Err(invalid(
                "certificate",
                &tls.certificate,
                "no PEM certificate (BEGIN CERTIFICATE) in it".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&self.key)
            .map_err(|e| invalid("key", &tls.key, format!("no usable PEM private key: {e}")))?;
        let client_roots = match &tls.client_ca {
            None => None,
            Some(file) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(&self.client_ca) {
                    let cert = cert.map_err(|e| invalid("client_ca", file, e.to_string()))?;
                    roots
                        .add(cert)
                        .map_err(|e| invalid("client_ca", file, e.to_string()))?;
                }
                if roots.is_empty() {
                    return Err(invalid(
                        "client_ca",
                        file,
                        "no PEM certificate (BEGIN CERTIFICATE) in it".into(),
                    ));
                }
                Some(Arc::new(roots))
            }
        };
        Ok(Parsed {
            chain,
            key,
            client_roots,
        })
    }

    /// Puts the material in a sealed in-memory file (`memfd`) for serving
    /// processes to read: no path to it exists, and it cannot be changed.
    pub fn seal(&self) -> io::Result<OwnedFd> {
        // SAFETY: a NUL-terminated name and flags; returns a new descriptor.
        let fd = unsafe {
            libc::memfd_create(
                c"linehost-tls".as_ptr(),
                libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a descriptor just created, owned by nothing else.
        let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        for part in [&self.certificate, &self.key, &self.client_ca] {
            file.write_all(&(part.len() as u64).to_le_bytes())?;
            file.write_all(part)?;
        }
        let seals =
            libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
        // SAFETY: fcntl on our own descriptor; it touches no memory of ours.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(file.into())
    }

    /// Reads what [`Material::seal`] wrote, from descriptor `fd` inherited
    /// from the supervisor. Reads by offset: the file position is shared
    /// with the supervisor and every earlier serving process.
    pub fn unseal(fd: RawFd) -> io::Result<Material> {
        // SAFETY: the supervisor passed this descriptor for this process to own.
        let file = unsafe { File::from_raw_fd(fd) };
        let size = file.metadata()?.len();
        if size > 3 * (MAX_PEM_BYTES + 8) {
            return Err(io::Error::other("TLS material larger than it can be"));
        }
        let mut all = vec![0; size as usize];
        file.read_exact_at(&mut all, 0)?;
        let mut rest = all.as_slice();
        let mut part = || -> io::Result<Vec<u8>> {
            let short = || io::Error::other("TLS material cut short");
            let (len, after) = rest.split_first_chunk::<8>().ok_or_else(short)?;
            let len = usize::try_from(u64::from_le_bytes(*len)).map_err(|_| short())?;
            let (bytes, after) = after.split_at_checked(len).ok_or_else(short)?;
            rest = after;
            Ok(bytes.to_vec())
        };
        Ok(Material {
            certificate: part()?,
            key: part()?,
            client_ca: part()?,
        })
    }
}

/// Opens `file` once as a regular file, trust-checks it through that
/// handle, refuses a key others can read, and reads it, bounded.
fn read(key: &'static str, file: &Path) -> Result<Vec<u8>, TlsFileError> {
    let opened = regular_file::open(file).map_err(|error| TlsFileError::Open {
        key,
        file: file.to_owned(),
        error,
    })?;
    let read_error = |error| TlsFileError::Read {
        key,
        file: file.to_owned(),
        error,
    };
    let meta = opened.metadata().map_err(read_error)?;
    trust::check(file, &opened).map_err(|reason| TlsFileError::Untrusted {
        key,
        file: file.to_owned(),
        reason,
    })?;
    let mode = meta.mode() & 0o7777;
    if key == "key" && mode & 0o044 != 0 {
        return Err(TlsFileError::KeyReadable {
            file: file.to_owned(),
            by: if mode & 0o004 != 0 {
                "all users"
            } else {
                "its group"
            },
            mode,
        });
    }
    if meta.len() > MAX_PEM_BYTES {
        return Err(TlsFileError::TooLarge {
            key,
            file: file.to_owned(),
            size: meta.len(),
        });
    }
    let mut bytes = Vec::new();
    (&opened)
        .take(MAX_PEM_BYTES)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    Ok(bytes)
}
