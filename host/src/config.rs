//! `config.toml`: what the host serves and which plugins it loads, in order.
//!
//! Every key is checked: an unknown key, a wrong type or a TOML syntax error
//! is reported with the file, line and column, so a typo never silently
//! falls back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::plugins::escape;
use crate::plugins::regular_file::{self, OpenError};
use crate::plugins::trust::{self, TrustError};
use crate::proxy_header;

/// The port of the original program.
pub const DEFAULT_PORT: u16 = 1991;
/// Default longest request line, in bytes, without its line ending.
pub const DEFAULT_MAX_LINE_LENGTH: usize = 8 * 1024;
/// Default limit on connections served at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default time a connection may stay without sending a complete line.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 300;
/// Default time given to connections to finish when the host stops.
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 5;
/// Longest accepted timeout: deadlines computed from it stay far from
/// overflowing, and anything longer is a typo.
const MAX_SECS: u64 = 30 * 24 * 3600;
/// Most connections: what tokio's semaphore, which counts them, can hold.
pub const MAX_CONNECTIONS: usize = tokio::sync::Semaphore::MAX_PERMITS;
/// Most worker threads. Far more than cores on any machine the host runs
/// on, and far below what makes thread creation fail on a default system.
pub const MAX_WORKER_THREADS: usize = 1024;
/// Default for `hook_timeout_secs`.
pub const DEFAULT_HOOK_TIMEOUT_SECS: u64 = 10;
/// Default for `max_plugin_calls`.
pub const DEFAULT_MAX_PLUGIN_CALLS: usize = 64;
/// Default for `max_abandoned_calls`: a plugin whose calls keep hanging is
/// told unavailable well before it holds its whole share of threads.
pub const DEFAULT_MAX_ABANDONED_CALLS: usize = 16;
/// Default for `max_pushed_bytes`: pushed lines one connection may have
/// waiting before the host gives up on the client (as Redis's
/// `client-output-buffer-limit` for subscribers).
pub const DEFAULT_MAX_PUSHED_BYTES: usize = 1 << 20;
/// Most calls of one plugin, or abandoned calls, at once: each is a thread.
pub const MAX_PLUGIN_CALLS: usize = 4096;
/// Largest config file read. A config is a few KiB; this bounds the memory
/// a wrong `--config` (a log, an image) can take.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Port of `metrics_listen` when it names none: the Prometheus exporters'
/// registered default.
pub const DEFAULT_METRICS_PORT: u16 = 9464;

/// The file as written, before defaults and paths are resolved.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<Spanned<String>>,
    server_name: Option<String>,
    plugins_dir: Option<PathBuf>,
    max_line_length: Option<Spanned<usize>>,
    max_connections: Option<Spanned<usize>>,
    idle_timeout_secs: Option<Spanned<u64>>,
    shutdown_timeout_secs: Option<Spanned<u64>>,
    strict_modes: Option<bool>,
    worker_threads: Option<Spanned<usize>>,
    hook_timeout_secs: Option<Spanned<u64>>,
    max_plugin_calls: Option<Spanned<usize>>,
    max_abandoned_calls: Option<Spanned<usize>>,
    max_pushed_bytes: Option<Spanned<usize>>,
    /// Any type, so that a wrong one is reported with the key's values.
    proxy_protocol: Option<Spanned<toml::Value>>,
    tls: Option<RawTls>,
    admin: Option<Spanned<toml::Value>>,
    metrics_listen: Option<Spanned<String>>,
    #[serde(default, rename = "plugin")]
    plugins: Vec<Spanned<RawPlugin>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    listen: Spanned<String>,
    certificate: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
    handshake_timeout_secs: Option<Spanned<u64>>,
    plain: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    name: Option<Spanned<String>>,
    path: Option<Spanned<PathBuf>>,
    #[serde(default)]
    optional: bool,
    hook_timeout_secs: Option<Spanned<u64>>,
    max_plugin_calls: Option<Spanned<usize>>,
    settings: Option<toml::Table>,
}

/// The host's configuration, with defaults applied and paths resolved
/// against the directory of the config file.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the config came from, for messages.
    pub file: PathBuf,
    pub listen: SocketAddr,
    pub server_name: String,
    /// Where plugins given by name are looked for first.
    pub plugins_dir: PathBuf,
    pub max_line_length: usize,
    pub max_connections: usize,
    /// `None` disables the idle timeout.
    pub idle_timeout: Option<Duration>,
    pub shutdown_timeout: Duration,
    /// Refuse plugin files and directories that others could have written.
    pub strict_modes: bool,
    /// Threads serving connections; `None`: one per CPU core.
    pub worker_threads: Option<usize>,
    /// Calls a plugin may have on blocking threads at once, and how long
    /// one may run; each `[[plugin]]` entry may override them.
    pub call_limits: CallLimits,
    /// Timed-out calls of one plugin whose threads may still be running.
    pub max_abandoned_calls: usize,
    /// Bytes of pushed lines one connection may have waiting; past it the
    /// connection is closed.
    pub max_pushed_bytes: usize,
    /// Which PROXY protocol header every connection must start with;
    /// `None`: connections start with the protocol itself.
    pub proxy_protocol: Option<proxy_header::Mode>,
    /// The `[tls]` table: a second listener serving the protocol over TLS.
    pub tls: Option<TlsConfig>,
    /// `[admin]`: who may use the commands that reveal or change the
    /// server; `None`: nobody (`crate::admin`).
    pub admin: Option<crate::admin::Admin>,
    /// Where the Prometheus metrics are served, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    pub plugins: Vec<PluginEntry>,
}

/// Default for `[tls] handshake_timeout_secs`.
pub const DEFAULT_HANDSHAKE_TIMEOUT_SECS: u64 = 10;
/// Longest handshake timeout: a handshake takes milliseconds, and a client
/// stalling one holds a connection slot meanwhile.
pub const MAX_HANDSHAKE_TIMEOUT_SECS: u64 = 300;

/// The `[tls]` table, paths resolved against the config's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub listen: SocketAddr,
    /// PEM: the server's certificate, then its chain.
    pub certificate: PathBuf,
    /// PEM: the server's private key; readable by this user alone.
    pub key: PathBuf,
    /// PEM: the CAs a client certificate must chain to; `Some` requires one.
    pub client_ca: Option<PathBuf>,
    pub handshake_timeout: Duration,
    /// `false`: serve TLS only, with no plain listener.
    pub plain: bool,
}

/// How much of the blocking threads one plugin's calls may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// A call running longer is answered `ERR plugin <name> timed out`.
    pub timeout: Duration,
    /// Calls on blocking threads at once; one more is answered `busy`.
    pub max_calls: usize,
}

/// One `[[plugin]]` entry.
#[derive(Debug, Clone)]
pub struct PluginEntry {
    /// How the entry is referred to in messages: its name, or its path.
    pub label: String,
    pub source: PluginSource,
    pub optional: bool,
    /// The entry's `settings` table, as a TOML document for the plugin.
    pub settings: String,
    /// Line and column of the entry's `name` or `path` value in the
    /// config file, for messages.
    pub line: usize,
    pub column: usize,
    /// `"name"` or `"path"`: the key that names the library.
    pub key: &'static str,
    /// The config's limits, with this entry's overrides applied.
    pub call_limits: CallLimits,
}

/// Where a plugin library comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// A bare name, resolved to the platform's library file name
    /// (`lib<name>.so`) in the plugins directory.
    Name(String),
    /// An explicit file path.
    Path(PathBuf),
}

/// Why the config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // The cause is part of the message, not a `source`: printed as a
    // chain, it would appear twice.
    #[error("cannot read {}: {error}", escape::path(file))]
    Read {
        file: PathBuf,
        error: std::io::Error,
    },
    /// A directory, a FIFO, a device: reading those blocks or never ends.
    #[error("cannot read {}: {kind}, not a regular file", escape::path(file))]
    NotRegular { file: PathBuf, kind: &'static str },
    #[error(
        "cannot read {}: it is {size} bytes, more than a config may be ({MAX_CONFIG_BYTES})",
        escape::path(file)
    )]
    TooLarge { file: PathBuf, size: u64 },
    /// Like an untrusted plugin: the config names the libraries the host
    /// runs, so whoever can write it chooses the host's code.
    #[error(
        "refusing to read config {}: {reason}; only this user or root may be able to change \
         a config, since it chooses the code the host runs",
        escape::path(file)
    )]
    Untrusted { file: PathBuf, reason: TrustError },
    #[error("{}:{line}:{column}: {message}", escape::path(file))]
    Invalid {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

impl Config {
    /// Reads and checks the config file: a regular file of at most
    /// [`MAX_CONFIG_BYTES`], which only this user or root can have
    /// written, like a plugin library under `strict_modes` (always, since
    /// the config is what sets `strict_modes`).
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = Config::read(file)?;
        Config::parse(file, &text)
    }

    /// Reads the config file with the checks of [`Config::load`], without
    /// parsing it: the text a serving process is given, so that it reads
    /// exactly what was checked.
    pub fn read(file: &Path) -> Result<String, ConfigError> {
        let read = |error| ConfigError::Read {
            file: file.to_owned(),
            error,
        };
        let opened = regular_file::open(file).map_err(|e| match e {
            OpenError::Io(error) => read(error),
            OpenError::NotRegular { kind } => ConfigError::NotRegular {
                file: file.to_owned(),
                kind,
            },
        })?;
        let size = opened.metadata().map_err(read)?.len();
        if size > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                file: file.to_owned(),
                size,
            });
        }
        trust::check(file, &opened).map_err(|reason| ConfigError::Untrusted {
            file: file.to_owned(),
            reason,
        })?;
        let mut text = String::new();
        // Bounded again while reading: the file may grow after the fstat.
        std::io::Read::read_to_string(
            &mut std::io::Read::take(&opened, MAX_CONFIG_BYTES + 1),
            &mut text,
        )
        .map_err(read)?;
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                file: file.to_owned(),
                size: text.len() as u64,
            });
        }
        Ok(text)
    }

    /// Checks `text` as the contents of `file`.
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let invalid = |span: Option<std::ops::Range<usize>>, message: String| {
            let (line, column) = span.map_or((1, 1), |s| line_column(text, s.start));
            ConfigError::Invalid {
                file: file.to_owned(),
                line,
                column,
                message,
            }
        };
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| invalid(e.span(), e.message().trim().to_owned()))?;
        // Absolute, so that messages about plugin files say exactly where.
        let base = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let base = &std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());

        let listen = match &raw.listen {
            None => SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            Some(l) => parse_listen(l.get_ref(), DEFAULT_PORT)
                .map_err(|m| invalid(Some(l.span()), format!("key `listen`: {m}")))?,
        };
        let bounded = |v: &Option<Spanned<usize>>, key: &str, default: usize, max: usize| match v {
            None => Ok(default),
            Some(s) if *s.get_ref() == 0 => Err(invalid(
                Some(s.span()),
                format!("key `{key}`: must be at least 1"),
            )),
            Some(s) if *s.get_ref() > max => Err(invalid(
                Some(s.span()),
                format!("key `{key}`: at most {max}"),
            )),
            Some(s) => Ok(*s.get_ref()),
        };
        let max_line_length = bounded(
            &raw.max_line_length,
            "max_line_length",
            DEFAULT_MAX_LINE_LENGTH,
            usize::MAX,
        )?;
        let max_connections = bounded(
            &raw.max_connections,
            "max_connections",
            DEFAULT_MAX_CONNECTIONS,
            MAX_CONNECTIONS,
        )?;
        let worker_threads = match &raw.worker_threads {
            None => None,
            Some(_) => Some(bounded(
                &raw.worker_threads,
                "worker_threads",
                1,
                MAX_WORKER_THREADS,
            )?),
        };
        let seconds = |v: &Option<Spanned<u64>>, key: &str, default: u64| match v {
            None => Ok(default),
            Some(s) if *s.get_ref() > MAX_SECS => Err(invalid(
                Some(s.span()),
                format!("key `{key}`: at most {MAX_SECS} (30 days)"),
            )),
            Some(s) => Ok(*s.get_ref()),
        };
        let idle_timeout_secs = seconds(
            &raw.idle_timeout_secs,
            "idle_timeout_secs",
            DEFAULT_IDLE_TIMEOUT_SECS,
        )?;
        let shutdown_timeout_secs = seconds(
            &raw.shutdown_timeout_secs,
            "shutdown_timeout_secs",
            DEFAULT_SHUTDOWN_TIMEOUT_SECS,
        )?;
        let call_limits_from = |timeout: &Option<Spanned<u64>>,
                                calls: &Option<Spanned<usize>>,
                                base: CallLimits|
         -> Result<CallLimits, ConfigError> {
            let timeout_secs = match timeout {
                Some(s) if *s.get_ref() == 0 => {
                    return Err(invalid(
                        Some(s.span()),
                        "key `hook_timeout_secs`: must be at least 1".into(),
                    ));
                }
                _ => seconds(timeout, "hook_timeout_secs", base.timeout.as_secs())?,
            };
            Ok(CallLimits {
                timeout: Duration::from_secs(timeout_secs),
                max_calls: bounded(calls, "max_plugin_calls", base.max_calls, MAX_PLUGIN_CALLS)?,
            })
        };
        let call_limits = call_limits_from(
            &raw.hook_timeout_secs,
            &raw.max_plugin_calls,
            CallLimits {
                timeout: Duration::from_secs(DEFAULT_HOOK_TIMEOUT_SECS),
                max_calls: DEFAULT_MAX_PLUGIN_CALLS,
            },
        )?;
        let max_abandoned_calls = bounded(
            &raw.max_abandoned_calls,
            "max_abandoned_calls",
            DEFAULT_MAX_ABANDONED_CALLS,
            MAX_PLUGIN_CALLS,
        )?;
        let max_pushed_bytes = bounded(
            &raw.max_pushed_bytes,
            "max_pushed_bytes",
            DEFAULT_MAX_PUSHED_BYTES,
            1 << 30,
        )?;
        let proxy_protocol = match &raw.proxy_protocol {
            None => None,
            Some(v) => {
                let (mode, given) = match v.get_ref() {
                    toml::Value::String(s) => (proxy_header::Mode::from_name(s), format!("{s:?}")),
                    other => (None, format!("a {}", other.type_str())),
                };
                Some(mode.ok_or_else(|| {
                    invalid(
                        Some(v.span()),
                        format!(
                            "key `proxy_protocol`: expected \"v1\", \"v2\" or \"any\", not {given}; \
                             leave the key out to read no PROXY header"
                        ),
                    )
                })?)
            }
        };
        let tls = match raw.tls {
            None => None,
            Some(t) => {
                let tls_listen = parse_listen(t.listen.get_ref(), DEFAULT_PORT).map_err(|m| {
                    invalid(Some(t.listen.span()), format!("key `tls.listen`: {m}"))
                })?;
                let handshake_timeout = match &t.handshake_timeout_secs {
                    None => DEFAULT_HANDSHAKE_TIMEOUT_SECS,
                    Some(s) if (1..=MAX_HANDSHAKE_TIMEOUT_SECS).contains(s.get_ref()) => {
                        *s.get_ref()
                    }
                    Some(s) => {
                        return Err(invalid(
                            Some(s.span()),
                            format!(
                                "key `tls.handshake_timeout_secs`: from 1 to {MAX_HANDSHAKE_TIMEOUT_SECS}"
                            ),
                        ));
                    }
                };
                Some(TlsConfig {
                    listen: tls_listen,
                    certificate: base.join(t.certificate),
                    key: base.join(t.key),
                    client_ca: t.client_ca.map(|p| base.join(p)),
                    handshake_timeout: Duration::from_secs(handshake_timeout),
                    plain: t.plain.unwrap_or(true),
                })
            }
        };

        let admin = match &raw.admin {
            None => None,
            Some(v) => crate::admin::Admin::from_toml(v.get_ref())
                .map_err(|m| invalid(Some(v.span()), format!("table `admin`: {m}")))?,
        };
        let metrics_listen = match &raw.metrics_listen {
            None => None,
            Some(l) => Some(
                parse_listen(l.get_ref(), DEFAULT_METRICS_PORT)
                    .map_err(|m| invalid(Some(l.span()), format!("key `metrics_listen`: {m}")))?,
            ),
        };

        let mut plugins: Vec<PluginEntry> = Vec::with_capacity(raw.plugins.len());
        for entry in raw.plugins {
            let entry_span = entry.span();
            let p = entry.into_inner();
            let (source, label, key, span) = match (p.name, p.path) {
                (Some(name), None) => {
                    let n = name.get_ref();
                    if !is_plain_name(n) {
                        let advice = match library_stem(n) {
                            Some(stem) => format!(
                                "write `name = \"{stem}\"`: the host adds `lib` and `.so` itself"
                            ),
                            None => "use `path = ...` for a library outside the plugins directory"
                                .into(),
                        };
                        return Err(invalid(
                            Some(name.span()),
                            format!(
                                "plugin name {n:?} is not a plain name (letters, digits, `-`, `_`); \
                                 {advice}"
                            ),
                        ));
                    }
                    (
                        PluginSource::Name(n.clone()),
                        n.clone(),
                        "name",
                        name.span(),
                    )
                }
                (None, Some(path)) => {
                    let resolved = base.join(path.get_ref());
                    let label = path.get_ref().display().to_string();
                    (PluginSource::Path(resolved), label, "path", path.span())
                }
                (Some(name), Some(_)) => {
                    return Err(invalid(
                        Some(name.span()),
                        "a `[[plugin]]` entry takes `name` or `path`, not both".into(),
                    ));
                }
                (None, None) => {
                    return Err(invalid(
                        Some(entry_span),
                        format!(
                            "`[[plugin]]` entry {} has neither `name` nor `path`",
                            plugins.len() + 1
                        ),
                    ));
                }
            };
            let (line, column) = line_column(text, span.start);
            if let Some(first) = plugins.iter().find(|e| e.source == source) {
                return Err(invalid(
                    Some(span),
                    format!(
                        "plugin `{}` is listed twice (first on line {})",
                        escape::text(&label),
                        first.line
                    ),
                ));
            }
            let settings = match p.settings {
                None => String::new(),
                Some(table) => toml::to_string(&table).map_err(|e| {
                    invalid(
                        Some(span.clone()),
                        format!("settings of `{}`: {e}", escape::text(&label)),
                    )
                })?,
            };
            let entry_limits =
                call_limits_from(&p.hook_timeout_secs, &p.max_plugin_calls, call_limits)?;
            plugins.push(PluginEntry {
                label,
                source,
                optional: p.optional,
                settings,
                line,
                column,
                key,
                call_limits: entry_limits,
            });
        }

        Ok(Config {
            file: file.to_owned(),
            listen,
            server_name: raw.server_name.unwrap_or_else(default_server_name),
            plugins_dir: base.join(raw.plugins_dir.unwrap_or_else(|| "plugins.d".into())),
            max_line_length,
            max_connections,
            idle_timeout: match idle_timeout_secs {
                0 => None,
                s => Some(Duration::from_secs(s)),
            },
            shutdown_timeout: Duration::from_secs(shutdown_timeout_secs),
            strict_modes: raw.strict_modes.unwrap_or(true),
            worker_threads,
            call_limits,
            max_abandoned_calls,
            max_pushed_bytes,
            proxy_protocol,
            tls,
            admin,
            metrics_listen,
            plugins,
        })
    }
}

/// Parses `IP`, `IP:PORT` or `[IPv6]:PORT`; a bare IP gets `default_port`.
pub fn parse_listen(text: &str, default_port: u16) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let ip_text = text.trim_start_matches('[').trim_end_matches(']');
    match ip_text.parse::<std::net::IpAddr>() {
        Ok(ip) => Ok(SocketAddr::new(ip, default_port)),
        Err(_) => Err(format!(
            "{text:?} is not an address (expected IP, IP:PORT or [IPv6]:PORT)"
        )),
    }
}

/// A plugin name must stay inside the plugins directory: no separators, no `..`.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// For a name written as a library file name (`libkv.so`, `kv.so`), the
/// plain name that finds that file (`kv`).
fn library_stem(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(std::env::consts::DLL_SUFFIX)?;
    let stem = stem
        .strip_prefix(std::env::consts::DLL_PREFIX)
        .unwrap_or(stem);
    is_plain_name(stem).then_some(stem)
}

fn default_server_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("dir/config.toml"), text)
    }

    #[test]
    fn defaults_apply_to_an_empty_file() {
        let c = parse("").unwrap();
        assert_eq!(c.listen, "127.0.0.1:1991".parse().unwrap());
        assert!(c.plugins_dir.is_absolute());
        assert!(c.plugins_dir.ends_with("dir/plugins.d"));
        assert_eq!(c.max_line_length, 8192);
        assert!(c.plugins.is_empty());
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let err = parse("server_name = \"x\"\nlisen = \"1.2.3.4\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("dir/config.toml:2:1: "), "{text}");
        assert!(text.contains("unknown field `lisen`"), "{text}");
    }

    #[test]
    fn unknown_key_in_plugin_entry() {
        let err = parse("[[plugin]]\nname = \"hello\"\noptinal = true\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains(":3:1: "), "{text}");
        assert!(text.contains("unknown field `optinal`"), "{text}");
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let err = parse("listen = \"127.0.0.1\n").unwrap_err();
        assert!(err.to_string().starts_with("dir/config.toml:1:"), "{err}");
    }

    #[test]
    fn plugin_names_cannot_escape_the_plugins_directory() {
        let err = parse("[[plugin]]\nname = \"../x\"\n").unwrap_err();
        assert!(err.to_string().contains("not a plain name"), "{err}");
    }

    #[test]
    fn the_same_plugin_twice_is_refused() {
        let err = parse("[[plugin]]\nname = \"a\"\n[[plugin]]\nname = \"a\"\n").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(":4:8: plugin `a` is listed twice (first on line 2)"),
            "{text}"
        );
    }

    #[test]
    fn settings_become_a_toml_document_for_the_plugin() {
        let c = parse("[[plugin]]\nname = \"t\"\n[plugin.settings]\nformat = \"%H\"\n").unwrap();
        assert_eq!(c.plugins[0].settings.trim(), "format = \"%H\"");
        assert_eq!(c.plugins[0].line, 2);
    }

    #[test]
    fn numbers_out_of_range_are_refused_with_their_key() {
        let err = parse("worker_threads = 0\n").unwrap_err().to_string();
        assert!(
            err.contains(":1:18: key `worker_threads`: must be at least 1"),
            "{err}"
        );
        let err = parse("\nidle_timeout_secs = 99999999999\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(":2:21: key `idle_timeout_secs`: at most 2592000"),
            "{err}"
        );
        assert_eq!(parse("worker_threads = 2").unwrap().worker_threads, Some(2));
        assert_eq!(parse("").unwrap().worker_threads, None);
    }

    #[test]
    fn limits_that_would_crash_the_host_are_refused() {
        let err = parse("max_connections = 2305843009213693952\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(":1:19: key `max_connections`: at most 2305843009213693951"),
            "{err}"
        );
        let err = parse("worker_threads = 1025\n").unwrap_err().to_string();
        assert!(
            err.contains(":1:18: key `worker_threads`: at most 1024"),
            "{err}"
        );
        assert_eq!(
            parse("worker_threads = 1024").unwrap().worker_threads,
            Some(1024)
        );
    }

    #[test]
    fn proxy_protocol_takes_a_version_and_is_off_when_absent() {
        use crate::proxy_header::Mode;
        assert_eq!(parse("").unwrap().proxy_protocol, None);
        for (text, mode) in [("v1", Mode::V1), ("v2", Mode::V2), ("any", Mode::Any)] {
            let c = parse(&format!("proxy_protocol = \"{text}\"\n")).unwrap();
            assert_eq!(c.proxy_protocol, Some(mode));
        }
        for (bad, said) in [
            ("\"v3\"", "\"v3\""),
            ("\"\"", "\"\""),
            ("true", "a boolean"),
            ("{ v = 1 }", "a table"),
        ] {
            let err = parse(&format!("\nproxy_protocol = {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("dir/config.toml:2:18: key `proxy_protocol`: expected \"v1\", \"v2\" or \"any\", not "),
                "{err}"
            );
            assert!(err.contains(&format!("not {said};")), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn tls_table_is_checked_and_its_paths_resolved() {
        assert!(parse("").unwrap().tls.is_none());
        let c = parse(
            "[tls]\nlisten = \"127.0.0.1:1992\"\ncertificate = \"c.pem\"\nkey = \"/k.pem\"\n",
        )
        .unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.listen, "127.0.0.1:1992".parse().unwrap());
        assert!(tls.certificate.ends_with("dir/c.pem") && tls.certificate.is_absolute());
        assert_eq!(tls.key, Path::new("/k.pem"));
        assert_eq!(tls.client_ca, None);
        assert_eq!(tls.handshake_timeout, Duration::from_secs(10));
        assert!(tls.plain);
        let base = "[tls]\nlisten = \"127.0.0.1\"\ncertificate = \"c\"\nkey = \"k\"\n";
        let err = parse(&format!("{base}handshake_timeout_secs = 0\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(":5:26: key `tls.handshake_timeout_secs`: from 1 to 300"),
            "{err}"
        );
        let err = parse(&format!("{base}client_cert = \"x\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(":5:1: unknown field `client_cert`"), "{err}");
        let err = parse("[tls]\nlisten = \"127.0.0.1\"\nkey = \"k\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `certificate`"), "{err}");
        let c = parse(&format!("{base}plain = false\nclient_ca = \"ca.pem\"\n")).unwrap();
        let tls = c.tls.unwrap();
        assert!(!tls.plain);
        assert!(tls.client_ca.unwrap().ends_with("dir/ca.pem"));
    }

    #[test]
    fn a_library_file_name_given_as_name_gets_the_plain_name_suggested() {
        assert_eq!(library_stem("libkv.so"), Some("kv"));
        assert_eq!(library_stem("kv.so"), Some("kv"));
        assert_eq!(library_stem("my_kv-2.so"), Some("my_kv-2"));
        assert_eq!(library_stem("../libkv.so"), None);
        assert_eq!(library_stem("kv"), None);
    }

    #[test]
    fn listen_accepts_ip_or_socket_address() {
        assert_eq!(
            parse_listen("0.0.0.0", 7).unwrap(),
            "0.0.0.0:7".parse().unwrap()
        );
        assert_eq!(
            parse_listen("[::1]:9", 7).unwrap(),
            "[::1]:9".parse().unwrap()
        );
        assert_eq!(parse_listen("::1", 7).unwrap(), "[::1]:7".parse().unwrap());
        assert!(parse_listen("localhost:1", 7).is_err());
    }
}
