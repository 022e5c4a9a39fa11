//! Where interactive history is kept.

use std::path::PathBuf;

/// `--history-file` (or `CLIENT_HISTORY_FILE`) when given, else
/// `history.txt` in the user's data directory (`$XDG_DATA_HOME/client` or
/// `~/.local/share/client` on Linux). `None` when there is no home to use.
pub fn path(explicit: Option<PathBuf>) -> Option<PathBuf> {
    explicit.or_else(|| {
        directories::ProjectDirs::from("", "", "client")
            .map(|dirs| dirs.data_dir().join("history.txt"))
    })
}
