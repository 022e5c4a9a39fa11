//! `INFO`: the server, the serving model, each plugin and each hook, one
//! line each, every line starting with `INFO` and the last being
//! `INFO end`, so that a client reading a pipelined stream knows where the
//! reply ends.
//!
//! ```text
//! INFO server version=0.1.0 uptime_secs=12 connections=3 connections_total=10 requests=1234
//! INFO serving pid=4242 restarts=0 reloads=1 disabled_hooks=0
//! INFO plugin hello version=0.1.0 loaded_unix=1764164474 file=/usr/lib/linehost/plugins/libhello.so
//! INFO hook hello 1 calls=100 errors=0 panics=0 timeouts=0 latency_mean_us=1.2 latency_p99_us=2.5 runs=inline pattern=HELLO
//! INFO end
//! ```
//!
//! Values are `key=value` with no spaces, except the last field of a line,
//! which runs to its end (a file or a pattern). Latency is timed on a
//! sample of calls (`crate::stats`); `-` where none was timed yet. `runs`
//! says where the hook's calls run now (`crate::placement`): `inline` on
//! the connection's thread, or `blocking`.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use abi_stable::std_types::RString;

use crate::plugins::escape;
use crate::shared::Shared;
use crate::stats::HookStats;

/// Appends the `INFO` reply to `out`; `admin` adds what only admins see
/// (the plugin files).
pub fn render(shared: &Shared, admin: bool, out: &mut RString) {
    let stats = &shared.stats;
    let table = shared.dispatch.load();
    let disabled = (0..table.route_count())
        .filter(|&i| table.route(i).disabled.is_some())
        .count();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "INFO server version={} uptime_secs={} connections={} connections_total={} requests={}",
        env!("CARGO_PKG_VERSION"),
        stats.started.elapsed().as_secs(),
        stats.connections.load(Ordering::Relaxed),
        stats.connections_total.load(Ordering::Relaxed),
        stats.requests.get(),
    );
    let _ = writeln!(
        s,
        "INFO serving pid={} restarts={} reloads={} disabled_hooks={disabled}",
        stats.pid,
        stats.restarts.load(Ordering::Relaxed),
        stats.reloads.load(Ordering::Relaxed),
    );
    for plugin in table.plugins() {
        let loaded = plugin.stats.loaded_unix().as_secs();
        let _ = write!(
            s,
            "INFO plugin {} version={} loaded_unix={loaded}",
            word(&plugin.name),
            word(&plugin.version),
        );
        if admin {
            let _ = write!(s, " file={}", escape::path(&plugin.file));
        }
        s.push('\n');
    }
    for i in 0..table.route_count() {
        let route = table.route(i);
        let plugin = &table.plugins()[route.plugin];
        let hook = &plugin.hooks[route.hook];
        let _ = write!(s, "INFO hook {} {} ", word(&plugin.name), route.hook + 1);
        hook_figures(&mut s, table.stats(i));
        let runs = if route.placement.inline() {
            "inline"
        } else {
            "blocking"
        };
        let _ = write!(s, " runs={runs}");
        if route.disabled.is_some() {
            s.push_str(" disabled=yes");
        }
        let _ = writeln!(s, " pattern={}", escape::text(&hook.pattern.source));
    }
    s.push_str("INFO end\n");
    out.push_str(&s);
}

fn hook_figures(s: &mut String, stats: &HookStats) {
    let _ = write!(
        s,
        "calls={} errors={} panics={} timeouts={}",
        stats.calls.get(),
        stats.errors.load(Ordering::Relaxed),
        stats.panics.load(Ordering::Relaxed),
        stats.timeouts.load(Ordering::Relaxed),
    );
    match stats.latency.mean() {
        Some(mean) => {
            let _ = write!(s, " latency_mean_us={:.1}", mean.as_secs_f64() * 1e6);
        }
        None => s.push_str(" latency_mean_us=-"),
    }
    match stats.latency.p99() {
        Some(Some(bound)) => {
            let _ = write!(s, " latency_p99_us={:.1}", bound * 1e6);
        }
        Some(None) => s.push_str(" latency_p99_us=+Inf"),
        None => s.push_str(" latency_p99_us=-"),
    }
}

/// A name or version as one word: escaped, spaces shown as `_`.
fn word(text: &str) -> String {
    escape::text(text)
        .to_string()
        .replace(char::is_whitespace, "_")
}
