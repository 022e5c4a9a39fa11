//! The safe API a plugin author implements.

use serde::de::DeserializeOwned;

use crate::{Client, Pusher, Reply, Request};

/// What a hook handler returns: `Err` becomes an `ERR <message>` reply.
pub type HookResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

type Handler<P> =
    dyn Fn(&P, &Request<'_>, &mut Reply<'_, <P as Plugin>::State>) -> HookResult + Send + Sync;

/// A plugin: a value built once from its settings, and the hooks it serves.
///
/// The host may call hooks of one plugin from several threads at once, hence
/// `Send + Sync`; keep state shared by all connections behind a lock or an
/// atomic, and state of one connection in [`Plugin::State`].
pub trait Plugin: Sized + Send + Sync + 'static {
    /// The plugin's settings: its `[plugin.settings]` table in the host's
    /// `config.toml`. Use [`NoSettings`] for none, and
    /// `#[serde(deny_unknown_fields)]` so that typos are reported.
    type Settings: DeserializeOwned;

    /// What the plugin keeps for each connection (`()` for nothing): made
    /// by [`Plugin::connected`] when the connection opens, handed mutably
    /// to every hook call on it ([`Reply::state`]), and given back to
    /// [`Plugin::disconnected`] when it closes. Calls on one connection
    /// never overlap, so it needs no lock.
    type State: Default + Send + 'static;

    /// Builds the plugin. An `Err` stops the host from starting (or skips
    /// the plugin if it is optional), printing the message with the plugin's name.
    fn new(settings: Self::Settings, host: &Host) -> Result<Self, String>;

    /// The hooks, in priority order: the first whose pattern matches a line wins.
    fn hooks(&self) -> Vec<Hook<Self>>;

    /// A client connected: the connection's state in this plugin.
    fn connected(&self, client: &Client<'_>) -> Self::State {
        let _ = client;
        Self::State::default()
    }

    /// A connection ended, however it ended (the client closed it, `CLOSE`,
    /// a hook, the idle timeout, the host stopping, a reload that removed
    /// the plugin); `state` is the connection's state, to clean up after.
    /// Not called when the serving process crashed.
    fn disconnected(&self, client: &Client<'_>, state: Self::State) {
        let _ = (client, state);
    }
}

/// Settings for a plugin that takes none: any key in its table is an error.
#[derive(Debug, Default, Clone, Copy, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

/// What the host tells a plugin when it starts.
#[derive(Clone)]
pub struct Host {
    pub(crate) server_name: String,
    pub(crate) host_version: String,
    pub(crate) pusher: Pusher,
}

impl Host {
    /// The server's name, as configured (or the machine's host name).
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// The host's version.
    pub fn host_version(&self) -> &str {
        &self.host_version
    }

    /// A handle for sending lines to connections at any time, from any
    /// thread; keep a clone of it.
    pub fn pusher(&self) -> Pusher {
        self.pusher.clone()
    }
}

/// One hook: a pattern that must match the whole request line, and its handler.
pub struct Hook<P: Plugin> {
    pub(crate) pattern: String,
    pub(crate) blocking: bool,
    pub(crate) usage: String,
    pub(crate) description: String,
    pub(crate) handler: Box<Handler<P>>,
}

impl<P: Plugin> Hook<P> {
    /// A hook whose `pattern` (Rust `regex` syntax) must match the whole line;
    /// there is no need for `^` and `$`. Its capture groups reach the handler
    /// through [`Request::group`] and [`Request::named`].
    pub fn new<F>(pattern: impl Into<String>, handler: F) -> Self
    where
        F: Fn(&P, &Request<'_>, &mut Reply<'_, P::State>) -> HookResult + Send + Sync + 'static,
    {
        Hook {
            pattern: pattern.into(),
            blocking: false,
            usage: String::new(),
            description: String::new(),
            handler: Box::new(handler),
        }
    }

    /// Marks the handler as one that may block (sleep, file or network I/O,
    /// long computation). The host then runs it off its network threads so
    /// that other connections are not delayed, at a small cost per call.
    pub fn blocking(mut self) -> Self {
        self.blocking = true;
        self
    }

    /// How the command is written, for `HELP`: `JOIN <room>`.
    pub fn usage(mut self, usage: impl Into<String>) -> Self {
        self.usage = usage.into();
        self
    }

    /// What the command does, in one line, for `HELP`.
    pub fn describe(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// The hook's pattern.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }
}
