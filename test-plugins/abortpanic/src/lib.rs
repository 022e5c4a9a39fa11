//! A plugin built with `panic = "abort"`, as a third party may build one:
//! `plugin-api` cannot catch its panics, so `PANIC` aborts the process
//! that runs the hook.
//!
//! | line    | what the hook does |
//! |---------|--------------------|
//! | `PANIC` | panics             |
//! | `OK`    | `MSG ok`           |

use plugin_api::{Hook, HookResult, Host, NoSettings, Plugin, Reply, Request, export_plugin};

pub struct AbortPanic;

impl Plugin for AbortPanic {
    type Settings = NoSettings;
    type State = ();

    fn new(_: NoSettings, _: &Host) -> Result<Self, String> {
        Ok(AbortPanic)
    }

    fn hooks(&self) -> Vec<Hook<Self>> {
        vec![
            Hook::new("PANIC", AbortPanic::panic),
            Hook::new("OK", AbortPanic::ok),
        ]
    }
}

impl AbortPanic {
    fn panic(&self, _: &Request<'_>, _: &mut Reply<'_>) -> HookResult {
        panic!("abortpanic was asked to panic")
    }

    fn ok(&self, _: &Request<'_>, reply: &mut Reply<'_>) -> HookResult {
        reply.line("MSG ok");
        Ok(())
    }
}

export_plugin!(AbortPanic);
