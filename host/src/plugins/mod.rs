//! Loading plugin libraries: find each file the config lists, check that it
//! can be trusted, load a private copy, verify its `plugin-api` layout, start
//! the plugin with its settings and compile its hook patterns.
//!
//! Each library is loaded with `lib_header_from_path(..).init_root_module()`
//! rather than abi_stable's `RootModule::load_from_*`: those keep one module
//! per root-module *type* for the whole process, so every plugin after the
//! first would silently be the first one again.

mod api_version;
pub mod escape;
mod layout;
mod leftovers;
mod load_error;
mod locate;
mod private_copy;
pub mod regular_file;
mod reuse;
pub mod trust;

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use abi_stable::library::lib_header_from_path;
use abi_stable::std_types::{RResult, RStr};
use plugin_api::abi::{HostInfo, PluginBox, PluginRoot_Ref};

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use crate::call_budget::Budget;
use crate::config::{
    CallLimits, Config, DEFAULT_HOOK_TIMEOUT_SECS, DEFAULT_MAX_PLUGIN_CALLS, PluginEntry,
};
use crate::host_services::HostServices;
use crate::pattern::HookPattern;
pub use load_error::{LoadError, LoadErrorKind, SameFile, tell};
pub use private_copy::{PrivateCopy, RuntimeDir};

/// A plugin that loaded and started.
pub struct LoadedPlugin {
    /// The name the plugin reports.
    pub name: String,
    pub version: String,
    /// The user's library file (not the private copy that is mapped).
    pub file: PathBuf,
    pub object: PluginBox,
    pub hooks: Vec<LoadedHook>,
    /// How long a call may run, and how many may run on blocking threads
    /// at once.
    pub limits: CallLimits,
    /// The calls of this plugin on blocking threads now.
    pub calls: Arc<Budget>,
    /// Its calls that timed out and whose threads still run.
    pub abandoned: Arc<AtomicUsize>,
    /// What `INFO` and the metrics show of it and its hooks.
    pub stats: crate::stats::PluginStats,
}

/// One hook of a loaded plugin, its pattern compiled.
pub struct LoadedHook {
    pub pattern: HookPattern,
    pub blocking: bool,
    /// How the command is written and what it does, as the plugin says
    /// (`Hook::usage`, `Hook::describe`); empty if it does not.
    pub usage: String,
    pub description: String,
}

/// The outcome of loading every plugin in the config.
pub struct LoadReport {
    /// Plugins that loaded, in config order.
    pub plugins: Vec<LoadedPlugin>,
    /// Failures of optional plugins, which were skipped.
    pub skipped: Vec<LoadError>,
    /// Failures of required plugins: the host must not start.
    pub errors: Vec<LoadError>,
}

/// A library checked and copied in, ready to be loaded.
pub struct Prepared {
    /// Its entry in the config.
    pub index: usize,
    /// The user's library file.
    pub file: PathBuf,
    pub copy: PrivateCopy,
}

/// The outcome of preparing every plugin of the config.
pub struct PrepareReport {
    pub prepared: Vec<Prepared>,
    pub skipped: Vec<LoadError>,
    pub errors: Vec<LoadError>,
}

/// Loads every plugin of `config`, in order, copying each into `runtime`:
/// [`prepare_all`], then [`start_all`], in this process.
pub fn load_all(config: &Config, runtime: &RuntimeDir, host: &HostServices) -> LoadReport {
    let prepared = prepare_all(config, runtime);
    let mut report = start_all(config, prepared.prepared, host);
    report.skipped.splice(0..0, prepared.skipped);
    report.errors.splice(0..0, prepared.errors);
    report
}

/// Finds, opens, checks and copies every plugin library of `config`, in
/// order, without running any of their code: what the supervisor does
/// before a serving process loads them.
pub fn prepare_all(config: &Config, runtime: &RuntimeDir) -> PrepareReport {
    prepare_all_reusing(config, runtime, &[])
}

/// [`prepare_all`] for a reload: a library whose bytes are those of a copy
/// in `previous` keeps that copy (and, in the serving process, its loaded
/// instance); a changed one gets a fresh copy under a new name, since the
/// dynamic loader knows a library by the name it was loaded under.
pub fn prepare_all_reusing(
    config: &Config,
    runtime: &RuntimeDir,
    previous: &[Prepared],
) -> PrepareReport {
    let mut report = PrepareReport {
        prepared: Vec::new(),
        skipped: Vec::new(),
        errors: Vec::new(),
    };
    // Each library file opened so far, by device and inode, with the entry
    // that named it: the same file under another path (a link, a `..`) is
    // recognised before it is copied, not after a copy per entry.
    let mut seen: HashMap<(u64, u64), &PluginEntry> = HashMap::new();
    for (index, entry) in config.plugins.iter().enumerate() {
        let result = open_one(config, entry, &mut seen).and_then(|(file, opened)| {
            prepare_one(config, entry, index, runtime, previous, file, opened)
        });
        match result {
            Ok(prepared) => report.prepared.push(prepared),
            // A file listed twice is a mistake in the config, not a plugin
            // that failed: `optional` does not cover it.
            Err(e) if entry.optional && !matches!(e.kind, LoadErrorKind::SameFile(_)) => {
                report.skipped.push(e)
            }
            Err(e) => report.errors.push(e),
        }
    }
    report
}

/// Loads and starts the `prepared` libraries, in order, handing each the
/// `host` object.
pub fn start_all(config: &Config, prepared: Vec<Prepared>, host: &HostServices) -> LoadReport {
    let mut report = LoadReport {
        plugins: Vec::new(),
        skipped: Vec::new(),
        errors: Vec::new(),
    };
    for Prepared { index, file, copy } in prepared {
        let Some(entry) = config.plugins.get(index) else {
            continue;
        };
        let result = start_one(config, entry, file, &copy, host).and_then(|plugin| {
            match report.plugins.iter().find(|p| p.name == plugin.name) {
                Some(other) => Err(LoadError::new(
                    entry,
                    Some(&plugin.file),
                    LoadErrorKind::DuplicateName {
                        name: plugin.name.clone(),
                        other: other.file.clone(),
                    },
                )),
                None => Ok(plugin),
            }
        });
        match result {
            Ok(plugin) => report.plugins.push(plugin),
            Err(e) if entry.optional => report.skipped.push(e),
            Err(e) => report.errors.push(e),
        }
    }
    report
}

/// Finds and opens the library of `entry`, once: the checks, the copy and
/// the duplicate test all use this open file, so a path swapped in between
/// cannot slip an unchecked library in.
fn open_one<'c>(
    config: &Config,
    entry: &'c PluginEntry,
    seen: &mut HashMap<(u64, u64), &'c PluginEntry>,
) -> Result<(PathBuf, File), LoadError> {
    let file = locate::find(config, entry).map_err(|kind| LoadError::new(entry, None, kind))?;
    let fail = |kind| LoadError::new(entry, Some(&file), kind);
    let opened = regular_file::open(&file).map_err(|e| {
        fail(match e {
            regular_file::OpenError::Io(e) => LoadErrorKind::Open(e),
            regular_file::OpenError::NotRegular { kind } => LoadErrorKind::NotRegular {
                path: file.clone(),
                kind,
            },
        })
    })?;
    let meta = opened
        .metadata()
        .map_err(|e| fail(LoadErrorKind::Open(e)))?;
    if let Some(first) = seen.insert((meta.dev(), meta.ino()), entry) {
        // Keep the first entry as the one later duplicates are named after.
        seen.insert((meta.dev(), meta.ino()), first);
        return Err(fail(LoadErrorKind::SameFile(Box::new(SameFile {
            config: config.file.clone(),
            line: entry.line,
            column: entry.column,
            key: entry.key,
            label: entry.label.clone(),
            first_label: first.label.clone(),
            first_line: first.line,
            file: file.clone(),
        }))));
    }
    Ok((file, opened))
}

fn prepare_one(
    config: &Config,
    entry: &PluginEntry,
    index: usize,
    runtime: &RuntimeDir,
    previous: &[Prepared],
    file: PathBuf,
    mut opened: File,
) -> Result<Prepared, LoadError> {
    let fail = |kind| LoadError::new(entry, Some(&file), kind);
    if config.strict_modes {
        trust::check(&file, &opened).map_err(|reason| fail(LoadErrorKind::Untrusted { reason }))?;
    }
    if let Some(copy) = reuse::same_copy(previous, &mut opened) {
        return Ok(Prepared { index, file, copy });
    }
    let copy = runtime
        .copy_in(&mut opened, &file, index)
        .map_err(|e| fail(LoadErrorKind::Copy(e)))?;
    Ok(Prepared { index, file, copy })
}

fn start_one(
    config: &Config,
    entry: &PluginEntry,
    file: PathBuf,
    copy: &PrivateCopy,
    host: &HostServices,
) -> Result<LoadedPlugin, LoadError> {
    let fail = |kind| LoadError::new(entry, Some(&file), kind);
    let root = open_root_module(copy, &file).map_err(fail)?;

    let name = root.name().as_str().to_owned();
    let version = root.version().as_str().to_owned();
    let info = HostInfo {
        server_name: RStr::from_str(&config.server_name),
        host_version: RStr::from_str(env!("CARGO_PKG_VERSION")),
        host: host.to_box(),
    };
    let object = match (root.init())(RStr::from_str(&entry.settings), &info) {
        RResult::ROk(object) => object,
        RResult::RErr(message) => {
            return Err(fail(LoadErrorKind::InitFailed {
                name,
                message: message.into_string(),
            }));
        }
    };
    let mut plugin = LoadedPlugin::new(name, version, file.clone(), object).map_err(fail)?;
    plugin.set_limits(entry.call_limits);
    Ok(plugin)
}

impl LoadedPlugin {
    /// Wraps a started plugin, compiling its hook patterns.
    pub fn new(
        name: String,
        version: String,
        file: PathBuf,
        object: PluginBox,
    ) -> Result<LoadedPlugin, LoadErrorKind> {
        let hooks = object
            .hooks()
            .into_iter()
            .enumerate()
            .map(|(i, spec)| {
                let source = spec.pattern.into_string();
                match HookPattern::compile(&source) {
                    Ok(pattern) => Ok(LoadedHook {
                        pattern,
                        blocking: spec.blocking,
                        usage: spec.usage.into_string(),
                        description: spec.description.into_string(),
                    }),
                    Err(e) => Err(LoadErrorKind::BadPattern {
                        hook: i + 1,
                        pattern: source,
                        error: e.to_string(),
                    }),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let limits = CallLimits {
            timeout: Duration::from_secs(DEFAULT_HOOK_TIMEOUT_SECS),
            max_calls: DEFAULT_MAX_PLUGIN_CALLS,
        };
        Ok(LoadedPlugin {
            name,
            version,
            file,
            object,
            limits,
            calls: Budget::new(limits.max_calls),
            abandoned: Arc::new(AtomicUsize::new(0)),
            stats: crate::stats::PluginStats::new(hooks.len()),
            hooks,
        })
    }

    /// Applies the limits of the plugin's config entry.
    pub fn set_limits(&mut self, limits: CallLimits) {
        self.limits = limits;
        self.calls = Budget::new(limits.max_calls);
    }
}

/// Opens the private `copy` and checks its root module against this
/// host's `plugin-api`; errors speak of `file`, the user's file.
///
/// The copy is opened by `/proc/self/fd/N` of the file the host wrote:
/// abi_stable and the dynamic loader take a path, and this one cannot be
/// made to name another file.
fn open_root_module(copy: &PrivateCopy, file: &Path) -> Result<PluginRoot_Ref, LoadErrorKind> {
    let loaded = &copy.load_path;
    let header =
        lib_header_from_path(loaded).map_err(|e| LoadErrorKind::from_library(e, loaded, file))?;
    api_version::check(header.root_mod_consts())?;
    layout::init_root_module(header).map_err(|e| LoadErrorKind::from_library(e, loaded, file))
}
