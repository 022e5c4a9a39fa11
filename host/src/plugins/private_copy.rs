//! Private copies of plugin libraries.
//!
//! Users rebuild plugins and copy them over the file the host loaded.
//! Writing into a mapped shared object changes the code under a running
//! process and crashes it. So the host maps only its own copy of each
//! library, in a directory of its own that is removed when it exits; the
//! user's file can then be replaced at any time.

use std::io;
use std::path::{Path, PathBuf};

/// A private directory (mode 0700) for the copies, removed on drop.
pub struct RuntimeDir {
    dir: tempfile::TempDir,
}

impl RuntimeDir {
    /// Creates the directory under `$XDG_RUNTIME_DIR`, or the temporary directory.
    pub fn create() -> io::Result<RuntimeDir> {
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let dir = tempfile::Builder::new()
            .prefix("host-plugins-")
            .tempdir_in(base)?;
        Ok(RuntimeDir { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Copies `file` in, under a name unique to config entry `index`, and
    /// returns the copy's path. A fresh file per entry also means the
    /// dynamic loader never hands back an already loaded library.
    pub fn copy_in(&self, file: &Path, index: usize) -> io::Result<PathBuf> {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "plugin".into());
        let copy = self.dir.path().join(format!("{index}-{name}"));
        std::fs::copy(file, &copy)?;
        Ok(copy)
    }
}
