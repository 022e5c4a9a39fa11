//! The safe API a plugin author implements.

use serde::de::DeserializeOwned;

use crate::{Reply, Request};

/// What a hook handler returns: `Err` becomes an `ERR <message>` reply.
pub type HookResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

type Handler<P> = dyn Fn(&P, &Request<'_>, &mut Reply<'_>) -> HookResult + Send + Sync;

/// A plugin: a value built once from its settings, and the hooks it serves.
///
/// The host may call hooks of one plugin from several threads at once, hence
/// `Send + Sync`; keep mutable state behind a lock or an atomic.
pub trait Plugin: Sized + Send + Sync + 'static {
    /// The plugin's name. It must be unique among the plugins a host loads.
    const NAME: &'static str;
    /// The plugin's version, shown by `host --check`.
    const VERSION: &'static str;
    /// The plugin's settings: its `[plugin.settings]` table in the host's
    /// `config.toml`. Use [`NoSettings`] for none, and
    /// `#[serde(deny_unknown_fields)]` so that typos are reported.
    type Settings: DeserializeOwned;

    /// Builds the plugin. An `Err` stops the host from starting (or skips
    /// the plugin if it is optional), printing the message with the plugin's name.
    fn new(settings: Self::Settings, host: &Host) -> Result<Self, String>;

    /// The hooks, in priority order: the first whose pattern matches a line wins.
    fn hooks(&self) -> Vec<Hook<Self>>;
}

/// Settings for a plugin that takes none: any key in its table is an error.
#[derive(Debug, Default, Clone, Copy, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

/// What the host tells a plugin when it starts.
#[derive(Debug, Clone)]
pub struct Host {
    pub(crate) server_name: String,
    pub(crate) host_version: String,
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
}

/// One hook: a pattern that must match the whole request line, and its handler.
pub struct Hook<P> {
    pub(crate) pattern: String,
    pub(crate) blocking: bool,
    pub(crate) handler: Box<Handler<P>>,
}

impl<P> Hook<P> {
    /// A hook whose `pattern` (Rust `regex` syntax) must match the whole line;
    /// there is no need for `^` and `$`. Its capture groups reach the handler
    /// through [`Request::group`] and [`Request::named`].
    pub fn new<F>(pattern: impl Into<String>, handler: F) -> Self
    where
        F: Fn(&P, &Request<'_>, &mut Reply<'_>) -> HookResult + Send + Sync + 'static,
    {
        Hook {
            pattern: pattern.into(),
            blocking: false,
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

    /// The hook's pattern.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }
}
