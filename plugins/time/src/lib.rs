//! The `time` plugin: answers `TIME` with the host's local time.
//!
//! Its one setting, `format`, shows how a plugin takes settings from its
//! table in `config.toml` and rejects bad ones when the host starts rather
//! than on the first request.

use chrono::format::{Item, StrftimeItems};
use plugin_api::{Hook, HookResult, Host, Plugin, Reply, Request, export_plugin};
use serde::Deserialize;

/// The format of the original program: `26.11.2026 14:03:59`.
const DEFAULT_FORMAT: &str = "%d.%m.%Y %H:%M:%S";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// A `strftime`-style format, as understood by `chrono`.
    #[serde(default = "default_format")]
    format: String,
}

fn default_format() -> String {
    DEFAULT_FORMAT.to_owned()
}

pub struct Time {
    /// Parsed once at start-up, both to validate it and to save the parse per request.
    items: Vec<Item<'static>>,
}

impl Plugin for Time {
    type Settings = Settings;
    type State = ();

    fn new(settings: Settings, _: &Host) -> Result<Self, String> {
        let items: Vec<Item<'static>> = StrftimeItems::new(&settings.format)
            .parse_to_owned()
            .map_err(|_| {
                format!(
                    "invalid `format` {:?}: not a strftime format",
                    settings.format
                )
            })?;
        Ok(Time { items })
    }

    fn hooks(&self) -> Vec<Hook<Self>> {
        vec![
            Hook::new("TIME", Time::time)
                .usage("TIME")
                .describe("tells the server's local time"),
        ]
    }
}

impl Time {
    fn time(&self, _: &Request<'_>, reply: &mut Reply<'_>) -> HookResult {
        let now = chrono::Local::now();
        reply.line(format_args!(
            "TIME {}",
            now.format_with_items(self.items.iter())
        ));
        Ok(())
    }
}

export_plugin!(Time);
