//! Helpers shared by the client's integration tests: the real host with the
//! hello and time plugins, and the real client binary run with bounded waits,
//! through pipes or in a pseudo-terminal.

#![allow(dead_code)] // each test file uses its own subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;

use expectrl::{Eof, Session, WaitStatus};
use test_support::{HostProcess, HostStart, WAIT, wait_or_kill, wait_until};

pub const CLIENT: &str = env!("CARGO_BIN_EXE_linehost-cli");

/// The documented exit codes.
pub const EXIT_OK: i32 = 0;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_CANNOT_CONNECT: i32 = 3;
pub const EXIT_CONNECTION_LOST: i32 = 4;
pub const EXIT_ERR_REPLY: i32 = 5;

/// Starts the real host, named `testhost`, with the hello and time plugins.
pub fn host() -> HostProcess {
    test_support::build_workspace();
    let config = format!(
        "server_name = \"testhost\"\n\
         [[plugin]]\npath = \"{}\"\n\
         [[plugin]]\npath = \"{}\"\n",
        test_support::plugin_path("hello").display(),
        test_support::plugin_path("time").display(),
    );
    HostStart::new().config(config).spawn()
}

/// Starts the real host with the chat plugin, whose `SAY` pushes lines
/// and whose `WHO` answers with several.
pub fn chat_host() -> HostProcess {
    HostStart::new()
        .config(test_support::plugin_entry("chat"))
        .spawn()
}

/// The client command for `host`, with the address as positional arguments.
pub fn client_cmd(host: &HostProcess) -> Command {
    client_at(host.addr())
}

/// The client command for a server at `addr`.
fn client_at(addr: SocketAddr) -> Command {
    let mut cmd = Command::new(CLIENT);
    cmd.arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .env_remove("CLIENT_HISTORY_FILE");
    cmd
}

/// The client in a pty, talking to the server at `addr` (the real host or
/// a scripted one), with its history file and data directories in `home`.
pub fn spawn(addr: SocketAddr, home: &Path) -> Session {
    let mut cmd = client_at(addr);
    cmd.arg("--history-file")
        .arg(home.join("history.txt"))
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("TERM", "xterm");
    let mut session = Session::spawn(cmd).expect("spawn client in a pty");
    session.set_expect_timeout(Some(WAIT));
    session
}

/// The lines of the history file of a client started by [`spawn`].
pub fn history(home: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(home.join("history.txt")).expect("history file");
    text.lines().map(str::to_owned).collect()
}

/// Waits for the client in `session` to exit and returns its exit code.
pub fn exit_code(session: &mut Session) -> i32 {
    // Drains the rest of the output so the client never blocks on a full pty.
    let _ = session.expect(Eof);
    let mut code = None;
    wait_until(WAIT, || match session.get_process().status() {
        Ok(WaitStatus::Exited(_, c)) => {
            code = Some(c);
            true
        }
        Ok(WaitStatus::StillAlive) => false,
        other => panic!("client did not exit normally: {other:?}"),
    });
    code.unwrap_or_else(|| panic!("client still running after {WAIT:?}"))
}

/// What a finished client run printed.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` with `stdin` as its whole input, bounded by [`WAIT`].
pub fn run(mut cmd: Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn client");
    let mut input = child.stdin.take().expect("piped stdin");
    let stdin = stdin.to_vec();
    // A separate thread, so a client that stops reading cannot block the test.
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let status = wait_or_kill(&mut child, WAIT);
    let _ = feeder.join();
    Output {
        code: status.code(),
        stdout: recv(stdout),
        stderr: recv(stderr),
    }
}

fn drain(mut r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    rx
}

fn recv(rx: mpsc::Receiver<String>) -> String {
    rx.recv_timeout(WAIT).expect("client output closed in time")
}

/// Reads stdout lines of a running child on a thread, for bounded waits.
pub fn line_reader(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// True for a rendered `TIME` reply: `dd.mm.YYYY HH:MM:SS`.
pub fn is_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, &c)| match i {
            2 | 5 => c == b'.',
            10 => c == b' ',
            13 | 16 => c == b':',
            _ => c.is_ascii_digit(),
        })
}
