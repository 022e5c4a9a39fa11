//! A plugin for tests: each hook exercises one behaviour of the host.
//!
//! | line          | reply                                  |
//! |---------------|----------------------------------------|
//! | `NOOP<i>`     | `MSG noop <i>` (only with `extra_hooks`) |
//! | `PANIC`       | the handler panics                     |
//! | `FAIL`        | the handler returns an error           |
//! | `SLEEP <ms>`  | blocks for `ms` milliseconds, then `MSG slept <ms>` |
//! | `ECHO <text>` | `MSG <text>`                           |
//! | `HELLO`       | `MSG testkit says hello` (overlaps `hello`) |
//! | `SETTING`     | `MSG greeting=<greeting setting>`      |
//! | `WHO`         | `MSG peer=<addr> connection=<id>`, then ` subject=<s>` over TLS with a client certificate |
//! | `BYE`         | `MSG bye`, then the host closes        |
//! | `TWO`         | two lines: `MSG one`, `MSG two`        |
//! | `CTRL <bytes>`| `MSG <n> control bytes` (asks for C0 controls) |
//! | `PANIC2`      | panics with a message of several lines  |
//! | `FAIL2`       | returns an error whose message has several lines |
//! | `BADERR`      | returns an error whose `Display` panics |

use std::time::Duration;

use plugin_api::{Hook, HookResult, Host, Plugin, Reply, Request, export_plugin};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Returned by `SETTING`, to prove settings reach the plugin.
    #[serde(default)]
    greeting: String,
    /// Refuse to start, with this message (tests `optional` plugins).
    #[serde(default)]
    fail_init: Option<String>,
    /// Panic while starting.
    #[serde(default)]
    panic_init: bool,
    /// Adds this many `NOOP<i>` hooks before the others (dispatch benchmarks).
    #[serde(default)]
    extra_hooks: usize,
    /// Panic when the host drops the plugin (at exit).
    #[serde(default)]
    panic_on_drop: bool,
    /// Serve only the `NOOP<i>` hooks (dispatch benchmarks with an exact count).
    #[serde(default)]
    extra_only: bool,
    /// Adds a hook with this pattern first (tests invalid patterns).
    #[serde(default)]
    extra_pattern: Option<String>,
}

pub struct Testkit {
    settings: Settings,
}

impl Plugin for Testkit {
    type Settings = Settings;
    type State = ();

    fn new(settings: Settings, _: &Host) -> Result<Self, String> {
        if settings.panic_init {
            panic!("testkit was told to panic while starting");
        }
        if let Some(message) = &settings.fail_init {
            return Err(message.clone());
        }
        Ok(Testkit { settings })
    }

    fn hooks(&self) -> Vec<Hook<Self>> {
        let mut hooks = Vec::new();
        if let Some(p) = &self.settings.extra_pattern {
            hooks.push(Hook::new(p.clone(), Testkit::echo));
        }
        for i in 0..self.settings.extra_hooks {
            hooks.push(Hook::new(
                format!("NOOP{i}"),
                move |_: &Testkit, _: &Request<'_>, reply: &mut Reply<'_>| {
                    reply.line(format_args!("MSG noop {i}"));
                    Ok(())
                },
            ));
        }
        if self.settings.extra_only {
            return hooks;
        }
        hooks.extend([
            Hook::new("PANIC", Testkit::panic),
            Hook::new("FAIL", Testkit::fail),
            Hook::new(r"SLEEP (\d+)", Testkit::sleep).blocking(),
            Hook::new("ECHO (?P<text>.*)", Testkit::echo),
            Hook::new("HELLO", Testkit::hello),
            Hook::new("SETTING", Testkit::setting),
            Hook::new("WHO", Testkit::who),
            Hook::new("BYE", Testkit::bye),
            Hook::new("TWO", Testkit::two),
            Hook::new(r"CTRL ([\x00-\x08\x0b-\x1f]+)", Testkit::ctrl),
            Hook::new("PANIC2", Testkit::panic_lines),
            Hook::new("FAIL2", Testkit::fail_lines),
            Hook::new("BADERR", Testkit::bad_error),
        ]);
        hooks
    }
}

impl Testkit {
    fn panic(&self, _: &Request<'_>, _: &mut Reply<'_>) -> HookResult {
        panic!("testkit was asked to panic")
    }

    fn fail(&self, _: &Request<'_>, reply: &mut Reply<'_>) -> HookResult {
        // Written and then discarded by the host: a failed hook sends only its error.
        reply.line("MSG this line must not be sent");
        Err("testkit failed on purpose".into())
    }

    fn sleep(&self, req: &Request<'_>, reply: &mut Reply<'_>) -> HookResult {
        let ms: u64 = req.group(1).unwrap_or("0").parse()?;
        std::thread::sleep(Duration::from_millis(ms));
        reply.line(format_args!("MSG slept {ms}"));
        Ok(())
    }

    fn echo(&self, req: &Request<'_>, reply: &mut Reply<'_>) -> HookResult {
        reply.line(format_args!(
            "MSG {}",
            req.named("text").unwrap_or(req.line())
        ));
        Ok(())
    }

    fn hello(&self, _: &Request<'_>, reply: &mut Reply<'_>) -> HookResult {
        reply.line("MSG testkit says hello");
        Ok(())
    }

    fn setting(&self, _: &Request<'_>, reply: &mut Reply<'_>) -> HookResult {
        reply.line(format_args!("MSG greeting={}", self.settings.greeting));
        Ok(())
    }

    fn who(&self, req: &Request<'_>, reply: &mut Reply<'_>) -> HookResult {
        let subject = req.client().tls_subject();
        reply.line(format_args!(
            "MSG peer={} connection={}{}{}",
            req.peer(),
            req.connection_id(),
            if subject.is_some() { " subject=" } else { "" },
            subject.unwrap_or_default()
        ));
        Ok(())
    }

    fn bye(&self, _: &Request<'_>, reply: &mut Reply<'_>) -> HookResult {
        reply.line("MSG bye").close();
        Ok(())
    }

    fn panic_lines(&self, req: &Request<'_>, _: &mut Reply<'_>) -> HookResult {
        assert_eq!(req.line(), "not this line", "a multi-line panic message");
        Ok(())
    }

    fn fail_lines(&self, _: &Request<'_>, _: &mut Reply<'_>) -> HookResult {
        Err("first line\r\nsecond line\nthird line".into())
    }

    fn bad_error(&self, _: &Request<'_>, _: &mut Reply<'_>) -> HookResult {
        Err(Box::new(BadError))
    }

    fn ctrl(&self, req: &Request<'_>, reply: &mut Reply<'_>) -> HookResult {
        let n = req.group(1).map_or(0, str::len);
        reply.line(format_args!("MSG {n} control bytes"));
        Ok(())
    }

    fn two(&self, _: &Request<'_>, reply: &mut Reply<'_>) -> HookResult {
        reply.line("MSG one").line("MSG two");
        Ok(())
    }
}

impl Drop for Testkit {
    fn drop(&mut self) {
        if self.settings.panic_on_drop {
            panic!("testkit was told to panic when dropped");
        }
    }
}

/// An error that cannot even describe itself.
#[derive(Debug)]
struct BadError;

impl std::fmt::Display for BadError {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("BadError cannot be displayed")
    }
}

impl std::error::Error for BadError {}

export_plugin!(Testkit);
