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
use std::future::Future;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::pin::Pin;
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
/// Longest route name taken from the shared memory, and most hooks
/// disabled: the serving process writes the names, and a plugin there
/// could write anything.
const MAX_NAME: usize = 512;
const MAX_DISABLED: usize = 256;
/// How long a serving process may take to load its plugins and be ready.
pub const START_TIMEOUT: Duration = Duration::from_secs(120);
/// Deaths with no hook to blame, this many within this long, and new
/// serving processes wait as after a quick death: something in a plugin
/// that no request runs (a thread of its own) keeps killing them.
const UNBLAMED_DEATHS: usize = 3;
const UNBLAMED_WINDOW: Duration = Duration::from_secs(60);
/// Reload requests waiting at once; SIGHUPs past it are dropped, since a
/// waiting reload reads the same files anyway.
const RELOAD_QUEUE: usize = 16;

/// Everything a serving process is started from.
pub struct Supervisor {
    pub config: Config,
    /// The config as read and checked, handed to each serving process.
    pub config_text: String,
    /// The plain listener; `None` with `[tls] plain = false`.
    pub listener: Option<TcpListener>,
    /// The `[tls]` listener and the sealed file holding the certificate
    /// and key, as read and checked here.
    pub tls: Option<(TcpListener, OwnedFd)>,
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
    /// When serving processes died with no hook to blame, lately.
    unblamed: Vec<Instant>,
    /// Serving processes started so far.
    started: u64,
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
            let (mut child, ready, _) = self.spawn(&region_fd, &[], true, 0)?;
            drop(ready);
            Ok(child.wait().await?.success())
        })
    }

    /// Serves until SIGINT or SIGTERM; the exit code of the host.
    pub fn run(mut self) -> anyhow::Result<ExitCode> {
        let (region_fd, region) =
            Region::create().context("cannot map memory for the call slots")?;
        let mut memory = Memory {
            region_fd,
            region,
            crashes: HashMap::new(),
            disabled: Vec::new(),
            pause: Duration::ZERO,
            unblamed: Vec::new(),
            started: 0,
        };
        let runtime = current_thread()?;
        let code = runtime.block_on(self.supervise(&mut memory))?;
        drop(self.runtime_dir);
        Ok(code)
    }

    async fn supervise(&mut self, memory: &mut Memory) -> anyhow::Result<ExitCode> {
        let (reload_tx, mut reloads) = tokio::sync::mpsc::channel(RELOAD_QUEUE);
        let signals = StopSignals::install()
            .context("cannot catch SIGINT and SIGTERM")?
            .reload_on_hangup(reload_tx.clone());
        if let Err(e) = crate::reload_socket::listen(&self.config.file, reload_tx) {
            warn!(
                "`linehost reload` cannot reach this host ({e}): another host serves the same \
                 config file; SIGHUP still reloads"
            );
        }
        let mut stop = std::pin::pin!(signals.recv());
        // One write, plain first: scripts read the first line.
        let mut listening = String::new();
        let mut addrs: Vec<SocketAddr> = Vec::new();
        if let Some(l) = &self.listener {
            addrs.push(l.local_addr()?);
            listening += &format!("listening on {}\n", l.local_addr()?);
        }
        if let Some((l, _)) = &self.tls {
            addrs.push(l.local_addr()?);
            listening += &format!("listening on {} (tls)\n", l.local_addr()?);
        }
        let Some(&addr) = addrs.first() else {
            anyhow::bail!("no listener to serve on");
        };
        let mut announced = false;
        loop {
            let (mut child, ready, channel) =
                match self.spawn(&memory.region_fd, &memory.disabled, false, memory.started) {
                    Ok(spawned) => spawned,
                    Err(e) if announced => {
                        // Out of processes or descriptors for a moment: the
                        // listening socket stays open while we try again.
                        error!("{e:#}");
                        if pause(memory, stop.as_mut()).await {
                            return Ok(ExitCode::SUCCESS);
                        }
                        continue;
                    }
                    Err(e) => return Err(e),
                };
            memory.started += 1;
            let group = child.id();
            let started = Instant::now();
            match start(&mut child, ready, stop.as_mut()).await {
                Start::Ready => {}
                Start::Stopped => {
                    stop_child(&mut child, self.config.shutdown_timeout + STOP_GRACE).await;
                    kill_group(group);
                    return Ok(ExitCode::SUCCESS);
                }
                // The serving process said why (a plugin refused to start,
                // say): a host that never served does not start either.
                Start::Failed(_) | Start::TimedOut if !announced => {
                    kill_group(group);
                    return Ok(ExitCode::FAILURE);
                }
                Start::Failed(status) => {
                    kill_group(group);
                    self.mourn(status, started, memory);
                    memory.region.clear();
                    if pause(memory, stop.as_mut()).await {
                        return Ok(ExitCode::SUCCESS);
                    }
                    continue;
                }
                Start::TimedOut => {
                    kill_group(group);
                    if pause(memory, stop.as_mut()).await {
                        return Ok(ExitCode::SUCCESS);
                    }
                    continue;
                }
            }
            if announced {
                info!(pid = group, "a new serving process is serving");
            } else {
                // The first line on stdout, for scripts and tests that start
                // the host on port 0 and need to know where it is.
                crate::say::out(format_args!("{listening}"));
                crate::notify::ready(addr);
                announced = true;
            }
            let mut channel = Some(channel);
            let status = loop {
                tokio::select! {
                    biased;
                    () = stop.as_mut() => {
                        crate::notify::stopping();
                        stop_child(&mut child, self.config.shutdown_timeout + STOP_GRACE).await;
                        kill_group(group);
                        return Ok(ExitCode::SUCCESS);
                    }
                    status = child.wait() => break status,
                    Some(request) = reloads.recv() => {
                        let outcome = self.reload(memory, &mut channel).await;
                        if let Some(reply) = request.reply {
                            let _ = reply.send(outcome);
                        }
                    }
                }
            };
            let status = status.context("cannot wait for the serving process")?;
            // What a plugin started goes with the process it crashed.
            kill_group(group);
            let blamed = self.mourn(status, started, memory);
            memory.region.clear();
            let now = Instant::now();
            memory
                .unblamed
                .retain(|t| now.duration_since(*t) < UNBLAMED_WINDOW);
            if !blamed {
                memory.unblamed.push(now);
            }
            let looping = memory.unblamed.len() >= UNBLAMED_DEATHS;
            if !blamed && (started.elapsed() < QUICK_DEATH || looping) {
                if pause(memory, stop.as_mut()).await {
                    return Ok(ExitCode::SUCCESS);
                }
            } else {
                memory.pause = Duration::ZERO;
            }
        }
    }

    /// Reloads the config and the plugins (`crate::reload_order`); on
    /// success the next serving process starts from them too, and crash
    /// counts start again, as for a new host.
    async fn reload(
        &mut self,
        memory: &mut Memory,
        channel: &mut Option<std::os::unix::net::UnixStream>,
    ) -> Result<String, String> {
        let reloaded =
            crate::reload_order::reload(&self.config, &self.runtime_dir, &self.prepared, channel)
                .await;
        match reloaded {
            Ok(reloaded) => {
                self.config = reloaded.config;
                self.config_text = reloaded.config_text;
                self.prepared = reloaded.prepared;
                memory.crashes.clear();
                memory.disabled.clear();
                info!(
                    plugins = self.prepared.len(),
                    "reloaded {}",
                    self.config.file.display()
                );
                Ok(reloaded.notes)
            }
            Err(e) => {
                error!("reload failed; serving on as before: {e}");
                Err(e)
            }
        }
    }

    /// Says how the serving process ended and who was running; counts the
    /// crash against the hooks that were running. True if a hook is blamed.
    fn mourn(&self, status: ExitStatus, started: Instant, memory: &mut Memory) -> bool {
        let region = memory.region;
        let named = |route: usize| -> Option<(String, usize, String)> {
            // Written by the serving process, where plugins run: taken as
            // a claim, bounded, never as an instruction.
            let line = region.name(route).filter(|line| line.len() <= MAX_NAME)?;
            let mut fields = line.splitn(3, '\t');
            let plugin = fields.next()?.to_owned();
            let hook = fields.next()?.parse().ok()?;
            let pattern = fields.next().unwrap_or_default().to_owned();
            Some((plugin, hook, pattern))
        };
        let running: Vec<(String, usize, String)> = region
            .slots()
            .iter()
            .filter_map(|slot| slot.route())
            .filter_map(named)
            .collect();
        let how = match status.signal() {
            Some(signal) => signal_name(signal),
            None => format!("exit status {}", status.code().unwrap_or(-1)),
        };
        // The hook whose thread took the fatal signal, if the serving
        // process recorded one; else the one hook that was running, if
        // only one was: never every hook that happened to be running.
        let to_blame: Vec<(String, usize, String)> = match region.crashed() {
            Some(slot) => slot.route().and_then(named).into_iter().collect(),
            None if running.len() == 1 => running.clone(),
            None => Vec::new(),
        };
        for (plugin, hook, pattern) in &running {
            let blamed = to_blame.iter().any(|b| (&b.0, b.1) == (plugin, *hook));
            error!(
                plugin = %plugin,
                hook = %format!("{hook} `{pattern}`"),
                "serving process died: {how} while this hook was running{}",
                if blamed { "" } else { " (on another thread)" }
            );
        }
        if to_blame.is_empty() {
            error!(
                after = ?started.elapsed(),
                "serving process died: {how}; no hook to blame"
            );
            return false;
        }
        let running = to_blame;
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
            if times.len() >= CRASHES_TO_DISABLE && memory.disabled.len() < MAX_DISABLED {
                let reason = format!(
                    "crashed {} times in {} minutes (last: {how})",
                    times.len(),
                    CRASH_WINDOW.as_secs() / 60
                );
                error!(
                    plugin = %key.0,
                    hook = %format!("{} `{pattern}`", key.1),
                    "disabling hook until the host restarts or reloads: {reason}"
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
        restarts: u64,
    ) -> anyhow::Result<(Child, std::io::PipeReader, std::os::unix::net::UnixStream)> {
        let (ready_reader, ready_writer) =
            std::io::pipe().context("cannot make a pipe for the serving process")?;
        let (control, control_child) = std::os::unix::net::UnixStream::pair()
            .context("cannot make a channel to the serving process")?;
        // /proc/self/exe is this very binary, even if the file was replaced
        // since: supervisor and serving process always match.
        let mut command = Command::new("/proc/self/exe");
        command
            .arg("--serve")
            .arg("--config")
            .arg(&self.config.file)
            .arg("--slots-fd")
            .arg(region.as_raw_fd().to_string())
            .arg("--ready-fd")
            .arg(ready_writer.as_raw_fd().to_string())
            .arg("--control-fd")
            .arg(control_child.as_raw_fd().to_string())
            .arg("--restarts")
            .arg(restarts.to_string());
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
            region.as_raw_fd(),
            ready_writer.as_raw_fd(),
            control_child.as_raw_fd(),
        ];
        if let Some(listener) = &self.listener {
            command
                .arg("--listener-fd")
                .arg(listener.as_raw_fd().to_string());
            inherited.push(listener.as_raw_fd());
        }
        if let Some((listener, material)) = &self.tls {
            command
                .arg("--tls-listener-fd")
                .arg(listener.as_raw_fd().to_string())
                .arg("--tls-fd")
                .arg(material.as_raw_fd().to_string());
            inherited.extend([listener.as_raw_fd(), material.as_raw_fd()]);
        }
        inherited.extend(self.prepared.iter().map(|p| p.copy.fd));
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: between fork and exec only async-signal-safe calls are
        // made (fcntl, setpgid, prctl, getppid), on descriptors and values
        // copied before the fork.
        unsafe {
            command.pre_exec(move || {
                for &fd in &inherited {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // A group of its own: a terminal's Ctrl-C reaches the
                // supervisor alone, which stops the serving process in
                // order, and whatever plugins start can be killed with it.
                if libc::setpgid(0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // If the supervisor is killed outright, the serving process
                // stops gracefully instead of serving on unsupervised; and
                // if it died before this was set, the child must not run.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .context("cannot start the serving process")?;
        drop(ready_writer);
        drop(control_child);
        if let Some(mut stdin) = child.stdin.take() {
            // Written while the child reads; a child that dies before
            // reading it all is seen when it is waited for.
            let text = self.config_text.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = stdin.write_all(text.as_bytes()).await;
            });
        }
        Ok((child, ready_reader, control))
    }
}

/// How the start of a serving process ended.
enum Start {
    Ready,
    /// It ended before it was ready.
    Failed(ExitStatus),
    /// It was not ready within [`START_TIMEOUT`], and was killed.
    TimedOut,
    /// The host was asked to stop meanwhile.
    Stopped,
}

/// Waits for a new serving process to be ready, to end, or for the host to
/// be stopped, whichever comes first; at most [`START_TIMEOUT`].
async fn start(
    child: &mut Child,
    ready: std::io::PipeReader,
    stop: Pin<&mut impl Future<Output = ()>>,
) -> Start {
    tokio::select! {
        biased;
        () = stop => Start::Stopped,
        said = wait_ready(ready) => {
            if said {
                return Start::Ready;
            }
            // The pipe closed: it died, or closed the pipe and must go.
            let ended = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
            match ended {
                Ok(Ok(status)) => Start::Failed(status),
                _ => {
                    let _ = child.kill().await;
                    match child.wait().await {
                        Ok(status) => Start::Failed(status),
                        Err(_) => Start::TimedOut,
                    }
                }
            }
        }
        () = tokio::time::sleep(START_TIMEOUT) => {
            error!("the serving process was not ready within {START_TIMEOUT:?}; killing it");
            let _ = child.kill().await;
            Start::TimedOut
        }
    }
}

/// Waits before the next serving process, longer each time it is needed in
/// a row; true if the host was asked to stop meanwhile.
async fn pause(memory: &mut Memory, stop: Pin<&mut impl Future<Output = ()>>) -> bool {
    memory.pause = (memory.pause * 2).clamp(Duration::from_millis(250), MAX_RESTART_PAUSE);
    warn!("starting a new serving process in {:?}", memory.pause);
    tokio::select! {
        biased;
        () = stop => true,
        () = tokio::time::sleep(memory.pause) => false,
    }
}

/// Kills what is left of the process group of a serving process: whatever
/// its plugins started.
fn kill_group(group: Option<u32>) {
    if let Some(group) = group.and_then(|g| i32::try_from(g).ok()) {
        // SAFETY: killpg(2) on the group our child led; no memory is touched.
        unsafe {
            libc::killpg(group, libc::SIGKILL);
        }
    }
}

/// Waits for the serving process to say it is ready; false if the pipe
/// closed (it ended) first. Reads up to the line's end only: a process a
/// plugin started could hold the pipe open past that.
async fn wait_ready(mut ready: std::io::PipeReader) -> bool {
    tokio::task::spawn_blocking(move || {
        let mut said = Vec::new();
        let mut byte = [0u8; 1];
        while said.len() < 16 && !said.ends_with(b"\n") {
            match ready.read(&mut byte) {
                Ok(1) => said.push(byte[0]),
                _ => break,
            }
        }
        said == b"ready\n"
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
