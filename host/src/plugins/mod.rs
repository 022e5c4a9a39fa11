//! Loading plugin libraries: find each file the config lists, check that it
//! can be trusted, load a private copy, verify its `plugin-api` layout, start
//! the plugin with its settings and compile its hook patterns.
//!
//! Each library is loaded with `lib_header_from_path(..).init_root_module()`
//! rather than abi_stable's `RootModule::load_from_*`: those keep one module
//! per root-module *type* for the whole process, so every plugin after the
//! first would silently be the first one again.

mod load_error;
mod locate;
mod private_copy;
mod trust;

use std::path::{Path, PathBuf};

use abi_stable::library::lib_header_from_path;
use abi_stable::std_types::{RResult, RStr};
use plugin_api::abi::{HostInfo, PluginBox, PluginRoot_Ref};

use crate::config::{Config, PluginEntry};
use crate::pattern::HookPattern;
pub use load_error::{LoadError, LoadErrorKind};
pub use private_copy::RuntimeDir;

/// A plugin that loaded and started.
pub struct LoadedPlugin {
    /// The name the plugin reports.
    pub name: String,
    pub version: String,
    /// The user's library file (not the private copy that is mapped).
    pub file: PathBuf,
    pub object: PluginBox,
    pub hooks: Vec<LoadedHook>,
}

/// One hook of a loaded plugin, its pattern compiled.
pub struct LoadedHook {
    pub pattern: HookPattern,
    pub blocking: bool,
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

/// Loads every plugin of `config`, in order, copying each into `runtime`.
pub fn load_all(config: &Config, runtime: &RuntimeDir) -> LoadReport {
    let mut report = LoadReport {
        plugins: Vec::new(),
        skipped: Vec::new(),
        errors: Vec::new(),
    };
    for (index, entry) in config.plugins.iter().enumerate() {
        let result = load_one(config, entry, index, runtime).and_then(|plugin| {
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

fn load_one(
    config: &Config,
    entry: &PluginEntry,
    index: usize,
    runtime: &RuntimeDir,
) -> Result<LoadedPlugin, LoadError> {
    let file = locate::find(config, entry).map_err(|kind| LoadError::new(entry, None, kind))?;
    let fail = |kind| LoadError::new(entry, Some(&file), kind);
    // Opened once: the checks and the copy both use this open file, so a
    // path swapped in between cannot slip an unchecked library in.
    let mut opened = private_copy::open(&file).map_err(|e| fail(LoadErrorKind::Copy(e)))?;
    if config.strict_modes {
        trust::check(&file, &opened).map_err(|reason| fail(LoadErrorKind::Untrusted { reason }))?;
    }
    let copy = runtime
        .copy_in(&mut opened, &file, index)
        .map_err(|e| fail(LoadErrorKind::Copy(e)))?;
    let root = open_root_module(&copy, &file).map_err(fail)?;

    let name = root.name().as_str().to_owned();
    let version = root.version().as_str().to_owned();
    let info = HostInfo {
        server_name: RStr::from_str(&config.server_name),
        host_version: RStr::from_str(env!("CARGO_PKG_VERSION")),
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
    LoadedPlugin::new(name, version, file.clone(), object).map_err(fail)
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
                    }),
                    Err(e) => Err(LoadErrorKind::BadPattern {
                        hook: i + 1,
                        pattern: source,
                        error: e.to_string(),
                    }),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LoadedPlugin {
            name,
            version,
            file,
            object,
            hooks,
        })
    }
}

/// Opens the library at `copy` and checks its root module against this
/// host's `plugin-api`; errors speak of `file`, the user's file.
fn open_root_module(copy: &Path, file: &Path) -> Result<PluginRoot_Ref, LoadErrorKind> {
    let header =
        lib_header_from_path(copy).map_err(|e| LoadErrorKind::from_library(e, copy, file))?;
    header
        .init_root_module::<PluginRoot_Ref>()
        .map_err(|e| LoadErrorKind::from_library(e, copy, file))
}
