//! Private copies of plugin libraries.
//!
//! Users rebuild plugins and copy them over the file the host loaded.
//! Writing into a mapped shared object changes the code under a running
//! process and crashes it. So the host maps only its own copy of each
//! library, in a directory of its own that is removed when it exits; the
//! user's file can then be replaced at any time.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
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

    /// Copies the library open as `source` in, under a name unique to
    /// config entry `index` (ending in the file name of `name_hint`, the
    /// user's path), and returns the copy's path. A fresh file per entry
    /// also means the dynamic loader never hands back an already loaded
    /// library.
    ///
    /// The bytes come from the open file, not from a path: the file the
    /// trust checks examined is the one copied, even if the user's path
    /// has been pointed elsewhere since.
    pub fn copy_in(
        &self,
        source: &mut File,
        name_hint: &Path,
        index: usize,
    ) -> io::Result<PathBuf> {
        let name = name_hint
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "plugin".into());
        let copy = self.dir.path().join(format!("{index}-{name}"));
        // `create_new` (O_EXCL): never write through a file or link that is
        // already there. The directory is private, but a stale entry would
        // otherwise be silently overwritten or followed.
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .open(&copy)?;
        let copied = source
            .seek(SeekFrom::Start(0))
            .and_then(|_| io::copy(source, &mut out));
        if let Err(e) = copied {
            // A partial library must not linger where a later entry could
            // stumble on it; failing to remove it changes nothing for the
            // error reported, and the directory goes at exit anyway.
            drop(out);
            let _ = std::fs::remove_file(&copy);
            return Err(e);
        }
        Ok(copy)
    }
}

/// Opens the plugin library at `file`, once: the trust checks examine this
/// open file and [`RuntimeDir::copy_in`] copies from it, so a path swapped
/// in between cannot slip an unchecked library in. Like `File::open`, this
/// follows symbolic links and sets `O_CLOEXEC`.
///
/// Anything but a regular file is refused. `O_NONBLOCK` keeps the open
/// itself from waiting forever on a FIFO put where the library was (it
/// changes nothing when reading a regular file), and `O_NOCTTY` keeps a
/// terminal device from becoming the host's controlling terminal.
pub fn open(file: &Path) -> io::Result<File> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(file)?;
    if !opened.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(opened)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn the_copy_is_of_the_open_file_not_of_what_the_path_names_now() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("checked.so"), b"checked").unwrap();
        std::fs::write(tmp.path().join("swapped.so"), b"swapped").unwrap();
        let link = tmp.path().join("libx.so");
        symlink("checked.so", &link).unwrap();
        let mut opened = open(&link).unwrap();

        std::fs::remove_file(&link).unwrap();
        symlink("swapped.so", &link).unwrap();
        let runtime = RuntimeDir::create().unwrap();
        let copy = runtime.copy_in(&mut opened, &link, 3).unwrap();
        assert_eq!(copy, runtime.path().join("3-libx.so"));
        assert_eq!(std::fs::read(&copy).unwrap(), b"checked");
    }

    #[test]
    fn only_regular_files_are_opened() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("libx.so");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c_path` is a valid NUL-terminated string for the call.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let err = open(&fifo).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(open(tmp.path()).is_err(), "a directory was opened");
    }
}
