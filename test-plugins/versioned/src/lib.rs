//! A plugin for reload tests: the same crate built as two versions.
//!
//! | line      | reply                                               |
//! |-----------|-----------------------------------------------------|
//! | `VERSION` | `MSG versioned 1`, or `MSG versioned 2` built with the `v2` feature |
//! | `COUNT`   | `COUNT <n>`: calls of `COUNT` this instance has answered, this one included |
//! | `LABEL`   | `MSG label=<label setting>`                         |

use std::sync::atomic::{AtomicU64, Ordering};

use plugin_api::{Hook, HookResult, Host, Plugin, Reply, Request, export_plugin};
use serde::Deserialize;

#[cfg(feature = "v2")]
const BUILT_AS: &str = "2";
#[cfg(not(feature = "v2"))]
const BUILT_AS: &str = "1";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    label: String,
    /// Refuse to start, with this message.
    #[serde(default)]
    fail_init: Option<String>,
}

pub struct Versioned {
    label: String,
    /// State a reload must keep when neither file nor settings changed.
    count: AtomicU64,
}

impl Plugin for Versioned {
    type Settings = Settings;
    type State = ();

    fn new(settings: Settings, _: &Host) -> Result<Self, String> {
        if let Some(message) = settings.fail_init {
            return Err(message);
        }
        Ok(Versioned {
            label: settings.label,
            count: AtomicU64::new(0),
        })
    }

    fn hooks(&self) -> Vec<Hook<Self>> {
        vec![
            Hook::new("VERSION", Versioned::version),
            Hook::new("COUNT", Versioned::count),
            Hook::new("LABEL", Versioned::label),
        ]
    }
}

impl Versioned {
    fn version(&self, _: &Request<'_>, reply: &mut Reply<'_>) -> HookResult {
        reply.line(format_args!("MSG versioned {BUILT_AS}"));
        Ok(())
    }

    fn count(&self, _: &Request<'_>, reply: &mut Reply<'_>) -> HookResult {
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        reply.line(format_args!("COUNT {n}"));
        Ok(())
    }

    fn label(&self, _: &Request<'_>, reply: &mut Reply<'_>) -> HookResult {
        reply.line(format_args!("MSG label={}", self.label));
        Ok(())
    }
}

export_plugin!(Versioned);
