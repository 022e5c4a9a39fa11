//! Where a plugin's library file is.

use std::path::PathBuf;

use crate::config::{Config, PluginEntry, PluginSource};

use super::LoadErrorKind;

/// The file of `entry`: its explicit path, or for a name, the first of
/// `lib<name>.so` in the plugins directory and beside the host executable.
///
/// The second place is what lets `cargo build` followed by
/// `target/release/host` find the bundled plugins, which cargo puts next to
/// the host binary, without copying anything.
pub fn find(config: &Config, entry: &PluginEntry) -> Result<PathBuf, LoadErrorKind> {
    match &entry.source {
        PluginSource::Path(path) => {
            if path.is_file() {
                Ok(path.clone())
            } else {
                Err(LoadErrorKind::NotFound {
                    looked: vec![path.clone()],
                })
            }
        }
        PluginSource::Name(name) => {
            let file = library_file_name(name);
            let mut looked = vec![config.plugins_dir.join(&file)];
            if let Some(dir) = std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(|d| d.to_path_buf()))
            {
                looked.push(dir.join(&file));
            }
            match looked.iter().find(|p| p.is_file()) {
                Some(found) => Ok(found.clone()),
                None => Err(LoadErrorKind::NotFound { looked }),
            }
        }
    }
}

/// The platform's file name for library `name`: `libname.so` on Linux.
/// Cargo turns `-` into `_` in library file names, and so does this.
pub fn library_file_name(name: &str) -> String {
    format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    )
}
