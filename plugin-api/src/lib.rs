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
//!     const NAME: &'static str = "greeter";
//!     const VERSION: &'static str = env!("CARGO_PKG_VERSION");
//!     type Settings = NoSettings;
//!
//!     fn new(_: NoSettings, host: &Host) -> Result<Self, String> {
//!         Ok(Greeter { name: host.server_name().to_owned() })
//!     }
//!
//!     fn hooks(&self) -> Vec<Hook<Self>> {
//!         vec![Hook::new(r"GREET (\w+)", Greeter::greet)]
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
//! # Compatibility
//!
//! The host checks, when it loads a library, that the plugin was built
//! against a compatible `plugin-api`: abi_stable compares the version of this
//! crate (same major, and same minor while the major is 0) and the full
//! layout of every type reachable from the root module. A mismatch is
//! refused with an error instead of undefined behaviour.
//!
//! [`abi::PluginRoot`] is a prefix type: a field appended after its last
//! field (with a patch-version bump) lets plugins built against the newer
//! `plugin-api` load in older hosts, which never read it. The reverse does
//! not hold: abi_stable refuses a library whose root module has fewer
//! fields than the host expects ("too many fields"). Any other change to a
//! type in [`abi`] is breaking and needs a new minor version. This was
//! verified by crossing 0.1.0 builds with a 0.1.1 whose `PluginRoot` had one
//! more field: a 0.1.0 host served the newer plugin, and a 0.1.1 host
//! refused the older one (`Error: too many fields`, `Expected: 4`,
//! `Found: 3`).

pub mod abi;
mod export;
mod file_name;
mod panic;
mod plugin;
mod reply;
mod request;

pub use export::{ROOT_MODULE_EXPORT_NAME, instantiate, lib_header};
pub use file_name::library_file_name;
pub use plugin::{Hook, HookResult, Host, NoSettings, Plugin};
pub use reply::Reply;
pub use request::Request;

/// The README's plugin example, compiled as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExample;

/// Re-exported so that hosts name the exact `abi_stable` this crate was built with.
pub use abi_stable;

/// Exports a [`Plugin`] implementation as this library's root module.
///
/// Put it once in the plugin crate (`crate-type = ["cdylib"]`), naming the
/// type that implements [`Plugin`].
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        // The name is the one abi_stable's loader looks up; a unit test in
        // `plugin-api` checks it against abi_stable's own constant.
        #[doc(hidden)]
        #[unsafe(export_name = "_1as_0lib_1header_0root_bmodule_bloader")]
        pub static __PLUGIN_API_LIB_HEADER: $crate::abi_stable::library::LibHeader =
            $crate::lib_header::<$plugin>();
    };
}
