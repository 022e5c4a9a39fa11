use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::{WAIT, bin_path, build_workspace, wait_bounded};

/// Prepares a run of the real `host` binary in a private temporary directory.
///
/// The directory holds `config.toml`, the host's stderr log and whatever files
/// the test puts there (plugin drop-ins, garbage files, ...).
pub struct HostStart {
    dir: tempfile::TempDir,
    binary: PathBuf,
    config: String,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    fd_limit: Option<u64>,
    listen_arg: bool,
}

impl Default for HostStart {
    fn default() -> Self {
        Self::new()
    }
}

impl HostStart {
    pub fn new() -> Self {
        build_workspace();
        HostStart {
            dir: tempfile::tempdir().expect("temp dir"),
            binary: bin_path("linehost"),
            config: String::new(),
            args: Vec::new(),
            envs: Vec::new(),
            fd_limit: None,
            listen_arg: true,
        }
    }

    /// The private directory the host runs in (its working directory).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs this `linehost` executable rather than the workspace's (one
    /// built against another `plugin-api`, say).
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = path.into();
        self
    }

    /// Sets the text of `config.toml`.
    pub fn config(mut self, text: impl Into<String>) -> Self {
        self.config = text.into();
        self
    }

    /// Adds a command-line argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Sets an environment variable for the host.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Caps the host's open files (soft and hard limit), to make it run out.
    pub fn fd_limit(mut self, limit: u64) -> Self {
        self.fd_limit = Some(limit);
        self
    }

    /// Leaves out the `--listen 127.0.0.1:0` that runs otherwise get: for a
    /// config without a plain listener (`[tls] plain = false`).
    pub fn without_listen_arg(mut self) -> Self {
        self.listen_arg = false;
        self
    }

    fn command(&self) -> Command {
        std::fs::write(self.dir.path().join("config.toml"), &self.config).expect("write config");
        let mut cmd = Command::new(&self.binary);
        if self.listen_arg {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.current_dir(self.dir.path())
            .args(&self.args)
            .env_remove("RUST_LOG")
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        if let Some(limit) = self.fd_limit {
            use std::os::unix::process::CommandExt;
            let rlim = libc::rlimit {
                rlim_cur: limit as libc::rlim_t,
                rlim_max: limit as libc::rlim_t,
            };
            // SAFETY: setrlimit is async-signal-safe and only reads `rlim`,
            // which is copied into the closure.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlim) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        cmd
    }

    /// Runs the host to completion (for `--check` and start-up failures),
    /// killing it if it runs longer than [`WAIT`].
    pub fn run(self) -> HostOutput {
        let out = self.dir.path().join("stdout.log");
        let err = self.dir.path().join("stderr.log");
        let mut child = self
            .command()
            .stdout(File::create(&out).expect("stdout log"))
            .stderr(File::create(&err).expect("stderr log"))
            .spawn()
            .expect("spawn host");
        let status = wait_bounded(&mut child, WAIT).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!("host did not exit within {WAIT:?}; stderr:\n{}", read(&err))
        });
        HostOutput {
            status,
            stdout: read(&out),
            stderr: read(&err),
        }
    }

    /// Starts the host listening on a free loopback port and waits until it
    /// reports its address.
    pub fn spawn(self) -> HostProcess {
        let err = self.dir.path().join("stderr.log");
        let mut child = self
            .command()
            .stdout(Stdio::piped())
            .stderr(File::create(&err).expect("stderr log"))
            .spawn()
            .expect("spawn host");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Every line, and keep draining so the host never blocks on a
            // full pipe.
            for line in BufReader::new(stdout).lines() {
                let _ = tx.send(Some(line));
            }
            let _ = tx.send(None);
        });
        let mut tls_addr = None;
        let addr = match rx.recv_timeout(WAIT) {
            Ok(Some(Ok(line))) => {
                let parsed = parse_listening(&line)
                    .unwrap_or_else(|| panic!("unexpected first stdout line from host: {line:?}"));
                if parsed.1 {
                    tls_addr = Some(parsed.0);
                }
                parsed.0
            }
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "host did not report its address ({other:?}); stderr:\n{}",
                    read(&err)
                )
            }
        };
        HostProcess {
            child,
            addr,
            tls_addr: std::sync::Mutex::new((tls_addr, rx)),
            stderr: err,
            _dir: self.dir,
        }
    }
}

/// What a finished host run printed.
#[derive(Debug)]
pub struct HostOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// A running host; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct HostProcess {
    child: Child,
    addr: SocketAddr,
    /// The TLS address once seen, and the rest of stdout to look for it in.
    tls_addr: std::sync::Mutex<(Option<SocketAddr>, StdoutLines)>,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

/// The host's stdout, line by line; `None` at its end.
type StdoutLines = mpsc::Receiver<Option<std::io::Result<String>>>;

/// `listening on ADDR` (plain) or `listening on ADDR (tls)`: the address,
/// and whether it is the TLS one.
fn parse_listening(line: &str) -> Option<(SocketAddr, bool)> {
    let rest = line.strip_prefix("listening on ")?.trim();
    let (addr, tls) = match rest.strip_suffix(" (tls)") {
        Some(addr) => (addr, true),
        None => (rest, false),
    };
    Some((addr.parse().ok()?, tls))
}

impl HostProcess {
    /// The plain listener's address (the TLS one for a TLS-only host).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `[tls]` listener's address, from the host's stdout; panics if
    /// the host does not announce one within [`WAIT`].
    pub fn tls_addr(&self) -> SocketAddr {
        let mut guard = self.tls_addr.lock().unwrap_or_else(|e| e.into_inner());
        let (found, lines) = &mut *guard;
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(addr) = *found {
                return addr;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match lines.recv_timeout(left) {
                Ok(Some(Ok(line))) => {
                    if let Some((addr, true)) = parse_listening(&line) {
                        *found = Some(addr);
                    }
                }
                other => panic!("host announced no TLS address ({other:?})"),
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process id of the host's serving process, which loads the
    /// plugins and holds the connections (the host itself supervises it).
    pub fn serving_pid(&self) -> u32 {
        serving_pid_of(self.child.id())
    }

    /// The host's `config.toml`, which a test may rewrite before a reload.
    pub fn config_file(&self) -> PathBuf {
        self._dir.path().join("config.toml")
    }

    /// Runs `linehost reload` for this host, bounded by [`WAIT`]; what it
    /// printed, and whether it exited 0.
    pub fn reload(&self) -> HostOutput {
        let mut child = Command::new(bin_path("linehost"))
            .arg("reload")
            .arg("--config")
            .arg(self.config_file())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn linehost reload");
        let status = wait_bounded(&mut child, WAIT).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!("linehost reload did not exit within {WAIT:?}")
        });
        let mut out = String::new();
        let mut err = String::new();
        use std::io::Read;
        let _ = child.stdout.take().map(|mut s| s.read_to_string(&mut out));
        let _ = child.stderr.take().map(|mut s| s.read_to_string(&mut err));
        HostOutput {
            status,
            stdout: out,
            stderr: err,
        }
    }

    /// What the host has logged so far.
    pub fn stderr(&self) -> String {
        read(&self.stderr)
    }

    /// Sends a signal to the host.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill({sig}) failed");
    }

    /// Asks the host to stop with SIGTERM and waits for it, bounded by [`WAIT`].
    pub fn terminate(mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        match wait_bounded(&mut self.child, WAIT) {
            Some(status) => status,
            None => panic!(
                "host ignored SIGTERM for {WAIT:?}; stderr:\n{}",
                self.stderr()
            ),
        }
    }

    /// Waits for the host to exit on its own, bounded by `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait_bounded(&mut self.child, limit)
    }

    /// Peak resident set size of the host so far, in KiB (Linux `VmHWM`).
    ///
    /// Of the serving process, where the connections and their buffers are.
    pub fn peak_rss_kib(&self) -> u64 {
        self.status().and_then(|s| s.vmhwm).unwrap_or(0)
    }

    /// Current resident set size of the host's serving process, in KiB
    /// (Linux `VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        self.status().and_then(|s| s.vmrss).unwrap_or(0)
    }

    fn status(&self) -> Option<procfs::process::Status> {
        let pid = i32::try_from(self.serving_pid()).ok()?;
        procfs::process::Process::new(pid).ok()?.status().ok()
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal(libc::SIGTERM);
            if wait_bounded(&mut self.child, Duration::from_secs(5)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// The host's private copy directories (`host-plugins-*`) in `base`, the
/// runtime directory a test gave the host (`TMPDIR`), sorted.
pub fn copy_dirs(base: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(base)
        .expect("read the runtime directory")
        .map(|e| e.expect("runtime directory entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("host-plugins-"))
        })
        .collect();
    dirs.sort();
    dirs
}

/// The serving process of the host supervisor `pid`: its child, waited for
/// (bounded by [`WAIT`]) since a new one may be starting.
pub fn serving_pid_of(pid: u32) -> u32 {
    let children = format!("/proc/{pid}/task/{pid}/children");
    let mut found = None;
    crate::wait_until(WAIT, || {
        found = read(Path::new(&children))
            .split_whitespace()
            .next()
            .and_then(|c| c.parse().ok());
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("host {pid} has no serving process"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
