//! Private copies of plugin libraries.
//!
//! Users rebuild plugins and copy them over the file the host loaded.
//! Writing into a mapped shared object changes the code under a running
//! process and crashes it. So the host maps only its own copy of each
//! library, in a directory of its own that is removed when it exits; the
//! user's file can then be replaced at any time.
//!
//! The copies decide what code runs, so nobody else may touch them: the
//! directory is made 0700 and each copy 0400 by `fchmod`, whatever the
//! umask, and a copy is loaded through `/proc/self/fd/N` of the very file
//! the host wrote and checked, not by its name, which a process with
//! access to the directory could have pointed elsewhere in between.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::leftovers;

/// Name prefix of the copy directories, which tells leftovers apart.
pub(super) const DIR_PREFIX: &str = "host-plugins-";
/// The file a live host holds locked in its copy directory.
pub(super) const LOCK_FILE: &str = ".lock";
/// Attempts at creating a directory before giving up: each fails only if a
/// concurrent start took the name or cleared the directory as a leftover.
const CREATE_ATTEMPTS: usize = 8;
/// Copies of one config entry's library at most, over the host's life.
const MAX_GENERATIONS: usize = 1 << 20;

/// A private directory (mode 0700) for the copies, removed on drop.
pub struct RuntimeDir {
    dir: tempfile::TempDir,
    /// Locked (`flock`) for the host's life: the directory is a leftover
    /// only once no process holds this lock.
    _lock: File,
    /// Every copy handed out, kept open for the host's life. The dynamic
    /// loader knows a library by the name it was opened under,
    /// `/proc/self/fd/N`; if N were closed and reused, a later `dlopen` of
    /// that name would return the earlier library.
    copies: Mutex<Vec<File>>,
}

/// A library copied into the private directory.
#[derive(Debug, Clone)]
pub struct PrivateCopy {
    /// Where the copy lies, for messages.
    pub path: PathBuf,
    /// The name to load it by: the open file itself, `/proc/self/fd/N`.
    pub load_path: PathBuf,
    /// N: the descriptor, which a serving process inherits as it is.
    pub fd: RawFd,
}

impl PrivateCopy {
    /// The copy a parent process made and left open as descriptor `fd`.
    pub fn inherited(fd: RawFd) -> PrivateCopy {
        let load_path = PathBuf::from(format!("/proc/self/fd/{fd}"));
        PrivateCopy {
            path: std::fs::read_link(&load_path).unwrap_or_else(|_| load_path.clone()),
            load_path,
            fd,
        }
    }
}

impl RuntimeDir {
    /// Creates the directory under `$XDG_RUNTIME_DIR`, or the temporary
    /// directory, after removing the directories of hosts that died there.
    ///
    /// `$XDG_RUNTIME_DIR` is used only if it is this user's and private, as
    /// the login manager makes it: under `sudo` it may still name the
    /// invoking user's, where that user could move the host's files about.
    pub fn create() -> io::Result<RuntimeDir> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|p| {
                std::fs::metadata(p)
                    .is_ok_and(|m| m.is_dir() && m.uid() == me && m.mode() & 0o022 == 0)
            })
            .unwrap_or_else(std::env::temp_dir);
        leftovers::remove(&base);
        let mut last_error = None;
        for _ in 0..CREATE_ATTEMPTS {
            match Self::create_in(&base) {
                Ok(Some(dir)) => return Ok(dir),
                Ok(None) => {}
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            io::Error::other(format!(
                "{} directories in {} were removed as soon as they were made",
                CREATE_ATTEMPTS,
                super::escape::path(&base)
            ))
        }))
    }

    /// One attempt; `None` if a concurrent start removed the directory,
    /// taking it for a leftover, before its lock was held.
    fn create_in(base: &Path) -> io::Result<Option<RuntimeDir>> {
        // Created 0700 (less if the umask takes more), then set to 0700.
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(base)?;
        let handle = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(dir.path())?;
        set_mode(&handle, 0o700)?;
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(dir.path().join(LOCK_FILE))?;
        set_mode(&lock, 0o600)?;
        if !leftovers::try_lock(&lock)? || lock.metadata()?.nlink() == 0 {
            // Another start locked it first, or locked and removed it:
            // either way it took this directory for a leftover.
            return Ok(None);
        }
        // What the name leads to now is what was made and locked.
        let made = handle.metadata()?;
        let named = std::fs::symlink_metadata(dir.path())?;
        if (made.dev(), made.ino()) != (named.dev(), named.ino()) {
            return Ok(None);
        }
        Ok(Some(RuntimeDir {
            dir,
            _lock: lock,
            copies: Mutex::new(Vec::new()),
        }))
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Copies the library open as `source` in, under a name unique to
    /// config entry `index` (ending in the file name of `name_hint`, the
    /// user's path). A fresh file per entry also means the dynamic loader
    /// never hands back an already loaded library.
    ///
    /// The bytes come from the open file, not from a path: the file the
    /// trust checks examined is the one copied, even if the user's path
    /// has been pointed elsewhere since.
    pub fn copy_in(
        &self,
        source: &mut File,
        name_hint: &Path,
        index: usize,
    ) -> io::Result<PrivateCopy> {
        // A reload copies a changed library of the same entry again, beside
        // the copy still mapped: `3-libx.so`, then `3.1-libx.so`, ...
        let name = file_name(name_hint);
        let mut generation = 0usize;
        let (path, mut out) = loop {
            let path = match generation {
                0 => self.dir.path().join(format!("{index}-{name}")),
                g => self.dir.path().join(format!("{index}.{g}-{name}")),
            };
            // `create_new` (O_EXCL) and `O_NOFOLLOW`: never write through a
            // file or link that is already there.
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
            {
                Ok(out) => break (path, out),
                Err(e)
                    if e.kind() == io::ErrorKind::AlreadyExists && generation < MAX_GENERATIONS =>
                {
                    generation += 1
                }
                Err(e) => return Err(e),
            }
        };
        let written = set_mode(&out, 0o600)
            .and_then(|()| source.seek(SeekFrom::Start(0)))
            .and_then(|_| io::copy(source, &mut out))
            // Read-only from here on, for everyone, the host included.
            .and_then(|_| set_mode(&out, 0o400))
            .and_then(|()| check_copy(&out, source));
        if let Err(e) = written {
            // A partial library must not linger where a later entry could
            // stumble on it; failing to remove it changes nothing for the
            // error reported, and the directory goes at exit anyway.
            drop(out);
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        // Kept, and handed to serving processes, read-only: a plugin in a
        // serving process can then not rewrite another plugin's copy.
        let read_only = OpenOptions::new()
            .read(true)
            .open(format!("/proc/self/fd/{}", out.as_raw_fd()))?;
        drop(out);
        let fd = read_only.as_raw_fd();
        let load_path = PathBuf::from(format!("/proc/self/fd/{fd}"));
        self.copies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(read_only);
        Ok(PrivateCopy {
            path,
            load_path,
            fd,
        })
    }
}

/// The copy is this user's, private, a single link and as long as the
/// source: what gets loaded is what was written.
fn check_copy(copy: &File, source: &File) -> io::Result<()> {
    let meta = copy.metadata()?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let mode = meta.mode() & 0o7777;
    if meta.uid() != me || mode != 0o400 || meta.nlink() != 1 || !meta.is_file() {
        return Err(io::Error::other(format!(
            "the copy is not private (owner {}, mode {mode:o}, {} links)",
            meta.uid(),
            meta.nlink()
        )));
    }
    if meta.len() != source.metadata()?.len() {
        return Err(io::Error::other(
            "the library changed size while it was copied",
        ));
    }
    Ok(())
}

/// Sets the permission bits of an open file, whatever the umask made them.
pub(super) fn set_mode(file: &File, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: fchmod on a descriptor we own; it reads no memory of ours.
    if unsafe { libc::fchmod(file.as_raw_fd(), mode) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The user's file name, reduced to characters that need no escaping
/// wherever the copy's path shows up (`/proc/<pid>/maps`, backtraces).
fn file_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() {
        "plugin".into()
    } else {
        safe
    }
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
        let mut opened = super::super::regular_file::open(&link).unwrap();

        std::fs::remove_file(&link).unwrap();
        symlink("swapped.so", &link).unwrap();
        let runtime = RuntimeDir::create().unwrap();
        let copy = runtime.copy_in(&mut opened, &link, 3).unwrap();
        assert_eq!(copy.path, runtime.path().join("3-libx.so"));
        assert_eq!(std::fs::read(&copy.path).unwrap(), b"checked");
        let mode = std::fs::metadata(&copy.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o400);

        // Whatever the name comes to hold, the name the library is loaded
        // by still leads to the file written.
        std::fs::remove_file(&copy.path).unwrap();
        std::fs::write(&copy.path, b"replaced").unwrap();
        assert_eq!(std::fs::read(&copy.load_path).unwrap(), b"checked");
    }

    #[test]
    fn odd_file_names_are_tamed() {
        assert_eq!(file_name(Path::new("/a/lib\u{1b}[x.so")), "lib__x.so");
        assert_eq!(file_name(Path::new("/")), "plugin");
    }
}
