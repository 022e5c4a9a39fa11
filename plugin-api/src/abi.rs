//! The types that cross the boundary between the host and a plugin library.
//!
//! Everything here is `#[repr(C)]` and derives [`StableAbi`], so that the
//! host can verify at load time that a library was built against a layout it
//! understands. Plugin authors do not use this module directly.

// `PluginRoot_Ref` follows abi_stable's naming of prefix references, and
// `#[sabi_trait]` expands to impls inside a generated module.
#![allow(non_camel_case_types, non_local_definitions)]

use abi_stable::library::RootModule;
use abi_stable::sabi_trait;
use abi_stable::std_types::{RBox, RResult, RSlice, RStr, RString, RVec};
use abi_stable::{StableAbi, declare_root_module_statics, package_version_strings};

/// The root module every plugin library exports.
///
/// It is a prefix type, so that a field can be appended in a later
/// `plugin-api` without breaking older hosts: a host loads a plugin whose
/// root module has more fields than it knows, and ignores them. A host
/// refuses a plugin whose root module has fewer fields than it expects.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginRoot_Ref)))]
#[sabi(missing_field(panic))]
pub struct PluginRoot {
    /// The plugin's name, as it reports itself.
    pub name: RStr<'static>,
    /// The plugin's own version (usually its crate version).
    pub version: RStr<'static>,
    /// Creates the plugin from its settings (a TOML document holding the
    /// plugin's table from the host's config, empty if none).
    #[sabi(last_prefix_field)]
    pub init: extern "C" fn(settings: RStr<'_>, host: &HostInfo<'_>) -> RResult<PluginBox, RString>,
}

impl RootModule for PluginRoot_Ref {
    declare_root_module_statics! {PluginRoot_Ref}
    const BASE_NAME: &'static str = "plugin";
    const NAME: &'static str = "plugin";
    const VERSION_STRINGS: abi_stable::sabi_types::VersionStrings = package_version_strings!();
}

/// What the host tells a plugin about itself when the plugin starts.
#[repr(C)]
#[derive(StableAbi)]
pub struct HostInfo<'a> {
    /// The name clients see (`MSG Hello from <server name>`).
    pub server_name: RStr<'a>,
    /// The host's version.
    pub host_version: RStr<'a>,
}

/// One hook as the host sees it: a pattern and how to run its handler.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct HookSpec {
    /// A regular expression (Rust `regex` syntax) that must match the whole line.
    pub pattern: RString,
    /// The handler may block (sleep, do I/O, compute for long), so the host
    /// runs it on a thread where blocking is allowed.
    pub blocking: bool,
}

/// A byte range of the request line; `start == usize::MAX` marks a group
/// that did not take part in the match.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    /// The span of a capture group that did not match.
    pub const NONE: Span = Span {
        start: usize::MAX,
        end: usize::MAX,
    };
}

/// One request line on its way to a hook.
#[repr(C)]
#[derive(StableAbi)]
pub struct RequestFfi<'a> {
    /// The line, without its line ending.
    pub line: RStr<'a>,
    /// Capture groups of the hook's pattern; index 0 is the whole line.
    pub groups: RSlice<'a, Span>,
    /// The client's address, as text.
    pub peer: RStr<'a>,
    /// A number unique to the connection for the life of the host process.
    pub connection_id: u64,
}

/// What a hook asks the host to do once its reply is sent.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Close the connection after the reply.
    pub close: bool,
}

/// Why a hook produced no reply.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub enum HookFailure {
    /// The handler returned an error; the text is meant for the client.
    Error(RString),
    /// The handler panicked; the text is the panic message and its location.
    Panic(RString),
}

/// A loaded plugin instance, as a trait object whose vtable comes from the
/// plugin library.
#[sabi_trait]
pub trait PluginObject: Send + Sync {
    /// The plugin's hooks, in the order the plugin declares them.
    fn hooks(&self) -> RVec<HookSpec>;

    /// Runs hook number `hook` (an index into [`PluginObject::hooks`]),
    /// appending reply lines, each ending in `\n`, to `out`.
    #[sabi(last_prefix_field)]
    fn call(
        &self,
        hook: usize,
        request: &RequestFfi<'_>,
        out: &mut RString,
    ) -> RResult<Outcome, HookFailure>;
}

/// The owned trait object a plugin's `init` returns.
pub type PluginBox = PluginObject_TO<'static, RBox<()>>;
