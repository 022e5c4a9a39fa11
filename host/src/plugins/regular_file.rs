//! Opening the files the host reads on start-up (its config and plugin
//! libraries) without being stalled or fooled by what a path may name.

use std::fs::{File, FileType, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a file could not be opened for reading.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The path names something else than a regular file.
    #[error("it is {kind}, not a regular file")]
    NotRegular { kind: &'static str },
}

/// Opens `path` for reading, once, and only if it is a regular file. Like
/// `File::open`, this follows symbolic links and sets `O_CLOEXEC`.
///
/// `O_NONBLOCK` keeps the open itself from waiting forever on a FIFO (it
/// changes nothing when reading a regular file), and `O_NOCTTY` keeps a
/// terminal device from becoming the host's controlling terminal. The type
/// is judged by `fstat` of the open file, so a path swapped after the open
/// changes nothing.
pub fn open(path: &Path) -> Result<File, OpenError> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let file_type = opened.metadata()?.file_type();
    if !file_type.is_file() {
        return Err(OpenError::NotRegular {
            kind: kind(file_type),
        });
    }
    Ok(opened)
}

/// What a file of this type is, for a message: "a directory", ...
pub fn kind(file_type: FileType) -> &'static str {
    if file_type.is_file() {
        "a regular file"
    } else if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a named pipe (FIFO)"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else {
        "an unusual kind of file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_kinds_of_file_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("pipe");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c_path` is a valid NUL-terminated string for the call.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let text = |p: &Path| open(p).unwrap_err().to_string();
        assert_eq!(text(&fifo), "it is a named pipe (FIFO), not a regular file");
        assert_eq!(text(tmp.path()), "it is a directory, not a regular file");
        assert_eq!(
            text(Path::new("/dev/null")),
            "it is a character device, not a regular file"
        );
        std::fs::write(tmp.path().join("f"), b"x").unwrap();
        assert!(open(&tmp.path().join("f")).is_ok());
    }
}
