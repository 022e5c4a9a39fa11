//! The types that cross the boundary between the host and a plugin library.
//!
//! Everything here is `#[repr(C)]` and derives [`StableAbi`], so that the
//! host can verify at load time that a library was built against a layout it
//! understands. Plugin authors do not use this module directly.
//!
//! What may change within 0.2 (see the crate documentation): a field
//! appended to [`PluginRoot`] after its last field, and a method appended to
//! [`PluginObject`] or [`HostObject`] after its last method, with a default
//! body. Nothing else here may change before 0.3.

// `PluginRoot_Ref` follows abi_stable's naming of prefix references, and
// `#[sabi_trait]` expands to impls inside a generated module.
#![allow(non_camel_case_types, non_local_definitions)]

use std::ffi::c_void;

use abi_stable::library::RootModule;
use abi_stable::sabi_trait;
use abi_stable::std_types::{RArc, RBox, ROption, RResult, RSlice, RStr, RString, RVec};
use abi_stable::{StableAbi, declare_root_module_statics, package_version_strings};

/// The root module every plugin library exports.
///
/// A prefix type: the fields up to `init` are the prefix every 0.2 library
/// has; a field appended after `init` in a later 0.2.x reads as `None`
/// from a library built before it.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginRoot_Ref)))]
#[sabi(missing_field(option))]
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
    /// The host's services, kept by the plugin for as long as it likes.
    pub host: HostBox,
}

/// What a plugin can ask of the host at any time, from any thread.
/// Implemented by the host.
#[sabi_trait]
pub trait HostObject: Clone + Send + Sync + 'static {
    /// Queues `line` (without its ending) to be sent to connection
    /// `connection` as a pushed line.
    fn push(&self, connection: u64, line: RStr<'_>) -> PushStatus;

    /// Queues `line` for each of `connections`; returns how many took it.
    fn push_many(&self, connections: RSlice<'_, u64>, line: RStr<'_>) -> u64;

    /// Tells connection `connection` that one of its pending replies
    /// ([`Outcome::later`]) may be ready.
    #[sabi(last_prefix_field)]
    fn wake(&self, connection: u64);
}

/// The host's services as a plugin holds them.
pub type HostBox = HostObject_TO<RArc<()>>;

/// What became of a pushed line.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushStatus {
    /// Queued for the connection.
    Queued,
    /// No such connection is open (any more).
    Gone,
    /// The connection's queue of pushed lines was full: the line was not
    /// queued and the host closes the connection.
    Overflow,
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
    /// How the command is written (`JOIN <room>`); empty if not given.
    pub usage: RString,
    /// What the command does, in one line; empty if not given.
    pub description: RString,
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

/// A named capture group of a hook's pattern.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct GroupName<'a> {
    pub name: RStr<'a>,
    pub index: usize,
}

/// The connection a request or an event comes from.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct ClientFfi<'a> {
    /// A number unique to the connection for the life of the host process.
    pub id: u64,
    /// The client's address, as text (from the PROXY header, if one was read).
    pub peer: RStr<'a>,
    /// The subject of the client's TLS certificate; empty without one.
    pub tls_subject: RStr<'a>,
}

/// One request line on its way to a hook.
#[repr(C)]
#[derive(StableAbi)]
pub struct RequestFfi<'a> {
    /// The line, without its line ending.
    pub line: RStr<'a>,
    /// Capture groups of the hook's pattern; index 0 is the whole line.
    pub groups: RSlice<'a, Span>,
    /// The names of the named groups, found by the host when it compiled
    /// the pattern.
    pub names: RSlice<'a, GroupName<'a>>,
    pub client: ClientFfi<'a>,
}

/// The connection's state in one plugin, as the plugin's `connect` made
/// it; only that plugin knows its type. The host never reads it, keeps it
/// for one connection, hands it to one call at a time, and gives it back
/// to `disconnect` once.
#[repr(transparent)]
#[derive(StableAbi, Debug)]
pub struct StatePtr(pub *mut c_void);

// SAFETY: a plugin's state type is `Send` (the `Plugin` trait requires it),
// and the host hands a state to one thread at a time.
unsafe impl Send for StatePtr {}

/// What a hook asks the host to do with its reply.
#[repr(C)]
#[derive(StableAbi, Default)]
pub struct Outcome {
    /// Close the connection after the reply.
    pub close: bool,
    /// The hook passed the line on: dispatch goes on with the next hook
    /// whose pattern matches, and the hook's reply lines are dropped.
    pub decline: bool,
    /// The reply comes later: the host waits for this without holding a
    /// thread, and answers the requests behind it only afterwards.
    pub later: ROption<PendingBox>,
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

/// A reply a hook promised for later. Implemented by the plugin.
#[sabi_trait]
pub trait PendingReply: Send + Sync + 'static {
    /// The reply, once there is one: its lines are appended to `out`.
    /// `None` while the hook has not answered yet. After it returned
    /// `Some`, it is not called again.
    #[sabi(last_prefix_field)]
    fn take(&self, out: &mut RString) -> ROption<RResult<Outcome, HookFailure>>;
}

/// A pending reply as the host holds it.
pub type PendingBox = PendingReply_TO<RBox<()>>;

/// A loaded plugin instance, as a trait object whose vtable comes from the
/// plugin library.
#[sabi_trait]
pub trait PluginObject: Send + Sync {
    /// The plugin's hooks, in the order the plugin declares them.
    fn hooks(&self) -> RVec<HookSpec>;

    /// A connection opened: returns the plugin's state for it.
    fn connect(&self, client: &ClientFfi<'_>) -> StatePtr;

    /// A connection closed: takes back the state `connect` made.
    fn disconnect(&self, client: &ClientFfi<'_>, state: StatePtr);

    /// Runs hook number `hook` (an index into [`PluginObject::hooks`]) with
    /// the connection's `state`, appending reply lines, each ending in
    /// `\n`, to `out`.
    #[sabi(last_prefix_field)]
    fn call(
        &self,
        hook: usize,
        request: &RequestFfi<'_>,
        state: &mut StatePtr,
        out: &mut RString,
    ) -> RResult<Outcome, HookFailure>;
}

/// The owned trait object a plugin's `init` returns.
pub type PluginBox = PluginObject_TO<'static, RBox<()>>;
