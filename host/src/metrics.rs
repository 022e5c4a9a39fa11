//! The figures of `INFO` for Prometheus: an HTTP listener at
//! `metrics_listen` (off unless set) in the serving process, answering
//! `GET /metrics` in the text exposition format (version 0.0.4).
//!
//! It serves on a thread and runtime of its own, so a hook that holds a
//! serving thread does not hold up a scrape. The HTTP is the least a
//! scraper needs: one request per connection, its head read (at most
//! [`MAX_HEAD`], within [`READ_TIMEOUT`]), one response, close; an HTTP
//! crate would bring more code than this endpoint has.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{info, warn};

use crate::shared::Shared;
use crate::stats::{BUCKETS, HookStats};

const MAX_HEAD: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrapes answered at once; more wait in the backlog.
const MAX_SCRAPES: usize = 16;

/// Binds `addr` and serves the metrics of `shared` from a thread of its
/// own; an error if the address cannot be had.
pub fn start(addr: SocketAddr, shared: Arc<Shared>) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on metrics_listen {addr}: {e}"))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    info!(addr = %bound, "metrics on http://{bound}/metrics");
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => return warn!("metrics: cannot start a runtime: {e}"),
            };
            runtime.block_on(serve(listener, shared));
        })?;
    Ok(())
}

async fn serve(listener: std::net::TcpListener, shared: Arc<Shared>) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_SCRAPES));
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                warn!("metrics: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let _ = tokio::time::timeout(READ_TIMEOUT, answer(stream, &shared)).await;
            drop(permit);
        });
    }
}

async fn answer(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, path) = (words.next(), words.next());
    let (status, body) = match (method, path) {
        (Some(b"GET"), Some(b"/metrics")) => ("200 OK", render(shared)),
        (Some(b"GET"), _) => ("404 Not Found", "try /metrics\n".to_owned()),
        _ => ("405 Method Not Allowed", String::new()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The metrics in the text exposition format.
pub fn render(shared: &Shared) -> String {
    let stats = &shared.stats;
    let table = shared.dispatch.load();
    let mut s = String::new();
    let disabled = (0..table.route_count())
        .filter(|&i| table.route(i).disabled.is_some())
        .count();
    let started = SystemTime::now()
        .checked_sub(stats.started.elapsed())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    let server: [(&str, &str, &str, String); 7] = [
        (
            "linehost_start_time_seconds",
            "gauge",
            "When the serving process started, in Unix time.",
            format!("{started:.3}"),
        ),
        (
            "linehost_connections",
            "gauge",
            "Connections open now.",
            stats.connections.load(Ordering::Relaxed).to_string(),
        ),
        (
            "linehost_connections_total",
            "counter",
            "Connections accepted by this serving process.",
            stats.connections_total.load(Ordering::Relaxed).to_string(),
        ),
        (
            "linehost_requests_total",
            "counter",
            "Request lines answered by this serving process.",
            stats.requests.get().to_string(),
        ),
        (
            "linehost_serving_restarts_total",
            "counter",
            "Serving processes the supervisor started before this one.",
            stats.restarts.load(Ordering::Relaxed).to_string(),
        ),
        (
            "linehost_reloads_total",
            "counter",
            "Reloads this serving process took.",
            stats.reloads.load(Ordering::Relaxed).to_string(),
        ),
        (
            "linehost_disabled_hooks",
            "gauge",
            "Hooks disabled after crashing the serving process.",
            disabled.to_string(),
        ),
    ];
    for (name, kind, help, value) in server {
        let _ = writeln!(
            s,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }

    let _ = writeln!(
        s,
        "# HELP linehost_plugin_loaded_timestamp_seconds When the plugin instance started, in Unix time.\n\
         # TYPE linehost_plugin_loaded_timestamp_seconds gauge"
    );
    for plugin in table.plugins() {
        let loaded = plugin.stats.loaded_unix().as_secs_f64();
        let _ = writeln!(
            s,
            "linehost_plugin_loaded_timestamp_seconds{{plugin=\"{}\",version=\"{}\"}} {loaded:.3}",
            label(&plugin.name),
            label(&plugin.version)
        );
    }

    type Figure = fn(&HookStats) -> u64;
    let counters: [(&str, &str, Figure); 4] = [
        ("linehost_hook_calls_total", "Calls of the hook.", |h| {
            h.calls.get()
        }),
        (
            "linehost_hook_errors_total",
            "Calls of the hook that returned an error.",
            |h| h.errors.load(Ordering::Relaxed),
        ),
        (
            "linehost_hook_panics_total",
            "Calls of the hook that panicked.",
            |h| h.panics.load(Ordering::Relaxed),
        ),
        (
            "linehost_hook_timeouts_total",
            "Calls of the hook past its time limit.",
            |h| h.timeouts.load(Ordering::Relaxed),
        ),
    ];
    let hooks: Vec<(String, &HookStats)> = (0..table.route_count())
        .map(|i| {
            let route = table.route(i);
            let plugin = &table.plugins()[route.plugin];
            (
                format!(
                    "plugin=\"{}\",hook=\"{}\"",
                    label(&plugin.name),
                    route.hook + 1
                ),
                table.stats(i),
            )
        })
        .collect();
    for (name, help, figure) in counters {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter");
        for (labels, stats) in &hooks {
            let _ = writeln!(s, "{name}{{{labels}}} {}", figure(stats));
        }
    }
    let name = "linehost_hook_duration_seconds";
    let _ = writeln!(
        s,
        "# HELP {name} Duration of the timed calls of the hook: every call on a blocking thread, \
         one in 64 inline.\n# TYPE {name} histogram"
    );
    for (labels, stats) in &hooks {
        let mut cumulative = 0;
        let buckets = stats.latency.buckets();
        for (i, n) in buckets.iter().enumerate() {
            cumulative += n;
            let le = BUCKETS.get(i).map_or("+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(s, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let (count, sum) = stats.latency.count_and_sum();
        let _ = writeln!(s, "{name}_sum{{{labels}}} {}", sum.as_secs_f64());
        let _ = writeln!(s, "{name}_count{{{labels}}} {count}");
    }
    s
}

/// A label value, escaped as the format asks.
fn label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
