//! Readiness for systemd (`Type=notify`): the host says `READY=1` on the
//! socket named in `$NOTIFY_SOCKET` once it serves, `STOPPING=1` when told
//! to stop, and nothing at all if its plugins do not start.

use std::io::ErrorKind;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use test_support::{Conn, HostStart, WAIT, plugin_entry};

/// A socket standing in for systemd's, and the `$NOTIFY_SOCKET` naming it.
struct Manager {
    socket: UnixDatagram,
    name: String,
    _dir: tempfile::TempDir,
}

impl Manager {
    /// Listens on a path, as systemd does (`/run/systemd/notify`).
    fn at_path() -> Manager {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        Manager {
            socket,
            name: path.to_str().expect("UTF-8 temp path").to_owned(),
            _dir: dir,
        }
    }

    /// Listens on an abstract name, which `$NOTIFY_SOCKET` gives as `@name`.
    fn abstract_name() -> Manager {
        let name = format!("linehost-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract address");
        let socket = UnixDatagram::bind_addr(&addr).expect("bind the abstract notify socket");
        Manager {
            socket,
            name: format!("@{name}"),
            _dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The next message, waited for at most [`WAIT`].
    fn message(&self) -> String {
        self.socket.set_nonblocking(false).expect("blocking");
        self.socket.set_read_timeout(Some(WAIT)).expect("timeout");
        let mut buf = [0u8; 4096];
        match self.socket.recv(&mut buf) {
            Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            Err(e) => panic!("no message from the host within {WAIT:?}: {e}"),
        }
    }

    /// A message already waiting, if any, without waiting for one.
    fn pending(&self) -> Option<String> {
        self.socket.set_nonblocking(true).expect("non-blocking");
        let mut buf = [0u8; 4096];
        match self.socket.recv(&mut buf) {
            Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e) if e.kind() == ErrorKind::WouldBlock => None,
            Err(e) => panic!("reading the notify socket: {e}"),
        }
    }
}

fn lines(message: &str) -> Vec<&str> {
    message.lines().collect()
}

fn ready_then_stopping(manager: Manager) {
    let host = HostStart::new()
        .config(format!("server_name = \"h\"\n{}", plugin_entry("hello")))
        .env("NOTIFY_SOCKET", &manager.name)
        .spawn();
    let addr = host.addr();
    let ready = manager.message();
    assert_eq!(
        lines(&ready),
        ["READY=1", &format!("STATUS=listening on {addr}")],
        "{ready:?}"
    );
    // Ready means served: the plugins are loaded.
    let (mut conn, _) = Conn::open(addr);
    assert_eq!(conn.ask("HELLO"), "MSG Hello from h");
    assert_eq!(manager.pending(), None, "said more before being stopped");

    let status = host.terminate();
    assert!(status.success(), "{status:?}");
    let stopping = manager.message();
    assert_eq!(
        lines(&stopping),
        ["STOPPING=1", "STATUS=stopping"],
        "{stopping:?}"
    );
    assert_eq!(manager.pending(), None, "said more after stopping");
}

#[test]
fn ready_once_serving_and_stopping_on_sigterm() {
    ready_then_stopping(Manager::at_path());
}

#[test]
fn an_abstract_notify_socket_is_reached_too() {
    ready_then_stopping(Manager::abstract_name());
}

#[test]
fn a_host_whose_plugins_refuse_to_start_never_says_ready() {
    let manager = Manager::at_path();
    // The time plugin refuses this format when the serving process starts
    // it, after the supervisor has checked and copied it and bound the port.
    let out = HostStart::new()
        .config(format!(
            "{}[plugin.settings]\nformat = \"%Q\"\n",
            plugin_entry("time")
        ))
        .env("NOTIFY_SOCKET", &manager.name)
        .run();
    assert!(!out.status.success(), "host should have failed");
    assert!(
        out.stderr.contains("refused to start"),
        "failed for another reason:\n{}",
        out.stderr
    );
    assert_eq!(manager.pending(), None);
}

#[test]
fn an_unreachable_notify_socket_is_logged_and_the_host_serves_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let gone = dir.path().join("no-such-socket");
    let host = HostStart::new()
        .config(format!("server_name = \"h\"\n{}", plugin_entry("hello")))
        .env("NOTIFY_SOCKET", gone.to_str().expect("UTF-8 temp path"))
        .spawn();
    let (mut conn, _) = Conn::open(host.addr());
    assert_eq!(conn.ask("HELLO"), "MSG Hello from h");
    let logged = test_support::wait_until(WAIT, || {
        host.stderr()
            .contains("cannot tell the service manager \"READY=1\"")
    });
    assert!(logged, "no warning logged:\n{}", host.stderr());
    assert!(host.terminate().success());
}
