//! Where a plugin's library file is.

use std::io;
use std::path::PathBuf;

use crate::config::{Config, PluginEntry, PluginSource};

use super::{LoadErrorKind, regular_file};

/// The file of `entry`: its explicit path, or for a name, the first of
/// `lib<name>.so` in the plugins directory and beside the host executable.
///
/// The second place is what lets `cargo build` followed by
/// `target/release/host` find the bundled plugins, which cargo puts next to
/// the host binary, without copying anything.
///
/// The first place where something exists decides: a directory or a FIFO
/// there is reported as what it is, not skipped, so that what the host
/// loads never depends on a mistake it kept quiet about.
pub fn find(config: &Config, entry: &PluginEntry) -> Result<PathBuf, LoadErrorKind> {
    let looked = match &entry.source {
        PluginSource::Path(path) => vec![path.clone()],
        PluginSource::Name(name) => {
            let file = plugin_api::library_file_name(name);
            let mut looked = vec![config.plugins_dir.join(&file)];
            if let Some(dir) = std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(|d| d.to_path_buf()))
            {
                looked.push(dir.join(&file));
            }
            looked
        }
    };
    for path in &looked {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => return Ok(path.clone()),
            Ok(meta) => {
                return Err(LoadErrorKind::NotRegular {
                    path: path.clone(),
                    kind: regular_file::kind(meta.file_type()),
                });
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) => {}
            // Something is there but cannot be examined (no permission,
            // a link loop): opening it reports why, naming the file.
            Err(_) => return Ok(path.clone()),
        }
    }
    Err(LoadErrorKind::NotFound { looked })
}
