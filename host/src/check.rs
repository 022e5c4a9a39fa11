//! `host --check`: what the host would serve, in dispatch order.
//!
//! Names, versions and patterns come from the plugins and paths from the
//! file system; all are escaped, so none can drive the terminal.

use std::fmt::Write;

use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::plugins::escape;

/// The report printed by `--check`.
pub fn report(config: &Config, dispatcher: &Dispatcher) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "config: {}", escape::path(&config.file));
    let _ = writeln!(s, "listen: {}", config.listen);
    let _ = writeln!(s, "server name: {}", escape::text(&config.server_name));
    let admin = match &config.admin {
        None => "",
        Some(a) if a.has_secret() => ", AUTH and RELOAD (to admin clients)",
        Some(_) => ", RELOAD (to admin clients)",
    };
    let _ = writeln!(s, "built in: CLOSE, INFO, HELP{admin}");
    let _ = writeln!(s, "plugins, in dispatch order:");
    if dispatcher.plugins().is_empty() {
        let _ = writeln!(s, "  (none)");
    }
    let mut n = 0;
    for (i, plugin) in dispatcher.plugins().iter().enumerate() {
        let _ = writeln!(
            s,
            "  {}. {} {} ({})",
            i + 1,
            escape::text(&plugin.name),
            escape::text(&plugin.version),
            escape::path(&plugin.file)
        );
        for hook in &plugin.hooks {
            n += 1;
            let blocking = if hook.blocking { "  [blocking]" } else { "" };
            let _ = writeln!(
                s,
                "       {n:>4}  {}{blocking}",
                escape::pattern(&hook.pattern.source)
            );
        }
    }
    s
}
