//! Telling a service manager when the host serves and when it stops, by
//! systemd's notification protocol (sd_notify(3)): one datagram of
//! `KEY=VALUE` lines to the unix socket named in `$NOTIFY_SOCKET`.
//!
//! With `Type=notify`, systemd counts the host as started only once it
//! says `READY=1`, which it does once the serving process has loaded the
//! plugins: units ordered after it, and `systemctl start`, wait for a host
//! that serves rather than for a process that exists, and a host whose
//! plugins refuse to start fails its start instead of seeming up.
//!
//! Without `$NOTIFY_SOCKET` (not started by systemd, or by a unit of
//! another `Type=`) nothing is sent. A message that cannot be sent is
//! logged and the host serves on: whether the manager hears it or not, the
//! clients are served.

use std::ffi::OsStr;
use std::io;
use std::net::SocketAddr;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{self, UnixDatagram};
use std::path::Path;

use tracing::warn;

/// The variable systemd sets for a service that may notify it.
const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Says the host serves on `addr`; `systemctl status` shows the status line.
pub fn ready(addr: SocketAddr) {
    send(&format!("READY=1\nSTATUS=listening on {addr}\n"));
}

/// Says the host is stopping, so the manager does not take the time it
/// takes to close connections for a hang.
pub fn stopping() {
    send("STOPPING=1\nSTATUS=stopping\n");
}

fn send(message: &str) {
    let Some(socket) = std::env::var_os(NOTIFY_SOCKET) else {
        return;
    };
    if let Err(e) = send_to(&socket, message) {
        warn!(
            socket = %socket.to_string_lossy(),
            "cannot tell the service manager {:?}: {e}",
            message.lines().next().unwrap_or_default()
        );
    }
}

fn send_to(socket: &OsStr, message: &str) -> io::Result<()> {
    // A path, or an abstract socket name after `@` (sd_notify(3)).
    let addr = match socket.as_bytes() {
        [b'@', name @ ..] => net::SocketAddr::from_abstract_name(name)?,
        [b'/', ..] => net::SocketAddr::from_pathname(Path::new(socket))?,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "$NOTIFY_SOCKET is neither an absolute path nor an abstract name (@...)",
            ));
        }
    };
    let sender = UnixDatagram::unbound()?;
    // Sent from the thread that supervises: a manager that does not read
    // must not hold it up.
    sender.set_nonblocking(true)?;
    let sent = sender.send_to_addr(message.as_bytes(), &addr)?;
    if sent == message.len() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("sent {sent} of {} bytes", message.len()),
        ))
    }
}
