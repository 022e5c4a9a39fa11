//! Why a plugin did not load, worded for the person who wrote the config.

use std::fmt;
use std::path::{Path, PathBuf};

use abi_stable::library::LibraryError;

use super::trust::TrustError;
use crate::config::PluginEntry;

/// A plugin that failed to load: which entry, which file, and why.
#[derive(Debug)]
pub struct LoadError {
    pub label: String,
    pub line: usize,
    pub file: Option<PathBuf>,
    pub kind: LoadErrorKind,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadErrorKind {
    #[error("library not found; looked for {}", list(looked))]
    NotFound { looked: Vec<PathBuf> },
    #[error(
        "refusing to load: {reason}; fix the permissions, or set `strict_modes = false` in the config to allow it"
    )]
    Untrusted { reason: TrustError },
    /// Opening the library, or copying it into the runtime directory, failed.
    #[error("cannot make a private copy: {0}")]
    Copy(std::io::Error),
    #[error("not a loadable dynamic library: {0}")]
    NotALibrary(String),
    #[error(
        "not a plugin: the library exports no plugin root module (is `export_plugin!` missing?)"
    )]
    NoRootModule,
    #[error(
        "built against an incompatible plugin-api; rebuild it against this host's plugin-api\n{summary}"
    )]
    Incompatible {
        /// The `Error:`, `Expected` and `Found` lines of abi_stable's report.
        summary: String,
        /// abi_stable's full report, which runs to hundreds of lines.
        report: String,
    },
    #[error("plugin `{name}` refused to start: {message}")]
    InitFailed { name: String, message: String },
    #[error("hook {hook} has an invalid pattern {pattern:?}:\n{error}")]
    BadPattern {
        hook: usize,
        pattern: String,
        error: String,
    },
    #[error("another loaded library is also named `{name}`: {}", other.display())]
    DuplicateName { name: String, other: PathBuf },
}

impl LoadError {
    pub fn new(entry: &PluginEntry, file: Option<&Path>, kind: LoadErrorKind) -> Self {
        LoadError {
            label: entry.label.clone(),
            line: entry.line,
            file: file.map(Path::to_path_buf),
            kind,
        }
    }
}

impl fmt::Display for LoadError {
    /// One line naming the plugin and file, with any detail indented below it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plugin `{}` (config line {}", self.label, self.line)?;
        if let Some(file) = self.file.as_ref().filter(|f| !f.ends_with(&self.label)) {
            write!(f, ", {}", file.display())?;
        }
        let text = self.kind.to_string();
        let mut lines = text.lines();
        write!(f, "): {}", lines.next().unwrap_or_default())?;
        for line in lines {
            write!(f, "\n    {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

impl LoadErrorKind {
    /// Classifies an abi_stable error, naming the user's `file` where the
    /// message names the private `copy`.
    pub fn from_library(err: LibraryError, copy: &Path, file: &Path) -> Self {
        let mention =
            |text: String| text.replace(&*copy.to_string_lossy(), &file.to_string_lossy());
        match err {
            LibraryError::OpenError { err, .. } => {
                LoadErrorKind::NotALibrary(mention(err.to_string()))
            }
            LibraryError::GetSymbolError { .. } => LoadErrorKind::NoRootModule,
            other => {
                let report = mention(other.to_string());
                let summary = summarise_layout_report(&report);
                LoadErrorKind::Incompatible { summary, report }
            }
        }
    }
}

/// The `Error:`, `Expected` and `Found` entries of abi_stable's layout
/// report, each with its value folded onto one line.
fn summarise_layout_report(report: &str) -> String {
    const KEYS: [&str; 3] = ["Error:", "Expected", "Found"];
    let mut entries: Vec<String> = Vec::new();
    let mut open = false;
    for line in report.lines().map(str::trim) {
        if KEYS.iter().any(|k| line.starts_with(k)) {
            let (key, value) = line.split_once(':').unwrap_or((line, ""));
            entries.push(format!("{key}: {}", value.trim()));
            open = true;
        } else if line.is_empty() {
            open = false;
        } else if open && let Some(last) = entries.last_mut() {
            if !last.ends_with(": ") {
                last.push(' ');
            }
            last.push_str(line);
        }
        if entries.len() >= 12 {
            break;
        }
    }
    if entries.is_empty() {
        return report.lines().take(3).collect::<Vec<_>>().join("\n");
    }
    entries.join("\n")
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
