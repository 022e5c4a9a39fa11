//! The `hello` plugin: answers `HELLO` with the server's name.
//!
//! It is also the smallest complete example of a plugin: one type, one
//! hook, one `export_plugin!` line.

use plugin_api::{Hook, HookResult, Host, NoSettings, Plugin, Reply, Request, export_plugin};

pub struct Hello {
    /// The reply, built once: the server name does not change while the host runs.
    greeting: String,
}

impl Plugin for Hello {
    type Settings = NoSettings;
    type State = ();

    fn new(_: NoSettings, host: &Host) -> Result<Self, String> {
        Ok(Hello {
            greeting: format!("MSG Hello from {}", host.server_name()),
        })
    }

    fn hooks(&self) -> Vec<Hook<Self>> {
        vec![
            Hook::new("HELLO", Hello::hello)
                .usage("HELLO")
                .describe("says hello with the server's name"),
        ]
    }
}

impl Hello {
    fn hello(&self, _: &Request<'_>, reply: &mut Reply<'_>) -> HookResult {
        reply.line_str(&self.greeting);
        Ok(())
    }
}

export_plugin!(Hello);
