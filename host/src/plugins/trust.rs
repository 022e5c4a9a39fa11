//! Refusing plugin files that someone else could have written, in the
//! spirit of OpenSSH's `StrictModes`: loading a library runs its code with
//! the host's rights.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Checks `file` and its directory: each must belong to the host's user or
/// to root, and must not be writable by group or others (a directory with
/// the sticky bit, like `/tmp`, may be).
pub fn check(file: &Path) -> Result<(), String> {
    let file = std::fs::canonicalize(file).map_err(|e| format!("cannot resolve: {e}"))?;
    check_one(&file, false)?;
    if let Some(dir) = file.parent() {
        check_one(dir, true)?;
    }
    Ok(())
}

fn check_one(path: &Path, is_dir: bool) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let mode = meta.mode();
    let what = if is_dir { "directory" } else { "file" };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(format!(
            "{what} {} belongs to user id {}, not to this user ({me}) or root",
            path.display(),
            meta.uid()
        ));
    }
    let sticky_dir = is_dir && mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky_dir {
        return Err(format!(
            "{what} {} is writable by {} (mode {:o})",
            path.display(),
            if mode & 0o002 != 0 {
                "all users"
            } else {
                "its group"
            },
            mode & 0o7777
        ));
    }
    Ok(())
}
