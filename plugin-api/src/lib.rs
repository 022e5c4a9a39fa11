//! The one contract between the host and its plugins.
//!
//! A plugin is a `cdylib` that exports an [`abi_stable`] root module
//! ([`abi::PluginRoot`]). Plugin authors never touch that module: they
//! implement the safe [`Plugin`] trait and write one line,
//! [`export_plugin!`]. Everything that crosses the FFI boundary — the root
//! module, the `extern "C"` entry points and the catching of panics — lives
//! here, once, so that no plugin can get it wrong.
//!
//! ```no_run
//! use plugin_api::{Hook, HookResult, Host, NoSettings, Plugin, Reply, Request, export_plugin};
//!
//! pub struct Greeter { name: String }
//!
//! impl Plugin for Greeter {
//!     type Settings = NoSettings;
//!     type State = ();
//!
//!     fn new(_: NoSettings, host: &Host) -> Result<Self, String> {
//!         Ok(Greeter { name: host.server_name().to_owned() })
//!     }
//!
//!     fn hooks(&self) -> Vec<Hook<Self>> {
//!         vec![Hook::new(r"GREET (\w+)", Greeter::greet).usage("GREET <name>")]
//!     }
//! }
//!
//! impl Greeter {
//!     fn greet(&self, req: &Request, reply: &mut Reply) -> HookResult {
//!         reply.line(format_args!("MSG {} greets {}", self.name, req.group(1).unwrap_or("you")));
//!         Ok(())
//!     }
//! }
//!
//! export_plugin!(Greeter);
//! ```
//!
//! What else a plugin can do — per-connection state ([`Plugin::State`]),
//! connection events ([`Plugin::connected`], [`Plugin::disconnected`]),
//! pushed lines ([`Pusher`]), replies given later ([`Reply::later`]),
//! passing a line on ([`Reply::decline`]), replies of several lines — is
//! shown in `docs/writing-a-plugin.md`.
//!
//! # Compatibility
//!
//! The host checks, when it loads a library, that the plugin was built
//! against a compatible `plugin-api`: the same minor version while the
//! major is 0 (a 0.1 plugin is refused by a 0.2 host in one line naming
//! both), and abi_stable compares the layout of every type reachable from
//! the root module.
//!
//! Within 0.2, a plugin built against any 0.2.x loads in a host built
//! against any other 0.2.y. That holds because a 0.2.x release may only:
//!
//! - append a field to [`abi::PluginRoot`] after its last field (it is a
//!   prefix type: the host reads the new field as `None` from an older
//!   library, and an older host never reads it);
//! - append a method, with a default body, to [`abi::PluginObject`] or
//!   [`abi::HostObject`] after its last method (their vtables are prefix
//!   types too: an older library's object lacks the method, and calling it
//!   runs the default body);
//! - add anything to the safe API that does not change a type in [`abi`].
//!
//! Any other change to a type in [`abi`] is breaking, and makes 0.3. CI
//! builds a plugin against a copy of this crate with a field and a method
//! appended and loads it in the host, and builds the host against that copy
//! and loads today's plugins (`host/tests/abi_compat.rs`).

pub mod abi;
mod client;
mod export;
mod file_name;
mod later;
mod line;
mod panic;
mod plugin;
mod push;
mod reply;
mod request;

pub use client::Client;
#[doc(hidden)]
pub use export::{Export, lib_header};
pub use export::{ROOT_MODULE_EXPORT_NAME, instantiate};
pub use file_name::library_file_name;
pub use later::Later;
pub use plugin::{Hook, HookResult, Host, NoSettings, Plugin};
pub use push::{PushError, Pusher};
pub use reply::Reply;
pub use request::Request;

/// The README's plugin example, compiled as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExample;

/// The plugin guide's examples, compiled as doctests for the same reason.
#[cfg(doctest)]
#[doc = include_str!("../../docs/writing-a-plugin.md")]
pub struct GuideExamples;

/// Re-exported so that hosts name the exact `abi_stable` this crate was built with.
pub use abi_stable;

/// Exports a [`Plugin`] implementation as this library's root module.
///
/// Put it once in the plugin crate (`crate-type = ["cdylib"]`), naming the
/// type that implements [`Plugin`]. The plugin's name and version are its
/// crate's (`CARGO_PKG_NAME`, `CARGO_PKG_VERSION`) unless given:
/// `export_plugin!(Chat, name = "chat", version = "1.2.0")`. The name must
/// be unique among the plugins a host loads.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty $(,)?) => {
        $crate::export_plugin!(
            $plugin,
            name = env!("CARGO_PKG_NAME"),
            version = env!("CARGO_PKG_VERSION")
        );
    };
    ($plugin:ty, name = $name:expr $(,)?) => {
        $crate::export_plugin!($plugin, name = $name, version = env!("CARGO_PKG_VERSION"));
    };
    ($plugin:ty, version = $version:expr $(,)?) => {
        $crate::export_plugin!($plugin, name = env!("CARGO_PKG_NAME"), version = $version);
    };
    ($plugin:ty, name = $name:expr, version = $version:expr $(,)?) => {
        #[doc(hidden)]
        pub struct __PluginApiExport;

        impl $crate::Export for __PluginApiExport {
            type Plugin = $plugin;
            const NAME: &'static str = $name;
            const VERSION: &'static str = $version;
        }

        // The name is the one abi_stable's loader looks up; a unit test in
        // `plugin-api` checks it against abi_stable's own constant.
        #[doc(hidden)]
        #[unsafe(export_name = "_1as_0lib_1header_0root_bmodule_bloader")]
        pub static __PLUGIN_API_LIB_HEADER: $crate::abi_stable::library::LibHeader =
            $crate::lib_header::<__PluginApiExport>();
    };
}
