//! The supervisor: the process the user starts. It checks the config and
//! the plugin files, makes the private copies, binds the listening socket,
//! and then runs one serving process that loads the plugins and serves,
//! starting a new one whenever it dies. It never runs plugin code itself.
//!
//! As PostgreSQL's postmaster does for its backends: a plugin that aborts,
//! overflows its stack or crashes costs the connections of the serving
//! process, not the service. The listening socket stays open in the
//! supervisor throughout, so clients that connect while a new serving
//! process starts wait in the backlog instead of being refused. Which hook
//! was running when the process died is read from memory the two share
//! ([`Region`]); a hook that brings the process down
//! [`CRASHES_TO_DISABLE`] times within [`CRASH_WINDOW`] is not served again
//! until the host restarts.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::process::{Child, Command};
use tracing::{error, info, warn};

use crate::call_slots::Region;
use crate::config::Config;
use crate::plugins::{Prepared, RuntimeDir};
use crate::shutdown::StopSignals;

/// Crashes of one hook that disable it...
pub const CRASHES_TO_DISABLE: usize = 3;
/// ...within this long.
pub const CRASH_WINDOW: Duration = Duration::from_secs(600);
/// A serving process that dies sooner than this after starting, with no
/// hook to blame, is started again only after a pause, which doubles up to
/// [`MAX_RESTART_PAUSE`]: a plugin that fails while starting must not make
/// the host spin.
const QUICK_DEATH: Duration = Duration::from_secs(1);
const MAX_RESTART_PAUSE: Duration = Duration::from_secs(30);
/// How long a serving process gets, past its own shutdown timeout, to
/// stop before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Everything a serving process is started from.
pub struct Supervisor {
    pub config: Config,
    /// The config as read and checked, handed to each serving process.
    pub config_text: String,
    pub listener: TcpListener,
    pub prepared: Vec<Prepared>,
    /// Holds the copies, and removes them when the supervisor ends.
    pub runtime_dir: RuntimeDir,
    /// `--log-level`, passed on.
    pub log_level: Option<String>,
}

/// One hook, as the supervisor knows it: plugin name and hook number.
type HookKey = (String, usize);

/// What the supervisor remembers across serving processes.
struct Memory {
    region_fd: OwnedFd,
    region: &'static Region,
    crashes: HashMap<HookKey, Vec<Instant>>,
    disabled: Vec<(String, usize, String)>,
    pause: Duration,
}

impl Supervisor {
    /// Loads the plugins once in a serving process that reports and exits:
    /// what the supervisor does when the plugins it prepared need no
    /// serving (some failed already), so that one start names every
    /// broken entry. Returns whether they all started.
    pub fn report_starts(&self) -> anyhow::Result<bool> {
        let (region_fd, _) = Region::create().context("cannot map memory for the call slots")?;
        let runtime = current_thread()?;
        runtime.block_on(async {
            let (mut child, ready) = self.spawn(&region_fd, &[], true)?;
            drop(ready);
            Ok(child.wait().await?.success())
        })
    }

    /// Serves until SIGINT or SIGTERM; the exit code of the host.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let (region_fd, region) =
            Region::create().context("cannot map memory for the call slots")?;
        let mut memory = Memory {
            region_fd,
            region,
            crashes: HashMap::new(),
            disabled: Vec::new(),
            pause: Duration::ZERO,
        };
        let runtime = current_thread()?;
        let code = runtime.block_on(self.supervise(&mut memory))?;
        drop(self.runtime_dir);
        Ok(code)
    }

    async fn supervise(&self, memory: &mut Memory) -> anyhow::Result<ExitCode> {
        let signals = StopSignals::install().context("cannot catch SIGINT and SIGTERM")?;
        let mut stop = std::pin::pin!(signals.recv());
        let addr: SocketAddr = self.listener.local_addr()?;
        let (mut child, ready) = self.spawn(&memory.region_fd, &memory.disabled, false)?;
        let mut started = Instant::now();
        if !wait_ready(ready).await {
            // The serving process said why (a plugin refused to start, say)
            // and exited: the host does not start either.
            let _ = child.wait().await;
            return Ok(ExitCode::FAILURE);
        }
        // The first line on stdout, for scripts and tests that start the
        // host on port 0 and need to know where it is.
        println!("listening on {addr}");
        let _ = std::io::stdout().flush();
        loop {
            tokio::select! {
                biased;
                () = &mut stop => {
                    stop_child(&mut child, self.config.shutdown_timeout + STOP_GRACE).await;
                    return Ok(ExitCode::SUCCESS);
                }
                status = child.wait() => {
                    let status = status.context("cannot wait for the serving process")?;
                    let blamed = self.mourn(status, started, memory);
                    if !blamed && started.elapsed() < QUICK_DEATH {
                        memory.pause = (memory.pause * 2)
                            .clamp(Duration::from_millis(250), MAX_RESTART_PAUSE);
                        warn!("starting a new serving process in {:?}", memory.pause);
                        tokio::select! {
                            biased;
                            () = &mut stop => return Ok(ExitCode::SUCCESS),
                            () = tokio::time::sleep(memory.pause) => {}
                        }
                    } else {
                        memory.pause = Duration::ZERO;
                    }
                    memory.region.clear();
                    let (next, ready) = self.spawn(&memory.region_fd, &memory.disabled, false)?;
                    child = next;
                    started = Instant::now();
                    if wait_ready(ready).await {
                        info!(pid = child.id(), "a new serving process is serving");
                    }
                }
            }
        }
    }

    /// Says how the serving process ended and who was running; counts the
    /// crash against the hooks that were running. True if a hook is blamed.
    fn mourn(&self, status: ExitStatus, started: Instant, memory: &mut Memory) -> bool {
        let running: Vec<(String, usize, String)> = memory
            .region
            .slots()
            .iter()
            .filter_map(|slot| slot.route())
            .filter_map(|route| memory.region.name(route))
            .filter_map(|line| {
                let mut fields = line.splitn(3, '\t');
                let plugin = fields.next()?.to_owned();
                let hook = fields.next()?.parse().ok()?;
                let pattern = fields.next().unwrap_or_default().to_owned();
                Some((plugin, hook, pattern))
            })
            .collect();
        let how = match status.signal() {
            Some(signal) => signal_name(signal),
            None => format!("exit status {}", status.code().unwrap_or(-1)),
        };
        if running.is_empty() {
            error!(
                after = ?started.elapsed(),
                "serving process died: {how}; no hook was running"
            );
            return false;
        }
        for (plugin, hook, pattern) in &running {
            error!(
                plugin = %plugin,
                hook = %format!("{hook} `{pattern}`"),
                "serving process died: {how} while this hook was running"
            );
        }
        // A serving process ends on its own only when asked to stop: an
        // exit while a hook runs (a plugin calling exit, say) counts as a
        // crash as much as a signal does.
        let now = Instant::now();
        for (plugin, hook, pattern) in running {
            let key = (plugin, hook);
            if memory
                .disabled
                .iter()
                .any(|(p, h, _)| (p, h) == (&key.0, &key.1))
            {
                continue;
            }
            let times = memory.crashes.entry(key.clone()).or_default();
            times.retain(|t| now.duration_since(*t) < CRASH_WINDOW);
            times.push(now);
            if times.len() >= CRASHES_TO_DISABLE {
                let reason = format!(
                    "crashed {} times in {} minutes (last: {how})",
                    times.len(),
                    CRASH_WINDOW.as_secs() / 60
                );
                error!(
                    plugin = %key.0,
                    hook = %format!("{} `{pattern}`", key.1),
                    "disabling hook until the host restarts: {reason}"
                );
                memory.disabled.push((key.0, key.1, reason));
            }
        }
        true
    }

    /// Starts a serving process; returns it and the end of the pipe it
    /// says `ready` on.
    fn spawn(
        &self,
        region: &OwnedFd,
        disabled: &[(String, usize, String)],
        start_only: bool,
    ) -> anyhow::Result<(Child, std::io::PipeReader)> {
        let (ready_reader, ready_writer) =
            std::io::pipe().context("cannot make a pipe for the serving process")?;
        // /proc/self/exe is this very binary, even if the file was replaced
        // since: supervisor and serving process always match.
        let mut command = Command::new("/proc/self/exe");
        command
            .arg("--serve")
            .arg("--config")
            .arg(&self.config.file)
            .arg("--listener-fd")
            .arg(self.listener.as_raw_fd().to_string())
            .arg("--slots-fd")
            .arg(region.as_raw_fd().to_string())
            .arg("--ready-fd")
            .arg(ready_writer.as_raw_fd().to_string());
        if start_only {
            command.arg("--start-only");
        }
        if let Some(level) = &self.log_level {
            command.arg("--log-level").arg(level);
        }
        for p in &self.prepared {
            command
                .arg("--plugin")
                .arg(format!("{}:{}:{}", p.index, p.copy.fd, p.file.display()));
        }
        for (plugin, hook, reason) in disabled {
            command
                .arg("--disabled")
                .arg(format!("{hook}:{plugin}\t{reason}"));
        }
        let mut inherited: Vec<RawFd> = vec![
            self.listener.as_raw_fd(),
            region.as_raw_fd(),
            ready_writer.as_raw_fd(),
        ];
        inherited.extend(self.prepared.iter().map(|p| p.copy.fd));
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        // SAFETY: between fork and exec only async-signal-safe calls are
        // made (fcntl, prctl, getppid), on descriptors and values copied
        // before the fork.
        unsafe {
            command.pre_exec(move || {
                for &fd in &inherited {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // If the supervisor is killed outright, the serving process
                // stops gracefully instead of serving on unsupervised.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .context("cannot start the serving process")?;
        drop(ready_writer);
        if let Some(mut stdin) = child.stdin.take() {
            // Written while the child reads; a child that dies before
            // reading it all is seen when it is waited for.
            let text = self.config_text.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = stdin.write_all(text.as_bytes()).await;
            });
        }
        Ok((child, ready_reader))
    }
}

/// Waits for the serving process to say it is ready; false if it ended
/// (closing the pipe) first.
async fn wait_ready(mut ready: std::io::PipeReader) -> bool {
    tokio::task::spawn_blocking(move || {
        let mut said = Vec::new();
        let _ = (&mut ready).take(16).read_to_end(&mut said);
        said.starts_with(b"ready")
    })
    .await
    .unwrap_or(false)
}

/// Asks the serving process to stop gracefully, and kills it if it has not
/// within `grace`.
async fn stop_child(child: &mut Child, grace: Duration) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) on our own child's pid, which it keeps until we
        // reap it below.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(Ok(status)) if !status.success() => {
            warn!("serving process ended with {status} while stopping")
        }
        Ok(_) => {}
        Err(_) => {
            warn!("serving process did not stop within {grace:?}; killing it");
            let _ = child.kill().await;
        }
    }
}

fn current_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `SIGSEGV` for 11, and so on for the signals a crash brings.
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGSYS => "SIGSYS",
        other => return format!("signal {other}"),
    };
    name.to_owned()
}

impl Supervisor {
    /// The hidden arguments a serving process is started with, parsed back.
    pub fn parse_plugin_arg(arg: &str) -> Option<(usize, PathBuf, RawFd)> {
        let mut fields = arg.splitn(3, ':');
        let index = fields.next()?.parse().ok()?;
        let fd = fields.next()?.parse().ok()?;
        Some((index, PathBuf::from(fields.next()?), fd))
    }

    /// `--disabled HOOK:PLUGIN<tab>REASON`, parsed back.
    pub fn parse_disabled_arg(arg: &str) -> Option<(String, usize, String)> {
        let (hook, rest) = arg.split_once(':')?;
        let (plugin, reason) = rest.split_once('\t')?;
        Some((plugin.to_owned(), hook.parse().ok()?, reason.to_owned()))
    }
}
