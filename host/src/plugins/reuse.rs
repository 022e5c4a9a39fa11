//! Which private copy a reload can keep: the one holding the very bytes of
//! the library file as it is now.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use super::{Prepared, PrivateCopy};

/// The copy in `previous` whose content is that of `opened`, if any.
///
/// Bytes are compared, not names or times: a library rebuilt and copied
/// over with its old modification time (`cp -p`) is still a new library,
/// and the same file listed under another entry or path is the same one.
pub(super) fn same_copy(previous: &[Prepared], opened: &mut File) -> Option<PrivateCopy> {
    let len = opened.metadata().ok()?.len();
    let mut wanted: Option<Vec<u8>> = None;
    for p in previous {
        let Ok(mut copy) = File::open(&p.copy.load_path) else {
            continue;
        };
        if copy.metadata().map(|m| m.len()).ok() != Some(len) {
            continue;
        }
        if wanted.is_none() {
            wanted = Some(read_all(opened).ok()?);
        }
        let same = read_all(&mut copy).is_ok_and(|bytes| Some(&bytes) == wanted.as_ref());
        if same {
            return Some(p.copy.clone());
        }
    }
    None
}

fn read_all(file: &mut File) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(0))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}
