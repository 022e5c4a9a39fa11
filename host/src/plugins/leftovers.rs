//! Copy directories left behind by hosts that died.
//!
//! A host killed by SIGKILL or a crash never removes its directory of
//! private copies, tens of MB each time. Each live host holds an `flock`
//! on the lock file in its directory; the kernel drops it when the process
//! ends, however it ends. So a directory of this user, named like ours,
//! whose lock file can be locked, belongs to no live host and goes.
//! Anything else (another user's, a live host's, one without a lock file,
//! such as one still being made or made by an older host) stays.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use tracing::{debug, info};

use super::escape;
use super::private_copy::{DIR_PREFIX, LOCK_FILE};

/// Removes the leftover copy directories of this user in `base`. Failures
/// are logged, never fatal: a leftover costs disk space, not correctness.
pub fn remove(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let mut removed = 0usize;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.as_encoded_bytes().starts_with(DIR_PREFIX.as_bytes()) {
            continue;
        }
        let path = entry.path();
        match remove_if_left_over(&path) {
            Ok(true) => removed += 1,
            Ok(false) => {}
            Err(e) => debug!("leaving {} in place: {e}", escape::path(&path)),
        }
    }
    if removed > 0 {
        info!(
            "removed {removed} plugin copy director{} left by hosts that are gone, in {}",
            if removed == 1 { "y" } else { "ies" },
            escape::path(base)
        );
    }
}

/// Removes `dir` if it is this user's copy directory and no process holds
/// its lock; true if it did.
fn remove_if_left_over(dir: &Path) -> io::Result<bool> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let before = std::fs::symlink_metadata(dir)?;
    if !before.is_dir() || before.uid() != me {
        return Ok(false);
    }
    let lock = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(dir.join(LOCK_FILE))
    {
        Ok(lock) => lock,
        // Not (yet) a directory of ours.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let meta = lock.metadata()?;
    if !meta.is_file() || meta.uid() != me || !try_lock(&lock)? {
        return Ok(false);
    }
    // Locked: no live host owns it. Remove it only if the name still leads
    // to the directory examined, and the lock to the file in it.
    let now = std::fs::symlink_metadata(dir)?;
    let lock_now = std::fs::symlink_metadata(dir.join(LOCK_FILE))?;
    if (now.dev(), now.ino()) != (before.dev(), before.ino())
        || (lock_now.dev(), lock_now.ino()) != (meta.dev(), meta.ino())
    {
        return Ok(false);
    }
    // `remove_dir_all` does not follow symbolic links inside the directory.
    std::fs::remove_dir_all(dir)?;
    debug!("removed leftover {}", escape::path(dir));
    Ok(true)
}

/// Takes the exclusive `flock` on `file` without waiting; false if another
/// open file description holds it.
pub fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor we own; it touches no memory of ours.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unlocked_directories_of_ours_go() {
        let base = tempfile::tempdir().unwrap();
        let make = |name: &str, lock: bool| {
            let dir = base.path().join(name);
            std::fs::create_dir(&dir).unwrap();
            if lock {
                std::fs::write(dir.join(LOCK_FILE), b"").unwrap();
            }
            std::fs::write(dir.join("0-lib.so"), b"x").unwrap();
            dir
        };
        let dead = make("host-plugins-dead", true);
        let no_lock = make("host-plugins-nolock", false);
        let other = make("something-else", true);
        let live_holder = make("host-plugins-live", true);
        // Held through another open file description, as by a live host.
        let held = File::open(live_holder.join(LOCK_FILE)).unwrap();
        assert!(try_lock(&held).unwrap());
        remove(base.path());
        assert!(!dead.exists(), "a dead host's directory stayed");
        assert!(no_lock.exists() && other.exists() && live_holder.exists());
    }
}
