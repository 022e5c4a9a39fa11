//! A plugin for tests of plugin-api 0.2, listed first in a config:
//!
//! | line            | reply                                               |
//! |-----------------|-----------------------------------------------------|
//! | `LOGIN <name>`  | `MSG welcome <name>`; this connection is logged in   |
//! | `ME`            | `MSG <name> <connection id>` once logged in          |
//! | `LATER <ms> <text>` | `MSG <text>`, sent from another thread after `ms` |
//! | `NEVER`         | a reply promised and never given                     |
//! | `DROP`          | a reply promised, then dropped unsent                |
//! | `SNOOZE <ms>`   | sleeps on a blocking thread holding the state, then `MSG <name>` |
//! | anything else   | `ERR login first` until logged in; then passed on    |
//!
//! With the `events` setting, every connection's open and close are
//! appended to that file as `open <id> <peer>` and `close <id> <name>`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use plugin_api::{Client, Hook, HookResult, Host, Later, Plugin, Reply, Request, export_plugin};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where connection events are recorded.
    #[serde(default)]
    events: Option<PathBuf>,
}

pub struct Gatekeeper {
    events: Option<PathBuf>,
    /// Replies promised by `NEVER`, kept so that they are never sent.
    never: Mutex<Vec<Later>>,
}

/// What the plugin keeps per connection.
#[derive(Default)]
pub struct Session {
    name: Option<String>,
}

impl Plugin for Gatekeeper {
    type Settings = Settings;
    type State = Session;

    fn new(settings: Settings, _: &Host) -> Result<Self, String> {
        Ok(Gatekeeper {
            events: settings.events,
            never: Mutex::new(Vec::new()),
        })
    }

    fn hooks(&self) -> Vec<Hook<Self>> {
        vec![
            Hook::new(r"LOGIN (\w+)", Gatekeeper::login).usage("LOGIN <name>"),
            Hook::new("ME", Gatekeeper::me),
            Hook::new(r"LATER (\d+) (.*)", Gatekeeper::later),
            Hook::new("NEVER", Gatekeeper::never),
            Hook::new("DROP", Gatekeeper::drop_reply),
            Hook::new(r"SNOOZE (\d+)", Gatekeeper::snooze).blocking(),
            // Last: every other line, for the gate.
            Hook::new("(?s:.*)", Gatekeeper::gate),
        ]
    }

    fn connected(&self, client: &Client<'_>) -> Session {
        self.record(format_args!("open {} {}", client.id(), client.peer()));
        Session::default()
    }

    fn disconnected(&self, client: &Client<'_>, state: Session) {
        let name = state.name.as_deref().unwrap_or("-");
        self.record(format_args!("close {} {name}", client.id()));
    }
}

impl Gatekeeper {
    fn record(&self, event: std::fmt::Arguments<'_>) {
        if let Some(path) = &self.events
            && let Ok(mut file) = OpenOptions::new().create(true).append(true).open(path)
        {
            let _ = writeln!(file, "{event}");
        }
    }

    fn login(&self, req: &Request, reply: &mut Reply<Session>) -> HookResult {
        let name = req.group(1).unwrap_or_default().to_owned();
        reply.line(format_args!("MSG welcome {name}"));
        reply.state().name = Some(name);
        Ok(())
    }

    fn me(&self, req: &Request, reply: &mut Reply<Session>) -> HookResult {
        let Some(name) = reply.state().name.clone() else {
            return Err("login first".into());
        };
        reply.line(format_args!("MSG {name} {}", req.connection_id()));
        Ok(())
    }

    fn later(&self, req: &Request, reply: &mut Reply<Session>) -> HookResult {
        let ms: u64 = req.group(1).unwrap_or_default().parse()?;
        let text = req.group(2).unwrap_or_default().to_owned();
        let mut later = reply.later();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(ms));
            later.line(format_args!("MSG {text}"));
            later.send();
        });
        Ok(())
    }

    fn never(&self, _: &Request, reply: &mut Reply<Session>) -> HookResult {
        let later = reply.later();
        self.never
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(later);
        Ok(())
    }

    fn drop_reply(&self, _: &Request, reply: &mut Reply<Session>) -> HookResult {
        drop(reply.later());
        Ok(())
    }

    fn snooze(&self, req: &Request, reply: &mut Reply<Session>) -> HookResult {
        let ms: u64 = req.group(1).unwrap_or_default().parse()?;
        std::thread::sleep(Duration::from_millis(ms));
        let name = reply.state().name.clone().unwrap_or_else(|| "-".into());
        reply.line(format_args!("MSG {name}"));
        Ok(())
    }

    fn gate(&self, _: &Request, reply: &mut Reply<Session>) -> HookResult {
        if reply.state().name.is_none() {
            return Err("login first".into());
        }
        reply.decline();
        Ok(())
    }
}

export_plugin!(Gatekeeper);
