//! How `linehost reload` reaches a running host: a Unix socket in the
//! abstract namespace, named after the host's config file.
//!
//! Why this and not a signal or the TCP port: a signal cannot carry the
//! outcome back, so `systemctl reload` would report success for a config
//! that failed; the TCP port answers admin commands only where the config
//! enables them, and may be reachable from other machines. An abstract
//! socket needs no directory the host can write (the packaged service has
//! none beside its copies), and disappears with the host. The name is
//! derived from the config file's canonical path, which both sides know;
//! the host answers only root and its own user (`SO_PEERCRED`).

use std::hash::{Hash, Hasher};
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

/// A reload asked for; the outcome goes back on `reply`, if anyone waits.
pub struct ReloadRequest {
    pub reply: Option<oneshot::Sender<Result<String, String>>>,
}

/// The request line a client sends.
const REQUEST: &str = "reload\n";
/// How long `linehost reload` waits for the outcome.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(150);

/// The socket's address for the config file `config`.
fn address(config: &Path) -> io::Result<SocketAddr> {
    let canonical = std::fs::canonicalize(config)?;
    // A fixed-key hash (SipHash with zero keys): the same in every process
    // of the same binary, which is all that must agree on it.
    let mut hasher = std::hash::DefaultHasher::new();
    canonical.hash(&mut hasher);
    SocketAddr::from_abstract_name(format!("linehost-reload/{:016x}", hasher.finish()))
}

/// Listens for `linehost reload` of the host serving `config`, passing each
/// request to `requests`; runs until the host stops.
pub fn listen(config: &Path, requests: mpsc::Sender<ReloadRequest>) -> io::Result<()> {
    let listener = std::os::unix::net::UnixListener::bind_addr(&address(config)?)?;
    listener.set_nonblocking(true)?;
    let listener = UnixListener::from_std(listener)?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let requests = requests.clone();
            tokio::spawn(answer(stream, requests));
        }
    });
    Ok(())
}

async fn answer(mut stream: UnixStream, requests: mpsc::Sender<ReloadRequest>) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let allowed = stream
        .peer_cred()
        .is_ok_and(|cred| cred.uid() == 0 || cred.uid() == me);
    if !allowed {
        warn!("refusing a reload request from another user");
        return;
    }
    let mut line = String::new();
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        BufReader::new(&mut stream).take(64).read_line(&mut line),
    )
    .await;
    if !matches!(read, Ok(Ok(_))) || line != REQUEST {
        return;
    }
    info!("reload requested by `linehost reload`");
    let (reply, outcome) = oneshot::channel();
    if requests
        .send(ReloadRequest { reply: Some(reply) })
        .await
        .is_err()
    {
        return;
    }
    let text = match outcome.await {
        Ok(Ok(notes)) if notes.is_empty() => "ok\n".to_owned(),
        Ok(Ok(notes)) => format!("ok\n{notes}\n"),
        Ok(Err(e)) => format!("error\n{e}\n"),
        Err(_) => "error\nthe host stopped before the reload was done\n".to_owned(),
    };
    let _ = stream.write_all(text.as_bytes()).await;
}

/// `linehost reload`: asks the host serving `config` to reload; its notes
/// on success, its error on failure.
pub fn request(config: &Path) -> anyhow::Result<Result<String, String>> {
    use std::io::{Read, Write};
    let addr = address(config)
        .map_err(|e| anyhow::anyhow!("cannot find the config {}: {e}", config.display()))?;
    let mut stream = std::os::unix::net::UnixStream::connect_addr(&addr).map_err(|e| {
        anyhow::anyhow!(
            "no running host serves {} ({e}); the host must be started with this config file",
            config.display()
        )
    })?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.write_all(REQUEST.as_bytes())?;
    let mut answer = String::new();
    stream.take(1 << 20).read_to_string(&mut answer)?;
    let (status, rest) = answer.split_once('\n').unwrap_or((&answer, ""));
    let rest = rest.trim_end().to_owned();
    match status {
        "ok" => Ok(Ok(rest)),
        "error" => Ok(Err(rest)),
        _ => anyhow::bail!("the host closed the connection without an answer"),
    }
}
