//! Where interactive history is kept, and how lines get there.
//!
//! Each entered line is appended to the file as soon as it is entered, not
//! when the session ends: the session can end in several ways (the user
//! leaves, the server leaves, the connection breaks), and none of them can
//! lose what was typed before it.

use std::io;
use std::path::{Path, PathBuf};

use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Editor, Helper};

/// `--history-file` (or `CLIENT_HISTORY_FILE`) when given, else
/// `history.txt` in the user's data directory (`$XDG_DATA_HOME/client` or
/// `~/.local/share/client` on Linux). `None` when there is no home to use.
pub fn path(explicit: Option<PathBuf>) -> Option<PathBuf> {
    explicit.or_else(|| {
        directories::ProjectDirs::from("", "", "linehost-cli")
            .map(|dirs| dirs.data_dir().join("history.txt"))
    })
}

/// The history file of one session.
pub struct History {
    path: PathBuf,
    /// A failure to write is reported once, not after every line.
    reported: bool,
}

impl History {
    /// Loads `path` into `editor`; a missing file is a first session.
    pub fn load<H: Helper>(editor: &mut Editor<H, DefaultHistory>, path: PathBuf) -> History {
        match editor.load_history(&path) {
            Ok(()) => {}
            Err(ReadlineError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => eprintln!("client: cannot read history {}: {e}", path.display()),
        }
        History {
            path,
            reported: false,
        }
    }

    /// Adds `line` to the editor's history and appends it to the file.
    pub fn record<H: Helper>(&mut self, editor: &mut Editor<H, DefaultHistory>, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        // A repeat of the previous line is not added, and then there is
        // nothing new to append.
        if !matches!(editor.add_history_entry(line), Ok(true)) {
            return;
        }
        if let Err(e) = append(editor, &self.path)
            && !self.reported
        {
            self.reported = true;
            eprintln!("client: cannot save history {}: {e}", self.path.display());
        }
    }
}

fn append<H: Helper>(editor: &mut Editor<H, DefaultHistory>, path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // rustyline appends only the entries added since the last write, and
    // rewrites the file instead when it has grown past the history size.
    editor.append_history(path)?;
    Ok(())
}
