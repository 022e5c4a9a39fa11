//! The admin commands, `AUTH` and `RELOAD`, for one connection: answered
//! to clients that admin access admits (`crate::admin`), and passed on as
//! any other line, so answered `MSG Command not found` unless a plugin
//! serves them, for everyone else.

use std::net::IpAddr;

use abi_stable::std_types::RString;
use tracing::{info, warn};

use crate::reply::Reply;
use crate::shared::Shared;

/// One connection's standing with admin access.
#[derive(Debug, Default)]
pub struct Access {
    /// The client's address (after a PROXY header, the client's own).
    ip: Option<IpAddr>,
    /// It sent `AUTH` with the secret.
    authenticated: bool,
}

impl Access {
    /// For a client whose address is `peer` (`IP:PORT`).
    pub fn new(peer: &str) -> Access {
        Access {
            ip: peer.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()),
            authenticated: false,
        }
    }

    /// Whether this client may use admin commands now. Read from the
    /// config in force, which a reload may have changed.
    pub fn granted(&self, shared: &Shared) -> bool {
        shared
            .admin
            .load()
            .as_ref()
            .is_some_and(|admin| self.authenticated || self.ip.is_some_and(|ip| admin.allows(ip)))
    }
}

/// Whether `line` may be an admin command: checked for every line, so
/// nothing but a comparison of its first bytes.
#[inline]
pub fn is_one(line: &[u8]) -> bool {
    line.starts_with(b"AUTH ") || line == b"RELOAD"
}

/// Answers `line` into `out` if it is an admin command this client may
/// use; false if it is not, and the line goes on as any other.
pub async fn answer(line: &[u8], access: &mut Access, shared: &Shared, out: &mut RString) -> bool {
    if let Some(given) = line.strip_prefix(b"AUTH ") {
        let admin = shared.admin.load();
        let Some(admin) = admin.as_ref().filter(|a| a.has_secret()) else {
            return false;
        };
        let given = std::str::from_utf8(given).unwrap_or_default();
        if !admin.authenticates(given) {
            // Never the line: a near miss is most of the secret.
            warn!(peer = ?access.ip, "AUTH with a wrong secret");
            return false;
        }
        access.authenticated = true;
        Reply::Authenticated.write_to(out);
        return true;
    }
    if line != b"RELOAD" || !access.granted(shared) {
        return false;
    }
    info!(peer = ?access.ip, "RELOAD asked by an admin client");
    let config_file = shared.config_file.clone();
    let outcome =
        tokio::task::spawn_blocking(move || crate::reload_socket::request(&config_file)).await;
    let message = match outcome {
        Ok(Ok(Ok(_))) => {
            Reply::Reloaded.write_to(out);
            return true;
        }
        Ok(Ok(Err(e))) => e,
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    let message = message.replace('\n', "; ");
    Reply::ReloadFailed { message: &message }.write_to(out);
    true
}
