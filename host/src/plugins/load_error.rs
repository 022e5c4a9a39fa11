//! Why a plugin did not load, worded for the person who wrote the config.

use std::fmt;
use std::path::{Path, PathBuf};

use abi_stable::library::LibraryError;

use super::escape;
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
    /// The path names a directory, a FIFO, a device, ...
    #[error("{} is {kind}, not a library file", escape::path(path))]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("cannot open it: {0}")]
    Open(std::io::Error),
    #[error(
        "refusing to load: {reason}; fix the permissions, or set `strict_modes = false` in the config to allow it"
    )]
    Untrusted { reason: TrustError },
    /// Copying the library into the runtime directory failed.
    #[error("cannot make a private copy: {0}")]
    Copy(std::io::Error),
    #[error("not a loadable dynamic library: {0}")]
    NotALibrary(String),
    #[error(
        "not a plugin: the library exports no plugin root module (is `export_plugin!` missing?)"
    )]
    NoRootModule,
    /// Told apart before abi_stable's layout check, whose report for a
    /// version mismatch repeats itself and says nothing about versions.
    #[error(
        "built against plugin-api {}, but this host needs plugin-api {}; rebuild the plugin against the host's plugin-api",
        escape::text(plugin),
        host
    )]
    ApiVersion { plugin: String, host: String },
    #[error(
        "built against an incompatible plugin-api; rebuild it against this host's plugin-api\n{summary}"
    )]
    Incompatible {
        /// The `Error:`, `Expected` and `Found` lines of abi_stable's report.
        summary: String,
        /// abi_stable's full report, which runs to hundreds of lines.
        report: String,
    },
    #[error(
        "plugin `{}` refused to start: {}",
        escape::text(name),
        escape_lines(message)
    )]
    InitFailed { name: String, message: String },
    #[error("hook {hook} has an invalid pattern {pattern:?}:\n{error}")]
    BadPattern {
        hook: usize,
        pattern: String,
        error: String,
    },
    #[error(
        "another loaded library is also named `{}`: {}",
        escape::text(name),
        escape::path(other)
    )]
    DuplicateName { name: String, other: PathBuf },
    /// A config mistake found only once the files are known: reported,
    /// like the config's other mistakes, by file, line and key.
    #[error("{0}")]
    SameFile(Box<SameFile>),
}

/// An entry naming the same library file (device and inode) as an
/// earlier one.
#[derive(Debug, thiserror::Error)]
#[error(
    "{}:{line}:{column}: key `{key}`: plugin `{}` is the same library file as plugin `{}` (line {first_line}): {}; list each library once",
    escape::path(config),
    escape::text(label),
    escape::text(first_label),
    escape::path(file)
)]
pub struct SameFile {
    pub config: PathBuf,
    pub line: usize,
    pub column: usize,
    pub key: &'static str,
    pub label: String,
    pub first_label: String,
    pub first_line: usize,
    pub file: PathBuf,
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
        if let LoadErrorKind::SameFile(_) = self.kind {
            // Already placed by config file, line and key.
            return write!(f, "{}", self.kind);
        }
        write!(
            f,
            "plugin `{}` (config line {}",
            escape::text(&self.label),
            self.line
        )?;
        if let Some(file) = self.file.as_ref().filter(|f| !f.ends_with(&self.label)) {
            write!(f, ", {}", escape::path(file))?;
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

/// Tells whoever started the host what did not load: a warning for each
/// optional plugin skipped, an `error:` line for each other failure (and
/// abi_stable's full layout report at debug level). False if any failed.
pub fn tell(skipped: &[LoadError], errors: &[LoadError]) -> bool {
    for skipped in skipped {
        tracing::warn!("skipping optional {skipped}");
    }
    for e in errors {
        crate::say::error(e);
        if let LoadErrorKind::Incompatible { report, .. } = &e.kind {
            tracing::debug!(
                "full layout report for `{}`:\n{report}",
                escape::text(&e.label)
            );
        }
    }
    errors.is_empty()
}

impl LoadErrorKind {
    /// Classifies an abi_stable error, naming the user's `file` where the
    /// message names the private copy as it was loaded, `loaded`; the
    /// text is escaped for the terminal.
    pub fn from_library(err: LibraryError, loaded: &Path, file: &Path) -> Self {
        let mention = |text: String| {
            let file = escape::path(file).to_string();
            text.split(&*loaded.to_string_lossy())
                .map(|part| escape_lines(part).to_string())
                .collect::<Vec<_>>()
                .join(&file)
        };
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
/// report, each with its value folded onto one line. The report states one
/// mismatch once per path that reaches the type, so repeated groups are
/// shown once, and only whole groups are shown.
fn summarise_layout_report(report: &str) -> String {
    const KEYS: [&str; 3] = ["Error:", "Expected", "Found"];
    const MAX_GROUPS: usize = 3;
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut open = false;
    for line in report.lines().map(str::trim) {
        if KEYS.iter().any(|k| line.starts_with(k)) {
            let (key, value) = line.split_once(':').unwrap_or((line, ""));
            let entry = format!("{key}: {}", value.trim());
            match groups.last_mut() {
                Some(group) if !key.starts_with("Error") => group.push(entry),
                _ => groups.push(vec![entry]),
            }
            open = true;
        } else if line.is_empty() || is_error_count(line) {
            // "1 error(s)inside:" starts the report of the next level down.
            open = false;
        } else if open && let Some(last) = groups.last_mut().and_then(|g| g.last_mut()) {
            if !last.ends_with(": ") {
                last.push(' ');
            }
            last.push_str(line);
        }
    }
    let mut shown: Vec<&Vec<String>> = Vec::new();
    for group in &groups {
        if !shown.contains(&group) && shown.len() < MAX_GROUPS {
            shown.push(group);
        }
    }
    if shown.is_empty() {
        return report.lines().take(3).collect::<Vec<_>>().join("\n");
    }
    shown
        .iter()
        .flat_map(|group| group.iter())
        .map(|entry| entry.trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

/// abi_stable's "N error(s)" lines, which close one level of the report.
fn is_error_count(line: &str) -> bool {
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && line[digits..].starts_with(" error(s)")
}

/// `text` escaped line by line, its line breaks kept for the indented
/// detail lines of a [`LoadError`].
fn escape_lines(text: &str) -> String {
    text.split('\n')
        .map(|line| escape::text(line).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| escape::path(p).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of abi_stable's report for a plugin built against
    /// plugin-api 0.2.0 and loaded by a host with 0.1.0 (abridged).
    const REPORT: &str = "\
Compared <this>:
    --- Type Layout ---
    package:'plugin-api' version:'0.1.0'

Error:incompatible package versions
Expected:
    0.1.0
Found:
    0.2.0
0 error(s)inside:
    <other>

    field_name:0
";

    #[test]
    fn a_mismatch_reported_once_per_path_is_summarised_once() {
        assert_eq!(
            summarise_layout_report(&REPORT.repeat(3)),
            "Error: incompatible package versions\nExpected: 0.1.0\nFound: 0.2.0"
        );
    }
}
