//! `deploy/haproxy.cfg`, run: HAProxy in front of two hosts on loopback,
//! sending PROXY v2 headers. Clients connect from 127.0.0.5, a loopback
//! address of their own, so that the address plugins see is told apart
//! from HAProxy's (127.0.0.1).
//!
//! `.ci/run` installs haproxy from the system packages; where it is not
//! installed, the test runner reports this test ignored, with the reason.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use libtest_mimic::{Arguments, Completion, Trial};
use socket2::{Domain, Socket, Type};
use test_support::{HostProcess, HostStart, WAIT, plugin_entry, wait_bounded, wait_until};

const NOT_INSTALLED: &str = "haproxy is not installed (not on PATH nor in /usr/sbin); .ci/run \
                             installs it with `apt-get install haproxy`, which failed or was not \
                             run here";

/// Where the clients connect from.
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 5);
const CLIENTS: usize = 200;
/// Clients after one host is stopped.
const LATER_CLIENTS: usize = 100;

fn main() {
    let args = Arguments::from_args();
    let trials = vec![Trial::ignorable_test(
        "haproxy_spreads_clients_over_two_hosts_and_avoids_a_stopped_one",
        || {
            let Some(haproxy) = haproxy() else {
                return Ok(Completion::ignored_with(NOT_INSTALLED));
            };
            haproxy_spreads_clients_over_two_hosts_and_avoids_a_stopped_one(&haproxy);
            Ok(Completion::Completed)
        },
    )];
    libtest_mimic::run(&args, trials).exit()
}

/// The `haproxy` command: on PATH, or where Debian installs it, in a
/// directory only root's PATH usually has.
fn haproxy() -> Option<PathBuf> {
    ["haproxy", "/usr/sbin/haproxy"]
        .into_iter()
        .map(PathBuf::from)
        .find(|command| {
            Command::new(command)
                .arg("-v")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

fn haproxy_spreads_clients_over_two_hosts_and_avoids_a_stopped_one(command: &Path) {
    let a = host("a");
    let b = host("b");
    let haproxy = Haproxy::start(command, a.addr(), b.addr());
    // The protocol check passes on both hosts before any client comes.
    for server in ["host-a", "host-b"] {
        let checked = wait_until(WAIT, || haproxy.check(server) == up_and_checked());
        assert!(
            checked,
            "{server}: {:?}\n{}",
            haproxy.check(server),
            haproxy.log()
        );
    }

    let mut served = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        served.push(Client::serve(haproxy.addr));
    }
    let on = |name: &str| served.iter().filter(|c| c.host == name).count();
    let (on_a, on_b) = (on("a"), on("b"));
    assert_eq!(on_a + on_b, CLIENTS, "some clients were served by neither");
    // Round robin gives each half; health checks and retries may shift a few.
    assert!(
        on_a >= CLIENTS / 4 && on_b >= CLIENTS / 4,
        "a: {on_a}, b: {on_b}; haproxy:\n{}\na:\n{}",
        haproxy.log(),
        a.stderr()
    );
    for client in &served {
        assert_eq!(
            client.peer_seen, client.local,
            "the plugin saw another address than the client's own"
        );
    }
    // The logs name the clients too, as many on each host as it served.
    let logged = |host: &HostProcess| {
        host.stderr()
            .lines()
            .filter(|l| l.contains(" connected ") && l.contains(&format!("peer={CLIENT_IP}:")))
            .count()
    };
    assert_eq!(logged(&a), on_a, "{}", a.stderr());
    assert_eq!(logged(&b), on_b, "{}", b.stderr());
    drop(served);

    let status = a.terminate();
    assert!(status.success(), "host a: {status:?}");
    for i in 0..LATER_CLIENTS {
        let client = Client::serve(haproxy.addr);
        assert_eq!(client.host, "b", "client {i} after host a stopped");
        assert_eq!(client.peer_seen, client.local);
    }
    // The health check took the stopped host out, and only it.
    let down = wait_until(WAIT, || haproxy.check("host-a").0 == "DOWN");
    assert!(down, "host a never marked down:\n{}", haproxy.log());
    assert_eq!(haproxy.check("host-b"), up_and_checked());
    haproxy.stop();
}

/// What `show stat` says of a server that is up and answered its last
/// protocol check.
fn up_and_checked() -> (String, String) {
    ("UP".into(), "L7OK".into())
}

/// A host behind the proxy, named `name` in its `HELLO` replies.
fn host(name: &str) -> HostProcess {
    HostStart::new()
        .config(format!(
            "server_name = \"{name}\"\nproxy_protocol = \"v2\"\n{}{}",
            plugin_entry("hello"),
            plugin_entry("testkit")
        ))
        .spawn()
}

/// A client that connected through the proxy and was served.
struct Client {
    /// The server name in the `HELLO` reply.
    host: String,
    /// The peer address testkit's `WHO` reported.
    peer_seen: String,
    /// The client's own address.
    local: String,
    _stream: TcpStream,
}

impl Client {
    /// Connects from [`CLIENT_IP`], and asks `HELLO` and `WHO`; panics
    /// unless both are answered.
    fn serve(proxy: SocketAddr) -> Client {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        socket
            .bind(&SocketAddr::from((CLIENT_IP, 0)).into())
            .expect("bind the client to 127.0.0.5");
        socket
            .connect_timeout(&proxy.into(), WAIT)
            .unwrap_or_else(|e| panic!("connection to HAProxy refused: {e}"));
        let stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(WAIT)).expect("read timeout");
        let local = stream.local_addr().expect("local address").to_string();
        let mut writer = stream.try_clone().expect("clone");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut line = || {
            let mut l = String::new();
            match reader.read_line(&mut l) {
                Ok(n) if n > 0 => l.trim_end().to_owned(),
                other => panic!("client {local}: no reply ({other:?})"),
            }
        };
        assert_eq!(line(), "MSG Welcome aboard !");
        writer.write_all(b"HELLO\r\nWHO\r\n").expect("send");
        let hello = line();
        let who = line();
        let host = hello
            .strip_prefix("MSG Hello from ")
            .unwrap_or_else(|| panic!("HELLO answered {hello:?}"))
            .to_owned();
        let peer_seen = who
            .strip_prefix("MSG peer=")
            .and_then(|w| w.split(" connection=").next())
            .unwrap_or_else(|| panic!("WHO answered {who:?}"))
            .to_owned();
        Client {
            host,
            peer_seen,
            local,
            _stream: stream,
        }
    }
}

/// HAProxy running `deploy/haproxy.cfg` with the test's addresses;
/// stopped by its pid, also when the test fails.
struct Haproxy {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    /// The stats socket.
    stats: PathBuf,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    fn start(command: &Path, a: SocketAddr, b: SocketAddr) -> Haproxy {
        let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/haproxy.cfg");
        let template = std::fs::read_to_string(&template).expect("read deploy/haproxy.cfg");
        let addr = free_loopback_port();
        let config = [
            ("bind 127.0.0.1:1991", format!("bind {addr}")),
            ("server host-a 127.0.0.1:2001", format!("server host-a {a}")),
            ("server host-b 127.0.0.1:2002", format!("server host-b {b}")),
        ]
        .iter()
        .fold(template, |text, (from, to)| {
            assert!(text.contains(from), "deploy/haproxy.cfg has no `{from}`");
            text.replace(from, to)
        });
        let dir = tempfile::tempdir().expect("temp dir");
        // Where the test asks for the servers' states.
        let stats = dir.path().join("stats.sock");
        let config = config.replacen(
            "global\n",
            &format!("global\n    stats socket {}\n", stats.display()),
            1,
        );
        let file = dir.path().join("haproxy.cfg");
        std::fs::write(&file, config).expect("write haproxy.cfg");
        let log = dir.path().join("haproxy.log");
        // -db: in the foreground, so that the pid is HAProxy's own.
        let child = Command::new(command)
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start haproxy");
        let mut haproxy = Haproxy {
            child,
            addr,
            log,
            stats,
            _dir: dir,
        };
        let up = wait_until(WAIT, || {
            matches!(haproxy.child.try_wait(), Ok(None)) && TcpStream::connect(addr).is_ok()
        });
        assert!(up, "haproxy did not listen on {addr}:\n{}", haproxy.log());
        haproxy
    }

    /// `server`'s state and the result of its last health check, as
    /// HAProxy's `show stat` gives them (`UP`, `L7OK`); empty if unknown.
    fn check(&self, server: &str) -> (String, String) {
        let Ok(mut socket) = UnixStream::connect(&self.stats) else {
            return Default::default();
        };
        let mut csv = String::new();
        if socket.write_all(b"show stat\n").is_err() || socket.read_to_string(&mut csv).is_err() {
            return Default::default();
        }
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
        let column = |name: &str| {
            header
                .iter()
                .position(|h| h.trim_start_matches("# ") == name)
        };
        let (Some(svname), Some(status), Some(check)) =
            (column("svname"), column("status"), column("check_status"))
        else {
            return Default::default();
        };
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|row| row.get(svname) == Some(&server))
            .map(|row| {
                let field = |i: usize| row.get(i).copied().unwrap_or_default().to_owned();
                (field(status), field(check))
            })
            .unwrap_or_default()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits for HAProxy to exit.
    fn stop(mut self) {
        self.terminate();
        let status = self.child.try_wait().ok().flatten();
        assert!(status.is_some(), "haproxy did not stop:\n{}", self.log());
    }

    fn terminate(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
            if wait_bounded(&mut self.child, Duration::from_secs(5)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// A loopback port free right now: HAProxy cannot bind port 0 and report
/// it, so one is taken from the kernel and released for it.
fn free_loopback_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address")
}
