//! Refusing plugin files and configs that someone else could have written,
//! in the spirit of OpenSSH's `StrictModes`: loading a library runs its
//! code with the host's rights, and the config decides which libraries.
//!
//! Two things must be out of other users' reach: the library file itself,
//! and every directory that decides which file its path names. The file is
//! judged by the open handle the host copies from (so what is checked is
//! what is loaded); the directories by walking the path from `/`, following
//! symbolic links the way the kernel does. That walk passes through every
//! ancestor of the configured path, every ancestor of the resolved path and
//! the directory of every link on the way, so a writable `plugins.d/`
//! holding a link to a safe file is refused too: whoever can write there
//! can repoint the link.

use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use super::escape;

/// Why a plugin file cannot be trusted. The wording is the user's: the
/// README quotes it and tests match it.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error(
        "{} {} belongs to user id {uid}, not to this user ({me}) or root",
        what(*is_dir),
        escape::path(path)
    )]
    WrongOwner {
        path: PathBuf,
        is_dir: bool,
        uid: u32,
        me: u32,
    },
    #[error("{} {} is writable by {by} (mode {mode:o})", what(*is_dir), escape::path(path))]
    Writable {
        path: PathBuf,
        is_dir: bool,
        /// "all users" or "its group".
        by: &'static str,
        /// The permission bits, sticky bit included.
        mode: u32,
    },
    #[error("{}: {source}", escape::path(path))]
    Unreadable { path: PathBuf, source: io::Error },
    /// The path no longer names the file that was opened: it was replaced
    /// while being checked, which only this user or root could have done
    /// once every directory on the way passed.
    #[error("{} was replaced while it was being checked", escape::path(path))]
    Replaced { path: PathBuf },
}

fn what(is_dir: bool) -> &'static str {
    if is_dir { "directory" } else { "file" }
}

/// Most symbolic links followed while resolving one path; Linux's limit.
const MAX_LINKS: usize = 40;

/// Checks the file `opened` from the path `file`: the file, and every
/// directory on the way to it, must belong to the host's user or to root
/// and must not be writable by group or others (a directory with the
/// sticky bit, like `/tmp`, may be).
pub fn check(file: &Path, opened: &File) -> Result<(), TrustError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    // fstat of the open file: the very inode that will be copied and
    // loaded, whatever the path names by now.
    let meta = opened.metadata().map_err(|source| TrustError::Unreadable {
        path: file.to_path_buf(),
        source,
    })?;
    let (resolved, named) = resolve_checking_directories(file, me)?;
    // Every directory on the way passed, so no other user can have changed
    // what the path names; if it still names another inode, the host's own
    // user or root swapped it meanwhile. Refuse rather than vouch for
    // directories that did not lead to the opened file.
    if (named.dev(), named.ino()) != (meta.dev(), meta.ino()) {
        return Err(TrustError::Replaced { path: resolved });
    }
    check_one(&resolved, &meta, false, me)
}

/// Resolves `file` component by component from `/`, checking each
/// directory it enters, and returns the resolved path of the file with the
/// `lstat` metadata of that last, non-link entry.
///
/// Resolution follows the kernel's rules, so the walk visits the very
/// directories the `open` consulted: a link's target is read relative to
/// the link's directory, and `..` goes to the parent of the directory
/// actually reached, not of the link that led there.
fn resolve_checking_directories(file: &Path, me: u32) -> Result<(PathBuf, Metadata), TrustError> {
    let unreadable = |path: &Path, source| TrustError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let absolute = if file.is_absolute() {
        file.to_path_buf()
    } else {
        // A relative path is resolved from the working directory, as the
        // open did; getcwd can fail (say, the directory was removed).
        let cwd = std::env::current_dir().map_err(|e| unreadable(Path::new("."), e))?;
        cwd.join(file)
    };
    // The components still to resolve, the next one last.
    let mut pending = Vec::new();
    push_components(&mut pending, &absolute);
    let mut dir = PathBuf::from("/");
    let root = std::fs::metadata(&dir).map_err(|e| unreadable(&dir, e))?;
    check_one(&dir, &root, true, me)?;
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            // The parent of a checked directory was checked on the way in
            // (and `/` is its own parent, as in the kernel).
            dir.pop();
            continue;
        }
        let path = dir.join(&name);
        let meta = std::fs::symlink_metadata(&path).map_err(|e| unreadable(&path, e))?;
        if meta.file_type().is_symlink() {
            // The link's own directory, `dir`, has been checked: nobody
            // else can repoint it. Its target is resolved next, in place
            // of the link.
            links += 1;
            if links > MAX_LINKS {
                return Err(unreadable(&path, io::Error::from_raw_os_error(libc::ELOOP)));
            }
            let target = std::fs::read_link(&path).map_err(|e| unreadable(&path, e))?;
            if target.is_absolute() {
                dir = PathBuf::from("/");
            }
            push_components(&mut pending, &target);
        } else if pending.is_empty() {
            return Ok((path, meta));
        } else if meta.is_dir() {
            check_one(&path, &meta, true, me)?;
            dir = path;
        } else {
            return Err(unreadable(
                &path,
                io::Error::from_raw_os_error(libc::ENOTDIR),
            ));
        }
    }
    // The path ended in `/`, `.` or `..`: a directory, not a library.
    Err(unreadable(&dir, io::Error::from_raw_os_error(libc::EISDIR)))
}

/// Pushes the components of `path` onto `pending` so that the first is
/// popped first. `/` and `.` name no entry; `..` stays, to be resolved
/// against the directory reached by then.
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    for component in path.components().rev() {
        match component {
            Component::Normal(name) => pending.push(name.to_owned()),
            Component::ParentDir => pending.push("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
}

fn check_one(path: &Path, meta: &Metadata, is_dir: bool, me: u32) -> Result<(), TrustError> {
    let uid = meta.uid();
    if uid != me && uid != 0 {
        return Err(TrustError::WrongOwner {
            path: path.to_path_buf(),
            is_dir,
            uid,
            me,
        });
    }
    let mode = meta.mode() & 0o7777;
    // In a sticky directory others may add entries but not rename or
    // remove this user's, so the path through it stays this user's.
    let sticky_dir = is_dir && mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky_dir {
        return Err(TrustError::Writable {
            path: path.to_path_buf(),
            is_dir,
            by: if mode & 0o002 != 0 {
                "all users"
            } else {
                "its group"
            },
            mode,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_path_repointed_after_the_open_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().canonicalize().unwrap();
        std::fs::write(dir.join("a.so"), b"a").unwrap();
        std::fs::write(dir.join("b.so"), b"b").unwrap();
        let link = dir.join("lib.so");
        symlink("a.so", &link).unwrap();
        let opened = File::open(&link).unwrap();
        check(&link, &opened).unwrap();

        std::fs::remove_file(&link).unwrap();
        symlink("b.so", &link).unwrap();
        let err = check(&link, &opened).unwrap_err();
        assert!(
            matches!(&err, TrustError::Replaced { path } if *path == dir.join("b.so")),
            "{err}"
        );
    }

    #[test]
    fn dot_dot_after_a_link_leaves_the_directory_reached() {
        // `link/..` is the parent of the link's target, as for the kernel:
        // here `real/..`, i.e. `tmp`, not the link's directory `sub`.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::create_dir_all(dir.join("real")).unwrap();
        std::fs::write(dir.join("lib.so"), b"x").unwrap();
        symlink(dir.join("real"), dir.join("sub/link")).unwrap();
        let path = dir.join("sub/link/../lib.so");
        let opened = File::open(&path).unwrap();
        check(&path, &opened).unwrap();

        set_mode(&dir.join("real"), 0o777);
        let err = check(&path, &opened).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "directory {} is writable by all users (mode 777)",
                dir.join("real").display()
            )
        );
    }

    #[test]
    fn a_sticky_directory_others_can_write_passes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().canonicalize().unwrap();
        std::fs::create_dir(dir.join("shared")).unwrap();
        set_mode(&dir.join("shared"), 0o1777);
        let file = dir.join("shared/lib.so");
        std::fs::write(&file, b"x").unwrap();
        set_mode(&file, 0o644);
        check(&file, &File::open(&file).unwrap()).unwrap();
    }

    #[test]
    fn a_link_loop_is_reported_not_followed_forever() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().canonicalize().unwrap();
        std::fs::write(dir.join("lib.so"), b"x").unwrap();
        let opened = File::open(dir.join("lib.so")).unwrap();
        symlink("loop", dir.join("loop")).unwrap();
        let err = check(&dir.join("loop"), &opened).unwrap_err();
        assert!(
            matches!(&err, TrustError::Unreadable { source, .. }
                if source.raw_os_error() == Some(libc::ELOOP)),
            "{err}"
        );
    }
}
